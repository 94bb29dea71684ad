-- Notifications: the events users are told about, in-app notifications,
-- per-channel preferences, webhook endpoints and their delivery log. The
-- deliveries themselves are river jobs (000012), inserted in the same
-- transaction as the event.

-- One row per event: its id is the de-duplication key every channel
-- carries (a webhook's webhook-id, an e-mail's Message-ID).
CREATE TABLE notification_events (
    id         uuid PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    type       text NOT NULL,
    data       jsonb NOT NULL,
    created_at timestamptz NOT NULL
);

CREATE INDEX notification_events_user ON notification_events (user_id, created_at DESC);

-- In-app notifications: the events shown in the bell, written in the same
-- transaction as the event itself.
CREATE TABLE notifications (
    event_id   uuid PRIMARY KEY REFERENCES notification_events (id) ON DELETE CASCADE,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    read_at    timestamptz
);

CREATE INDEX notifications_user ON notifications (user_id, created_at DESC, event_id DESC);
CREATE INDEX notifications_unread ON notifications (user_id) WHERE read_at IS NULL;

-- A user's choices that differ from the defaults (the defaults live in
-- code, so a new event type gets its default without a migration).
CREATE TABLE notification_preferences (
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    channel    text NOT NULL CHECK (channel IN ('in_app', 'email', 'webhook')),
    event_type text NOT NULL,
    enabled    boolean NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, channel, event_type)
);

-- Webhook endpoints. The signing secret is sealed (AES-256-GCM, AAD = user
-- id + field + endpoint id) and shown to the user once, at creation.
-- failing_since is the first failed attempt since the last success; an
-- endpoint failing for a day is disabled and its owner e-mailed.
CREATE TABLE webhook_endpoints (
    id            uuid PRIMARY KEY,
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    url           text NOT NULL,
    event_types   text[] NOT NULL,
    secret        bytea NOT NULL,
    failing_since timestamptz,
    disabled_at   timestamptz,
    created_at    timestamptz NOT NULL
);

CREATE INDEX webhook_endpoints_user ON webhook_endpoints (user_id, created_at);

-- Every attempt to deliver an event to an endpoint, success or not.
CREATE TABLE webhook_deliveries (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    endpoint_id uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    event_id    uuid NOT NULL REFERENCES notification_events (id) ON DELETE CASCADE,
    event_type  text NOT NULL,
    attempt     integer NOT NULL,
    status_code integer,
    error       text NOT NULL DEFAULT '',
    duration_ms integer NOT NULL,
    at          timestamptz NOT NULL
);

CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, at DESC, id DESC);
