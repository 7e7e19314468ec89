//! The numbers a commit carries (active issues, coverage), the same numbers on the branches it
//! heads, and their history: one function writes all three, whichever stage measured the
//! number, so a commit, its branches and their history points can never disagree.

use sqlx::PgConnection;

/// A number measured on a commit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CommitNumber {
    /// Active issues after the checks.
    Issues(i32),
    /// Total line coverage, in percent, and the manifest's gate when it sets one.
    Coverage { percent: f64, minimum: Option<i32> },
}

/// A branch whose head is the commit (its number and history were updated).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HeadBranch {
    pub id: i64,
    pub name: String,
}

/// Sets `number` on the commit and on every branch whose head it is, and appends a history
/// point for each such branch, in the caller's transaction. Returns those branches.
pub async fn record_commit_number(
    conn: &mut PgConnection,
    commit_id: i64,
    number: CommitNumber,
) -> Result<Vec<HeadBranch>, sqlx::Error> {
    match number {
        CommitNumber::Issues(count) => {
            sqlx::query("UPDATE commits SET issues_count = $2, updated_at = now() WHERE id = $1")
                .bind(commit_id)
                .bind(count)
                .execute(&mut *conn)
                .await?;
        }
        CommitNumber::Coverage { percent, minimum } => {
            sqlx::query(
                "UPDATE commits SET coverage_percent = $2, minimum_coverage = $3 WHERE id = $1",
            )
            .bind(commit_id)
            .bind(percent)
            .bind(minimum)
            .execute(&mut *conn)
            .await?;
        }
    }
    let (column, history, value_column) = match number {
        CommitNumber::Issues(_) => ("issues", "issue_histories", "quantity"),
        CommitNumber::Coverage { .. } => ("coverage", "coverage_histories", "percentage"),
    };
    let sql = format!(
        "WITH heads AS (UPDATE branches SET {column} = $2, updated_at = now() \
                        WHERE head_commit_id = $1 RETURNING id, repository_id, name::text AS name), \
              points AS (INSERT INTO {history} (repository_id, branch_id, commit_id, {value_column}) \
                         SELECT repository_id, id, $1, $2 FROM heads) \
         SELECT id, name FROM heads"
    );
    let query = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(commit_id);
    let query = match number {
        CommitNumber::Issues(n) => query.bind(n),
        CommitNumber::Coverage { percent, .. } => query.bind(percent),
    };
    query.fetch_all(conn).await
}
