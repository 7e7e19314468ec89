-- PostgreSQL is the source of truth for work: the reconciler finds what is pending here but
-- held by no queue (Redis lost it) and queues it again. What it needs recorded:

-- A repository whose deletion was asked for: the deletion job is queued again until the row is
-- gone.
ALTER TABLE repositories ADD COLUMN deletion_requested_at timestamptz;

-- A status version GitHub refused for good (or that stayed unpostable past the outage deadline):
-- not queued again; a newer version is posted as usual.
ALTER TABLE commit_statuses ADD COLUMN post_failed_version integer;
ALTER TABLE commit_statuses ADD COLUMN post_error text;

-- The reconciler's scans touch only unfinished rows.
CREATE INDEX commits_ingest_unfinished ON commits (updated_at)
    WHERE ingest_status IN ('queued', 'in_progress');
CREATE INDEX check_sets_unfinished ON check_sets (updated_at)
    WHERE status IN ('waiting', 'queued', 'in_progress');
CREATE INDEX commit_statuses_unposted ON commit_statuses (updated_at)
    WHERE posted_version IS NULL OR posted_version < version;
CREATE INDEX repositories_deletion_requested ON repositories (deletion_requested_at)
    WHERE deletion_requested_at IS NOT NULL;
