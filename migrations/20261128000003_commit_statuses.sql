-- Commit statuses (`cocov` for checks, `cocov/coverage` for the coverage gate): the state we
-- want GitHub to show, and what was last posted. A pending status carries a deadline so a
-- sweeper can end it: nothing stays pending.

CREATE TABLE commit_statuses (
    id           bigserial   PRIMARY KEY,
    commit_id    bigint      NOT NULL REFERENCES commits (id) ON DELETE CASCADE,
    context      text        NOT NULL CHECK (context IN ('cocov', 'cocov/coverage')),
    state        text        NOT NULL CHECK (state IN ('pending', 'success', 'failure', 'error')),
    description  text        NOT NULL CHECK (char_length(description) <= 140),
    target_url   text,
    -- Bumped on every change; a posting job only posts the version it was queued for or newer.
    version      integer     NOT NULL DEFAULT 1,
    -- When a pending status is given up on.
    deadline_at  timestamptz,
    -- The version last accepted by GitHub (NULL: not yet, or nothing to post in standalone mode).
    posted_version integer,
    posted_at    timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT commit_statuses_commit_context_unique UNIQUE (commit_id, context),
    CONSTRAINT commit_statuses_pending_has_deadline CHECK ((state = 'pending') = (deadline_at IS NOT NULL))
);
CREATE INDEX commit_statuses_pending_deadline ON commit_statuses (deadline_at) WHERE state = 'pending';

CREATE TRIGGER commit_statuses_touch BEFORE UPDATE ON commit_statuses
    FOR EACH ROW EXECUTE FUNCTION cocov_touch_updated_at();
