-- IBKR connections: one credential set per user and mode (live, paper), and
-- which mode is active. The private keys, the access token secret, the DH
-- parameters and the account id are sealed (AES-256-GCM; the associated
-- data binds each ciphertext to its user id, field name and mode, so a
-- ciphertext moved to another row or column does not open). The consumer
-- key and access token are not secrets on their own and stay in clear.
CREATE TABLE broker_connections (
    user_id             uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    mode                text NOT NULL CHECK (mode IN ('live', 'paper')),
    consumer_key        text NOT NULL,
    access_token        text NOT NULL,
    realm               text NOT NULL,
    signature_key       bytea NOT NULL,
    -- NULL when the signature key also decrypts the access token secret.
    encryption_key      bytea,
    access_token_secret bytea NOT NULL,
    dh_params           bytea NOT NULL,
    account_id          bytea NOT NULL,
    -- Prefix and last four digits ("U•••4567"): what the UI shows.
    account_id_masked   text NOT NULL,
    status              text NOT NULL DEFAULT 'untested'
                        CHECK (status IN ('untested', 'connected', 'failed', 'pending_activation')),
    last_test           jsonb,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    PRIMARY KEY (user_id, mode)
);

-- The mode whose credentials orders use; a user without a row is on paper.
CREATE TABLE broker_settings (
    user_id     uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    active_mode text NOT NULL CHECK (active_mode IN ('live', 'paper')),
    updated_at  timestamptz NOT NULL
);
