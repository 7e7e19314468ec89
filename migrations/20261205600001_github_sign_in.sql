-- GitHub sign-in: the user's OAuth token is sealed with the secrets' AES-256-GCM key; the
-- ciphertext goes in the existing `github_token_encrypted`, its nonce and key id beside it (so a
-- key rotation can tell what is left to re-seal, as for secrets).
ALTER TABLE users
    ADD COLUMN github_token_nonce  bytea,
    ADD COLUMN github_token_key_id text,
    ADD CONSTRAINT users_github_token_sealed CHECK (
        (github_token_encrypted IS NULL) = (github_token_nonce IS NULL)
        AND (github_token_encrypted IS NULL) = (github_token_key_id IS NULL)
    );
