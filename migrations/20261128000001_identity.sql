-- Identity: users, their e-mails, their tokens, service tokens and the audit log.
-- Enumerations are text with CHECK constraints so the database reads the way the API speaks.
-- Tokens are stored only as the hex SHA-256 of the full token string.

CREATE EXTENSION IF NOT EXISTS citext;

CREATE TABLE users (
    id              bigserial PRIMARY KEY,
    login           citext      NOT NULL UNIQUE,
    -- GitHub's numeric user id; NULL for users created locally in standalone mode.
    github_id       bigint      UNIQUE,
    admin           boolean     NOT NULL DEFAULT false,
    avatar_url      text,
    -- The user's GitHub OAuth token, AES-256-GCM encrypted (never stored in plaintext).
    github_token_encrypted bytea,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE user_emails (
    id          bigserial PRIMARY KEY,
    user_id     bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- An address belongs to at most one user.
    email       citext      NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX user_emails_user_id ON user_emails (user_id);

CREATE TABLE user_tokens (
    id           bigserial PRIMARY KEY,
    user_id      bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- 'auth' = login session (coa_), 'personal' = personal access token (cop_).
    kind         text        NOT NULL CHECK (kind IN ('auth', 'personal')),
    description  text        NOT NULL DEFAULT '',
    token_hash   text        NOT NULL UNIQUE CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    expires_at   timestamptz,
    last_used_at timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX user_tokens_user_id ON user_tokens (user_id);

CREATE TABLE service_tokens (
    id           bigserial PRIMARY KEY,
    description  text        NOT NULL CHECK (description <> ''),
    token_hash   text        NOT NULL UNIQUE CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    -- Who created it; deleting that user keeps the token working (workers depend on it).
    created_by   bigint      REFERENCES users (id) ON DELETE SET NULL,
    last_used_at timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE audit_log (
    id            bigserial PRIMARY KEY,
    at            timestamptz NOT NULL DEFAULT now(),
    -- 'user', 'service', 'cli' (an operator on the host) or 'system' (the daemon itself).
    actor_kind    text        NOT NULL CHECK (actor_kind IN ('user', 'service', 'cli', 'system')),
    actor_user_id bigint      REFERENCES users (id) ON DELETE SET NULL,
    actor_label   text        NOT NULL,
    action        text        NOT NULL,
    target        text        NOT NULL DEFAULT '',
    details       jsonb       NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_at ON audit_log (at);
