-- The confirm path writes a confirmation, its status history and its audit
-- entry twice per order. Foreign keys from those rows to users, signals and
-- confirmations made every write lock its parent row (FOR KEY SHARE): when
-- everyone confirms the signal just published, hundreds of transactions
-- lock that one signal row (MultiXacts), and each statement touched more
-- relations than PostgreSQL's per-backend fast-path locks hold. Measured in
-- scripts/BENCHMARKS.md. The parents are append-only instead, so a
-- reference can never dangle: signals are withdrawn, never deleted;
-- confirmations are a log and never deleted; a user with confirmations
-- cannot be deleted. Every insert refers to rows the same request has just
-- read.

ALTER TABLE confirmations DROP CONSTRAINT confirmations_user_id_fkey;
ALTER TABLE confirmations DROP CONSTRAINT confirmations_signal_id_fkey;
ALTER TABLE confirmation_events DROP CONSTRAINT confirmation_events_confirmation_id_fkey;

CREATE FUNCTION refuse_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% rows are never deleted: confirmations refer to them', TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END;
$$;

CREATE TRIGGER signals_never_deleted BEFORE DELETE ON signals
    FOR EACH ROW EXECUTE FUNCTION refuse_delete();
CREATE TRIGGER confirmations_never_deleted BEFORE DELETE ON confirmations
    FOR EACH ROW EXECUTE FUNCTION refuse_delete();

CREATE FUNCTION refuse_delete_user_with_confirmations() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM confirmations WHERE user_id = OLD.id) THEN
        RAISE EXCEPTION 'user % has confirmations and cannot be deleted', OLD.id
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN OLD;
END;
$$;

CREATE TRIGGER users_with_confirmations_kept BEFORE DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION refuse_delete_user_with_confirmations();
