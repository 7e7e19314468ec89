-- The domain: repositories and their members, branches, commits, checks, issues and ignore
-- rules, issue and coverage history, coverage, early coverage uploads, secrets and the cache
-- catalogue.
--
-- Modelled on the original schema (reference/cocov-api.md §2) with its gaps fixed:
-- * every child row hangs off its parent with ON DELETE CASCADE, so `DELETE FROM repositories`
--   removes a repository completely in one statement (the original deleted by hand and forgot
--   ignore rules, which made such repositories undeletable: bug 15);
-- * references to users are ON DELETE SET NULL wherever the row outlives its author (secrets,
--   ignore rules, ignored issues, commits), so deleting a user never deletes shared data (bug 16)
--   and is never refused (bug 15);
-- * uniqueness the original left to luck or to the application is enforced here (coverage files
--   per report, organization secret names, the repository upload token);
-- * enumerations are text with CHECK constraints, using the words the API speaks;
-- * every state that can be pending carries a `deadline_at`, so a sweeper can end it.
--
-- Timestamps are timestamptz. `updated_at` is maintained by the trigger below unless the
-- statement sets it explicitly.

CREATE FUNCTION cocov_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END;
$$;

-- ---------------------------------------------------------------------------------------------
-- Repositories and members
-- ---------------------------------------------------------------------------------------------

CREATE TABLE repositories (
    id                bigserial   PRIMARY KEY,
    name              citext      NOT NULL UNIQUE CHECK (name <> ''),
    description       text,
    default_branch    citext      NOT NULL CHECK (default_branch <> ''),
    -- GitHub's repository id; NULL for standalone repositories registered by git URL.
    github_id         bigint      UNIQUE,
    -- Clone URL for standalone repositories (may also be set for GitHub ones, e.g. a mirror).
    git_url           text        CHECK (git_url <> ''),
    -- The repository upload token (crt_…), only as the hex SHA-256 of the full token string
    -- (the original stored and returned it in plaintext: bug 43).
    upload_token_hash text        NOT NULL UNIQUE CHECK (upload_token_hash ~ '^[0-9a-f]{64}$'),
    -- Sum of cache_artifacts.size, recomputed on artifact create/delete (quota, eviction).
    cache_size        bigint      NOT NULL DEFAULT 0 CHECK (cache_size >= 0),
    -- Sum of commits.archive_size.
    commits_size      bigint      NOT NULL DEFAULT 0 CHECK (commits_size >= 0),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    -- A repository comes from GitHub or from a git URL; one of them must say where.
    CONSTRAINT repositories_has_source CHECK (github_id IS NOT NULL OR git_url IS NOT NULL)
);

CREATE TABLE repository_members (
    id               bigserial   PRIMARY KEY,
    repository_id    bigint      NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    -- GitHub's user id (not a local user id), as in the original: permissions are synced from
    -- GitHub before the user ever logs in.
    github_member_id bigint,
    -- A local user, for standalone mode (no GitHub); leaving the instance ends the membership.
    user_id          bigint      REFERENCES users (id) ON DELETE CASCADE,
    level            text        NOT NULL CHECK (level IN ('user', 'maintainer', 'admin')),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT repository_members_has_member
        CHECK (github_member_id IS NOT NULL OR user_id IS NOT NULL),
    -- NULLs are distinct, so each constraint only binds the rows that use that kind of member.
    CONSTRAINT repository_members_github_unique UNIQUE (repository_id, github_member_id),
    CONSTRAINT repository_members_user_unique UNIQUE (repository_id, user_id)
);
CREATE INDEX repository_members_github_member_id ON repository_members (github_member_id);
CREATE INDEX repository_members_user_id ON repository_members (user_id);

-- ---------------------------------------------------------------------------------------------
-- Commits and branches
-- ---------------------------------------------------------------------------------------------

CREATE TABLE commits (
    id               bigserial   PRIMARY KEY,
    repository_id    bigint      NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    -- SHA-1 (40) or SHA-256 (64) object name; citext so the case the client sends is irrelevant.
    sha              citext      NOT NULL
                     CHECK (sha::text ~ '^([0-9a-fA-F]{40}|[0-9a-fA-F]{64})$'),
    author_name      text        NOT NULL,
    -- citext: linking commits to users by verified e-mail is case-insensitive (bug 34).
    author_email     citext      NOT NULL,
    message          text        NOT NULL,
    committed_at     timestamptz,
    -- The local user with that verified e-mail; the commit outlives the user.
    user_id          bigint      REFERENCES users (id) ON DELETE SET NULL,
    -- Active (not ignored) issues; NULL until checks have run.
    issues_count     integer     CHECK (issues_count >= 0),
    -- Total coverage (not truncated; truncate when rendering a badge); NULL until processed.
    coverage_percent double precision CHECK (coverage_percent BETWEEN 0 AND 100),
    -- The manifest's coverage.min_percent when coverage was processed.
    minimum_coverage integer     CHECK (minimum_coverage BETWEEN 0 AND 100),
    -- Fetching the commit into a stored archive (the original's clone_status).
    ingest_status    text        NOT NULL DEFAULT 'queued'
                     CHECK (ingest_status IN ('queued', 'in_progress', 'completed', 'errored')),
    ingest_error     text,
    -- Size and hex SHA-256 of the stored source archive (blob keyed by repository id and sha).
    archive_size     bigint      CHECK (archive_size >= 0),
    archive_sha256   text        CHECK (archive_sha256 ~ '^[0-9a-f]{64}$'),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT commits_repository_sha_unique UNIQUE (repository_id, sha),
    -- An errored ingest always says why.
    CONSTRAINT commits_errored_has_error
        CHECK (ingest_status <> 'errored' OR ingest_error IS NOT NULL)
);
CREATE INDEX commits_repository_created ON commits (repository_id, created_at DESC, id DESC);
CREATE INDEX commits_user_id ON commits (user_id);
-- Linking not-yet-linked commits to a user who verified an e-mail.
CREATE INDEX commits_unlinked_author_email ON commits (author_email) WHERE user_id IS NULL;

CREATE TABLE branches (
    id             bigserial   PRIMARY KEY,
    repository_id  bigint      NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    name           citext      NOT NULL CHECK (name <> ''),
    -- SET NULL: a branch survives losing its head commit (it shows as gray until the next push).
    head_commit_id bigint      REFERENCES commits (id) ON DELETE SET NULL,
    -- Denormalised from the head commit: active issues and total coverage (badges read these).
    issues         integer     CHECK (issues >= 0),
    coverage       double precision CHECK (coverage BETWEEN 0 AND 100),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT branches_repository_name_unique UNIQUE (repository_id, name),
    -- Target of the histories' composite foreign keys (a history point's branch must belong to
    -- the point's repository).
    CONSTRAINT branches_id_repository_unique UNIQUE (id, repository_id)
);
CREATE INDEX branches_head_commit_id ON branches (head_commit_id);

-- ---------------------------------------------------------------------------------------------
-- Checks
-- ---------------------------------------------------------------------------------------------

CREATE TABLE check_sets (
    id          bigserial   PRIMARY KEY,
    commit_id   bigint      NOT NULL UNIQUE REFERENCES commits (id) ON DELETE CASCADE,
    status      text        NOT NULL DEFAULT 'waiting'
                CHECK (status IN ('waiting', 'queued', 'in_progress', 'completed', 'errored',
                                  'not_configured', 'canceled', 'failure')),
    -- NULL = no error (the original's `no_error`). The original's kinds, plus
    -- manifest_invalid_yaml (the original crashed on YAML syntax errors: bug 25) and
    -- deadline_exceeded (the original left sets pending forever: bug 38).
    error_kind  text
                CHECK (error_kind IN ('commit_fetch_failed', 'manifest_root_must_be_mapping',
                                      'manifest_missing_version', 'manifest_version_type_mismatch',
                                      'manifest_version_unsupported', 'manifest_unknown_secret',
                                      'manifest_duplicated_mount_destination',
                                      'manifest_invalid_mount_source',
                                      'manifest_invalid_or_missing_data',
                                      'manifest_invalid_yaml', 'deadline_exceeded')),
    error_extra text,
    canceling   boolean     NOT NULL DEFAULT false,
    started_at  timestamptz,
    finished_at timestamptz,
    -- When a waiting/queued/in_progress set is given up on (nothing stays pending forever).
    deadline_at timestamptz,
    -- The run's job id; a fresh one per run, so a stale cancel cannot hit a re-run (bug 37).
    job_id      uuid        UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT check_sets_failure_has_kind CHECK (status <> 'failure' OR error_kind IS NOT NULL),
    CONSTRAINT check_sets_extra_needs_kind CHECK (error_extra IS NULL OR error_kind IS NOT NULL),
    CONSTRAINT check_sets_finished_has_time
        CHECK (status NOT IN ('completed', 'errored', 'canceled', 'failure')
               OR finished_at IS NOT NULL)
);
-- The deadline sweeper's scan.
CREATE INDEX check_sets_pending_deadline ON check_sets (deadline_at)
    WHERE status IN ('waiting', 'queued', 'in_progress');

CREATE TABLE checks (
    id           bigserial   PRIMARY KEY,
    check_set_id bigint      NOT NULL REFERENCES check_sets (id) ON DELETE CASCADE,
    -- The cleaned plugin name (reference §13.5), e.g. cocov/rubocop.
    plugin_name  citext      NOT NULL CHECK (plugin_name <> ''),
    status       text        NOT NULL DEFAULT 'waiting'
                 CHECK (status IN ('waiting', 'in_progress', 'completed', 'errored', 'canceled')),
    error_output text,
    started_at   timestamptz,
    finished_at  timestamptz,
    deadline_at  timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT checks_set_plugin_unique UNIQUE (check_set_id, plugin_name),
    -- The original's model validations, enforced where they cannot be bypassed.
    CONSTRAINT checks_errored_has_output CHECK (status <> 'errored' OR error_output IS NOT NULL),
    CONSTRAINT checks_finished_has_time
        CHECK (status NOT IN ('completed', 'errored', 'canceled') OR finished_at IS NOT NULL),
    CONSTRAINT checks_started_has_time CHECK (status = 'waiting' OR started_at IS NOT NULL)
);
CREATE INDEX checks_pending_deadline ON checks (deadline_at)
    WHERE status IN ('waiting', 'in_progress');

-- ---------------------------------------------------------------------------------------------
-- Issues and ignore rules
-- ---------------------------------------------------------------------------------------------

CREATE TABLE issue_ignore_rules (
    id            bigserial   PRIMARY KEY,
    -- CASCADE: the original had no dependent here, which made repositories undeletable (bug 15).
    repository_id bigint      NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    -- SET NULL: the rule keeps working after its author is deleted.
    user_id       bigint      REFERENCES users (id) ON DELETE SET NULL,
    reason        text,
    -- Copies of the issue the rule was made from.
    check_source  citext      NOT NULL,
    file          text        NOT NULL,
    kind          text        NOT NULL
                  CHECK (kind IN ('style', 'performance', 'security', 'bug', 'complexity',
                                  'duplication', 'convention', 'quality')),
    line_start    integer     NOT NULL CHECK (line_start >= 1),
    line_end      integer     NOT NULL,
    message       text        NOT NULL,
    uid           citext      NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT issue_ignore_rules_lines CHECK (line_end >= line_start),
    -- At most one rule per uid and repository; the first creator's reason wins.
    CONSTRAINT issue_ignore_rules_repository_uid_unique UNIQUE (repository_id, uid)
);
CREATE INDEX issue_ignore_rules_user_id ON issue_ignore_rules (user_id);

CREATE TABLE issues (
    id                 bigserial   PRIMARY KEY,
    commit_id          bigint      NOT NULL REFERENCES commits (id) ON DELETE CASCADE,
    kind               text        NOT NULL
                       CHECK (kind IN ('style', 'performance', 'security', 'bug', 'complexity',
                                       'duplication', 'convention', 'quality')),
    file               text        NOT NULL,
    uid                citext      NOT NULL,
    line_start         integer     NOT NULL CHECK (line_start >= 1),
    line_end           integer     NOT NULL,
    message            text        NOT NULL,
    -- The cleaned plugin name that reported it (same form as checks.plugin_name).
    check_source       citext      NOT NULL,
    -- NULL = active.
    ignored_at         timestamptz,
    ignore_source      text        CHECK (ignore_source IN ('user', 'rule')),
    -- SET NULL on both: the issue stays ignored when the user or the rule goes away (deleting a
    -- user referenced here was refused by the original: bug 15).
    ignore_user_id     bigint      REFERENCES users (id) ON DELETE SET NULL,
    ignore_rule_id     bigint      REFERENCES issue_ignore_rules (id) ON DELETE SET NULL,
    ignore_user_reason text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT issues_lines CHECK (line_end >= line_start),
    CONSTRAINT issues_ignore_consistent CHECK ((ignored_at IS NULL) = (ignore_source IS NULL)),
    -- Re-sending a plugin's output is idempotent (INSERT … ON CONFLICT DO NOTHING).
    CONSTRAINT issues_commit_uid_unique UNIQUE (commit_id, uid)
);
-- The issue list's filters (kind, source, file, active/ignored) within one commit.
CREATE INDEX issues_commit_kind ON issues (commit_id, kind);
CREATE INDEX issues_commit_check_source ON issues (commit_id, check_source);
CREATE INDEX issues_commit_file ON issues (commit_id, file);
CREATE INDEX issues_commit_active ON issues (commit_id, kind) WHERE ignored_at IS NULL;
CREATE INDEX issues_commit_ignored ON issues (commit_id) WHERE ignored_at IS NOT NULL;
CREATE INDEX issues_ignore_user_id ON issues (ignore_user_id) WHERE ignore_user_id IS NOT NULL;
CREATE INDEX issues_ignore_rule_id ON issues (ignore_rule_id) WHERE ignore_rule_id IS NOT NULL;

-- ---------------------------------------------------------------------------------------------
-- History (append-only time series, one point per branch whose head was the commit)
-- ---------------------------------------------------------------------------------------------

CREATE TABLE issue_histories (
    id            bigserial   PRIMARY KEY,
    repository_id bigint      NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    branch_id     bigint      NOT NULL,
    -- SET NULL: the point stays in the series when its commit is deleted.
    commit_id     bigint      REFERENCES commits (id) ON DELETE SET NULL,
    quantity      integer     NOT NULL CHECK (quantity >= 0),
    created_at    timestamptz NOT NULL DEFAULT now(),
    -- CASCADE: deleting a branch (push of a branch deletion) deletes its series. Composite so the
    -- branch belongs to the same repository.
    CONSTRAINT issue_histories_branch_fk FOREIGN KEY (branch_id, repository_id)
        REFERENCES branches (id, repository_id) ON DELETE CASCADE
);
CREATE INDEX issue_histories_branch_created ON issue_histories (branch_id, created_at, id);
CREATE INDEX issue_histories_repository_created ON issue_histories (repository_id, created_at);
CREATE INDEX issue_histories_commit_id ON issue_histories (commit_id);

CREATE TABLE coverage_histories (
    id            bigserial   PRIMARY KEY,
    repository_id bigint      NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    branch_id     bigint      NOT NULL,
    commit_id     bigint      REFERENCES commits (id) ON DELETE SET NULL,
    percentage    double precision NOT NULL CHECK (percentage BETWEEN 0 AND 100),
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT coverage_histories_branch_fk FOREIGN KEY (branch_id, repository_id)
        REFERENCES branches (id, repository_id) ON DELETE CASCADE
);
CREATE INDEX coverage_histories_branch_created ON coverage_histories (branch_id, created_at, id);
CREATE INDEX coverage_histories_repository_created
    ON coverage_histories (repository_id, created_at);
CREATE INDEX coverage_histories_commit_id ON coverage_histories (commit_id);

-- ---------------------------------------------------------------------------------------------
-- Coverage
-- ---------------------------------------------------------------------------------------------

CREATE TABLE coverage_infos (
    id              bigserial   PRIMARY KEY,
    commit_id       bigint      NOT NULL UNIQUE REFERENCES commits (id) ON DELETE CASCADE,
    status          text        NOT NULL DEFAULT 'waiting'
                    CHECK (status IN ('waiting', 'queued', 'in_progress', 'completed', 'errored')),
    percent_covered double precision CHECK (percent_covered BETWEEN 0 AND 100),
    lines_total     integer     CHECK (lines_total >= 0),
    lines_covered   integer     CHECK (lines_covered >= 0),
    -- Why processing errored, for the user.
    error           text,
    -- When a queued/in_progress report is given up on.
    deadline_at     timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT coverage_infos_covered_le_total CHECK (lines_covered <= lines_total),
    CONSTRAINT coverage_infos_errored_has_error CHECK (status <> 'errored' OR error IS NOT NULL),
    CONSTRAINT coverage_infos_completed_has_totals
        CHECK (status <> 'completed'
               OR (percent_covered IS NOT NULL AND lines_total IS NOT NULL
                   AND lines_covered IS NOT NULL))
);
CREATE INDEX coverage_infos_pending_deadline ON coverage_infos (deadline_at)
    WHERE status IN ('queued', 'in_progress');

CREATE TABLE coverage_files (
    id               bigserial   PRIMARY KEY,
    coverage_info_id bigint      NOT NULL REFERENCES coverage_infos (id) ON DELETE CASCADE,
    -- Path relative to the repository root.
    file             text        NOT NULL CHECK (file <> ''),
    percent_covered  double precision NOT NULL CHECK (percent_covered BETWEEN 0 AND 100),
    lines_total      integer     NOT NULL CHECK (lines_total >= 0),
    lines_covered    integer     NOT NULL CHECK (lines_covered >= 0),
    lines_missed     integer     NOT NULL CHECK (lines_missed >= 0),
    -- The decoded line map (reference §12.3), not base64.
    raw_data         bytea       NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    -- Executable lines are either hit or missed.
    CONSTRAINT coverage_files_line_sum CHECK (lines_covered + lines_missed = lines_total),
    -- The original had no uniqueness: a file could appear twice in one report.
    CONSTRAINT coverage_files_info_file_unique UNIQUE (coverage_info_id, file)
);

-- Coverage that arrives before its commit, held until the commit is registered (the original
-- kept it 2 h in Redis and lost it: bug 11). A sweeper deletes rows past expires_at.
CREATE TABLE coverage_uploads (
    id            bigserial   PRIMARY KEY,
    repository_id bigint      NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    commit_sha    citext      NOT NULL
                  CHECK (commit_sha::text ~ '^([0-9a-fA-F]{40}|[0-9a-fA-F]{64})$'),
    -- 'merge' combines with earlier uploads for the commit (parallel CI jobs); 'replace' wins.
    mode          text        NOT NULL DEFAULT 'replace' CHECK (mode IN ('merge', 'replace')),
    -- The upload in the wire shape: {"path": "<base64 line map>", …}.
    data          jsonb       NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL DEFAULT now() + interval '2 hours',
    -- Set when applied to the commit; applied rows may be deleted at once.
    applied_at    timestamptz,
    CONSTRAINT coverage_uploads_expiry CHECK (expires_at > received_at)
);
-- Applied in arrival order when the commit arrives.
CREATE INDEX coverage_uploads_pending ON coverage_uploads (repository_id, commit_sha, received_at)
    WHERE applied_at IS NULL;
CREATE INDEX coverage_uploads_expires_at ON coverage_uploads (expires_at);

-- ---------------------------------------------------------------------------------------------
-- Secrets
-- ---------------------------------------------------------------------------------------------

CREATE TABLE secrets (
    id            bigserial   PRIMARY KEY,
    scope         text        NOT NULL CHECK (scope IN ('organization', 'repository')),
    name          citext      NOT NULL CHECK (name::text ~ '^[A-Za-z_][A-Za-z0-9_]*$'),
    -- CASCADE: a repository's secrets go with it.
    repository_id bigint      REFERENCES repositories (id) ON DELETE CASCADE,
    -- AES-256-GCM; key_id names the key that sealed this value, so keys can rotate one value
    -- at a time (the original: AES-CBC, no integrity, no rotation).
    ciphertext    bytea       NOT NULL,
    nonce         bytea       NOT NULL CHECK (octet_length(nonce) = 12),
    key_id        text        NOT NULL CHECK (key_id <> ''),
    -- SET NULL: deleting a user must not delete the secrets they created (bug 16).
    created_by    bigint      REFERENCES users (id) ON DELETE SET NULL,
    last_used_at  timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT secrets_scope_repository CHECK ((scope = 'repository') = (repository_id IS NOT NULL))
);
-- Partial unique indexes: a plain UNIQUE (scope, name, repository_id) lets organization secrets
-- repeat, because NULL repository ids are distinct (the original's gap). A repository secret
-- may share its name with an organization secret: it overrides it at run time.
CREATE UNIQUE INDEX secrets_organization_name_unique ON secrets (name)
    WHERE scope = 'organization';
CREATE UNIQUE INDEX secrets_repository_name_unique ON secrets (repository_id, name)
    WHERE scope = 'repository';
CREATE INDEX secrets_created_by ON secrets (created_by);
CREATE INDEX secrets_key_id ON secrets (key_id);

-- ---------------------------------------------------------------------------------------------
-- Cache catalogue (bytes live in the blob store; these rows are the index)
-- ---------------------------------------------------------------------------------------------

CREATE TABLE cache_artifacts (
    id            bigserial   PRIMARY KEY,
    repository_id bigint      NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    name          citext      NOT NULL,
    name_hash     text        NOT NULL CHECK (name_hash <> ''),
    size          bigint      NOT NULL CHECK (size >= 0),
    -- Free-form namespace (per plugin or tool engine).
    engine        citext      NOT NULL,
    mime          text        NOT NULL,
    last_used_at  timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT cache_artifacts_name_unique UNIQUE (repository_id, name, engine),
    CONSTRAINT cache_artifacts_name_hash_unique UNIQUE (repository_id, name_hash, engine)
);
-- Eviction walks a repository's artifacts least recently used first.
CREATE INDEX cache_artifacts_repository_lru
    ON cache_artifacts (repository_id, last_used_at ASC NULLS FIRST, id);

CREATE TABLE cache_tools (
    id           bigserial   PRIMARY KEY,
    name         citext      NOT NULL,
    name_hash    text        NOT NULL CHECK (name_hash <> ''),
    -- bigint: the original's 32-bit size refused tools of 2 GiB and more (bug 33).
    size         bigint      NOT NULL CHECK (size >= 0),
    engine       citext      NOT NULL,
    mime         text        NOT NULL,
    last_used_at timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT cache_tools_name_unique UNIQUE (name, engine),
    CONSTRAINT cache_tools_name_hash_unique UNIQUE (name_hash, engine)
);
CREATE INDEX cache_tools_lru ON cache_tools (last_used_at ASC NULLS FIRST, id);

-- ---------------------------------------------------------------------------------------------
-- updated_at maintenance
-- ---------------------------------------------------------------------------------------------

CREATE TRIGGER repositories_touch BEFORE UPDATE ON repositories
    FOR EACH ROW EXECUTE FUNCTION cocov_touch_updated_at();
CREATE TRIGGER repository_members_touch BEFORE UPDATE ON repository_members
    FOR EACH ROW EXECUTE FUNCTION cocov_touch_updated_at();
CREATE TRIGGER commits_touch BEFORE UPDATE ON commits
    FOR EACH ROW EXECUTE FUNCTION cocov_touch_updated_at();
CREATE TRIGGER branches_touch BEFORE UPDATE ON branches
    FOR EACH ROW EXECUTE FUNCTION cocov_touch_updated_at();
CREATE TRIGGER check_sets_touch BEFORE UPDATE ON check_sets
    FOR EACH ROW EXECUTE FUNCTION cocov_touch_updated_at();
CREATE TRIGGER checks_touch BEFORE UPDATE ON checks
    FOR EACH ROW EXECUTE FUNCTION cocov_touch_updated_at();
CREATE TRIGGER issue_ignore_rules_touch BEFORE UPDATE ON issue_ignore_rules
    FOR EACH ROW EXECUTE FUNCTION cocov_touch_updated_at();
CREATE TRIGGER issues_touch BEFORE UPDATE ON issues
    FOR EACH ROW EXECUTE FUNCTION cocov_touch_updated_at();
CREATE TRIGGER coverage_infos_touch BEFORE UPDATE ON coverage_infos
    FOR EACH ROW EXECUTE FUNCTION cocov_touch_updated_at();
CREATE TRIGGER secrets_touch BEFORE UPDATE ON secrets
    FOR EACH ROW EXECUTE FUNCTION cocov_touch_updated_at();
CREATE TRIGGER cache_artifacts_touch BEFORE UPDATE ON cache_artifacts
    FOR EACH ROW EXECUTE FUNCTION cocov_touch_updated_at();
CREATE TRIGGER cache_tools_touch BEFORE UPDATE ON cache_tools
    FOR EACH ROW EXECUTE FUNCTION cocov_touch_updated_at();
