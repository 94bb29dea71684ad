-- Notifications in the statement of the change they report (issue 17): an
-- order's outcome is recorded with its notification in one statement, so
-- what that statement writes is kept small.

-- The outbox: an event that e-mail or a webhook may want is written with a
-- row here, by the same statement that records the event (and so in the
-- transaction of the change it reports); a dispatcher turns these rows into
-- river jobs and deletes them in one transaction (see notify/outbox.go).
CREATE TABLE notification_outbox (
    event_id   uuid PRIMARY KEY REFERENCES notification_events (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL
);

-- An in-app notification is its event marked in_app (and read_at once
-- read), not a row of a table of its own: that row cost the outcome's
-- statement an insert, three index entries and two foreign-key checks.
ALTER TABLE notification_events
    ADD COLUMN in_app boolean NOT NULL DEFAULT false,
    ADD COLUMN read_at timestamptz;
UPDATE notification_events e SET in_app = true, read_at = n.read_at FROM notifications n WHERE n.event_id = e.id;
-- One index serves the bell's list (most events are in-app) and the
-- cascade from users; the unread count has its own.
DROP INDEX notification_events_user;
CREATE INDEX notification_events_user ON notification_events (user_id, created_at DESC, id DESC);
CREATE INDEX notification_events_unread ON notification_events (user_id) WHERE in_app AND read_at IS NULL;
DROP TABLE notifications;
