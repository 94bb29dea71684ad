CREATE TABLE IF NOT EXISTS notifications (
    event_id   uuid PRIMARY KEY REFERENCES notification_events (id) ON DELETE CASCADE,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    read_at    timestamptz
);
CREATE INDEX IF NOT EXISTS notifications_user ON notifications (user_id, created_at DESC, event_id DESC);
CREATE INDEX IF NOT EXISTS notifications_unread ON notifications (user_id) WHERE read_at IS NULL;
INSERT INTO notifications (event_id, user_id, created_at, read_at)
    SELECT id, user_id, created_at, read_at FROM notification_events WHERE in_app
    ON CONFLICT DO NOTHING;
DROP INDEX IF EXISTS notification_events_unread;
DROP INDEX IF EXISTS notification_events_user;
CREATE INDEX notification_events_user ON notification_events (user_id, created_at DESC);
ALTER TABLE notification_events DROP COLUMN IF EXISTS read_at, DROP COLUMN IF EXISTS in_app;
DROP TABLE IF EXISTS notification_outbox;
