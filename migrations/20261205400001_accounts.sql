-- Accounts: local passwords and browser sessions.

-- A local account's password as an Argon2id PHC string; NULL for users who sign in another way
-- (GitHub, OIDC, a one-time link) or not at all.
ALTER TABLE users ADD COLUMN password_hash text
    CHECK (password_hash IS NULL OR password_hash LIKE '$argon2id$%');

-- A session (kind 'auth') ends when unused for this long; fixed when the session starts, so the
-- check needs nothing but the row. NULL (personal tokens) means no idle limit. The absolute end
-- is `expires_at`.
ALTER TABLE user_tokens ADD COLUMN idle_timeout_seconds integer
    CHECK (idle_timeout_seconds IS NULL OR idle_timeout_seconds > 0);
