DROP TABLE seal_canary;
DROP TABLE remembered_devices;

-- argon2id codes cannot become SHA-256 digests again: they are deleted,
-- and their users make a new set.
DROP INDEX recovery_codes_user;
DELETE FROM recovery_codes WHERE code_hash IS NULL;
ALTER TABLE recovery_codes
    DROP CONSTRAINT recovery_codes_one_hash,
    DROP COLUMN code_argon2,
    DROP COLUMN id,
    ALTER COLUMN code_hash SET NOT NULL;
ALTER TABLE recovery_codes ADD PRIMARY KEY (user_id, code_hash);

ALTER TABLE sessions DROP COLUMN step_up_until, DROP COLUMN device_trusted;
