-- Hardening of accounts (issues 16 and 23): step-up, salted recovery
-- codes, remembered devices and the key ring's canary.

-- A step-up (a fresh second factor) lets this session do sensitive
-- actions until step_up_until. device_trusted marks a password-only
-- session begun from a remembered device, which passes the account's
-- failure back-off and lock-out (never the address's).
ALTER TABLE sessions
    ADD COLUMN step_up_until  timestamptz,
    ADD COLUMN device_trusted boolean NOT NULL DEFAULT false;

-- Recovery codes are stored as argon2id PHC strings (salted, slow). The
-- unsalted SHA-256 digests of codes made before this migration cannot be
-- converted (the codes themselves are gone); they stay in code_hash and
-- keep working until used or replaced, since users may have printed them.
ALTER TABLE recovery_codes DROP CONSTRAINT recovery_codes_pkey;
ALTER TABLE recovery_codes
    ADD COLUMN id          uuid NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY,
    ADD COLUMN code_argon2 text,
    ALTER COLUMN code_hash DROP NOT NULL,
    ADD CONSTRAINT recovery_codes_one_hash CHECK ((code_hash IS NULL) <> (code_argon2 IS NULL));
CREATE INDEX recovery_codes_user ON recovery_codes (user_id);

-- Browsers that completed a sign-in (password and second factor) before,
-- found by the SHA-256 of a 256-bit random id kept only in their cookie.
CREATE TABLE remembered_devices (
    id_hash      bytea PRIMARY KEY,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL,
    last_used_at timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL
);
CREATE INDEX remembered_devices_user ON remembered_devices (user_id);

-- One known plaintext sealed with the key ring on the first start:
-- `serve` refuses to start when none of its keys opens it.
-- name is bound into the ciphertext's associated data (in the place of a
-- user id), so `ordertune keys rewrap` re-seals it like any sealed column.
CREATE TABLE seal_canary (
    id         boolean PRIMARY KEY DEFAULT true CHECK (id),
    name       text NOT NULL DEFAULT 'key ring canary',
    sealed     bytea NOT NULL,
    created_at timestamptz NOT NULL
);
