DROP INDEX IF EXISTS broker_connections_pending;
ALTER TABLE broker_connections DROP COLUMN IF EXISTS activation_checked_at;
ALTER TABLE broker_connections DROP COLUMN IF EXISTS pending_since;
DROP TABLE IF EXISTS password_resets;
