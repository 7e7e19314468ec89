//! The commit and settings pages in a real Chromium, through the real daemon, on seeded data
//! (checks, issues with their code in a stored archive, coverage with line data): each page
//! shows what the data says, each action works (re-run checks, ignore an issue, regenerate the
//! upload token and see it once, add a member), and every page passes the browser checks (no
//! console error, no failed request, no serious axe-core violation) and leaves a screenshot.

use crate::common;
use crate::ui_api::store_archive;
use crate::web_ui::{SHA_HEAD, account, seeded_repository, sign_in, start};

use cocov::coverage::{FileCoverage, Line};
use common::browser::{Browser, server_failures};

async fn seed(t: &common::TestApp, repo: &str) -> i64 {
    let pool = &t.app().db;
    let (repo_id, head): (i64, i64) = sqlx::query_as(
        "SELECT r.id, c.id FROM repositories r JOIN commits c ON c.repository_id = r.id \
         WHERE r.name = $1 AND c.sha = $2",
    )
    .bind(repo)
    .bind(SHA_HEAD)
    .fetch_one(pool)
    .await
    .unwrap();
    store_archive(t, repo_id, SHA_HEAD).await;
    for sql in [
        "INSERT INTO checks (check_set_id, plugin_name, status, started_at, finished_at, error_output) \
         SELECT id, 'ruff', 'completed', now() - interval '9 seconds', now(), NULL FROM check_sets WHERE commit_id = $1",
        "INSERT INTO checks (check_set_id, plugin_name, status, started_at, finished_at, error_output) \
         SELECT id, 'bandit', 'errored', now() - interval '3 seconds', now(), 'bandit: <config> not found' \
         FROM check_sets WHERE commit_id = $1",
        "INSERT INTO issues (commit_id, kind, file, uid, line_start, line_end, message, check_source) \
         VALUES ($1, 'bug', 'src/app.py', 'u9', 5, 6, 'undefined name <x>', 'ruff')",
    ] {
        sqlx::query(sql).bind(head).execute(pool).await.expect(sql);
    }
    let lines = (1..=30).map(|n| match n % 3 {
        0 => Line::Neutral,
        1 => Line::Hits(2),
        _ => Line::Hits(0),
    });
    let raw = FileCoverage::from_lines(lines).to_raw_bytes();
    sqlx::query(
        "INSERT INTO coverage_files (coverage_info_id, file, percent_covered, lines_total, lines_covered, lines_missed, raw_data) \
         SELECT id, 'src/app.py', 50, 20, 10, 10, $2 FROM coverage_infos WHERE commit_id = $1",
    )
    .bind(head)
    .bind(raw)
    .execute(pool)
    .await
    .expect("coverage file");
    repo_id
}

#[tokio::test(flavor = "multi_thread")]
async fn commit_and_settings_pages_show_their_data_and_act() {
    let t = start().await;
    account(&t, "root", true).await;
    account(&t, "bob", false).await;
    let repo = seeded_repository(&t, "widget").await;
    seed(&t, &repo).await;
    let browser = Browser::start("repository-pages").await;
    sign_in(&browser, &t, "root").await;
    let commit = format!("/repos/{repo}/commits/{SHA_HEAD}");

    browser.goto(&t.url(&format!("{commit}/checks"))).await;
    let checks = browser.text(".check-list").await;
    assert!(
        checks.contains("ruff") && checks.contains("Completed after 9 s"),
        "{checks}"
    );
    assert!(
        checks.contains("bandit") && checks.contains("Failed"),
        "{checks}"
    );
    browser.click(".check-output summary").await;
    assert!(
        browser
            .text(".check-output pre")
            .await
            .contains("<config> not found")
    );
    browser.check("commit-checks").await;
    browser.click_and_wait("input[value=rerun] ~ button").await;
    assert!(
        browser.count(".alert").await >= 1,
        "re-run answered with a notice or a reason"
    );
    browser.check("commit-checks-rerun").await;

    browser.goto(&t.url(&format!("{commit}/issues"))).await;
    assert!(
        browser
            .text("#issues-heading")
            .await
            .starts_with("4 issues")
    );
    let snippet = browser.text("#issue-4 table.code").await;
    assert!(
        snippet.contains("line 4") && snippet.contains("undefined name <x>"),
        "{snippet}"
    );
    assert_eq!(
        browser.count("#issue-4 .code-marked").await,
        2,
        "the issue's lines are marked"
    );
    assert_eq!(
        browser.count("#issue-4 .code-warn").await,
        1,
        "its message under its first line"
    );
    browser.check("commit-issues").await;
    browser.click("#issue-4 details.ignore summary").await;
    browser.fill("#reason-4", "false positive").await;
    browser
        .click_and_wait("#issue-4 .ignore-form button[type=submit]")
        .await;
    assert!(
        browser
            .text(".alert-success")
            .await
            .contains("The issue is ignored.")
    );
    assert!(
        browser
            .text("#issues-heading")
            .await
            .starts_with("3 issues")
    );
    browser
        .goto(&t.url(&format!("{commit}/issues?state=ignored")))
        .await;
    assert!(
        browser
            .text("#issue-4")
            .await
            .contains("Reason: false positive")
    );
    browser.check("commit-issues-ignored").await;

    browser.goto(&t.url(&format!("{commit}/coverage"))).await;
    assert!(browser.text(".coverage-files").await.contains("src/app.py"));
    browser.check("commit-coverage").await;
    browser.click_and_wait(".coverage-files a").await;
    assert!(
        browser
            .current_url()
            .await
            .contains("/coverage/file?path=src%2Fapp.py")
    );
    assert_eq!(browser.count("tr.cov-covered").await, 10);
    assert_eq!(browser.count("tr.cov-missed").await, 10);
    assert!(
        browser.text("tr.cov-missed").await.contains("missed"),
        "marked in words, not colour only"
    );
    browser.check("coverage-file").await;

    browser
        .goto(&t.url(&format!("/repos/{repo}/settings")))
        .await;
    assert_eq!(browser.count("#new-token").await, 0);
    browser.check("settings").await;
    browser
        .click_and_wait("input[value=regen_token] ~ button")
        .await;
    let token: String = browser
        .script(
            "return document.getElementById('new-token').value",
            serde_json::json!([]),
        )
        .await
        .as_str()
        .unwrap()
        .to_string();
    assert!(token.starts_with("crt_"), "{token}");
    let found = cocov::repositories::find_by_upload_token(&t.app().db, &token)
        .await
        .unwrap();
    assert_eq!(found.map(|r| r.name), Some(repo.clone()));
    browser.check("settings-new-token").await;
    browser
        .goto(&t.url(&format!("/repos/{repo}/settings")))
        .await;
    assert_eq!(browser.count("#new-token").await, 0, "shown once");
    browser.fill("#m-login", "bob").await;
    browser
        .click_and_wait("input[value=add_member] ~ .actions button")
        .await;
    assert!(
        browser
            .text(".alert-success")
            .await
            .contains("The member was added.")
    );
    assert!(
        browser
            .text("#members-heading + p + .table, .table")
            .await
            .contains("bob")
    );
    browser.check("settings-member-added").await;

    browser.close().await;
    assert_eq!(server_failures(&t), Vec::<String>::new());
    t.shutdown().await;
}
