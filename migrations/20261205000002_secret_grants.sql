-- Issue 11, items 2 and 4: organisation secrets reach only the repositories they are granted
-- to, and a check set keeps the manifest read at ingestion so that no worker reads the file
-- from an unpacked tree again.

-- Existing organisation secrets applied to every repository; they keep doing so (the flag set
-- below) until an administrator narrows them. New ones start granted to no repository.
ALTER TABLE secrets ADD COLUMN all_repositories boolean NOT NULL DEFAULT false;
UPDATE secrets SET all_repositories = true WHERE scope = 'organization';
ALTER TABLE secrets ADD CONSTRAINT secrets_all_repositories_organization
    CHECK (scope = 'organization' OR NOT all_repositories);

CREATE TABLE secret_grants (
    id            bigserial   PRIMARY KEY,
    -- CASCADE both ways: a grant means nothing without its secret or its repository.
    secret_id     bigint      NOT NULL REFERENCES secrets (id) ON DELETE CASCADE,
    repository_id bigint      NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    -- SET NULL: deleting the admin who granted it keeps the grant.
    granted_by    bigint      REFERENCES users (id) ON DELETE SET NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT secret_grants_unique UNIQUE (secret_id, repository_id)
);
-- "Which secrets may this repository use": the lookup at scheduling and run time.
CREATE INDEX secret_grants_repository ON secret_grants (repository_id);

-- The manifest's bytes as ingestion read them (a regular file, capped); NULL for sets that
-- run nothing, and for sets queued before this migration.
ALTER TABLE check_sets ADD COLUMN manifest bytea;

-- A `.cocov.yaml` that is a link, a submodule or a directory is refused with its own kind.
ALTER TABLE check_sets DROP CONSTRAINT check_sets_error_kind_check;
ALTER TABLE check_sets ADD CONSTRAINT check_sets_error_kind_check
    CHECK (error_kind IN ('commit_fetch_failed', 'manifest_root_must_be_mapping',
                          'manifest_missing_version', 'manifest_version_type_mismatch',
                          'manifest_version_unsupported', 'manifest_unknown_secret',
                          'manifest_duplicated_mount_destination',
                          'manifest_invalid_mount_source',
                          'manifest_invalid_or_missing_data',
                          'manifest_invalid_yaml', 'deadline_exceeded',
                          'manifest_not_a_file'));
