DROP INDEX confirmations_open;
CREATE INDEX confirmations_due ON confirmations (next_check_at) WHERE next_check_at IS NOT NULL;

DROP INDEX confirmations_live;
CREATE UNIQUE INDEX confirmations_live ON confirmations (user_id, signal_id, side)
    WHERE status NOT IN ('failed', 'cancelled');

ALTER TABLE confirmations RESET (fillfactor);
ALTER TABLE confirmations DROP COLUMN open, DROP COLUMN live;
