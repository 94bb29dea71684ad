-- The audit trail: who did what, when, from where. Rows are appended in the
-- same transaction as the change they record; a background worker seals them
-- into a hash chain (seq, prev_hash, hash) so tampering is detectable.
CREATE TABLE audit_events (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    user_id    uuid,
    actor_id   uuid,
    ip         text,
    action     text NOT NULL,
    subject    text NOT NULL DEFAULT '',
    details    jsonb NOT NULL DEFAULT '{}',
    seq        bigint UNIQUE,
    prev_hash  bytea,
    hash       bytea
);

CREATE INDEX audit_events_unsealed ON audit_events (id) WHERE seq IS NULL;
CREATE INDEX audit_events_user ON audit_events (user_id, id);
