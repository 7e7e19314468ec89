-- OIDC sign-in: who a user is at the provider, the groups the provider last said they are in,
-- and repository memberships granted to such a group.

-- The provider's identity of the user (issuer + subject). Users are found by it at sign-in, so a
-- login renamed at the provider renames the user, and a local account whose login matches is
-- never taken over. Both NULL for users who never signed in with OIDC.
ALTER TABLE users ADD COLUMN oidc_issuer text, ADD COLUMN oidc_subject text;
ALTER TABLE users ADD CONSTRAINT users_oidc_identity_whole
    CHECK ((oidc_issuer IS NULL) = (oidc_subject IS NULL));
ALTER TABLE users ADD CONSTRAINT users_oidc_identity_unique UNIQUE (oidc_issuer, oidc_subject);

-- The groups claim of the user's last OIDC sign-in, replaced at each sign-in: leaving a group
-- at the provider ends what it granted at the next sign-in.
CREATE TABLE user_oidc_groups (
    user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    group_name text   NOT NULL CHECK (length(group_name) BETWEEN 1 AND 255),
    PRIMARY KEY (user_id, group_name)
);
CREATE INDEX user_oidc_groups_group_name ON user_oidc_groups (group_name);

-- A membership granted to everyone in an OIDC group (standalone repositories only).
ALTER TABLE repository_members ADD COLUMN oidc_group text
    CHECK (oidc_group IS NULL OR length(oidc_group) BETWEEN 1 AND 255);
ALTER TABLE repository_members DROP CONSTRAINT repository_members_has_member;
ALTER TABLE repository_members ADD CONSTRAINT repository_members_has_member
    CHECK (github_member_id IS NOT NULL OR user_id IS NOT NULL OR oidc_group IS NOT NULL);
ALTER TABLE repository_members ADD CONSTRAINT repository_members_group_unique
    UNIQUE (repository_id, oidc_group);
