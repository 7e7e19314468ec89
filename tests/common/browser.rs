//! A real browser for the web UI's tests: Debian's headless Chromium driven through
//! chromedriver over the W3C WebDriver protocol (plain JSON over HTTP, spoken with the reqwest
//! client the tests already have: no extra crate to compile).
//!
//! Each [`Browser`] is its own chromedriver and Chromium with a fresh profile, so tests run in
//! parallel without sharing cookies; starting both takes about a second. [`Browser::check`]
//! is the bar every page of a test passes: a screenshot in `target/screenshots/`, no console
//! error, no failed request (seen by the page), and no serious or critical axe-core violation.
//! Install the tools with `scripts/install-test-tools.sh`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

/// The flags the brief and experience ask for: headless, no GPU, and nothing that phones home
/// (without the networking flags Chromium keeps trying the closed network).
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
];

fn tools_dir() -> PathBuf {
    std::env::var("COCOV_TEST_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into()))
                .join(".cache/cocov-test-tools")
        })
}

/// axe-core's script, installed by `scripts/install-test-tools.sh`.
fn axe_source() -> String {
    let path = tools_dir().join("axe/node_modules/axe-core/axe.min.js");
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "axe-core not found at {} ({e}): run scripts/install-test-tools.sh",
            path.display()
        )
    })
}

/// WebDriver's codes for the keys that are not characters ([`Browser::press`]).
pub mod keys {
    pub const TAB: &str = "\u{E004}";
    pub const ENTER: &str = "\u{E007}";
    pub const SHIFT: &str = "\u{E008}";
    pub const ESCAPE: &str = "\u{E00C}";
}

/// A Chromium session.
pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
    client: reqwest::Client,
    /// Screenshot names: `<test>-<page>.png`.
    test: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// A browser with JavaScript on.
    pub async fn start(test: &str) -> Browser {
        Browser::launch(test, true).await
    }

    /// A browser with JavaScript off, to prove pages work without it.
    pub async fn without_javascript(test: &str) -> Browser {
        Browser::launch(test, false).await
    }

    async fn launch(test: &str, javascript: bool) -> Browser {
        let port = super::requests::free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (run scripts/install-test-tools.sh)");
        let profile = tempfile::tempdir().expect("profile dir");
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|s| s.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let mut options = json!({"binary": "/usr/bin/chromium", "args": args});
        if !javascript {
            options["prefs"] = json!({"profile.managed_default_content_settings.javascript": 2});
        }
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": options,
            "goog:loggingPrefs": {"browser": "ALL"},
            // Confirmation dialogs (destructive buttons) are accepted, as a user would.
            "unhandledPromptBehavior": "accept",
        }}});
        let url = format!("http://127.0.0.1:{port}/session");
        let start = Instant::now();
        let session = loop {
            match client.post(&url).json(&capabilities).send().await {
                Ok(r) => {
                    let body: Value = r.json().await.expect("WebDriver answer");
                    let id = body["value"]["sessionId"]
                        .as_str()
                        .unwrap_or_else(|| panic!("chromedriver could not start Chromium: {body}"));
                    break id.to_string();
                }
                Err(_) if start.elapsed() < Duration::from_secs(20) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("chromedriver did not answer: {e}"),
            }
        };
        Browser {
            driver,
            port,
            session,
            client,
            test: test.to_string(),
            _profile: profile,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        self.try_call(method, path.to_string(), body)
            .await
            .unwrap_or_else(|e| panic!("WebDriver {path}: {e}"))
    }

    /// A WebDriver command; its error (`stale element reference: …`) as `Err`.
    async fn try_call(
        &self,
        method: reqwest::Method,
        path: String,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let path = path.as_str();
        let url = format!(
            "http://127.0.0.1:{}/session/{}{path}",
            self.port, self.session
        );
        let mut request = self.client.request(method.clone(), &url);
        if let Some(body) = body {
            request = request.json(&body);
        } else if method == reqwest::Method::POST {
            request = request.json(&json!({}));
        }
        let response = request.send().await.expect("WebDriver request");
        let body: Value = response.json().await.expect("WebDriver JSON");
        if let Some(error) = body["value"]["error"].as_str() {
            return Err(format!(
                "{error}: {}",
                body["value"]["message"].as_str().unwrap_or("")
            ));
        }
        Ok(body["value"].clone())
    }

    /// Opens a URL and waits for the page to load.
    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    pub async fn current_url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Runs a script in the page (`return …;`) with `args`.
    pub async fn script(&self, script: &str, args: Value) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    async fn element(&self, css: &str) -> String {
        let found = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        found
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {css}"))
            .to_string()
    }

    /// The visible text of the first element matching `css` (WebDriver's, so it works with
    /// JavaScript off too).
    pub async fn text(&self, css: &str) -> String {
        let id = self.element(css).await;
        self.call(reqwest::Method::GET, &format!("/element/{id}/text"), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// How many elements match `css`.
    pub async fn count(&self, css: &str) -> usize {
        self.call(
            reqwest::Method::POST,
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        )
        .await
        .as_array()
        .map_or(0, Vec::len)
    }

    /// Types into a field (after clearing it).
    pub async fn fill(&self, css: &str, value: &str) {
        let id = self.element(css).await;
        self.call(reqwest::Method::POST, &format!("/element/{id}/clear"), None)
            .await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            Some(json!({"text": value})),
        )
        .await;
    }

    /// Clicks an element (a submit button waits for the next page).
    pub async fn click(&self, css: &str) {
        let id = self.element(css).await;
        self.call(reqwest::Method::POST, &format!("/element/{id}/click"), None)
            .await;
    }

    /// Clicks a control that loads another page (a link, a form's button) and waits until the
    /// new page has replaced the old one and finished loading.
    pub async fn click_and_wait(&self, css: &str) {
        let old = self.page().await;
        self.click(css).await;
        self.wait_until_replaced(&old, css).await;
    }

    /// Presses keys as a keyboard does (WebDriver "Perform Actions": real key events, sent to
    /// whatever has focus). Each entry is one key: a character or one of [`keys`]; a modifier
    /// ([`keys::SHIFT`]) is held down until the last key is released (`[SHIFT, TAB]`).
    pub async fn press(&self, keys: &[&str]) {
        let mut actions = Vec::new();
        let mut held = Vec::new();
        for key in keys {
            actions.push(json!({"type": "keyDown", "value": key}));
            if *key == keys::SHIFT {
                held.push(key);
            } else {
                actions.push(json!({"type": "keyUp", "value": key}));
            }
        }
        for key in held {
            actions.push(json!({"type": "keyUp", "value": key}));
        }
        self.call(
            reqwest::Method::POST,
            "/actions",
            Some(json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]})),
        )
        .await;
    }

    /// Types `text` into whatever has focus, key by key.
    pub async fn type_keys(&self, text: &str) {
        let chars: Vec<String> = text.chars().map(String::from).collect();
        let keys: Vec<&str> = chars.iter().map(String::as_str).collect();
        self.press(&keys).await;
    }

    /// Presses a key that loads another page (Enter on a link or in a form) and waits for it.
    pub async fn press_and_wait(&self, key: &str) {
        let old = self.page().await;
        self.press(&[key]).await;
        self.wait_until_replaced(&old, "a key press").await;
    }

    /// The current document, for [`Browser::wait_for_new_page`] after an action that loads
    /// another page in a way `click_and_wait` cannot wait for (a confirmation dialog).
    pub async fn page(&self) -> String {
        self.element("html").await
    }

    /// Waits until `page` ([`Browser::page`]) has been replaced and the new page has loaded.
    pub async fn wait_for_new_page(&self, page: &str) {
        self.wait_until_replaced(page, "the action").await;
    }

    /// The focused element in words: `tag#id.class "text" [href]`, for asserting where Tab
    /// went.
    pub async fn focused(&self) -> String {
        self.script(
            "const e = document.activeElement; if (!e || e === document.body) return 'body';\
             const text = (e.innerText || e.value || e.getAttribute('aria-label') || '').trim().replace(/\\s+/g, ' ');\
             return e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')\
               + (e.classList.length ? '.' + Array.from(e.classList).join('.') : '')\
               + (text ? ' \"' + text + '\"' : '')\
               + (e.getAttribute('href') ? ' [' + e.getAttribute('href') + ']' : '');",
            json!([]),
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    /// Presses Tab until the focused element's description ([`Browser::focused`]) contains
    /// `what`, at most `limit` times; returns every element passed on the way (the tab order).
    /// Each stop must be visibly focused ([`Browser::focus_is_visible`]).
    pub async fn tab_to(&self, what: &str, limit: usize) -> Vec<String> {
        let mut order = Vec::new();
        for _ in 0..limit {
            self.press(&[keys::TAB]).await;
            if let Err(style) = self.focus_is_visible().await {
                panic!("the focus is not visible on {style}; before: {order:#?}");
            }
            let now = self.focused().await;
            order.push(now.clone());
            if now.contains(what) {
                return order;
            }
        }
        panic!("{limit} presses of Tab never reached {what}: {order:#?}");
    }

    /// Whether the focused element is visibly marked: it matches `:focus-visible` and its
    /// computed style draws an outline or a box shadow.
    pub async fn focus_is_visible(&self) -> Result<(), String> {
        let style = self
            .script(
                "const e = document.activeElement, s = getComputedStyle(e);\
                 return {visible: e.matches(':focus-visible'), outline: s.outlineStyle,\
                         width: parseFloat(s.outlineWidth) || 0, shadow: s.boxShadow};",
                json!([]),
            )
            .await;
        let outline = style["outline"] != "none" && style["width"].as_f64().unwrap_or(0.0) >= 2.0;
        let shadow = style["shadow"] != "none";
        if style["visible"] == true && (outline || shadow) {
            Ok(())
        } else {
            Err(format!("{}: {style}", self.focused().await))
        }
    }

    /// The text of the open JavaScript dialog (`confirm`), if one is open.
    pub async fn dialog(&self) -> Option<String> {
        self.try_call(reqwest::Method::GET, "/alert/text".into(), None)
            .await
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
    }

    /// Answers the open dialog: OK (`true`) or Cancel.
    pub async fn answer_dialog(&self, accept: bool) {
        let path = if accept {
            "/alert/accept"
        } else {
            "/alert/dismiss"
        };
        self.call(reqwest::Method::POST, path, None).await;
    }

    async fn wait_until_replaced(&self, old: &str, cause: &str) {
        let start = Instant::now();
        loop {
            let gone = self
                .try_call(reqwest::Method::GET, format!("/element/{old}/name"), None)
                .await
                .is_err();
            let ready = gone
                && self
                    .script("return document.readyState;", json!([]))
                    .await
                    .as_str()
                    == Some("complete");
            if ready {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "{cause} loaded no new page"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Writes `target/screenshots/<test>-<page>.png`.
    pub async fn screenshot(&self, page: &str) -> PathBuf {
        let png = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().expect("base64 PNG"))
            .expect("PNG");
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{}-{page}.png", self.test));
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// The browser console's entries since the last call (chromedriver's log).
    async fn console(&self) -> Vec<Value> {
        self.call(
            reqwest::Method::POST,
            "/se/log",
            Some(json!({"type": "browser"})),
        )
        .await
        .as_array()
        .cloned()
        .unwrap_or_default()
    }

    /// Forgets the console's entries so far: after another site's pages (an identity
    /// provider's login form, with its own fonts from the internet), whose errors are not the
    /// UI's.
    pub async fn forget_console(&self) {
        self.console().await;
    }

    /// Every check a page must pass: screenshot, no console error, the document and every
    /// resource it loaded answered below 400, no serious or critical accessibility violation.
    pub async fn check(&self, page: &str) {
        self.screenshot(page).await;
        let errors: Vec<Value> = self
            .console()
            .await
            .into_iter()
            .filter(|e| e["level"] == "SEVERE")
            .collect();
        assert!(errors.is_empty(), "{page}: console errors: {errors:#?}");
        if self.javascript_enabled().await {
            let failed = self
                .script(
                    "return performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))\
                     .filter(e => e.responseStatus >= 400 || (e.responseStatus === 0 && e.transferSize === 0 && e.decodedBodySize === 0 && e.name.startsWith(location.origin)))\
                     .map(e => e.name + ' ' + e.responseStatus);",
                    json!([]),
                )
                .await;
            assert_eq!(failed, json!([]), "{page}: failed requests");
            self.axe(page).await;
        }
    }

    async fn javascript_enabled(&self) -> bool {
        // With JavaScript off in the profile, chromedriver's scripts still run; the page's do
        // not, so ask the page whether its own enhancement script ran.
        self.script(
            "return document.documentElement.dataset.js === 'on';",
            json!([]),
        )
        .await
        .as_bool()
        .unwrap_or(false)
    }

    /// Runs axe-core in the page; fails on serious or critical violations.
    pub async fn axe(&self, page: &str) {
        self.script(&axe_source(), json!([])).await;
        let violations = self
            .call(
                reqwest::Method::POST,
                "/execute/async",
                Some(json!({
                    "script": "const done = arguments[arguments.length - 1];\
                               axe.run(document).then(r => done(r.violations\
                                 .filter(v => v.impact === 'serious' || v.impact === 'critical')\
                                 .map(v => ({id: v.id, impact: v.impact, help: v.help,\
                                             nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}))),\
                                 e => done([{id: 'axe-error', help: String(e)}]));",
                    "args": [],
                })),
            )
            .await;
        assert_eq!(
            violations,
            json!([]),
            "{page}: serious or critical accessibility violations"
        );
    }

    /// Bytes the page weighs on a cold cache: for the document and each resource, what was
    /// transferred, or (when the browser had it cached) its encoded body size.
    pub async fn page_bytes(&self) -> u64 {
        self.script(
            "return performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))\
             .reduce((sum, e) => sum + Math.max(e.transferSize, e.encodedBodySize), 0);",
            json!([]),
        )
        .await
        .as_u64()
        .unwrap_or(0)
    }

    /// Ends the session (Chromium quits) and chromedriver.
    pub async fn close(mut self) {
        let url = format!("http://127.0.0.1:{}/session/{}", self.port, self.session);
        let _ = self.client.delete(&url).send().await;
        self.session.clear();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    /// A failed test drops the browser without `close`: quit Chromium through chromedriver
    /// (a blocking request, as Drop cannot await), then stop chromedriver.
    fn drop(&mut self) {
        if !self.session.is_empty()
            && let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port))
        {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = write!(
                stream,
                "DELETE /session/{} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                self.session
            );
            let mut answer = Vec::new();
            let _ = stream.read_to_end(&mut answer);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Requests the daemon answered with 400 or more on the UI's routes, from its own metrics
/// (the server-side half of "no failed request").
pub fn server_failures(t: &super::TestApp) -> Vec<String> {
    t.app()
        .metrics
        .render()
        .lines()
        .filter(|l| l.contains("http_requests_total{") && l.contains("listener=\"api\""))
        .filter(|l| {
            l.split("status=\"")
                .nth(1)
                .and_then(|s| s.split('"').next())
                .and_then(|s| s.parse::<u16>().ok())
                .is_some_and(|s| s >= 400)
        })
        .map(str::to_string)
        .collect()
}
