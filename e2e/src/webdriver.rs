//! A small, blocking WebDriver client for chromedriver and Debian's Chromium.
//!
//! [`Browser`] owns one chromedriver process; each [`Tab`] is one WebDriver session, i.e. its
//! own Chromium process with its own fresh profile. Actions panic with a descriptive message
//! (the caller's line, the page URL, the console errors and a failure screenshot), which keeps
//! test code free of `unwrap`s; the `try_` variants return [`Error`] instead.

use std::fmt;
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::paths::screenshot_dir;
use crate::{base64, http};

/// How long chromedriver may take to start listening.
const DRIVER_START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one chromedriver command may take (session creation starts a browser).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// How long actions wait for their element, and page loads for Datastar, by default.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Gap between two looks while waiting for something in the page.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// The flags every Chromium gets (a fresh `--user-data-dir` is added per session).
const CHROMIUM_ARGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-quic",
    "--no-first-run",
    "--disable-sync",
    "--window-size=1280,800",
];

/// W3C WebDriver's key for an element reference in JSON.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Runs in every new document before its own scripts: remembers that Datastar has applied
/// its plugins to the page (it fires `datastar-ready` once per document).
const READY_HOOK: &str = "document.addEventListener('datastar-ready', \
     () => { window.__dstarE2eReady = true; }, { once: true });";

/// True once the page is usable: either it loads no Datastar, or Datastar said it is ready.
const READY_CHECK: &str = "return document.readyState !== 'loading' && \
     (!document.querySelector('script[src*=\"datastar\"]') || window.__dstarE2eReady === true);";

/// WebDriver key codes, to put in the text given to [`Tab::type_into`].
pub mod keys {
    /// The Enter key.
    pub const ENTER: &str = "\u{E007}";
    /// The Tab key.
    pub const TAB: &str = "\u{E004}";
    /// The Backspace key.
    pub const BACKSPACE: &str = "\u{E003}";
    /// The Escape key.
    pub const ESCAPE: &str = "\u{E00C}";
}

/// A failed browser command: a WebDriver error code (such as `no such element`) or one of our
/// own (`setup`, `io`, `protocol`, `timeout`), and a message.
#[derive(Debug, Clone)]
pub struct Error {
    code: String,
    message: String,
}

impl Error {
    fn new(code: &str, message: impl Into<String>) -> Self {
        Error {
            code: code.to_owned(),
            message: message.into(),
        }
    }

    /// The WebDriver error code, or `setup`, `io`, `protocol` or `timeout`.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// What went wrong.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Errors that may go away by themselves while a page is still changing.
    fn is_transient(&self) -> bool {
        matches!(
            self.code.as_str(),
            "no such element"
                | "stale element reference"
                | "element click intercepted"
                | "element not interactable"
                | "javascript error"
                | "no such execution context"
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Error {}

/// One entry of the browser's console log, as chromedriver reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// `SEVERE`, `WARNING`, `INFO` or `DEBUG`.
    pub level: String,
    /// Where it came from: `console-api`, `javascript` (uncaught errors), `network`, ...
    pub source: String,
    /// The text, prefixed by Chromium with the script location.
    pub message: String,
}

impl LogEntry {
    /// Console errors, uncaught exceptions and failed loads are `SEVERE`.
    pub fn is_error(&self) -> bool {
        self.level == "SEVERE"
    }

    /// Chromium asks every site for `/favicon.ico` on its own and logs a 404 for it; that is
    /// never the page's fault.
    fn is_favicon_miss(&self) -> bool {
        self.source == "network" && self.message.contains("/favicon.ico - ")
    }
}

impl fmt::Display for LogEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{} {}] {}", self.level, self.source, self.message)
    }
}

/// The chromedriver process, shared by the browser handle and every tab.
#[derive(Debug)]
struct Driver {
    addr: SocketAddr,
    child: Mutex<Child>,
    chromium: String,
    sessions: AtomicUsize,
}

impl Driver {
    fn start() -> Result<Driver, Error> {
        let chromium = binary("DSTAR_E2E_CHROMIUM", "/usr/bin/chromium", "chromium")?;
        let chromedriver = binary(
            "DSTAR_E2E_CHROMEDRIVER",
            "/usr/bin/chromedriver",
            "chromedriver",
        )?;

        let mut child = Command::new(&chromedriver)
            .arg("--port=0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| Error::new("setup", format!("cannot run {chromedriver}: {e}")))?;

        // chromedriver picks a free port and says which on stdout; keep draining stdout
        // afterwards so that it never blocks on a full pipe.
        let stdout = child.stdout.take().expect("stdout is piped");
        let (port_tx, port_rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("chromedriver-stdout".into())
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if let Some(port) = announced_port(&line) {
                        let _ = port_tx.send(port);
                    }
                }
            })
            .map_err(|e| Error::new("setup", e.to_string()))?;

        let port = match port_rx.recv_timeout(DRIVER_START_TIMEOUT) {
            Ok(port) => port,
            Err(_) => {
                let status = child.try_wait().ok().flatten();
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::new(
                    "setup",
                    format!(
                        "{chromedriver} did not report its port within {DRIVER_START_TIMEOUT:?} \
                         (exit status: {status:?})"
                    ),
                ));
            }
        };

        let driver = Driver {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            child: Mutex::new(child),
            chromium,
            sessions: AtomicUsize::new(0),
        };
        let deadline = Instant::now() + DRIVER_START_TIMEOUT;
        loop {
            match driver.call("GET", "/status", None) {
                Ok(status) if status["ready"] == true => return Ok(driver),
                Ok(_) | Err(_) if Instant::now() < deadline => std::thread::sleep(POLL_INTERVAL),
                Ok(status) => {
                    return Err(Error::new(
                        "setup",
                        format!("chromedriver never became ready: {status}"),
                    ));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends a command and returns the `value` of its answer.
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, Error> {
        self.call_with_timeout(method, path, body, COMMAND_TIMEOUT)
    }

    fn call_with_timeout(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        timeout: Duration,
    ) -> Result<Value, Error> {
        let body = body.map(Value::to_string);
        let response = http::request(
            self.addr,
            method,
            path,
            body.as_deref().map(str::as_bytes),
            timeout,
        )
        .map_err(|e| Error::new("io", format!("{method} {path}: {e}")))?;
        let mut answer: Value = serde_json::from_slice(&response.body).map_err(|e| {
            Error::new(
                "protocol",
                format!(
                    "{method} {path}: HTTP {} with a body that is not JSON ({e}): {}",
                    response.status,
                    String::from_utf8_lossy(&response.body)
                ),
            )
        })?;
        let value = answer["value"].take();
        if response.status == 200 && value.get("error").is_none() {
            return Ok(value);
        }
        let code = value["error"].as_str().unwrap_or("unknown error");
        let message = value["message"].as_str().unwrap_or_default();
        // chromedriver appends a long native stack trace to some messages.
        let message = message.split("\n  (Session info").next().unwrap_or(message);
        Err(Error::new(code, message))
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Ask politely first (chromedriver then closes any browser it still runs), then make
        // sure the process is gone.
        let _ = self.call_with_timeout("GET", "/shutdown", None, Duration::from_secs(5));
        let mut child = match self.child.lock() {
            Ok(child) => child,
            Err(poisoned) => poisoned.into_inner(),
        };
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(POLL_INTERVAL);
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// The port in chromedriver's "ChromeDriver was started successfully on port 12345." line.
fn announced_port(line: &str) -> Option<u16> {
    let (_, rest) = line.split_once("started successfully on port ")?;
    rest.trim_end_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .ok()
}

/// The binary named by `env`, else `default` when it exists, else `name` from `PATH`.
fn binary(env: &str, default: &str, name: &str) -> Result<String, Error> {
    if let Some(path) = std::env::var_os(env) {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path.display().to_string());
        }
        return Err(Error::new(
            "setup",
            format!("{env} is set to {}, which does not exist", path.display()),
        ));
    }
    if Path::new(default).is_file() {
        return Ok(default.to_owned());
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(name).is_file()))
        .unwrap_or(false);
    if on_path {
        return Ok(name.to_owned());
    }
    Err(Error::new(
        "setup",
        format!(
            "{name} is not installed (looked for {default}, then on PATH; {env} overrides). \
             Install it with e2e/install.sh"
        ),
    ))
}

/// A running chromedriver, from which browser sessions ([`Tab`]s) are started.
///
/// Cheap to clone. The chromedriver process ends when the last `Browser` and the last
/// [`Tab`] are dropped.
#[derive(Debug, Clone)]
pub struct Browser {
    driver: Arc<Driver>,
}

impl Browser {
    /// Starts chromedriver on a free localhost port and waits until it is ready.
    ///
    /// # Panics
    ///
    /// When chromedriver or Chromium is missing, or chromedriver does not come up within
    /// 20 seconds.
    #[track_caller]
    pub fn start() -> Browser {
        match Browser::try_start() {
            Ok(browser) => browser,
            Err(e) => panic!("dstar-e2e: cannot start the browser: {e}"),
        }
    }

    /// [`Browser::start`] without the panic.
    pub fn try_start() -> Result<Browser, Error> {
        Ok(Browser {
            driver: Arc::new(Driver::start()?),
        })
    }

    /// Starts a new browser session: its own Chromium with a fresh, empty profile, so two
    /// sessions share no cookies or storage (two users).
    #[track_caller]
    pub fn new_session(&self) -> Tab {
        match self.try_new_session() {
            Ok(tab) => tab,
            Err(e) => panic!("dstar-e2e: cannot start a browser session: {e}"),
        }
    }

    /// [`Browser::new_session`] with extra Chromium command-line switches (for example
    /// `--ignore-certificate-errors` for a server with a self-signed certificate).
    #[track_caller]
    pub fn new_session_with_args(&self, extra: &[&str]) -> Tab {
        match self.try_new_session_with_args(extra) {
            Ok(tab) => tab,
            Err(e) => panic!("dstar-e2e: cannot start a browser session: {e}"),
        }
    }

    /// [`Browser::new_session`] without the panic.
    pub fn try_new_session(&self) -> Result<Tab, Error> {
        self.try_new_session_with_args(&[])
    }

    /// [`Browser::new_session_with_args`] without the panic.
    pub fn try_new_session_with_args(&self, extra: &[&str]) -> Result<Tab, Error> {
        let n = self.driver.sessions.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let profile = std::env::temp_dir().join(format!(
            "dstar-e2e-profile-{}-{n}-{nanos:08x}",
            std::process::id()
        ));
        std::fs::create_dir_all(&profile).map_err(|e| {
            Error::new(
                "setup",
                format!("cannot create profile dir {}: {e}", profile.display()),
            )
        })?;

        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|&arg| arg.to_owned()).collect();
        args.extend(extra.iter().map(|&arg| arg.to_owned()));
        args.push(format!("--user-data-dir={}", profile.display()));
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "pageLoadStrategy": "normal",
                    "timeouts": { "implicit": 0, "pageLoad": 30_000, "script": 30_000 },
                    "goog:loggingPrefs": { "browser": "ALL" },
                    "goog:chromeOptions": { "binary": self.driver.chromium, "args": args },
                }
            }
        });
        let created = match self.driver.call("POST", "/session", Some(&capabilities)) {
            Ok(created) => created,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&profile);
                return Err(e);
            }
        };
        let Some(session) = created["sessionId"].as_str() else {
            let _ = std::fs::remove_dir_all(&profile);
            return Err(Error::new("protocol", format!("no sessionId in {created}")));
        };

        let tab = Tab {
            driver: Arc::clone(&self.driver),
            session: session.to_owned(),
            profile,
            logs: Mutex::new(Vec::new()),
            timeout: DEFAULT_TIMEOUT,
        };
        tab.command(
            "POST",
            "/goog/cdp/execute",
            Some(json!({
                "cmd": "Page.addScriptToEvaluateOnNewDocument",
                "params": { "source": READY_HOOK },
            })),
        )?;
        Ok(tab)
    }
}

/// What [`Tab::new_window`] opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A tab in the current window: the tabs before it go to the background (hidden).
    Tab,
    /// A window of its own: visible beside the others.
    Window,
}

/// One browser session: a Chromium with its own profile, showing one page at a time.
///
/// Dropping it ends the session (the browser quits) and deletes its profile.
#[derive(Debug)]
pub struct Tab {
    driver: Arc<Driver>,
    session: String,
    profile: PathBuf,
    logs: Mutex<Vec<LogEntry>>,
    timeout: Duration,
}

impl Drop for Tab {
    fn drop(&mut self) {
        let _ = self.driver.call_with_timeout(
            "DELETE",
            &format!("/session/{}", self.session),
            None,
            Duration::from_secs(20),
        );
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

impl Tab {
    /// How long actions wait for their element to appear and be clickable, and navigations
    /// for Datastar to start (10 seconds unless changed).
    pub fn with_timeout(mut self, timeout: Duration) -> Tab {
        self.timeout = timeout;
        self
    }

    fn command(&self, method: &str, suffix: &str, body: Option<Value>) -> Result<Value, Error> {
        self.driver.call(
            method,
            &format!("/session/{}{suffix}", self.session),
            body.as_ref(),
        )
    }

    /// Panics with what the test needs to understand the failure, from the caller's line.
    #[track_caller]
    fn fail(&self, what: String) -> ! {
        let mut report = what;
        if let Ok(url) = self.try_url() {
            report.push_str(&format!("\n  page: {url}"));
        }
        if let Ok(errors) = self.try_console_errors()
            && !errors.is_empty()
        {
            report.push_str("\n  console errors:");
            for entry in errors {
                report.push_str(&format!("\n    {entry}"));
            }
        }
        let shot = screenshot_dir().join(format!(
            "failure-{}-{}.png",
            std::process::id(),
            &self.session[..self.session.len().min(8)]
        ));
        if self.try_screenshot(&shot).is_ok() {
            report.push_str(&format!("\n  screenshot: {}", shot.display()));
        }
        panic!("{report}");
    }

    /// Polls `probe` until it yields a value or `timeout` passes. Transient errors count as
    /// "not yet"; the last one is returned on timeout.
    fn poll<T>(
        &self,
        timeout: Duration,
        mut probe: impl FnMut() -> Result<Option<T>, Error>,
    ) -> Result<T, Error> {
        let deadline = Instant::now() + timeout;
        let mut last_error = None;
        loop {
            match probe() {
                Ok(Some(value)) => return Ok(value),
                Ok(None) => {}
                Err(e) if e.is_transient() => last_error = Some(e),
                Err(e) => return Err(e),
            }
            if Instant::now() >= deadline {
                return Err(last_error.unwrap_or_else(|| {
                    Error::new("timeout", format!("gave up after {timeout:?}"))
                }));
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    // ----- navigation -----

    /// Loads `url` and waits for the page to load and, if it uses Datastar, for Datastar to
    /// have applied itself to the page.
    #[track_caller]
    pub fn goto(&self, url: &str) {
        if let Err(e) = self.try_goto(url) {
            self.fail(format!("goto {url}: {e}"));
        }
    }

    /// [`Tab::goto`] without the panic.
    pub fn try_goto(&self, url: &str) -> Result<(), Error> {
        self.command("POST", "/url", Some(json!({ "url": url })))?;
        self.wait_ready()
    }

    /// Goes one step back in history, then waits as [`Tab::goto`] does.
    #[track_caller]
    pub fn back(&self) {
        if let Err(e) = self
            .command("POST", "/back", Some(json!({})))
            .and_then(|_| self.wait_ready())
        {
            self.fail(format!("back: {e}"));
        }
    }

    /// Goes one step forward in history, then waits as [`Tab::goto`] does.
    #[track_caller]
    pub fn forward(&self) {
        if let Err(e) = self
            .command("POST", "/forward", Some(json!({})))
            .and_then(|_| self.wait_ready())
        {
            self.fail(format!("forward: {e}"));
        }
    }

    /// Reloads the page, then waits as [`Tab::goto`] does.
    #[track_caller]
    pub fn reload(&self) {
        if let Err(e) = self
            .command("POST", "/refresh", Some(json!({})))
            .and_then(|_| self.wait_ready())
        {
            self.fail(format!("reload: {e}"));
        }
    }

    fn wait_ready(&self) -> Result<(), Error> {
        self.poll(self.timeout, || {
            Ok((self.try_eval(READY_CHECK)? == true).then_some(()))
        })
        .map_err(|e| {
            Error::new(
                e.code(),
                format!("the page did not become ready (Datastar never signalled ready?): {e}"),
            )
        })
    }

    // ----- tabs and windows of this browser session -----

    /// Opens a new tab (`Kind::Tab`, sharing a window with the others, so only the front one is
    /// visible) or window (`Kind::Window`, visible beside the others) in this browser session,
    /// which shares the profile, cookies and connection pool with the first, switches to it and
    /// returns its handle. Commands go to the current one.
    #[track_caller]
    pub fn new_window(&self, kind: Kind) -> String {
        let kind = match kind {
            Kind::Tab => "tab",
            Kind::Window => "window",
        };
        let opened = self
            .command("POST", "/window/new", Some(json!({ "type": kind })))
            .unwrap_or_else(|e| self.fail(format!("new {kind}: {e}")));
        let Some(handle) = opened["handle"].as_str() else {
            self.fail(format!("new {kind}: no handle in {opened}"));
        };
        let handle = handle.to_owned();
        self.switch_to(&handle);
        // The readiness hook is installed per tab: the new one needs it too.
        if let Err(e) = self.command(
            "POST",
            "/goog/cdp/execute",
            Some(json!({
                "cmd": "Page.addScriptToEvaluateOnNewDocument",
                "params": { "source": READY_HOOK },
            })),
        ) {
            self.fail(format!("new {kind}: installing the readiness hook: {e}"));
        }
        handle
    }

    /// Makes the tab or window `handle` the current one and brings it to the front (a tab
    /// becomes the visible one of its window).
    #[track_caller]
    pub fn switch_to(&self, handle: &str) {
        if let Err(e) = self.command("POST", "/window", Some(json!({ "handle": handle }))) {
            self.fail(format!("switch to {handle}: {e}"));
        }
    }

    /// The handle of the current tab or window.
    #[track_caller]
    pub fn window_handle(&self) -> String {
        match self.command("GET", "/window", None) {
            Ok(Value::String(handle)) => handle,
            Ok(other) => self.fail(format!("window handle: not a string: {other}")),
            Err(e) => self.fail(format!("window handle: {e}")),
        }
    }

    /// The current URL.
    #[track_caller]
    pub fn url(&self) -> String {
        match self.try_url() {
            Ok(url) => url,
            Err(e) => self.fail(format!("url: {e}")),
        }
    }

    /// [`Tab::url`] without the panic.
    pub fn try_url(&self) -> Result<String, Error> {
        let url = self.command("GET", "/url", None)?;
        url.as_str()
            .map(str::to_owned)
            .ok_or_else(|| Error::new("protocol", format!("URL is not a string: {url}")))
    }

    /// The document title.
    #[track_caller]
    pub fn title(&self) -> String {
        match self.command("GET", "/title", None) {
            Ok(Value::String(title)) => title,
            Ok(other) => self.fail(format!("title: not a string: {other}")),
            Err(e) => self.fail(format!("title: {e}")),
        }
    }

    /// Waits until the URL is `expected`, or ends with it (so a path like `/about` works).
    #[track_caller]
    pub fn wait_for_url(&self, expected: &str, timeout: Duration) {
        let mut last = String::new();
        let waited = self.poll(timeout, || {
            last = self.try_url()?;
            Ok((last == expected || last.ends_with(expected)).then_some(()))
        });
        if let Err(e) = waited {
            self.fail(format!(
                "waited {timeout:?} for the URL to be {expected:?}; it is {last:?} ({e})"
            ));
        }
    }

    // ----- elements -----

    fn find(&self, css: &str) -> Result<String, Error> {
        let found = self.command(
            "POST",
            "/element",
            Some(json!({ "using": "css selector", "value": css })),
        )?;
        found[ELEMENT_KEY]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| Error::new("protocol", format!("no element reference in {found}")))
    }

    /// Finds `css` and runs `action` on it, retrying while the element is missing, stale,
    /// covered or not interactable, up to the tab's timeout.
    fn on_element(
        &self,
        css: &str,
        action: impl Fn(&str) -> Result<Value, Error>,
    ) -> Result<(), Error> {
        self.poll(self.timeout, || {
            let element = self.find(css)?;
            action(&element).map(|_| Some(()))
        })
    }

    /// Clicks the element matching `css` the way a user would (scrolled into view, must not
    /// be covered), waiting for it to exist and be clickable.
    #[track_caller]
    pub fn click(&self, css: &str) {
        if let Err(e) = self.try_click(css) {
            self.fail(format!("click `{css}`: {e}"));
        }
    }

    /// [`Tab::click`] without the panic.
    pub fn try_click(&self, css: &str) -> Result<(), Error> {
        self.on_element(css, |element| {
            self.command(
                "POST",
                &format!("/element/{element}/click"),
                Some(json!({})),
            )
        })
    }

    /// Types `text` into the element matching `css` (focusing it first), key by key, so that
    /// input events fire as they do for a person. Append [`keys::ENTER`] to press Enter.
    #[track_caller]
    pub fn type_into(&self, css: &str, text: &str) {
        let typed = self.on_element(css, |element| {
            self.command(
                "POST",
                &format!("/element/{element}/value"),
                Some(json!({ "text": text })),
            )
        });
        if let Err(e) = typed {
            self.fail(format!("type {text:?} into `{css}`: {e}"));
        }
    }

    /// Empties the input or textarea matching `css`.
    #[track_caller]
    pub fn clear(&self, css: &str) {
        let cleared = self.on_element(css, |element| {
            self.command(
                "POST",
                &format!("/element/{element}/clear"),
                Some(json!({})),
            )
        });
        if let Err(e) = cleared {
            self.fail(format!("clear `{css}`: {e}"));
        }
    }

    /// The rendered text (`innerText`) of the first element matching `css`, or `None` when
    /// there is no such element.
    pub fn try_text(&self, css: &str) -> Result<Option<String>, Error> {
        let text = self.try_eval_with(
            "const el = document.querySelector(arguments[0]); return el ? el.innerText : null;",
            &[json!(css)],
        )?;
        Ok(text.as_str().map(str::to_owned))
    }

    /// The rendered text of the first element matching `css`, now.
    ///
    /// # Panics
    ///
    /// When no element matches.
    #[track_caller]
    pub fn text(&self, css: &str) -> String {
        match self.try_text(css) {
            Ok(Some(text)) => text,
            Ok(None) => self.fail(format!("text of `{css}`: no element matches")),
            Err(e) => self.fail(format!("text of `{css}`: {e}")),
        }
    }

    /// Waits until the text of `css` equals `expected` (both trimmed).
    #[track_caller]
    pub fn wait_for_text(&self, css: &str, expected: &str, timeout: Duration) {
        self.wait_text(css, timeout, "to read", expected, |text| {
            text.trim() == expected.trim()
        });
    }

    /// Waits until the text of `css` contains `needle`.
    #[track_caller]
    pub fn wait_for_text_contains(&self, css: &str, needle: &str, timeout: Duration) {
        self.wait_text(css, timeout, "to contain", needle, |text| {
            text.contains(needle)
        });
    }

    #[track_caller]
    fn wait_text(
        &self,
        css: &str,
        timeout: Duration,
        relation: &str,
        wanted: &str,
        matches: impl Fn(&str) -> bool,
    ) {
        let mut last = None;
        let waited = self.poll(timeout, || {
            last = self.try_text(css)?;
            Ok(last.as_deref().is_some_and(&matches).then_some(()))
        });
        if let Err(e) = waited {
            let seen = match &last {
                Some(text) => format!("it reads {text:?}"),
                None => "no element matches".to_owned(),
            };
            self.fail(format!(
                "waited {timeout:?} for `{css}` {relation} {wanted:?}; {seen} ({e})"
            ));
        }
    }

    /// Waits until an element matches `css`.
    #[track_caller]
    pub fn wait_for_element(&self, css: &str, timeout: Duration) {
        if let Err(e) = self.poll(timeout, || Ok((self.try_count(css)? > 0).then_some(()))) {
            self.fail(format!("waited {timeout:?} for `{css}` to appear: {e}"));
        }
    }

    /// Waits until no element matches `css`.
    #[track_caller]
    pub fn wait_for_absent(&self, css: &str, timeout: Duration) {
        if let Err(e) = self.poll(timeout, || Ok((self.try_count(css)? == 0).then_some(()))) {
            self.fail(format!("waited {timeout:?} for `{css}` to go away: {e}"));
        }
    }

    /// How many elements match `css`.
    #[track_caller]
    pub fn count(&self, css: &str) -> usize {
        match self.try_count(css) {
            Ok(n) => n,
            Err(e) => self.fail(format!("count `{css}`: {e}")),
        }
    }

    fn try_count(&self, css: &str) -> Result<usize, Error> {
        let n = self.try_eval_with(
            "return document.querySelectorAll(arguments[0]).length;",
            &[json!(css)],
        )?;
        n.as_u64()
            .map(|n| n as usize)
            .ok_or_else(|| Error::new("protocol", format!("not a count: {n}")))
    }

    // ----- script -----

    /// Runs `js` as the body of a function in the page and returns what it returns (use
    /// `return`; a returned promise is awaited).
    ///
    /// ```no_run
    /// # fn f(tab: &dstar_e2e::Tab) {
    /// let title = tab.eval("return document.title");
    /// # }
    /// ```
    #[track_caller]
    pub fn eval(&self, js: &str) -> Value {
        match self.try_eval(js) {
            Ok(value) => value,
            Err(e) => self.fail(format!("eval {js:?}: {e}")),
        }
    }

    /// [`Tab::eval`] without the panic.
    pub fn try_eval(&self, js: &str) -> Result<Value, Error> {
        self.try_eval_with(js, &[])
    }

    /// [`Tab::try_eval`] with arguments, available to the script as `arguments[i]`.
    pub fn try_eval_with(&self, js: &str, args: &[Value]) -> Result<Value, Error> {
        self.command(
            "POST",
            "/execute/sync",
            Some(json!({ "script": js, "args": args })),
        )
    }

    /// Waits until `js` (a function body, as for [`Tab::eval`]) returns something truthy, and
    /// returns that.
    #[track_caller]
    pub fn wait_until(&self, js: &str, timeout: Duration) -> Value {
        let waited = self.poll(timeout, || {
            let value = self.try_eval(js)?;
            Ok(truthy(&value).then_some(value))
        });
        match waited {
            Ok(value) => value,
            Err(e) => self.fail(format!("waited {timeout:?} for {js:?} to hold: {e}")),
        }
    }

    // ----- artifacts -----

    /// Saves a PNG of the viewport to `path`, creating its directory. See
    /// [`crate::screenshot_dir`].
    #[track_caller]
    pub fn screenshot(&self, path: impl AsRef<Path>) {
        let path = path.as_ref();
        if let Err(e) = self.try_screenshot(path) {
            self.fail(format!("screenshot to {}: {e}", path.display()));
        }
    }

    /// [`Tab::screenshot`] without the panic.
    pub fn try_screenshot(&self, path: &Path) -> Result<(), Error> {
        let encoded = self.command("GET", "/screenshot", None)?;
        let png = encoded
            .as_str()
            .and_then(base64::decode)
            .ok_or_else(|| Error::new("protocol", "the screenshot is not base64"))?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::new("io", e.to_string()))?;
        }
        std::fs::write(path, png).map_err(|e| Error::new("io", format!("{}: {e}", path.display())))
    }

    /// Every console entry of this session so far (all pages, oldest first).
    #[track_caller]
    pub fn console_logs(&self) -> Vec<LogEntry> {
        match self.try_console_logs() {
            Ok(logs) => logs,
            Err(e) => panic!("dstar-e2e: reading the console log: {e}"),
        }
    }

    /// [`Tab::console_logs`] without the panic.
    pub fn try_console_logs(&self) -> Result<Vec<LogEntry>, Error> {
        // chromedriver hands out each entry once; keep them all here.
        let fresh = self.command("POST", "/se/log", Some(json!({ "type": "browser" })))?;
        let mut logs = match self.logs.lock() {
            Ok(logs) => logs,
            Err(poisoned) => poisoned.into_inner(),
        };
        for entry in fresh.as_array().into_iter().flatten() {
            let field = |name: &str| entry[name].as_str().unwrap_or_default().to_owned();
            logs.push(LogEntry {
                level: field("level"),
                source: field("source"),
                message: field("message"),
            });
        }
        Ok(logs.clone())
    }

    /// The console errors of this session so far: `console.error` calls, uncaught exceptions
    /// and unhandled rejections, failed resource loads (including 4xx/5xx answers). The
    /// browser's own request for a missing `/favicon.ico` is left out.
    #[track_caller]
    pub fn console_errors(&self) -> Vec<LogEntry> {
        match self.try_console_errors() {
            Ok(errors) => errors,
            Err(e) => panic!("dstar-e2e: reading the console log: {e}"),
        }
    }

    /// [`Tab::console_errors`] without the panic.
    pub fn try_console_errors(&self) -> Result<Vec<LogEntry>, Error> {
        let mut logs = self.try_console_logs()?;
        logs.retain(|entry| entry.is_error() && !entry.is_favicon_miss());
        Ok(logs)
    }

    /// Panics, listing them, if the browser logged any console error so far.
    #[track_caller]
    pub fn assert_no_console_errors(&self) {
        let errors = self.console_errors();
        if !errors.is_empty() {
            let list: Vec<String> = errors.iter().map(|e| format!("\n    {e}")).collect();
            panic!("the browser logged console errors:{}", list.concat());
        }
    }
}

/// JavaScript truthiness of a JSON value.
fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|n| n != 0.0 && !n.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_announced_port() {
        assert_eq!(
            announced_port("ChromeDriver was started successfully on port 44019."),
            Some(44019)
        );
        assert_eq!(announced_port("Only local connections are allowed."), None);
    }

    #[test]
    fn favicon_misses_are_not_errors_of_the_page() {
        let entry = |message: &str| LogEntry {
            level: "SEVERE".into(),
            source: "network".into(),
            message: message.into(),
        };
        assert!(
            entry("http://127.0.0.1:1/favicon.ico - Failed to load resource: 404")
                .is_favicon_miss()
        );
        assert!(
            !entry("http://127.0.0.1:1/app.js - Failed to load resource: 404").is_favicon_miss()
        );
    }

    #[test]
    fn truthiness() {
        assert!(!truthy(&json!(null)));
        assert!(!truthy(&json!(0)));
        assert!(!truthy(&json!("")));
        assert!(truthy(&json!("x")));
        assert!(truthy(&json!([])));
    }
}
