-- The outbox of notifications (issue 17): an event that e-mail or a webhook
-- may want is written with a row here, by the same statement that records
-- the event (and so in the transaction of the change it reports); a
-- dispatcher turns these rows into river jobs and deletes them in one
-- transaction. An order's outcome is then recorded in one round trip with
-- its notification, instead of a transaction of four (see notify/outbox.go).
CREATE TABLE notification_outbox (
    event_id   uuid PRIMARY KEY REFERENCES notification_events (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL
);

GRANT SELECT, INSERT, DELETE ON notification_outbox TO ordertune_app;
