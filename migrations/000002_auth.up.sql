-- Accounts, 2FA, sessions, API tokens and login throttling.

CREATE TABLE users (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email             text NOT NULL,
    role              text NOT NULL CHECK (role IN ('admin', 'subscriber')),
    password_hash     text NOT NULL,
    -- The TOTP secrets are sealed (AES-256-GCM, AAD = user id + field name);
    -- the pending one waits for its first code before it becomes the secret.
    totp_secret         bytea,
    totp_pending_secret bytea,
    totp_enabled      boolean NOT NULL DEFAULT false,
    -- The newest 30-second step whose code was accepted: a code of this step
    -- or an older one is a replay. Advanced only by a conditional UPDATE.
    totp_last_step    bigint NOT NULL DEFAULT 0,
    locked_at         timestamptz,
    disabled_at       timestamptz,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL
);

CREATE UNIQUE INDEX users_email ON users (lower(email));

CREATE TABLE recovery_codes (
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  bytea NOT NULL,
    created_at timestamptz NOT NULL,
    used_at    timestamptz,
    PRIMARY KEY (user_id, code_hash)
);

-- Sessions are found by the SHA-256 of their 256-bit random id; the id
-- itself exists only in the browser's cookie.
CREATE TABLE sessions (
    id_hash      bytea PRIMARY KEY,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    full_auth    boolean NOT NULL,
    created_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    ip           text NOT NULL DEFAULT ''
);

CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE api_tokens (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    token_hash   bytea NOT NULL UNIQUE,
    name         text NOT NULL,
    scopes       text[] NOT NULL,
    created_by   uuid NOT NULL REFERENCES users (id),
    created_at   timestamptz NOT NULL,
    last_used_at timestamptz,
    revoked_at   timestamptz
);

-- Failed attempts per key ("acct:<email>" or "ip:<address>"): the back-off
-- and the lockout are computed from these rows, so they hold across
-- restarts and across server processes.
CREATE TABLE auth_throttle (
    key             text PRIMARY KEY,
    failures        integer NOT NULL,
    last_failure_at timestamptz NOT NULL
);
