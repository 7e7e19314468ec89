//! The embedded schema against a real PostgreSQL: migrations (idempotent, concurrent, refused when
//! the database is newer), cascades on repository and user deletion, unique and CHECK constraints.

use crate::common;

use std::fmt::Debug;

use cocov::db::{self, DbError};
use common::TestDb;
use sqlx::{AssertSqlSafe, PgPool};

// The tests run on the multi-thread runtime: `TestDb`'s drop blocks the test's thread while it
// closes the pool, whose connections need this runtime's I/O driver to make progress.

type Res<T> = Result<T, sqlx::Error>;

const UNIQUE_VIOLATION: &str = "23505";
const CHECK_VIOLATION: &str = "23514";

/// Every table with rows belonging to one repository (deleted with it).
const REPOSITORY_TABLES: [&str; 15] = [
    "repository_members",
    "branches",
    "commits",
    "check_sets",
    "checks",
    "issue_ignore_rules",
    "issues",
    "issue_histories",
    "coverage_histories",
    "coverage_infos",
    "coverage_files",
    "coverage_uploads",
    "secrets",
    "secret_grants",
    "cache_artifacts",
];

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

/// A 40-hex commit sha with letters in it (so case matters to a case-sensitive comparison).
fn sha(n: u32) -> String {
    format!("{:040x}", 0xabcd_ef00_u64 + u64::from(n))
}

/// A fresh hex SHA-256-shaped token hash.
fn token_hash() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

async fn user(pool: &PgPool, login: &str) -> i64 {
    sqlx::query_scalar("INSERT INTO users (login) VALUES ($1) RETURNING id")
        .bind(login)
        .fetch_one(pool)
        .await
        .expect("insert user")
}

async fn user_email(pool: &PgPool, user: i64, email: &str) -> i64 {
    sqlx::query_scalar("INSERT INTO user_emails (user_id, email) VALUES ($1, $2) RETURNING id")
        .bind(user)
        .bind(email)
        .fetch_one(pool)
        .await
        .expect("insert user e-mail")
}

async fn user_token(pool: &PgPool, user: i64) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO user_tokens (user_id, kind, token_hash) VALUES ($1, 'auth', $2) RETURNING id",
    )
    .bind(user)
    .bind(token_hash())
    .fetch_one(pool)
    .await
    .expect("insert user token")
}

async fn service_token(pool: &PgPool, created_by: i64) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO service_tokens (description, token_hash, created_by) \
         VALUES ('worker', $1, $2) RETURNING id",
    )
    .bind(token_hash())
    .bind(created_by)
    .fetch_one(pool)
    .await
    .expect("insert service token")
}

async fn repository(pool: &PgPool, name: &str) -> Res<i64> {
    sqlx::query_scalar(
        "INSERT INTO repositories (name, default_branch, git_url, upload_token_hash) \
         VALUES ($1, 'main', $2, $3) RETURNING id",
    )
    .bind(name)
    .bind(format!("https://git.example.com/{name}.git"))
    .bind(token_hash())
    .fetch_one(pool)
    .await
}

async fn github_member(pool: &PgPool, repo: i64, github_id: i64, level: &str) -> Res<i64> {
    sqlx::query_scalar(
        "INSERT INTO repository_members (repository_id, github_member_id, level) \
         VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(repo)
    .bind(github_id)
    .bind(level)
    .fetch_one(pool)
    .await
}

async fn local_member(pool: &PgPool, repo: i64, user: i64, level: &str) -> Res<i64> {
    sqlx::query_scalar(
        "INSERT INTO repository_members (repository_id, user_id, level) \
         VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(repo)
    .bind(user)
    .bind(level)
    .fetch_one(pool)
    .await
}

async fn commit(pool: &PgPool, repo: i64, sha: &str) -> Res<i64> {
    sqlx::query_scalar(
        "INSERT INTO commits (repository_id, sha, author_name, author_email, message) \
         VALUES ($1, $2, 'Ada', 'ada@example.com', 'a change') RETURNING id",
    )
    .bind(repo)
    .bind(sha)
    .fetch_one(pool)
    .await
}

async fn branch(pool: &PgPool, repo: i64, name: &str, head: Option<i64>) -> Res<i64> {
    sqlx::query_scalar(
        "INSERT INTO branches (repository_id, name, head_commit_id) VALUES ($1, $2, $3) \
         RETURNING id",
    )
    .bind(repo)
    .bind(name)
    .bind(head)
    .fetch_one(pool)
    .await
}

async fn check_set(pool: &PgPool, commit: i64) -> Res<i64> {
    sqlx::query_scalar(
        "INSERT INTO check_sets (commit_id, status, started_at, job_id, deadline_at) \
         VALUES ($1, 'in_progress', now(), $2, now() + interval '1 hour') RETURNING id",
    )
    .bind(commit)
    .bind(uuid::Uuid::new_v4())
    .fetch_one(pool)
    .await
}

/// A check in `status`, with the timestamps that status requires.
async fn check(
    pool: &PgPool,
    set: i64,
    plugin: &str,
    status: &str,
    error_output: Option<&str>,
) -> Res<i64> {
    sqlx::query_scalar(
        "INSERT INTO checks (check_set_id, plugin_name, status, error_output, started_at, \
                             finished_at) \
         VALUES ($1, $2, $3, $4, \
                 CASE WHEN $3 <> 'waiting' THEN now() END, \
                 CASE WHEN $3 IN ('completed', 'errored', 'canceled') THEN now() END) \
         RETURNING id",
    )
    .bind(set)
    .bind(plugin)
    .bind(status)
    .bind(error_output)
    .fetch_one(pool)
    .await
}

async fn issue(pool: &PgPool, commit: i64, uid: &str, kind: &str, lines: (i32, i32)) -> Res<i64> {
    sqlx::query_scalar(
        "INSERT INTO issues (commit_id, kind, file, uid, line_start, line_end, message, \
                             check_source) \
         VALUES ($1, $2, 'src/main.rs', $3, $4, $5, 'something is off', 'cocov/clippy') \
         RETURNING id",
    )
    .bind(commit)
    .bind(kind)
    .bind(uid)
    .bind(lines.0)
    .bind(lines.1)
    .fetch_one(pool)
    .await
}

async fn style_issue(pool: &PgPool, commit: i64, uid: &str) -> Res<i64> {
    issue(pool, commit, uid, "style", (3, 4)).await
}

async fn ignore_by_rule(pool: &PgPool, issue: i64, rule: i64) {
    sqlx::query(
        "UPDATE issues SET ignored_at = now(), ignore_source = 'rule', ignore_rule_id = $2 \
         WHERE id = $1",
    )
    .bind(issue)
    .bind(rule)
    .execute(pool)
    .await
    .expect("ignore issue by rule");
}

async fn ignore_by_user(pool: &PgPool, issue: i64, user: i64) {
    sqlx::query(
        "UPDATE issues SET ignored_at = now(), ignore_source = 'user', ignore_user_id = $2, \
                           ignore_user_reason = 'false positive' \
         WHERE id = $1",
    )
    .bind(issue)
    .bind(user)
    .execute(pool)
    .await
    .expect("ignore issue by user");
}

async fn ignore_rule(pool: &PgPool, repo: i64, user: Option<i64>, uid: &str) -> Res<i64> {
    sqlx::query_scalar(
        "INSERT INTO issue_ignore_rules (repository_id, user_id, reason, check_source, file, \
                                         kind, line_start, line_end, message, uid) \
         VALUES ($1, $2, 'generated code', 'cocov/clippy', 'src/gen.rs', 'style', 1, 2, \
                 'something is off', $3) \
         RETURNING id",
    )
    .bind(repo)
    .bind(user)
    .bind(uid)
    .fetch_one(pool)
    .await
}

async fn issue_history(pool: &PgPool, repo: i64, branch: i64, commit: i64) -> Res<i64> {
    sqlx::query_scalar(
        "INSERT INTO issue_histories (repository_id, branch_id, commit_id, quantity) \
         VALUES ($1, $2, $3, 2) RETURNING id",
    )
    .bind(repo)
    .bind(branch)
    .bind(commit)
    .fetch_one(pool)
    .await
}

async fn coverage_history(pool: &PgPool, repo: i64, branch: i64, commit: i64) -> Res<i64> {
    sqlx::query_scalar(
        "INSERT INTO coverage_histories (repository_id, branch_id, commit_id, percentage) \
         VALUES ($1, $2, $3, 87.5) RETURNING id",
    )
    .bind(repo)
    .bind(branch)
    .bind(commit)
    .fetch_one(pool)
    .await
}

async fn coverage_info(pool: &PgPool, commit: i64) -> Res<i64> {
    sqlx::query_scalar(
        "INSERT INTO coverage_infos (commit_id, status, percent_covered, lines_total, \
                                     lines_covered) \
         VALUES ($1, 'completed', 50.0, 4, 2) RETURNING id",
    )
    .bind(commit)
    .fetch_one(pool)
    .await
}

async fn coverage_file(pool: &PgPool, info: i64, file: &str) -> Res<i64> {
    // Decoded line map: a neutral line, a line hit 3 times, a missed line.
    sqlx::query_scalar(
        "INSERT INTO coverage_files (coverage_info_id, file, percent_covered, lines_total, \
                                     lines_covered, lines_missed, raw_data) \
         VALUES ($1, $2, 50.0, 2, 1, 1, $3) RETURNING id",
    )
    .bind(info)
    .bind(file)
    .bind(b"\x003\x15".to_vec())
    .fetch_one(pool)
    .await
}

async fn coverage_upload(pool: &PgPool, repo: i64, sha: &str) -> Res<i64> {
    sqlx::query_scalar(
        "INSERT INTO coverage_uploads (repository_id, commit_sha, mode, data) \
         VALUES ($1, $2, 'merge', $3) RETURNING id",
    )
    .bind(repo)
    .bind(sha)
    .bind(serde_json::json!({ "src/lib.rs": "ADMVMQ==" }))
    .fetch_one(pool)
    .await
}

/// An organization secret when `repo` is None, else a repository secret.
async fn secret(pool: &PgPool, repo: Option<i64>, name: &str, created_by: Option<i64>) -> Res<i64> {
    sqlx::query_scalar(
        "INSERT INTO secrets (scope, name, repository_id, ciphertext, nonce, key_id, created_by) \
         VALUES (CASE WHEN $2::bigint IS NULL THEN 'organization' ELSE 'repository' END, \
                 $1, $2, $3, $4, 'k1', $5) \
         RETURNING id",
    )
    .bind(name)
    .bind(repo)
    .bind(b"ciphertext and tag".to_vec())
    .bind(vec![7u8; 12])
    .bind(created_by)
    .fetch_one(pool)
    .await
}

async fn cache_artifact(pool: &PgPool, repo: i64, name: &str) -> Res<i64> {
    sqlx::query_scalar(
        "INSERT INTO cache_artifacts (repository_id, name, name_hash, size, engine, mime, \
                                      last_used_at) \
         VALUES ($1, $2, md5($2), 1024, 'cocov/rubocop', 'application/zstd', now()) \
         RETURNING id",
    )
    .bind(repo)
    .bind(name)
    .fetch_one(pool)
    .await
}

async fn cache_tool(pool: &PgPool, name: &str, size: i64) -> Res<i64> {
    sqlx::query_scalar(
        "INSERT INTO cache_tools (name, name_hash, size, engine, mime) \
         VALUES ($1, md5($1), $2, 'go', 'application/x-tar') RETURNING id",
    )
    .bind(name)
    .bind(size)
    .fetch_one(pool)
    .await
}

/// Every row created for one repository, by table.
struct RepositoryRows {
    repository: i64,
    rows: Vec<(&'static str, i64)>,
}

impl RepositoryRows {
    fn ids(&self, table: &str) -> Vec<i64> {
        self.rows
            .iter()
            .filter(|(t, _)| *t == table)
            .map(|(_, id)| *id)
            .collect()
    }
}

/// A repository with a row in every table that hangs off it: members, two branches (one head
/// each), commits, a check set with checks, active and ignored issues, an ignore rule,
/// histories, coverage with files, an early coverage upload, a secret and a cache artifact.
async fn populate_repository(pool: &PgPool, name: &str, member: i64) -> RepositoryRows {
    let repo = repository(pool, name).await.expect("repository");
    let mut rows = Vec::new();
    let mut add = |table: &'static str, id: Res<i64>| {
        rows.push((
            table,
            id.unwrap_or_else(|e| panic!("insert into {table}: {e}")),
        ));
    };
    add(
        "repository_members",
        github_member(pool, repo, 4242, "maintainer").await,
    );
    add(
        "repository_members",
        local_member(pool, repo, member, "admin").await,
    );
    let head = commit(pool, repo, &sha(1)).await.expect("commit");
    let other = commit(pool, repo, &sha(2)).await.expect("commit");
    add("commits", Ok(head));
    add("commits", Ok(other));
    let main = branch(pool, repo, "main", Some(head))
        .await
        .expect("branch");
    add("branches", Ok(main));
    add("branches", branch(pool, repo, "feature", Some(other)).await);
    let set = check_set(pool, head).await.expect("check set");
    add("check_sets", Ok(set));
    add(
        "checks",
        check(pool, set, "cocov/clippy", "completed", None).await,
    );
    add(
        "checks",
        check(pool, set, "cocov/eslint", "errored", Some("exit 2")).await,
    );
    let rule = ignore_rule(pool, repo, Some(member), "uid-rule")
        .await
        .expect("rule");
    add("issue_ignore_rules", Ok(rule));
    add("issues", style_issue(pool, head, "uid-active").await);
    let by_rule = style_issue(pool, head, "uid-rule").await.expect("issue");
    ignore_by_rule(pool, by_rule, rule).await;
    add("issues", Ok(by_rule));
    let by_user = style_issue(pool, head, "uid-user").await.expect("issue");
    ignore_by_user(pool, by_user, member).await;
    add("issues", Ok(by_user));
    add(
        "issue_histories",
        issue_history(pool, repo, main, head).await,
    );
    add(
        "coverage_histories",
        coverage_history(pool, repo, main, head).await,
    );
    let info = coverage_info(pool, head).await.expect("coverage info");
    add("coverage_infos", Ok(info));
    add(
        "coverage_files",
        coverage_file(pool, info, "src/a.rs").await,
    );
    add(
        "coverage_files",
        coverage_file(pool, info, "src/b.rs").await,
    );
    add(
        "coverage_uploads",
        coverage_upload(pool, repo, &sha(99)).await,
    );
    add(
        "secrets",
        secret(pool, Some(repo), "DEPLOY_KEY", Some(member)).await,
    );
    // An organisation secret (kept with the repository's deletion) granted to this one.
    let org = secret(pool, None, &format!("ORG_{}", name.replace('-', "_")), None)
        .await
        .expect("org secret");
    add(
        "secret_grants",
        sqlx::query_scalar(
            "INSERT INTO secret_grants (secret_id, repository_id, granted_by) \
             VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(org)
        .bind(repo)
        .bind(member)
        .fetch_one(pool)
        .await,
    );
    add(
        "cache_artifacts",
        cache_artifact(pool, repo, "bundle").await,
    );
    RepositoryRows {
        repository: repo,
        rows,
    }
}

// ---------------------------------------------------------------------------------------------
// Assertions
// ---------------------------------------------------------------------------------------------

/// `result` failed with `sqlstate` on `constraint`.
#[track_caller]
fn assert_violation<T: Debug>(result: Res<T>, sqlstate: &str, constraint: &str, what: &str) {
    match result {
        Err(sqlx::Error::Database(e)) if e.code() == Some(sqlstate.into()) => {
            assert_eq!(
                e.constraint(),
                Some(constraint),
                "{what}: violated constraint ({e})"
            );
        }
        other => panic!("{what}: expected SQLSTATE {sqlstate} on {constraint}, got {other:?}"),
    }
}

#[track_caller]
fn assert_unique_violation<T: Debug>(result: Res<T>, constraint: &str, what: &str) {
    assert_violation(result, UNIQUE_VIOLATION, constraint, what);
}

#[track_caller]
fn assert_check_violation<T: Debug>(result: Res<T>, constraint: &str, what: &str) {
    assert_violation(result, CHECK_VIOLATION, constraint, what);
}

async fn count_ids(pool: &PgPool, table: &str, ids: &[i64]) -> i64 {
    sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT count(*) FROM {table} WHERE id = ANY($1)"
    )))
    .bind(ids.to_vec())
    .fetch_one(pool)
    .await
    .unwrap_or_else(|e| panic!("count {table}: {e}"))
}

/// `SELECT count(*) FROM {from_where}` with one bigint parameter.
async fn count_where(pool: &PgPool, from_where: &str, param: i64) -> i64 {
    sqlx::query_scalar(AssertSqlSafe(format!("SELECT count(*) FROM {from_where}")))
        .bind(param)
        .fetch_one(pool)
        .await
        .unwrap_or_else(|e| panic!("count {from_where}: {e}"))
}

async fn migration_rows(pool: &PgPool) -> (i64, i64) {
    sqlx::query_as("SELECT count(*), count(DISTINCT version) FROM _sqlx_migrations WHERE success")
        .fetch_one(pool)
        .await
        .expect("count _sqlx_migrations")
}

// ---------------------------------------------------------------------------------------------
// Migrations
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn migrate_applies_everything_once() {
    let db = TestDb::empty().await;
    let embedded = db::MIGRATOR.iter().count();
    assert!(embedded >= 2, "identity and domain migrations are embedded");

    let first = db::migrate(&db.config).await.expect("first migrate");
    assert_eq!(first.before, None);
    assert_eq!(first.after, db::binary_schema_version());
    assert_eq!(first.applied, embedded);
    assert_eq!(
        migration_rows(&db.pool).await,
        (embedded as i64, embedded as i64)
    );
    for table in REPOSITORY_TABLES
        .iter()
        .chain(&["repositories", "cache_tools", "audit_log"])
    {
        let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(*table)
            .fetch_one(&db.pool)
            .await
            .expect("to_regclass");
        assert!(exists, "table {table} was created");
    }

    let second = db::migrate(&db.config).await.expect("second migrate");
    assert_eq!(second.applied, 0);
    assert_eq!(second.before, Some(db::binary_schema_version()));
    assert_eq!(
        migration_rows(&db.pool).await,
        (embedded as i64, embedded as i64)
    );
    assert_eq!(
        db::check_schema(&db.pool).await.expect("check schema"),
        second.before
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_migrations_apply_once() {
    let db = TestDb::empty().await;
    let embedded = db::MIGRATOR.iter().count();
    let (a, b) = tokio::join!(db::migrate(&db.config), db::migrate(&db.config));
    let (a, b) = (a.expect("first migrate"), b.expect("second migrate"));
    assert_eq!(a.applied + b.applied, embedded, "{a:?} {b:?}");
    assert!(
        a.applied == 0 || b.applied == 0,
        "one of them found nothing to do: {a:?} {b:?}"
    );
    assert_eq!(
        migration_rows(&db.pool).await,
        (embedded as i64, embedded as i64)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn newer_schema_is_refused() {
    let db = TestDb::migrated().await;
    let binary = db::binary_schema_version();
    let newer = binary + 1;
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES ($1, 'from a newer cocov', true, $2, 1)",
    )
    .bind(newer)
    .bind(vec![0u8; 48])
    .execute(&db.pool)
    .await
    .expect("insert a newer migration row");

    let assert_too_new = |result: Result<_, DbError>, what: &str| match result {
        Err(
            e @ DbError::SchemaTooNew {
                database,
                binary: known,
            },
        ) => {
            assert_eq!((database, known), (newer, binary), "{what}");
            assert!(e.to_string().contains("upgrade"), "{what}: message {e}");
        }
        other => panic!("{what}: expected SchemaTooNew, got {other:?}"),
    };
    assert_too_new(db::migrate(&db.config).await.map(|_| ()), "migrate");
    assert_too_new(db::check_schema(&db.pool).await.map(|_| ()), "check_schema");
    // Refusing changed nothing.
    let (rows, _) = migration_rows(&db.pool).await;
    assert_eq!(rows, db::MIGRATOR.iter().count() as i64 + 1);
}

// ---------------------------------------------------------------------------------------------
// Cascades
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_repository_deletes_everything_it_owns() {
    let db = TestDb::migrated().await;
    let pool = &db.pool;
    let owner = user(pool, "owner").await;
    let doomed = populate_repository(pool, "doomed", owner).await;
    let kept = populate_repository(pool, "kept", owner).await;
    let org_secret = secret(pool, None, "SHARED", Some(owner))
        .await
        .expect("org secret");
    let tool = cache_tool(pool, "golangci-lint", 1 << 20)
        .await
        .expect("cache tool");

    // The list above names every table that references repositories (guards future tables).
    let referencing: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT conrelid::regclass::text FROM pg_constraint \
         WHERE contype = 'f' AND confrelid = 'repositories'::regclass",
    )
    .fetch_all(pool)
    .await
    .expect("referencing tables");
    for table in &referencing {
        assert!(
            REPOSITORY_TABLES.contains(&table.as_str()),
            "{table} is not checked here"
        );
    }

    let deleted = sqlx::query("DELETE FROM repositories WHERE id = $1")
        .bind(doomed.repository)
        .execute(pool)
        .await
        .expect("delete repository");
    assert_eq!(deleted.rows_affected(), 1);

    for table in REPOSITORY_TABLES {
        let gone = doomed.ids(table);
        assert!(!gone.is_empty(), "the fixture has rows in {table}");
        assert_eq!(
            count_ids(pool, table, &gone).await,
            0,
            "{table} rows of the deleted repo"
        );
        let still = kept.ids(table);
        assert_eq!(
            count_ids(pool, table, &still).await,
            still.len() as i64,
            "{table} rows of the other repo"
        );
    }
    assert_eq!(
        count_where(pool, "repositories WHERE id = $1", doomed.repository).await,
        0
    );
    assert_eq!(
        count_where(pool, "repositories WHERE id = $1", kept.repository).await,
        1
    );
    assert_eq!(
        count_ids(pool, "secrets", &[org_secret]).await,
        1,
        "org secret kept"
    );
    assert_eq!(
        count_ids(pool, "cache_tools", &[tool]).await,
        1,
        "tool cache kept"
    );
    assert_eq!(
        count_where(pool, "users WHERE id = $1", owner).await,
        1,
        "user kept"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_branch_or_commit_keeps_the_rest() {
    let db = TestDb::migrated().await;
    let pool = &db.pool;
    let owner = user(pool, "owner").await;
    let repo = populate_repository(pool, "repo", owner).await;
    let main = repo.ids("branches")[0];
    let head = repo.ids("commits")[0];

    // Deleting the head commit leaves its branch, without a head, and history points untraced.
    sqlx::query("DELETE FROM commits WHERE id = $1")
        .bind(head)
        .execute(pool)
        .await
        .unwrap();
    assert_eq!(
        count_where(
            pool,
            "branches WHERE id = $1 AND head_commit_id IS NULL",
            main
        )
        .await,
        1
    );
    assert_eq!(
        count_where(
            pool,
            "issue_histories WHERE branch_id = $1 AND commit_id IS NULL",
            main
        )
        .await,
        1
    );
    assert_eq!(
        count_ids(pool, "check_sets", &repo.ids("check_sets")).await,
        0
    );
    assert_eq!(count_ids(pool, "issues", &repo.ids("issues")).await, 0);
    assert_eq!(
        count_ids(pool, "coverage_files", &repo.ids("coverage_files")).await,
        0
    );
    // The ignore rule belongs to the repository, not the commit.
    let rules = repo.ids("issue_ignore_rules");
    assert_eq!(count_ids(pool, "issue_ignore_rules", &rules).await, 1);

    // Deleting a branch deletes its history series.
    sqlx::query("DELETE FROM branches WHERE id = $1")
        .bind(main)
        .execute(pool)
        .await
        .unwrap();
    assert_eq!(
        count_where(pool, "issue_histories WHERE branch_id = $1", main).await,
        0
    );
    assert_eq!(
        count_where(pool, "coverage_histories WHERE branch_id = $1", main).await,
        0
    );

    // Deleting a rule keeps the issues it ignored ignored (covered by SET NULL).
    let other = repo.ids("commits")[1];
    let issue = style_issue(pool, other, "uid-rule").await.unwrap();
    ignore_by_rule(pool, issue, rules[0]).await;
    sqlx::query("DELETE FROM issue_ignore_rules WHERE id = $1")
        .bind(rules[0])
        .execute(pool)
        .await
        .unwrap();
    assert_eq!(
        count_where(
            pool,
            "issues WHERE id = $1 AND ignore_rule_id IS NULL AND ignored_at IS NOT NULL",
            issue
        )
        .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_user_keeps_shared_rows() {
    let db = TestDb::migrated().await;
    let pool = &db.pool;
    let alice = user(pool, "alice").await;
    let bob = user(pool, "bob").await;
    user_email(pool, alice, "alice@example.com").await;
    let bob_email = user_email(pool, bob, "bob@example.com").await;
    user_token(pool, alice).await;
    let bob_token = user_token(pool, bob).await;
    let token = service_token(pool, alice).await;

    let repo = repository(pool, "repo").await.unwrap();
    local_member(pool, repo, alice, "admin").await.unwrap();
    let commit = commit(pool, repo, &sha(1)).await.unwrap();
    sqlx::query("UPDATE commits SET user_id = $1 WHERE id = $2")
        .bind(alice)
        .bind(commit)
        .execute(pool)
        .await
        .unwrap();
    let secrets = [
        secret(pool, None, "ORG_TOKEN", Some(alice)).await.unwrap(),
        secret(pool, Some(repo), "REPO_TOKEN", Some(alice))
            .await
            .unwrap(),
    ];
    let rule = ignore_rule(pool, repo, Some(alice), "uid-rule")
        .await
        .unwrap();
    let issue = style_issue(pool, commit, "uid-user").await.unwrap();
    ignore_by_user(pool, issue, alice).await;
    sqlx::query(
        "INSERT INTO audit_log (actor_kind, actor_user_id, actor_label, action) \
         VALUES ('user', $1, 'alice', 'secret.create')",
    )
    .bind(alice)
    .execute(pool)
    .await
    .unwrap();

    let deleted = sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(alice)
        .execute(pool)
        .await
        .expect("delete a user referenced everywhere");
    assert_eq!(deleted.rows_affected(), 1);

    // Kept, with the reference cleared.
    let secrets_kept: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM secrets WHERE id = ANY($1) AND created_by IS NULL",
    )
    .bind(secrets.to_vec())
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(
        secrets_kept, 2,
        "org and repo secrets survive their creator"
    );
    let kept = |sql: &'static str, id: i64| async move { count_where(pool, sql, id).await };
    assert_eq!(
        kept("issue_ignore_rules WHERE id = $1 AND user_id IS NULL", rule).await,
        1
    );
    assert_eq!(
        kept("service_tokens WHERE id = $1 AND created_by IS NULL", token).await,
        1
    );
    assert_eq!(
        kept(
            "issues WHERE id = $1 AND ignore_user_id IS NULL AND ignored_at IS NOT NULL \
             AND ignore_source = 'user'",
            issue
        )
        .await,
        1
    );
    assert_eq!(
        kept("commits WHERE id = $1 AND user_id IS NULL", commit).await,
        1
    );
    assert_eq!(
        kept("audit_log WHERE actor_user_id IS NULL AND id > $1", 0).await,
        1
    );

    // Deleted with the user: tokens, e-mails, local memberships.
    assert_eq!(
        count_where(pool, "user_tokens WHERE user_id = $1", alice).await,
        0
    );
    assert_eq!(
        count_where(pool, "user_emails WHERE user_id = $1", alice).await,
        0
    );
    assert_eq!(
        count_where(pool, "repository_members WHERE user_id = $1", alice).await,
        0
    );
    // The other user's rows are untouched.
    assert_eq!(count_ids(pool, "user_tokens", &[bob_token]).await, 1);
    assert_eq!(count_ids(pool, "user_emails", &[bob_email]).await, 1);
}

// ---------------------------------------------------------------------------------------------
// Constraints
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn unique_constraints_reject_duplicates() {
    let db = TestDb::migrated().await;
    let pool = &db.pool;
    let repo = repository(pool, "Cocov").await.unwrap();
    let other = repository(pool, "other").await.unwrap();

    assert_unique_violation(
        repository(pool, "cOCOV").await,
        "repositories_name_key",
        "repository name differing only in case",
    );

    let head = commit(pool, repo, &sha(1)).await.unwrap();
    assert_unique_violation(
        commit(pool, repo, &sha(1).to_uppercase()).await,
        "commits_repository_sha_unique",
        "same sha in the same repository (any case)",
    );
    commit(pool, other, &sha(1))
        .await
        .expect("same sha in another repository");

    style_issue(pool, head, "uid-1").await.unwrap();
    assert_unique_violation(
        style_issue(pool, head, "UID-1").await,
        "issues_commit_uid_unique",
        "same uid in the same commit",
    );

    let set = check_set(pool, head).await.unwrap();
    check(pool, set, "cocov/rubocop", "waiting", None)
        .await
        .unwrap();
    assert_unique_violation(
        check(pool, set, "Cocov/Rubocop", "waiting", None).await,
        "checks_set_plugin_unique",
        "same plugin twice in a check set",
    );
    assert_unique_violation(
        check_set(pool, head).await,
        "check_sets_commit_id_key",
        "second set",
    );

    let info = coverage_info(pool, head).await.unwrap();
    coverage_file(pool, info, "src/lib.rs").await.unwrap();
    assert_unique_violation(
        coverage_file(pool, info, "src/lib.rs").await,
        "coverage_files_info_file_unique",
        "same file twice in a coverage report",
    );

    secret(pool, None, "API_TOKEN", None).await.unwrap();
    assert_unique_violation(
        secret(pool, None, "api_token", None).await,
        "secrets_organization_name_unique",
        "organization secret name differing only in case",
    );
    secret(pool, Some(repo), "DEPLOY", None).await.unwrap();
    assert_unique_violation(
        secret(pool, Some(repo), "Deploy", None).await,
        "secrets_repository_name_unique",
        "repository secret name twice in one repository",
    );
    secret(pool, Some(other), "DEPLOY", None)
        .await
        .expect("same name in another repository");
    secret(pool, Some(repo), "API_TOKEN", None)
        .await
        .expect("repo secret overriding an org one");

    ignore_rule(pool, repo, None, "uid-1").await.unwrap();
    assert_unique_violation(
        ignore_rule(pool, repo, None, "uid-1").await,
        "issue_ignore_rules_repository_uid_unique",
        "two rules for one uid",
    );
    cache_artifact(pool, repo, "bundle").await.unwrap();
    assert_unique_violation(
        cache_artifact(pool, repo, "BUNDLE").await,
        "cache_artifacts_name_unique",
        "same artifact name and engine",
    );
    let member = github_member(pool, repo, 77, "user").await.unwrap();
    assert!(member > 0);
    assert_unique_violation(
        github_member(pool, repo, 77, "admin").await,
        "repository_members_github_unique",
        "same GitHub member twice",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn check_constraints_reject_bad_rows() {
    let db = TestDb::migrated().await;
    let pool = &db.pool;
    let repo = repository(pool, "repo").await.unwrap();

    assert_check_violation(
        commit(pool, repo, "not-a-sha").await,
        "commits_sha_check",
        "bad sha",
    );
    assert_check_violation(
        commit(pool, repo, &sha(1)[..39]).await,
        "commits_sha_check",
        "39-character sha",
    );
    commit(pool, repo, &"Ab".repeat(32))
        .await
        .expect("a 64-character (SHA-256) sha");
    let head = commit(pool, repo, &sha(1)).await.unwrap();

    assert_check_violation(
        issue(pool, head, "u1", "warning", (1, 1)).await,
        "issues_kind_check",
        "unknown issue kind",
    );
    assert_check_violation(
        issue(pool, head, "u2", "bug", (5, 4)).await,
        "issues_lines",
        "line_end before line_start",
    );
    assert_check_violation(
        issue(pool, head, "u3", "bug", (0, 4)).await,
        "issues_line_start_check",
        "line 0",
    );
    for kind in [
        "style",
        "performance",
        "security",
        "bug",
        "complexity",
        "duplication",
        "convention",
        "quality",
    ] {
        issue(pool, head, kind, kind, (7, 7))
            .await
            .expect("each of the eight kinds");
    }

    for name in ["1PASSWORD", "MY-SECRET", "MY SECRET", ""] {
        assert_check_violation(
            secret(pool, None, name, None).await,
            "secrets_name_check",
            &format!("secret name {name:?}"),
        );
    }
    secret(pool, None, "_ok_Name9", None)
        .await
        .expect("a valid secret name");
    assert_check_violation(
        sqlx::query(
            "INSERT INTO secrets (scope, name, ciphertext, nonce, key_id) \
             VALUES ('repository', 'X', '\\x00', '\\x000000000000000000000000', 'k1')",
        )
        .execute(pool)
        .await,
        "secrets_scope_repository",
        "repository secret without a repository",
    );

    let set = check_set(pool, head).await.unwrap();
    assert_check_violation(
        check(pool, set, "cocov/a", "errored", None).await,
        "checks_errored_has_output",
        "errored check without error output",
    );
    assert_check_violation(
        check(pool, set, "cocov/b", "running", None).await,
        "checks_status_check",
        "unknown check status",
    );
    check(pool, set, "cocov/c", "errored", Some("boom"))
        .await
        .expect("errored with output");
    assert_check_violation(
        sqlx::query("UPDATE check_sets SET status = 'completed' WHERE id = $1")
            .bind(set)
            .execute(pool)
            .await,
        "check_sets_finished_has_time",
        "completed set without finished_at",
    );
    assert_check_violation(
        sqlx::query("UPDATE check_sets SET status = 'failure', finished_at = now() WHERE id = $1")
            .bind(set)
            .execute(pool)
            .await,
        "check_sets_failure_has_kind",
        "failure without an error kind",
    );
    sqlx::query(
        "UPDATE check_sets SET status = 'failure', finished_at = now(), \
                               error_kind = 'manifest_unknown_secret', \
                               error_extra = 'Unknown secret `X''' WHERE id = $1",
    )
    .bind(set)
    .execute(pool)
    .await
    .expect("failure with a kind");

    assert_check_violation(
        cache_tool(pool, "huge", -1).await,
        "cache_tools_size_check",
        "negative size",
    );
    cache_tool(pool, "huge", 5 << 30)
        .await
        .expect("a 5 GiB tool (bigint size)");
}

#[tokio::test(flavor = "multi_thread")]
async fn updated_at_follows_updates() {
    let db = TestDb::migrated().await;
    let pool = &db.pool;
    let repo = repository(pool, "repo").await.unwrap();
    sqlx::query("UPDATE repositories SET updated_at = now() - interval '1 day' WHERE id = $1")
        .bind(repo)
        .execute(pool)
        .await
        .unwrap();
    let explicit: bool = sqlx::query_scalar(
        "SELECT updated_at < now() - interval '1 hour' FROM repositories WHERE id = $1",
    )
    .bind(repo)
    .fetch_one(pool)
    .await
    .unwrap();
    assert!(explicit, "an explicit updated_at is kept");
    sqlx::query("UPDATE repositories SET description = 'hello' WHERE id = $1")
        .bind(repo)
        .execute(pool)
        .await
        .unwrap();
    let touched: bool = sqlx::query_scalar(
        "SELECT updated_at > now() - interval '1 hour' FROM repositories WHERE id = $1",
    )
    .bind(repo)
    .fetch_one(pool)
    .await
    .unwrap();
    assert!(touched, "an update without updated_at refreshes it");
}
