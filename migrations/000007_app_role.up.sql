-- Two roles: the owner, which runs these migrations and owns every table,
-- and ordertune_app, the group role the server connects as (through a
-- LOGIN role that is a member of it; see deploy/README.md). The server may
-- append to the audit trail and the status history but never change or
-- remove what is there, and may remove no signal or confirmation: a
-- compromised server, or an SQL injection, cannot erase its own tracks.
--
-- Roles belong to the cluster, not the database: the group role is created
-- once and reused by every database of the cluster. An owner without
-- CREATEROLE needs an administrator to create it first (the same
-- statement); the migration then only grants.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ordertune_app') THEN
        CREATE ROLE ordertune_app NOLOGIN;
    END IF;
END;
$$;

GRANT USAGE ON SCHEMA public TO ordertune_app;
GRANT SELECT ON schema_migrations TO ordertune_app;

-- Tables the server changes freely.
GRANT SELECT, INSERT, UPDATE, DELETE ON users, recovery_codes, sessions, api_tokens, auth_throttle,
    broker_connections, broker_settings, position_sizes, conids TO ordertune_app;
-- Rows that confirmations refer to: changed, never deleted.
GRANT SELECT, INSERT, UPDATE ON signals, confirmations TO ordertune_app;
-- Append-only. The audit sealer fills in the chain columns of unsealed rows
-- and moves the chain head forward; the triggers below allow nothing else.
GRANT SELECT, INSERT ON confirmation_events, audit_events, audit_chain_head TO ordertune_app;
GRANT UPDATE (seq, prev_hash, hash) ON audit_events TO ordertune_app;
GRANT UPDATE (seq, hash) ON audit_chain_head TO ordertune_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO ordertune_app;

-- Tables and sequences the owner creates later are the server's to change;
-- a later append-only table revokes what it must not allow, as above.
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ordertune_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO ordertune_app;

-- The triggers hold for the owner's plain statements too. Getting past
-- them takes a deliberate step (ALTER TABLE ... DISABLE TRIGGER as the
-- owner, or a superuser's session_replication_role), and what that erases
-- the signed checkpoints outside the database reveal. TRUNCATE fires no
-- row trigger: each table has a statement trigger for it.
CREATE FUNCTION refuse_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is never truncated', TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END;
$$;

CREATE TRIGGER signals_never_truncated BEFORE TRUNCATE ON signals
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_truncate();
CREATE TRIGGER confirmations_never_truncated BEFORE TRUNCATE ON confirmations
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_truncate();
CREATE TRIGGER confirmation_events_never_truncated BEFORE TRUNCATE ON confirmation_events
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_truncate();
CREATE TRIGGER audit_events_never_truncated BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_truncate();
CREATE TRIGGER audit_chain_head_never_truncated BEFORE TRUNCATE ON audit_chain_head
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_truncate();

-- An audit row is written once, sealed once (seq, prev_hash and hash go
-- from NULL to set, nothing else changes) and never deleted.
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.seq IS NULL AND NEW.seq IS NOT NULL
        AND NEW.prev_hash IS NOT NULL AND NEW.hash IS NOT NULL
        AND (NEW.id, NEW.at, NEW.user_id, NEW.actor_id, NEW.ip, NEW.action, NEW.subject, NEW.details)
            IS NOT DISTINCT FROM (OLD.id, OLD.at, OLD.user_id, OLD.actor_id, OLD.ip, OLD.action, OLD.subject, OLD.details) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit_events is append-only: a row is sealed once and never changed or deleted'
        USING ERRCODE = 'restrict_violation';
END;
$$;

CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();

-- The chain head only moves forward.
CREATE FUNCTION audit_chain_head_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.id = OLD.id AND NEW.seq > OLD.seq THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit_chain_head only moves forward'
        USING ERRCODE = 'restrict_violation';
END;
$$;

CREATE TRIGGER audit_chain_head_forward_only BEFORE UPDATE OR DELETE ON audit_chain_head
    FOR EACH ROW EXECUTE FUNCTION audit_chain_head_forward_only();

-- The status history refused UPDATE and DELETE with a plain exception
-- since migration 4; it now says why, like the others.
CREATE OR REPLACE FUNCTION confirmation_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'confirmation_events is append-only'
        USING ERRCODE = 'restrict_violation';
END;
$$;
