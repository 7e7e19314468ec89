//! Signing in to the web UI in a real Chromium: with GitHub (the fake GitHub's OAuth pages) and
//! with OIDC (the real `oidc-provider`, its login and consent forms filled in the browser),
//! coming back to the page asked for; the sign-in page offers only what is configured. The
//! keyboard alone signs in, walks the pages in a sensible Tab order with a visible focus, skips
//! to the content, and works the user menu and a confirmation. Plain HTTP: an anonymous POST
//! is refused without the daemon reading its body.

use crate::common;

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use common::TestApp;
use common::browser::{Browser, keys, server_failures};
use common::fake_github::{FakeRepo, role};
use common::oidc_provider::OidcProvider;
use common::requests::free_port;
use serde_json::json;

use crate::github_sign_in::{ADA, add_repository, env, members_of};
use crate::web_ui::{PASSWORD, account, seeded_repository, session_cookie};

/// GitHub only (local accounts off): the sign-in page is one button, which goes through
/// GitHub and back to the repository page first asked for; the user menu names the GitHub
/// login and signs out.
#[tokio::test(flavor = "multi_thread")]
async fn github_sign_in_in_a_browser_comes_back_to_the_page_asked_for() {
    let e = env(|c| c.accounts.local = cocov::config::LocalAccounts::Off).await;
    e.fake
        .add_repo(FakeRepo::new(1001, "api").collaborator(ADA, "ada", role("write")));
    add_repository(&e, "api").await;
    common::eventually("the repository sync", Duration::from_secs(20), || async {
        (members_of(&e, ADA).await.len() == 1).then_some(())
    })
    .await;
    e.fake.sign_in_as(ADA);
    let browser = Browser::start("sign-in").await;

    browser.goto(&e.t.url("/repos/api")).await;
    assert_eq!(
        browser.current_url().await,
        e.t.url("/sign-in?return_to=%2Frepos%2Fapi")
    );
    assert_eq!(
        browser.text(".sign-in-providers").await,
        "Sign in with GitHub"
    );
    assert_eq!(
        browser.count("input[type=password]").await
            + browser.count("form[action='/sign-in']").await,
        0,
        "no password form when local accounts are off"
    );
    browser.check("github").await;

    browser
        .click_and_wait(".sign-in-providers a[href^='/auth/github']")
        .await;
    assert_eq!(browser.current_url().await, e.t.url("/repos/api"));
    assert_eq!(browser.text("h1").await, "api");
    assert!(browser.text(".user-menu summary").await.contains("ada"));
    browser.check("github-signed-in").await;

    browser.click(".user-menu summary").await;
    assert!(
        browser
            .text(".user-menu .menu-note")
            .await
            .contains("Signed in as ada")
    );
    browser
        .click_and_wait(".user-menu button[type=submit]")
        .await;
    assert_eq!(browser.current_url().await, e.t.url("/sign-in"));
    browser.goto(&e.t.url("/repos/api")).await;
    assert!(
        browser.current_url().await.contains("/sign-in?return_to="),
        "signed out for good"
    );
    assert_eq!(server_failures(&e.t), Vec::<String>::new());
    browser.close().await;
}

/// OIDC next to local accounts: both are offered; the single sign-on button leads to the
/// provider's own login (and consent) pages, filled in the browser, and back signed in.
#[tokio::test(flavor = "multi_thread")]
async fn oidc_sign_in_in_a_browser_through_the_providers_pages() {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let provider = OidcProvider::start(
        &format!("{base}/auth/oidc/callback"),
        json!({"erin-sub": {"preferred_username": "erin", "groups": []}}),
        false,
    )
    .await;
    let t = TestApp::start_with(|c| {
        c.server.bind_address = format!("127.0.0.1:{port}").parse().unwrap();
        c.server.ui_base_url = base.clone();
        provider.configure(c);
        c.oidc.display_name = "Example SSO".into();
        c.oidc.scopes = vec!["openid".into(), "profile".into()];
        c.oidc.allow_signup = true;
        c.accounts.local = cocov::config::LocalAccounts::On;
    })
    .await;
    // Someone else is the first user (and so the administrator).
    account(&t, "root", true).await;
    let browser = Browser::start("sign-in").await;

    browser.goto(&t.url("/?q=widget")).await;
    assert_eq!(
        browser.text(".sign-in-providers").await,
        "Sign in with Example SSO"
    );
    assert_eq!(browser.count("form[action='/sign-in'] #password").await, 1);
    browser.check("oidc").await;

    browser
        .click_and_wait(".sign-in-providers a[href^='/auth/oidc']")
        .await;
    assert!(
        browser.current_url().await.starts_with(&provider.issuer),
        "at the provider"
    );
    // Its login page, then (on a first visit) its consent page.
    browser.fill("input[name=login]", "erin-sub").await;
    browser.fill("input[name=password]", "any").await;
    browser.click_and_wait("button[type=submit]").await;
    if browser.current_url().await.starts_with(&provider.issuer) {
        assert!(
            browser.text("body").await.contains("Authorize"),
            "a consent page"
        );
        browser.click_and_wait("button[type=submit]").await;
    }
    assert_eq!(browser.current_url().await, t.url("/?q=widget"));
    // The provider's pages logged their own errors (fonts from the internet); the landing
    // page is loaded again so that the check sees only its own.
    browser.forget_console().await;
    browser.goto(&t.url("/?q=widget")).await;
    assert_eq!(browser.text("h1").await, "Repositories");
    assert!(browser.text(".user-menu summary").await.contains("erin"));
    browser.check("oidc-signed-in").await;
    browser.close().await;
    t.shutdown().await;
}

/// Only the keyboard: sign in, Tab through the pages in reading order with the focus always
/// visible, skip to the content, search, open a repository, work the user menu (Enter opens,
/// Escape or leaving it closes it) and a confirmation (cancel, then confirm), sign out.
#[tokio::test(flavor = "multi_thread")]
async fn the_keyboard_alone_works_the_ui() {
    let t = crate::web_ui::start().await;
    account(&t, "root", true).await;
    seeded_repository(&t, "widget").await;
    let system = cocov::audit::AuditActor::system();
    cocov::auth::service_tokens::create(&t.app().db, "CI on build01", None, &system)
        .await
        .expect("service token");
    let browser = Browser::start("keyboard").await;

    // Sign in: the login field has the focus (or is the first stop after the skip link).
    browser.goto(&t.url("/")).await;
    if !browser.focused().await.starts_with("input#login") {
        browser.tab_to("input#login", 3).await;
    }
    browser.type_keys("root").await;
    browser.press(&[keys::TAB]).await;
    assert!(browser.focused().await.starts_with("input#password"));
    browser.type_keys(PASSWORD).await;
    browser.press_and_wait(keys::ENTER).await;
    assert_eq!(browser.current_url().await, t.url("/"));

    // The first stop is the skip link, shown while focused; Enter moves to the content, whose
    // first stop is the search.
    browser.press(&[keys::TAB]).await;
    assert!(
        browser.focused().await.contains("Skip to main content"),
        "{}",
        browser.focused().await
    );
    browser.focus_is_visible().await.unwrap();
    let shown = browser
        .script(
            "const r = document.activeElement.getBoundingClientRect();\
             return r.left >= 0 && r.top >= 0 && r.width > 0;",
            json!([]),
        )
        .await;
    assert_eq!(
        shown,
        json!(true),
        "the skip link is on screen when focused"
    );
    browser.screenshot("skip-link").await;
    browser.press(&[keys::ENTER]).await;
    assert_eq!(
        browser.focused().await.split(' ').next(),
        Some("main#main.wrap")
    );
    browser.press(&[keys::TAB]).await;
    assert!(browser.focused().await.starts_with("input#q"));

    // From the top: header, navigation, user menu, search, then the repository.
    browser.goto(&t.url("/")).await;
    let order = browser.tab_to("[/repos/widget]", 12).await;
    assert_stops_in_order(
        &order,
        &[
            "Skip to main content",
            "a.brand",
            "\"Repositories\" [/]",
            "\"Administration\" [/admin]",
            "summary",
            "input#q",
            "\"Search\"",
            "[/repos/widget]",
        ],
    );

    // The user menu: Enter opens it, Tab reaches its button, Escape closes it and gives the
    // focus back to its toggle.
    let menu_open = "return document.querySelector('.user-menu').open;";
    browser.goto(&t.url("/")).await;
    browser.tab_to("summary", 6).await;
    browser.press(&[keys::ENTER]).await;
    assert_eq!(
        browser.script(menu_open, json!([])).await,
        json!(true),
        "Enter opens the menu"
    );
    browser.press(&[keys::TAB]).await;
    assert!(browser.focused().await.contains("Sign out"));
    browser.focus_is_visible().await.unwrap();
    browser.screenshot("user-menu").await;
    browser.press(&[keys::ESCAPE]).await;
    assert_eq!(
        browser.script(menu_open, json!([])).await,
        json!(false),
        "Escape closes the menu"
    );
    assert!(
        browser.focused().await.starts_with("summary"),
        "the focus goes back to the menu's toggle"
    );
    // Tabbing out of the open menu closes it (it would cover the search field).
    browser.press(&[keys::ENTER, keys::TAB, keys::TAB]).await;
    assert!(browser.focused().await.starts_with("input#q"));
    assert_eq!(
        browser.script(menu_open, json!([])).await,
        json!(false),
        "leaving the menu closes it"
    );

    // Search by typing, then open the repository with Enter.
    browser.type_keys("widg").await;
    browser.press_and_wait(keys::ENTER).await;
    assert_eq!(browser.current_url().await, t.url("/?q=widg"));
    browser.tab_to("[/repos/widget]", 12).await;
    browser.press_and_wait(keys::ENTER).await;
    assert_eq!(browser.current_url().await, t.url("/repos/widget"));

    // A repository page: navigation, breadcrumb, then its tabs in order, then the branch.
    let order = browser.tab_to("select#branch", 16).await;
    assert_stops_in_order(
        &order,
        &[
            "\"Repositories\" [/]",
            "summary",
            "\"Summary\" [/repos/widget]",
            "\"Badges\" [/repos/widget/badges]",
            "\"Settings\" [/repos/widget/settings]",
            "select#branch",
        ],
    );
    browser.press(&[keys::SHIFT, keys::TAB]).await;
    browser.press_and_wait(keys::ENTER).await;
    assert_eq!(browser.current_url().await, t.url("/repos/widget/settings"));

    // A confirmation: Enter asks, Cancel keeps the token, Enter and OK revokes it.
    browser.goto(&t.url("/admin/tokens")).await;
    browser.tab_to("\"Revoke", 40).await;
    let page = browser.page().await;
    browser.press(&[keys::ENTER]).await;
    let question = browser.dialog().await.expect("a confirmation");
    assert!(question.contains("Revoke the token"), "{question}");
    browser.answer_dialog(false).await;
    assert_eq!(browser.current_url().await, t.url("/admin/tokens"));
    assert!(browser.focused().await.contains("Revoke"));
    assert_eq!(tokens(&t).await, 1, "cancelled: the token stays");
    browser.press(&[keys::ENTER]).await;
    assert!(browser.dialog().await.is_some());
    browser.answer_dialog(true).await;
    browser.wait_for_new_page(&page).await;
    assert_eq!(
        browser.current_url().await,
        t.url("/admin/tokens?notice=revoked")
    );
    assert_eq!(tokens(&t).await, 0);

    // Sign out from the menu.
    browser.tab_to("summary", 6).await;
    browser.press(&[keys::ENTER]).await;
    browser.press(&[keys::TAB]).await;
    browser.press_and_wait(keys::ENTER).await;
    assert_eq!(browser.current_url().await, t.url("/sign-in"));
    browser.check("signed-out").await;
    browser.close().await;
    t.shutdown().await;
}

async fn tokens(t: &TestApp) -> usize {
    cocov::auth::service_tokens::list(&t.app().db)
        .await
        .unwrap()
        .len()
}

/// The headers a browser sends with a form of the daemon's own pages.
fn same_origin(addr: &str) -> String {
    format!("Origin: http://{addr}\r\nSec-Fetch-Site: same-origin\r\n")
}

/// Sends `POST path` with `headers` (lines ending in CRLF) and a body that never ends
/// (chunked, 16 KiB at a time, from a thread of its own); returns the response's status line
/// and headers as soon as they arrive.
fn post_endless_body(addr: &str, path: &str, headers: &str) -> String {
    let stream = TcpStream::connect(addr).unwrap();
    let mut sender = stream.try_clone().unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}\
         Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    sender.write_all(head.as_bytes()).unwrap();
    let chunk = format!("4000\r\n{}\r\n", "a".repeat(0x4000));
    let writing = std::thread::spawn(move || while sender.write_all(chunk.as_bytes()).is_ok() {});
    let answer = response_head(&stream);
    // Stops the sender, whether or not the daemon closed the connection.
    let _ = stream.shutdown(Shutdown::Both);
    writing.join().unwrap();
    answer
}

/// Sends `POST path` declaring a 60 000-byte body but sending only its first bytes, and
/// returns the response head. A daemon that reads the body first never answers: the read
/// gives up after a minute (a bound on failure, not a measure of success).
fn post_half_a_body(addr: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\n{}\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 60000\r\n\r\nname=x&",
        same_origin(addr)
    );
    stream.write_all(head.as_bytes()).unwrap();
    response_head(&stream)
}

/// The status line and headers of the response on `stream`, lower-cased.
fn response_head(stream: &TcpStream) -> String {
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) if line == "\r\n" => break,
            Ok(_) => head.push_str(&line.to_lowercase()),
            Err(e) => panic!("no answer while the body was still coming ({e}); so far: {head}"),
        }
    }
    head
}

/// An anonymous POST to any form is refused (to the sign-in page) without its body being read:
/// a body that never ends gets the redirect, not "too large" after 64 KiB were read, and a
/// body that stops halfway gets it too, where reading first would wait for the rest. A user
/// who is not an administrator posting to an administration form gets the 403 the same way,
/// and so does another site's form posted to the sign-in page.
#[tokio::test(flavor = "multi_thread")]
async fn an_anonymous_post_is_refused_before_its_body_is_read() {
    let t = crate::web_ui::start().await;
    account(&t, "root", true).await;
    account(&t, "alice", false).await;
    seeded_repository(&t, "widget").await;
    let addr = t.base.trim_start_matches("http://").to_string();
    let alice = session_cookie(&t, "alice").await;

    // Each answer is checked as it comes, so a daemon that reads first fails at the first.
    let refused = |path: &str, head: &str| {
        assert!(head.starts_with("http/1.1 303"), "{path}: {head}");
        let to = format!(
            "location: /sign-in?return_to={}\r\n",
            url::form_urlencoded::byte_serialize(path.as_bytes()).collect::<String>()
        );
        assert!(head.contains(&to.to_lowercase()), "{path}: {head}");
    };
    let checked = tokio::task::spawn_blocking(move || {
        for path in [
            "/new",
            "/sign-out",
            "/repos/widget/settings",
            "/admin/users",
        ] {
            refused(path, &post_endless_body(&addr, path, &same_origin(&addr)));
            refused(path, &post_half_a_body(&addr, path));
        }
        let as_alice = format!("{}Cookie: {alice}\r\n", same_origin(&addr));
        let as_alice = post_endless_body(&addr, "/admin/users", &as_alice);
        assert!(as_alice.starts_with("http/1.1 403"), "{as_alice}");
        // The sign-in form, the one anonymous form, refuses another site's before reading.
        let cross_site = "Origin: https://evil.example\r\nSec-Fetch-Site: cross-site\r\n";
        let forged = post_endless_body(&addr, "/sign-in", cross_site);
        assert!(forged.starts_with("http/1.1 403"), "{forged}");
    })
    .await;
    if let Err(failed) = checked {
        std::panic::resume_unwind(failed.into_panic());
    }
    t.shutdown().await;
}

/// Asserts that Tab stopped at each of `expected` (a part of a stop's description), in this
/// order, whatever else it stopped at in between.
fn assert_stops_in_order(order: &[String], expected: &[&str]) {
    let stops: Vec<usize> = expected
        .iter()
        .map(|what| {
            order
                .iter()
                .position(|o| o.contains(what))
                .unwrap_or_else(|| panic!("Tab never stopped at {what}: {order:#?}"))
        })
        .collect();
    assert!(stops.is_sorted(), "tab order {order:#?}");
}
