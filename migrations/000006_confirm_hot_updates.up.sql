-- A confirmation row is updated on every status change and every
-- reconciliation lease. Such an update is "HOT" — it writes no index entry —
-- when no indexed column (key or partial-index predicate) changes and the
-- page has room. Before this migration `status` (the live-uniqueness
-- predicate) and `next_check_at` (the due index's key) changed on nearly
-- every update, so each one wrote a new entry into all six indexes.
--
-- Now the indexes refer only to columns that the common updates leave as
-- they are: two stored generated flags, `live` (not failed, not cancelled)
-- and `open` (still to be looked at by reconciliation), change only when a
-- confirmation ends. Pages keep a fifth free for the new row versions.

ALTER TABLE confirmations
    ADD COLUMN live boolean GENERATED ALWAYS AS (status NOT IN ('failed', 'cancelled')) STORED,
    ADD COLUMN open boolean GENERATED ALWAYS AS (next_check_at IS NOT NULL) STORED;
ALTER TABLE confirmations SET (fillfactor = 80);

DROP INDEX confirmations_live;
CREATE UNIQUE INDEX confirmations_live ON confirmations (user_id, signal_id, side) WHERE live;

-- A pending row is now due for reconciliation from the start, at the end of
-- its grace period (set by the application). Pending rows left by an
-- earlier version had none; no request is in flight while migrations run,
-- so they are due at once.
UPDATE confirmations SET next_check_at = now() WHERE status = 'pending' AND next_check_at IS NULL;

-- Reconciliation reads every open row each pass (open orders are checked
-- every interval anyway); the key is one that never changes.
DROP INDEX confirmations_due;
CREATE INDEX confirmations_open ON confirmations (id) WHERE open;
