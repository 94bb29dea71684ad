DROP TABLE broker_session_leases;
