//! The repository pages in a real Chromium on data the daemon made itself: a standalone
//! repository on a local bare origin gets two pushes (and a second branch), the worker runs the
//! real linters in bubblewrap on them, CI's coverage report arrives through the upload API, and
//! an administrator walks every repository page, asserting what each shows against what was
//! pushed and performing its actions (re-run and watch the checks finish live, cancel, filter
//! and ignore issues, regenerate the upload token, add a member, save a secret). Every page
//! passes the browser checks (no console error, no failed request, no serious axe-core
//! violation) and leaves a screenshot. One test: the set-up (two check runs) is the slow part.

use crate::checks::finished_checks;
use crate::common;
use crate::web_ui::{account, sign_in};

use std::time::Duration;

use common::TestApp;
use common::browser::{Browser, server_failures};
use common::origin::{Origin, announce, announce_main, create_repository};
use common::requests::get;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The real linters, and a plugin that takes a few seconds, so a re-run is still running when
/// its page shows (the live update then has something to show).
const MANIFEST: &str = "version: \"0.1.alpha\"\nchecks:\n\
    \x20 - plugin: cocov/ruff:v0.1\n\
    \x20 - plugin: cocov/shellcheck:v0.1\n\
    \x20 - plugin: acme/slow\n";
/// The first commit also runs a plugin that fails, which its second commit drops.
const BROKEN: &str = "  - plugin: acme/broken\n";
const BROKEN_PLUGIN: &str = "name = \"acme/broken\"\ncommand = \"/bin/sh\"\n\
    args = [\"-c\", '''echo 'broken: <config> not found' >&2; exit 3''']\n";
const SLOW_PLUGIN: &str = "name = \"acme/slow\"\ncommand = \"/bin/sh\"\n\
    args = [\"-c\", '''sleep 3; : > \"$COCOV_OUTPUT_FILE\"''']\n";

const CORE_V1: &str = "import os\n\n\ndef add(a, b):\n    return a + b\n\n\n\
    def mean(values):\n    if not values:\n        return 0\n    return sum(values) / len(values)\n";
const RATIO: &str = "\n\ndef ratio(a, b):\n    return a / undefined_total\n";
const INIT: &str = "VERSION = \"1.0\"\n";
const SCRIPT: &str = "#!/bin/sh\necho $1\ncd /tmp\n";

/// coverage.py's lcov for the head: core.py has 9 executable lines, 2 missed (10 and 15).
const LCOV: &str = "SF:calc/__init__.py\nDA:1,1\nLF:1\nLH:1\nend_of_record\n\
    SF:calc/core.py\nDA:1,1\nDA:4,1\nDA:5,3\nDA:8,1\nDA:9,2\nDA:10,0\nDA:11,2\nDA:14,1\nDA:15,0\n\
    LF:9\nLH:7\nend_of_record\n";

struct Pushed {
    t: TestApp,
    _plugins: tempfile::TempDir,
    _origin: Origin,
    admin: String,
    first: String,
    head: String,
}

/// The daemon with every role (the badger on a port known in advance, so the badges page links
/// its images), and the repository `widget` pushed, checked and covered.
async fn pushed_repository() -> Pushed {
    assert!(
        common::linters_dir().is_some(),
        "ruff is missing: run scripts/install-test-tools.sh"
    );
    let plugins = tempfile::tempdir().unwrap();
    std::fs::write(plugins.path().join("slow.toml"), SLOW_PLUGIN).unwrap();
    std::fs::write(plugins.path().join("broken.toml"), BROKEN_PLUGIN).unwrap();
    let plugins_dir = plugins.path().to_path_buf();
    let badger_port = common::requests::free_port();
    let t = TestApp::start_with(move |c| {
        c.worker.plugins_dir = plugins_dir;
        c.security.cryptographic_key = "ab".repeat(32);
        c.badger.bind_port = badger_port;
        c.badger.base_url = format!("http://127.0.0.1:{badger_port}");
    })
    .await;
    account(&t, "root", true).await;
    account(&t, "bob", false).await;
    let admin = t.user_token("ci-admin", true).await;
    let origin = Origin::new();
    let body = json!({"name": "widget", "git_url": origin.url(), "default_branch": "main",
                      "description": "The widget service"});
    let (_, token) = create_repository(&t, &admin, &body).await;
    let first = origin.commit(
        &[
            (".cocov.yaml", &format!("{MANIFEST}{BROKEN}")),
            ("calc/__init__.py", INIT),
            ("calc/core.py", CORE_V1),
            ("scripts/run.sh", SCRIPT),
        ],
        "Add the calculator\n\nWith a script to run it.",
    );
    announce_main(&t, "widget", &token, &first).await;
    let core_v2 = format!("{CORE_V1}{RATIO}");
    let head = origin.commit(
        &[(".cocov.yaml", MANIFEST), ("calc/core.py", &core_v2)],
        "Add ratio",
    );
    announce_main(&t, "widget", &token, &head).await;
    let (status, answer) = announce(
        &t,
        "widget",
        &format!("token {token}"),
        json!({"sha": first, "branch": "feature/login"}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    for (sha, status) in [(&first, "errored"), (&head, "completed")] {
        let view = finished_checks(&t, &admin, "widget", sha).await;
        assert_eq!(view["status"], status, "{view}");
    }
    let response = t
        .client
        .post(t.url(&format!("/v1/reports/raw?commit_sha={head}&mode=replace")))
        .header("authorization", format!("token {token}"))
        .body(LCOV)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let uploaded: Value = response.json().await.unwrap();
    assert_eq!(uploaded["status"], "completed", "{uploaded}");
    assert_eq!(uploaded["files_unmatched"], 0, "{uploaded}");
    Pushed {
        t,
        _plugins: plugins,
        _origin: origin,
        admin,
        first,
        head,
    }
}

/// The id of the head's issue whose message contains `text`.
async fn issue_id(p: &Pushed, text: &str) -> i64 {
    let (status, body) = get(
        &p.t,
        Some(&p.admin),
        &format!(
            "/v1/repositories/widget/commits/{}/issues?per_page=100",
            p.head
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["issues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["message"].as_str().unwrap().contains(text))
        .unwrap_or_else(|| panic!("no issue with {text:?} in {body}"))["id"]
        .as_i64()
        .unwrap()
}

/// Waits until the page's element `css` shows `text` (set by the page's own live updates).
/// Read in one script: the live update may replace the element between a WebDriver lookup and
/// a read of its text.
async fn page_shows(browser: &Browser, css: &str, text: &str) -> String {
    common::eventually(
        &format!("{css} to show {text:?}"),
        Duration::from_secs(90),
        || async {
            let shown = browser
                .script(
                    "const e = document.querySelector(arguments[0]); return e ? e.innerText : '';",
                    json!([css]),
                )
                .await;
            let shown = shown.as_str().unwrap_or_default().to_string();
            shown.contains(text).then_some(shown)
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn an_administrator_walks_a_pushed_repository() {
    let p = pushed_repository().await;
    let t = &p.t;
    let (head, first) = (p.head.clone(), p.first.clone());
    let browser = Browser::start("pushed").await;
    sign_in(&browser, t, "root").await;

    // Repositories: the card shows the head's numbers.
    assert_eq!(browser.text("h1").await, "Repositories");
    let card = browser.text(".repo-card").await;
    assert!(
        card.contains("widget") && card.contains("The widget service"),
        "{card}"
    );
    let numbers = card.to_lowercase();
    assert!(
        numbers.contains("issues\n4") && numbers.contains("coverage\n80%"),
        "{card}"
    );
    browser.check("repositories").await;

    // The repository's main branch.
    browser.click_and_wait(".repo-card h2 a").await;
    let status = browser.text(".status-box").await;
    assert!(
        status.contains("80%") && status.contains("4 issues"),
        "{status}"
    );
    let last = browser.text(".last-commit").await;
    assert!(
        last.contains(&head[..7]) && last.contains("Add ratio") && last.contains("Ada Lovelace"),
        "{last}"
    );
    assert_eq!(browser.count("svg.chart").await, 2);
    let summary = browser.text(".chart-summary").await;
    assert!(
        summary.starts_with("Coverage: 80% on ")
            && summary.ends_with(", the only day with data so far."),
        "{summary}"
    );
    let kinds = browser.text(".bars").await.to_lowercase();
    assert!(
        kinds.starts_with("bug\n2") && kinds.contains("quality\n1") && kinds.contains("style\n1"),
        "{kinds}"
    );
    assert_eq!(browser.count(".table tbody tr").await, 2);
    let newest = browser.text(".table tbody tr").await;
    assert!(
        newest.contains(&head[..7]) && newest.contains("Add ratio") && newest.contains("80%"),
        "newest first: {newest}"
    );
    assert!(
        browser
            .text(".table tbody tr + tr")
            .await
            .contains("Add the calculator")
    );
    browser.check("repository").await;
    // The branch switcher (a select that submits itself).
    browser
        .script(
            "const s = document.querySelector('#branch'); s.value = 'feature/login'; s.dispatchEvent(new Event('change'));",
            json!([]),
        )
        .await;
    common::eventually("the branch page", Duration::from_secs(10), || async {
        browser
            .current_url()
            .await
            .contains("branch=feature%2Flogin")
            .then_some(())
    })
    .await;
    assert!(
        browser
            .text("#commits-heading")
            .await
            .contains("feature/login")
    );
    assert_eq!(browser.count(".table tbody tr").await, 1);
    assert!(browser.text(".last-commit").await.contains(&first[..7]));
    let status = browser.text(".status-box").await;
    assert!(
        status.contains("Waiting for an upload") && status.contains("A check failed"),
        "{status}"
    );
    browser.check("repository-branch").await;

    // The head's checks: each completed with what it found.
    let checks_url = t.url(&format!("/repos/widget/commits/{head}/checks"));
    browser.goto(&checks_url).await;
    let list = browser.text(".check-list").await;
    for (plugin, found) in [
        ("cocov/ruff", "2 issues reported."),
        ("cocov/shellcheck", "2 issues reported."),
        ("acme/slow", "No issues reported."),
    ] {
        assert!(
            list.contains(&format!("{plugin} Completed\nCompleted in")) && list.contains(found),
            "{plugin}: {list}"
        );
    }
    assert_eq!(browser.count("#live-checks[data-live]").await, 0);
    browser.check("commit-checks").await;
    // Re-run, and watch the list reach the end without reloading the page.
    browser.click_and_wait("input[value=rerun] ~ button").await;
    assert!(
        browser
            .text(".alert-success")
            .await
            .contains("The checks were queued again.")
    );
    assert_eq!(
        browser.count("#live-checks[data-live]").await,
        1,
        "still running: the list refreshes itself"
    );
    browser.check("commit-checks-running").await;
    browser
        .script("window.sameDocument = true;", json!([]))
        .await;
    page_shows(&browser, "#checks-heading", "completed").await;
    let list = browser.text(".check-list").await;
    assert_eq!(list.matches("Completed in").count(), 3, "{list}");
    assert_eq!(
        browser
            .script("return window.sameDocument;", json!([]))
            .await,
        json!(true),
        "updated in place"
    );
    assert_eq!(browser.count("#live-checks[data-live]").await, 0);
    assert_eq!(browser.count("input[value=rerun]").await, 1);
    assert!(
        browser
            .text(".commit-meta")
            .await
            .contains("checks: completed · issues: 4"),
        "the commit's head is refreshed too"
    );
    browser.check("commit-checks-live-done").await;

    // The first commit: a check failed, with its output; then a re-run, canceled.
    browser
        .goto(&t.url(&format!("/repos/widget/commits/{first}/checks")))
        .await;
    assert!(browser.text("#checks-heading").await.contains("errored"));
    let list = browser.text(".check-list").await;
    assert!(
        list.contains("acme/broken Failed\nFailed after") && list.contains("cocov/ruff Completed"),
        "{list}"
    );
    browser.click(".check-output summary").await;
    assert!(
        browser
            .text(".check-output pre")
            .await
            .contains("broken: <config> not found")
    );
    browser.check("commit-checks-errored").await;
    browser.click_and_wait("input[value=rerun] ~ button").await;
    browser.click_and_wait("input[value=cancel] ~ button").await;
    assert!(
        browser
            .text(".alert-success")
            .await
            .contains("The checks are being canceled.")
    );
    let heading = page_shows(&browser, "#checks-heading", "canceled").await;
    assert!(!heading.contains("canceling"), "{heading}");
    assert!(
        browser
            .text(".commit-meta")
            .await
            .contains("checks: canceled")
    );
    browser.check("commit-checks-canceled").await;

    // Issues: each with its code.
    let issues_url = t.url(&format!("/repos/widget/commits/{head}/issues"));
    browser.goto(&issues_url).await;
    assert_eq!(browser.text("#issues-heading").await, "4 issues");
    let undefined = issue_id(&p, "F821").await;
    let card = browser.text(&format!("#issue-{undefined}")).await;
    assert!(
        card.contains("cocov/ruff reported a bug issue")
            && card.contains("calc/core.py, line 15")
            && card.contains("return a / undefined_total")
            && card.contains("def ratio(a, b):"),
        "{card}"
    );
    assert_eq!(
        browser
            .text(&format!("#issue-{undefined} tr.code-marked .src"))
            .await,
        "    return a / undefined_total"
    );
    assert!(
        browser
            .count(&format!("#issue-{undefined} .src span[class*=hl-keyword]"))
            .await
            >= 2,
        "highlighted: `def` and `return` are keywords"
    );
    let quoting = issue_id(&p, "SC2086").await;
    assert_eq!(
        browser
            .text(&format!("#issue-{quoting} tr.code-marked .src"))
            .await,
        "echo $1"
    );
    assert!(
        browser
            .text(&format!("#issue-{quoting} .code-warn"))
            .await
            .contains("Double quote to prevent globbing")
    );
    browser.check("commit-issues").await;
    // Filters, as a user picks them.
    browser
        .script(
            "document.querySelector('#f-kind').value = 'style';",
            json!([]),
        )
        .await;
    browser.click_and_wait(".filter-form button").await;
    assert!(browser.current_url().await.contains("kind=style"));
    assert_eq!(
        browser.text("#issues-heading").await,
        "1 issue matching the filters"
    );
    assert_eq!(browser.count(&format!("#issue-{quoting}")).await, 1);
    browser.check("commit-issues-style").await;
    browser
        .goto(&format!(
            "{issues_url}?plugin=cocov%2Fshellcheck&file=scripts%2Frun.sh"
        ))
        .await;
    assert_eq!(
        browser.text("#issues-heading").await,
        "2 issues matching the filters"
    );
    // Ignore the unused import for good, with a reason.
    let unused = issue_id(&p, "F401").await;
    browser.goto(&issues_url).await;
    browser
        .click(&format!("#issue-{unused} details.ignore summary"))
        .await;
    browser
        .click(&format!("#issue-{unused} input[value=for_good]"))
        .await;
    browser
        .fill(&format!("#reason-{unused}"), "kept for the plugin API")
        .await;
    browser
        .click_and_wait(&format!("#issue-{unused} .ignore-form button[type=submit]"))
        .await;
    assert!(
        browser
            .text(".alert-success")
            .await
            .contains("ignored in this and every later commit")
    );
    assert_eq!(browser.text("#issues-heading").await, "3 issues");
    let rules = browser.text(".rule-list").await;
    assert!(
        rules.contains("cocov/ruff · bug · calc/core.py:1")
            && rules.contains("By root: kept for the plugin API"),
        "{rules}"
    );
    browser.check("commit-issues-ignored-for-good").await;
    browser.goto(&format!("{issues_url}?state=ignored")).await;
    let ignored = browser.text(&format!("#issue-{unused}")).await;
    assert!(
        ignored.contains("Ignored for good by root")
            && ignored.contains("Reason: kept for the plugin API")
            && ignored.contains("import os"),
        "{ignored}"
    );
    browser.check("commit-issues-ignored").await;

    // Coverage: the files, filtered and sorted, and one file line by line.
    let coverage_url = t.url(&format!("/repos/widget/commits/{head}/coverage"));
    browser.goto(&coverage_url).await;
    assert_eq!(
        browser.text("#coverage-heading + p").await,
        "80% covered: 8 of 10 relevant lines, 2 missed."
    );
    assert_eq!(browser.count(".coverage-files tbody tr").await, 2);
    let least = browser.text(".coverage-files tbody tr").await;
    assert!(
        least.contains("calc/core.py") && least.contains("77%") && least.contains("7 of 9 lines"),
        "least covered first: {least}"
    );
    browser.check("commit-coverage").await;
    browser.goto(&format!("{coverage_url}?sort=most")).await;
    assert!(
        browser
            .text(".coverage-files tbody tr")
            .await
            .contains("calc/__init__.py")
    );
    browser.fill("#c-below", "90").await;
    browser.click_and_wait("form.inline-form button").await;
    assert_eq!(browser.count(".coverage-files tbody tr").await, 1);
    assert!(
        browser
            .text("#files-heading")
            .await
            .starts_with("1 file matching")
    );
    browser.check("commit-coverage-below-90").await;
    browser.click_and_wait(".coverage-files a").await;
    assert!(
        browser
            .current_url()
            .await
            .contains("/coverage/file?path=calc%2Fcore.py")
    );
    assert_eq!(browser.count("tr.cov-covered").await, 7);
    assert_eq!(browser.count("tr.cov-missed").await, 2);
    let missed = browser.text("tr.cov-missed").await;
    assert!(
        missed.starts_with("10") && missed.contains("return 0") && missed.contains("missed"),
        "marked in words, not colour only: {missed}"
    );
    assert!(browser.text("tr.cov-covered").await.contains("import os"));
    browser.check("coverage-file").await;

    // Badges: the snippets and the images from the badger.
    browser.goto(&t.url("/repos/widget/badges")).await;
    let snippet = browser
        .script(
            "return document.querySelector('#snippet-coverage').value;",
            json!([]),
        )
        .await;
    assert_eq!(
        snippet.as_str().unwrap(),
        format!(
            "[![Coverage]({}/widget/coverage)](http://127.0.0.1:3000/repos/widget)\n",
            t.badger_base.replace("0.0.0.0", "127.0.0.1")
        )
    );
    let loaded = browser
        .script(
            "return Array.from(document.querySelectorAll('.badge-preview img')).map(i => i.complete && i.naturalWidth > 0);",
            json!([]),
        )
        .await;
    assert_eq!(loaded, json!([true, true]), "the previews load");
    let badge = t
        .client
        .get(format!("{}/widget/coverage", t.badger_base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(badge.contains("80%"), "{badge}");
    browser.check("badges").await;
    browser
        .goto(&t.url("/repos/widget/badges?format=restructured"))
        .await;
    assert!(
        browser
            .text("label[for=snippet-issues]")
            .await
            .contains("reStructuredText")
    );
    browser.check("badges-restructured").await;

    // Settings: the token shown once, a member, a secret.
    browser.goto(&t.url("/repos/widget/settings")).await;
    assert_eq!(browser.count("#new-token").await, 0);
    browser.check("settings").await;
    browser
        .click_and_wait("input[value=regen_token] ~ button")
        .await;
    let token = browser
        .script(
            "return document.getElementById('new-token').value",
            json!([]),
        )
        .await
        .as_str()
        .unwrap()
        .to_string();
    assert!(token.starts_with("crt_"), "{token}");
    let found = cocov::repositories::find_by_upload_token(&t.app().db, &token)
        .await
        .unwrap();
    assert_eq!(found.map(|r| r.name).as_deref(), Some("widget"));
    browser.check("settings-new-token").await;
    browser.goto(&t.url("/repos/widget/settings")).await;
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
    let members = browser
        .text("section[aria-labelledby=members-heading] .table")
        .await;
    assert!(members.contains("bob read"), "{members}");
    browser.fill("#s-name", "DEPLOY_TOKEN").await;
    browser.fill("#s-value", "s3cr3t").await;
    browser
        .click_and_wait("input[value=save_secret] ~ .actions button")
        .await;
    assert!(
        browser
            .text(".alert-success")
            .await
            .contains("The secret was saved.")
    );
    let secrets = browser.text(".secret-list").await;
    assert!(
        secrets.contains("DEPLOY_TOKEN") && !secrets.contains("s3cr3t"),
        "{secrets}"
    );
    browser.check("settings-member-and-secret").await;

    browser.close().await;
    assert_eq!(server_failures(t), Vec::<String>::new());
    p.t.shutdown().await;
}
