//! Writing a commit's coverage: `coverage_infos` (totals and status), `coverage_files` (per-file
//! totals and the line map in the original's token bytes), the commit's and its branches'
//! percentages, and one history point per branch whose head is the commit. Everything runs in
//! the caller's transaction, under the per-commit lock, so concurrent uploads cannot lose hits.

use serde::Serialize;
use sqlx::PgConnection;

use super::FileCoverage;
use super::merge::{CommitCoverage, merge_into};
pub use crate::commits::HeadBranch;
use crate::commits::{CommitNumber, record_commit_number};

/// A commit's coverage totals as stored.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CommitTotals {
    pub lines_total: i64,
    pub lines_covered: i64,
    /// Not truncated (the original truncated only for files, commits and badges).
    pub percent_covered: f64,
}

/// What [`save`] did.
#[derive(Debug, Clone)]
pub struct Saved {
    pub totals: CommitTotals,
    pub branches: Vec<HeadBranch>,
}

/// Serialises writers of one commit's coverage (and the hold/apply race of early uploads) for
/// the rest of the transaction. Keyed by repository and sha, so it also works before the
/// commit row exists.
pub async fn lock(
    conn: &mut PgConnection,
    repository_id: i64,
    sha: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 5))")
        .bind(format!(
            "coverage:{repository_id}:{}",
            sha.to_ascii_lowercase()
        ))
        .execute(conn)
        .await?;
    Ok(())
}

fn percent(covered: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        (covered as f64 * 100.0 / total as f64).clamp(0.0, 100.0)
    }
}

fn int(n: u64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Stores `files` for the commit: replacing all its coverage, or merged line by line into what
/// it has. Then recomputes the totals, the commit's and its head branches' percentages and
/// appends history points.
pub async fn save(
    conn: &mut PgConnection,
    commit_id: i64,
    mut files: CommitCoverage,
    replace: bool,
    minimum: Option<u32>,
) -> Result<Saved, sqlx::Error> {
    let info_id: i64 = sqlx::query_scalar(
        "INSERT INTO coverage_infos (commit_id, status) VALUES ($1, 'in_progress') \
         ON CONFLICT (commit_id) DO UPDATE SET status = 'in_progress', error = NULL \
         RETURNING id",
    )
    .bind(commit_id)
    .fetch_one(&mut *conn)
    .await?;
    if replace {
        sqlx::query("DELETE FROM coverage_files WHERE coverage_info_id = $1")
            .bind(info_id)
            .execute(&mut *conn)
            .await?;
    } else {
        let names: Vec<&str> = files.keys().map(String::as_str).collect();
        let existing: Vec<(String, Vec<u8>)> = sqlx::query_as(
            "SELECT file, raw_data FROM coverage_files \
             WHERE coverage_info_id = $1 AND file = ANY($2)",
        )
        .bind(info_id)
        .bind(&names)
        .fetch_all(&mut *conn)
        .await?;
        let mut earlier = CommitCoverage::new();
        for (file, raw) in existing {
            // Rows are written from valid line maps only; a damaged one is replaced.
            if let Ok(coverage) = FileCoverage::from_raw_bytes(&raw) {
                earlier.insert(file, coverage);
            }
        }
        merge_into(&mut files, &earlier);
    }
    insert_files(conn, info_id, &files).await?;

    let (total, covered): (i64, i64) = sqlx::query_as(
        "SELECT COALESCE(SUM(lines_total), 0)::bigint, COALESCE(SUM(lines_covered), 0)::bigint \
         FROM coverage_files WHERE coverage_info_id = $1",
    )
    .bind(info_id)
    .fetch_one(&mut *conn)
    .await?;
    let totals = CommitTotals {
        lines_total: total,
        lines_covered: covered,
        percent_covered: percent(covered as u64, total as u64),
    };
    sqlx::query(
        "UPDATE coverage_infos SET status = 'completed', percent_covered = $2, lines_total = $3, \
         lines_covered = $4, error = NULL, deadline_at = NULL WHERE id = $1",
    )
    .bind(info_id)
    .bind(totals.percent_covered)
    .bind(i32::try_from(total).unwrap_or(i32::MAX))
    .bind(i32::try_from(covered).unwrap_or(i32::MAX))
    .execute(&mut *conn)
    .await?;
    let branches = record_commit_number(
        &mut *conn,
        commit_id,
        CommitNumber::Coverage {
            percent: totals.percent_covered,
            minimum: minimum.map(|m| i32::try_from(m).unwrap_or(100)),
        },
    )
    .await?;
    Ok(Saved { totals, branches })
}

/// Writes the files in one statement (a large report has thousands).
async fn insert_files(
    conn: &mut PgConnection,
    info_id: i64,
    files: &CommitCoverage,
) -> Result<(), sqlx::Error> {
    let n = files.len();
    let (mut names, mut percents, mut totals, mut covered, mut missed, mut raws) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for (name, file) in files {
        let t = file.totals();
        names.push(name.as_str());
        percents.push(percent(t.lines_covered, t.lines_total));
        totals.push(int(t.lines_total));
        covered.push(int(t.lines_covered));
        missed.push(int(t.lines_missed));
        raws.push(file.to_raw_bytes());
    }
    sqlx::query(
        "INSERT INTO coverage_files \
           (coverage_info_id, file, percent_covered, lines_total, lines_covered, lines_missed, raw_data) \
         SELECT $1, * FROM UNNEST($2::text[], $3::float8[], $4::int4[], $5::int4[], $6::int4[], $7::bytea[]) \
         ON CONFLICT (coverage_info_id, file) DO UPDATE SET \
           percent_covered = EXCLUDED.percent_covered, lines_total = EXCLUDED.lines_total, \
           lines_covered = EXCLUDED.lines_covered, lines_missed = EXCLUDED.lines_missed, \
           raw_data = EXCLUDED.raw_data",
    )
    .bind(info_id)
    .bind(&names)
    .bind(&percents)
    .bind(&totals)
    .bind(&covered)
    .bind(&missed)
    .bind(&raws)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records that the commit's coverage could not be produced, and why; coverage the commit
/// already has stays.
pub async fn mark_errored(
    conn: &mut PgConnection,
    commit_id: i64,
    reason: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO coverage_infos (commit_id, status, error) VALUES ($1, 'errored', $2) \
         ON CONFLICT (commit_id) DO UPDATE SET status = 'errored', error = EXCLUDED.error \
         WHERE coverage_infos.status <> 'completed'",
    )
    .bind(commit_id)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(())
}
