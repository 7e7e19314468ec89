-- Image plugins: the digest a manifest's image tag resolved to for a commit, so a re-run of the
-- commit's checks (which replaces its check set) runs the very same image.
CREATE TABLE image_pins (
    commit_id bigint NOT NULL REFERENCES commits (id) ON DELETE CASCADE,
    plugin text NOT NULL,
    digest text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (commit_id, plugin)
);
