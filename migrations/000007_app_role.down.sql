CREATE OR REPLACE FUNCTION confirmation_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'confirmation_events is append-only';
END;
$$;

DROP TRIGGER audit_chain_head_forward_only ON audit_chain_head;
DROP FUNCTION audit_chain_head_forward_only();
DROP TRIGGER audit_events_append_only ON audit_events;
DROP FUNCTION audit_events_append_only();
DROP TRIGGER audit_chain_head_never_truncated ON audit_chain_head;
DROP TRIGGER audit_events_never_truncated ON audit_events;
DROP TRIGGER confirmation_events_never_truncated ON confirmation_events;
DROP TRIGGER confirmations_never_truncated ON confirmations;
DROP TRIGGER signals_never_truncated ON signals;
DROP FUNCTION refuse_truncate();

-- The role itself stays: it belongs to the cluster, and other databases of
-- the cluster may still grant to it. Only this database's grants go.
ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE USAGE, SELECT ON SEQUENCES FROM ordertune_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM ordertune_app;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM ordertune_app;
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM ordertune_app;
REVOKE USAGE ON SCHEMA public FROM ordertune_app;
