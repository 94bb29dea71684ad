DROP TABLE audit_chain_head;
DROP TRIGGER confirmation_events_append_only ON confirmation_events;
DROP FUNCTION confirmation_events_append_only();
DROP TABLE confirmation_events;
DROP TABLE confirmations;
DROP TABLE conids;
DROP TABLE position_sizes;
DROP TABLE signals;
