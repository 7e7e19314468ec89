//! Storing one check's issues for a commit.

use std::collections::HashSet;

use sqlx::PgPool;

use super::NewIssue;
use crate::manifest::ExcludeMatcher;

/// Stores the issues one plugin found, leaving out excluded paths and uids already stored for
/// the commit (by any plugin, as the original did), and storing those an ignore rule matches as
/// ignored. Idempotent: running it twice stores nothing new. Returns how many were stored.
pub async fn register(
    db: &PgPool,
    repository_id: i64,
    commit_id: i64,
    source: &str,
    issues: &[NewIssue],
    exclude: &ExcludeMatcher,
) -> Result<u64, sqlx::Error> {
    let mut seen = HashSet::new();
    let (mut kinds, mut files, mut uids, mut starts, mut ends, mut messages) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for issue in issues {
        if exclude.is_excluded(&issue.file) {
            continue;
        }
        let uid = issue.uid();
        if !seen.insert(uid.to_ascii_lowercase()) {
            continue;
        }
        kinds.push(issue.kind.as_str().to_string());
        files.push(issue.file.clone());
        uids.push(uid);
        starts.push(issue.line_start.clamp(1, i32::MAX as i64) as i32);
        ends.push(issue.line_end.clamp(1, i32::MAX as i64) as i32);
        messages.push(issue.message.clone());
    }
    // Bounded statements: a plugin may report hundreds of thousands of findings.
    const CHUNK: usize = 5000;
    let mut stored = 0;
    for start in (0..uids.len()).step_by(CHUNK) {
        let range = start..(start + CHUNK).min(uids.len());
        let result = sqlx::query(
            "INSERT INTO issues (commit_id, kind, file, uid, line_start, line_end, message, \
                                 check_source, ignored_at, ignore_source, ignore_rule_id) \
             SELECT $1, f.kind, f.file, f.uid, f.line_start, GREATEST(f.line_end, f.line_start), \
                    f.message, $2::citext, \
                    CASE WHEN r.id IS NULL THEN NULL ELSE now() END, \
                    CASE WHEN r.id IS NULL THEN NULL ELSE 'rule' END, r.id \
             FROM unnest($3::text[], $4::text[], $5::text[], $6::int[], $7::int[], $8::text[]) \
                  AS f(kind, file, uid, line_start, line_end, message) \
             LEFT JOIN issue_ignore_rules r \
                    ON r.repository_id = $9 AND r.uid = f.uid::citext \
             ON CONFLICT (commit_id, uid) DO NOTHING",
        )
        .bind(commit_id)
        .bind(source)
        .bind(&kinds[range.clone()])
        .bind(&files[range.clone()])
        .bind(&uids[range.clone()])
        .bind(&starts[range.clone()])
        .bind(&ends[range.clone()])
        .bind(&messages[range])
        .bind(repository_id)
        .execute(db)
        .await?;
        stored += result.rows_affected();
    }
    Ok(stored)
}
