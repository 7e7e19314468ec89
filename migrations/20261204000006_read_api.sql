-- Which commits each branch has pointed at, for the per-branch commit list (the original had no
-- commit listing at all). One row per (branch, commit): a push records it, a later push of the
-- same commit to the same branch (a force-push back) moves it to the top.

CREATE TABLE branch_pushes (
    id            bigserial   PRIMARY KEY,
    repository_id bigint      NOT NULL,
    branch_id     bigint      NOT NULL,
    commit_id     bigint      NOT NULL REFERENCES commits (id) ON DELETE CASCADE,
    pushed_at     timestamptz NOT NULL DEFAULT now(),
    -- CASCADE: deleting a branch (or its repository) forgets its pushes. Composite so the branch
    -- belongs to the same repository.
    CONSTRAINT branch_pushes_branch_fk FOREIGN KEY (branch_id, repository_id)
        REFERENCES branches (id, repository_id) ON DELETE CASCADE,
    CONSTRAINT branch_pushes_branch_commit_unique UNIQUE (branch_id, commit_id)
);
-- The list: newest first within a branch.
CREATE INDEX branch_pushes_branch_pushed ON branch_pushes (branch_id, pushed_at DESC, id DESC);
CREATE INDEX branch_pushes_commit_id ON branch_pushes (commit_id);

-- Branches that already have a head start their list with it.
INSERT INTO branch_pushes (repository_id, branch_id, commit_id, pushed_at)
SELECT repository_id, id, head_commit_id, updated_at FROM branches WHERE head_commit_id IS NOT NULL;
