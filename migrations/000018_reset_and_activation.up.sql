-- Password reset links (issue 17): only the token's SHA-256 is stored (it
-- carries 256 random bits); a link works once, for 30 minutes.
CREATE TABLE password_resets (
    token_hash bytea PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    ip         text NOT NULL DEFAULT ''
);

CREATE INDEX password_resets_user ON password_resets (user_id) WHERE used_at IS NULL;

GRANT SELECT, INSERT, UPDATE, DELETE ON password_resets TO ordertune_app;

-- When credentials became pending_activation (IBKR does not know the
-- consumer key yet): the activation check re-tests them every 30 minutes
-- for three days from then. NULL in every other status.
-- activation_checked_at is the last re-test's claim: one replica takes a
-- connection per round.
ALTER TABLE broker_connections ADD COLUMN pending_since timestamptz;
ALTER TABLE broker_connections ADD COLUMN activation_checked_at timestamptz;
UPDATE broker_connections SET pending_since = updated_at WHERE status = 'pending_activation';
CREATE INDEX broker_connections_pending ON broker_connections (pending_since) WHERE status = 'pending_activation';
