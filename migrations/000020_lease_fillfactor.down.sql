ALTER TABLE broker_session_leases RESET (fillfactor);
