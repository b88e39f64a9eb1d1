//! The app: configuration and shared services every page request uses.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;

use crate::cookie::{Cookie, Cookies};
use crate::error::{Error, Result};
use crate::presence::{Presence, PresenceConfig};
use crate::pubsub::{LocalPubSub, PubSub};
use crate::security::SecurityHeaders;
use crate::serve::{Security, ServeConfig};
use crate::session::handle::{Registry, SessionConfig};
use crate::template::{DEFAULT_ERROR_TEMPLATE, DEFAULT_LAYOUT, Engine, Templates};
use crate::token::Keys;

/// The Datastar client the default layout loads: the pinned v1.0.2 release on its CDN.
pub const DEFAULT_CLIENT_URL: &str =
    "https://cdn.jsdelivr.net/gh/starfederation/datastar@1.0.2/bundles/datastar.js";

/// The environment variable [`App::serve`] reads its address from.
pub const ADDR_ENV: &str = "DSTAR_ADDR";

/// The environment variable a signing key is read from when none is configured.
pub const SECRET_KEY_ENV: &str = "DSTAR_SECRET_KEY";

/// How long a shutdown waits for the live sessions' tasks to end.
const SESSION_SHUTDOWN: Duration = Duration::from_secs(5);

/// Shared configuration and services: templates, signing keys, app state, PubSub and the live
/// session registry. Cheap to clone.
#[derive(Clone)]
pub struct App {
    inner: Arc<Inner>,
}

struct Inner {
    templates: Engine,
    keys: Keys,
    client_url: String,
    layout: String,
    error_template: String,
    state: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
    layout_values: Option<LayoutValues>,
    pubsub: Arc<dyn PubSub>,
    presence: Presence,
    sessions: Registry,
    csrf_ttl: Duration,
    serve: ServeConfig,
    security: Security,
    security_headers: SecurityHeaders,
    compress_streams: bool,
    /// The id of the element page bodies are rendered into, and it as a CSS selector.
    root: (String, String),
}

impl fmt::Debug for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("App")
            .field("client_url", &self.inner.client_url)
            .field("layout", &self.inner.layout)
            .finish_non_exhaustive()
    }
}

impl Default for App {
    /// An app with no templates but the built-in layout and, in debug builds, the
    /// development signing key ([`DEV_KEY_FILE`]). Release builds need a key: use
    /// [`App::builder`].
    fn default() -> Self {
        App::builder()
            .build()
            .expect("a default app needs `DSTAR_SECRET_KEY` in release builds")
    }
}

impl App {
    /// Starts configuring an app.
    pub fn builder() -> AppBuilder {
        AppBuilder {
            templates: Templates::new(),
            keys: None,
            client_url: DEFAULT_CLIENT_URL.to_owned(),
            layout: DEFAULT_LAYOUT.to_owned(),
            error_template: DEFAULT_ERROR_TEMPLATE.to_owned(),
            state: HashMap::new(),
            layout_values: None,
            pubsub: None,
            presence: PresenceConfig::default(),
            sessions: SessionConfig::default(),
            csrf_ttl: Duration::from_secs(12 * 3600),
            serve: ServeConfig::default(),
            security: Security::Plain,
            security_headers: SecurityHeaders::default(),
            short_key: None,
            compress_streams: false,
            root_id: crate::protocol::ROOT_ID.to_owned(),
        }
    }

    /// App state of type `T`.
    pub fn state<T: Send + Sync + 'static>(&self) -> Result<&T> {
        self.inner
            .state
            .get(&TypeId::of::<T>())
            .and_then(|shared| shared.downcast_ref())
            .ok_or_else(missing_state::<T>)
    }

    /// App state of type `T`, shared: what the [`AppState`] extractor hands a handler.
    pub fn shared_state<T: Send + Sync + 'static>(&self) -> Result<Arc<T>> {
        self.inner
            .state
            .get(&TypeId::of::<T>())
            .and_then(|shared| Arc::clone(shared).downcast().ok())
            .ok_or_else(missing_state::<T>)
    }

    /// The values the layout gets as `app` for a page requested with `parts` (see
    /// [`AppBuilder::layout_values`]).
    pub(crate) fn layout_values(&self, parts: &http::request::Parts) -> minijinja::Value {
        match &self.inner.layout_values {
            Some(values) => values(parts),
            None => minijinja::Value::from(std::collections::BTreeMap::<String, String>::new()),
        }
    }

    /// The cookies of a request with these `headers`, for the app's own axum handlers (pages
    /// get them from `Mount::cookies` and `Ctx::cookies`).
    pub fn cookies<'a>(&'a self, headers: &'a http::HeaderMap) -> Cookies<'a> {
        Cookies::new(headers, &self.inner.keys)
    }

    /// The `Set-Cookie` header value for `cookie`, signed or encrypted with the app's key as it
    /// asks, for the app's own axum handlers (a login route). Fails on a name that is not an
    /// HTTP token.
    pub fn cookie_header(&self, cookie: &Cookie) -> Result<http::HeaderValue> {
        cookie.to_header(&self.inner.keys).map_err(Error::internal)
    }

    /// The template engine.
    pub fn templates(&self) -> &Engine {
        &self.inner.templates
    }

    /// The signing keys.
    pub fn keys(&self) -> &Keys {
        &self.inner.keys
    }

    /// Checks the CSRF token a template action (`post("/api/items", {...})`) sent in the
    /// `x-dstar-token` header, for an app's own handler: `403` naming the problem when it is
    /// missing, forged or expired.
    pub fn verify_csrf(&self, headers: &http::HeaderMap) -> crate::error::Result<()> {
        let token = headers
            .get(crate::protocol::TOKEN_HEADER)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("");
        self.keys()
            .verify(token, crate::token::Purpose::Csrf)
            .map(drop)
            .map_err(|err| {
                crate::error::Error::forbidden(format!(
                    "request refused: {err} (the `{}` header must carry the token issued with the page)",
                    crate::protocol::TOKEN_HEADER
                ))
            })
    }

    /// The id of the element every page body is rendered into (`dstar-root` unless
    /// [`AppBuilder::root_id`] names another).
    pub fn root_id(&self) -> &str {
        &self.inner.root.0
    }

    /// [`root_id`](Self::root_id) as a CSS selector (`#dstar-root`): what re-renders patch.
    pub fn root_selector(&self) -> &str {
        &self.inner.root.1
    }

    /// The URL the layout loads the Datastar client from.
    pub fn client_url(&self) -> &str {
        &self.inner.client_url
    }

    /// The default layout template's name.
    pub fn layout(&self) -> &str {
        &self.inner.layout
    }

    /// The template failed page requests are answered with (see
    /// [`AppBuilder::error_template`]).
    pub fn error_template(&self) -> &str {
        &self.inner.error_template
    }

    /// Who is present on each topic (see [`crate::presence`]).
    pub fn presence(&self) -> &Presence {
        &self.inner.presence
    }

    /// The PubSub live sessions subscribe through.
    pub fn pubsub(&self) -> &Arc<dyn PubSub> {
        &self.inner.pubsub
    }

    /// The live session registry.
    pub fn sessions(&self) -> &Registry {
        &self.inner.sessions
    }

    /// Serves `router` on the address in `DSTAR_ADDR` (else `default_addr`), logs
    /// `listening on http://ADDR` (or `https://`) once bound, and runs until ctrl-c or
    /// `SIGTERM`; then ends the live sessions and lets the requests in flight finish, as
    /// [`serve_listener`](Self::serve_listener) does.
    ///
    /// This is the production server: HTTP/1.1 on hyper, with deadlines for request heads,
    /// idle keep-alive connections and stalled request bodies that never cut a live page's
    /// stream (configured with [`AppBuilder::serve_config`]); failed accepts (out of file
    /// descriptors) are reported and retried. The [`serve`](crate::serve) module says what
    /// each deadline covers, and what an app served with `axum::serve` instead loses and how
    /// to add back what it can.
    ///
    /// With the `tls` feature it serves TLS, with HTTP/2 for clients that offer it, when the
    /// builder was given `AppBuilder::tls` or else when `DSTAR_TLS_CERT` and `DSTAR_TLS_KEY`
    /// are set (see `serve::Tls::from_env`).
    ///
    /// # Errors
    ///
    /// When the address cannot be bound, or the TLS variables name a certificate or key that
    /// cannot be used (`InvalidInput`, with the reason).
    pub async fn serve(&self, router: axum::Router, default_addr: &str) -> std::io::Result<()> {
        let security = self.security_from_env()?;
        let addr = std::env::var(ADDR_ENV).unwrap_or_else(|_| default_addr.to_owned());
        let listener = tokio::net::TcpListener::bind(&addr).await?;
        crate::error::log(
            crate::error::Level::Info,
            &format!(
                "listening on {}://{}",
                security.scheme(),
                listener.local_addr()?
            ),
        );
        crate::serve::run(
            listener,
            router,
            &self.inner.serve,
            &security,
            crate::serve::signal(),
            self.sessions().shutdown(SESSION_SHUTDOWN),
        )
        .await;
        Ok(())
    }

    /// The builder's TLS, else the one `DSTAR_TLS_CERT` and `DSTAR_TLS_KEY` name.
    #[cfg(feature = "tls")]
    fn security_from_env(&self) -> std::io::Result<Security> {
        if let Security::Tls(_) = self.inner.security {
            return Ok(self.inner.security.clone());
        }
        match crate::serve::Tls::from_env() {
            Ok(Some(tls)) => Ok(Security::Tls(tls)),
            Ok(None) => Ok(Security::Plain),
            Err(err) => Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, err)),
        }
    }

    /// Plain HTTP: this build has no TLS (a set `DSTAR_TLS_CERT` is reported, not ignored
    /// silently).
    #[cfg(not(feature = "tls"))]
    fn security_from_env(&self) -> std::io::Result<Security> {
        if std::env::var_os("DSTAR_TLS_CERT").is_some() {
            crate::error::log(
                crate::error::Level::Error,
                "`DSTAR_TLS_CERT` is set, but dstar was built without its `tls` feature: serving plain HTTP",
            );
        }
        Ok(self.inner.security.clone())
    }

    /// Serves `router` on a listener bound elsewhere (an ephemeral port in a test, a socket
    /// handed over by the service manager) until `shutdown` completes. Then it stops
    /// accepting, closes idle connections, ends every live session (streams end with a retry
    /// hint, `terminate` runs), and waits for the requests in flight, at most
    /// [`ServeConfig::shutdown_timeout`], before it closes what is left and returns.
    ///
    /// ```no_run
    /// # async fn run(app: dstar_runtime::app::App, router: axum::Router) -> std::io::Result<()> {
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    /// let server = tokio::spawn(async move {
    ///     app.serve_listener(listener, router, async {
    ///         let _ = stopped.await;
    ///     })
    ///     .await
    /// });
    /// // ... talk to the server ...
    /// let _ = stop.send(());
    /// server.await?;
    /// # Ok(()) }
    /// ```
    pub async fn serve_listener(
        &self,
        listener: tokio::net::TcpListener,
        router: axum::Router,
        shutdown: impl Future<Output = ()>,
    ) {
        crate::serve::run(
            listener,
            router,
            &self.inner.serve,
            &self.inner.security,
            shutdown,
            self.sessions().shutdown(SESSION_SHUTDOWN),
        )
        .await;
    }

    /// Waits for ctrl-c or `SIGTERM`, then ends every live session (streams end with a retry
    /// hint so browsers reconnect to the next server; `terminate` runs). For apps served with
    /// `axum::serve`:
    /// `axum::serve(listener, router).with_graceful_shutdown(app.clone().shutdown_signal())`.
    /// [`App::serve`] does this itself.
    pub async fn shutdown_signal(self) {
        crate::serve::signal().await;
        self.sessions().shutdown(SESSION_SHUTDOWN).await;
    }

    /// The headers every page's HTML gets.
    pub fn security_headers(&self) -> &SecurityHeaders {
        &self.inner.security_headers
    }

    /// Whether live streams and event answers are compressed (see
    /// [`AppBuilder::compress_streams`]).
    pub fn compress_streams(&self) -> bool {
        self.inner.compress_streams
    }

    pub(crate) fn csrf_ttl(&self) -> Duration {
        self.inner.csrf_ttl
    }
}

/// Configures an [`App`].
#[must_use]
pub struct AppBuilder {
    templates: Templates,
    keys: Option<Keys>,
    client_url: String,
    layout: String,
    error_template: String,
    state: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
    layout_values: Option<LayoutValues>,
    pubsub: Option<Arc<dyn PubSub>>,
    presence: PresenceConfig,
    sessions: SessionConfig,
    csrf_ttl: Duration,
    serve: ServeConfig,
    security: Security,
    security_headers: SecurityHeaders,
    /// The length of a secret given to `secret_key` that is too short, refused by `build`.
    short_key: Option<usize>,
    compress_streams: bool,
    root_id: String,
}

impl fmt::Debug for AppBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppBuilder")
            .field("templates", &self.templates)
            .finish_non_exhaustive()
    }
}

impl AppBuilder {
    /// Where templates come from (see `dstar::templates!`).
    pub fn templates(mut self, templates: Templates) -> Self {
        self.templates = templates;
        self
    }

    /// The secret tokens are signed with, at least [`MIN_SECRET_LEN`] bytes (`build` refuses a
    /// shorter one). Without one, `DSTAR_SECRET_KEY` is read; without
    /// that, debug builds use a development key kept in a file under the Cargo target
    /// directory ([`DEV_KEY_FILE`]; stable across restarts) and release builds refuse to
    /// build.
    pub fn secret_key(mut self, secret: &[u8]) -> Self {
        self.keys = Some(Keys::new(secret));
        self.short_key = (secret.len() < MIN_SECRET_LEN).then_some(secret.len());
        self
    }

    /// The full key set, for rotation (`Keys::new(new).with_previous(old)`).
    pub fn keys(mut self, keys: Keys) -> Self {
        self.keys = Some(keys);
        self
    }

    /// Loads the Datastar client from `url` instead of the CDN (for example a copy the app
    /// serves itself).
    pub fn client_url(mut self, url: impl Into<String>) -> Self {
        self.client_url = url.into();
        self
    }

    /// The layout template every page is wrapped in, unless the page names its own. It gets
    /// `title`, `head` (the client script tag, to put in `<head>`), `body` (the page root),
    /// `flash` (the flash region, see `dstar::flash`), `nonce`, `dstar.prefix` and `app` (see
    /// [`layout_values`](Self::layout_values)).
    pub fn layout(mut self, template: impl Into<String>) -> Self {
        self.layout = template.into();
        self
    }

    /// The template a failed page request (a `GET` whose `mount` or render returned an error)
    /// is answered with, instead of [`dstar/error.html`](DEFAULT_ERROR_TEMPLATE) (which an
    /// app can also replace by providing a template of that name). It gets `status`,
    /// `reason`, `message` and `causes`, as the constant's docs say. When it fails to render,
    /// the answer is the error as plain text, with its status.
    pub fn error_template(mut self, template: impl Into<String>) -> Self {
        self.error_template = template.into();
        self
    }

    /// Adds app state that pages read with `state::<T>()` and the app's own axum handlers with
    /// the [`AppState<T>`] extractor. One value per type.
    pub fn state<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.state.insert(TypeId::of::<T>(), Arc::new(value));
        self
    }

    /// Values every layout render gets as `app`, made from the page's request: the signed-in
    /// user from a cookie, a site name, a feature flag. A layout writes
    /// `{% if app.user %}{{ app.user.name }}{% endif %}`; soft navigation renders the layout's
    /// title with the navigation request's values. Without this, `app` is an empty map.
    ///
    /// ```ignore
    /// App::builder().layout_values(|request: &http::request::Parts| {
    ///     serde_json::json!({ "user": current_user(&request.headers) })
    /// })
    /// ```
    pub fn layout_values<V: serde::Serialize>(
        mut self,
        values: impl Fn(&http::request::Parts) -> V + Send + Sync + 'static,
    ) -> Self {
        self.layout_values = Some(Arc::new(move |parts| {
            minijinja::Value::from_serialize(values(parts))
        }));
        self
    }

    /// Replaces the in-process PubSub (for example with a multi-node backend).
    pub fn pubsub(mut self, pubsub: Arc<dyn PubSub>) -> Self {
        self.pubsub = Some(pubsub);
        self
    }

    /// Presence settings (how long changes are gathered into one diff).
    pub fn presence(mut self, config: PresenceConfig) -> Self {
        self.presence = config;
        self
    }

    /// Live session settings: cap, deadlines, heartbeat.
    pub fn sessions(mut self, config: SessionConfig) -> Self {
        self.sessions = config;
        self
    }

    /// How long an event (CSRF) token of a stateless page stays valid. Default 12 hours.
    pub fn csrf_ttl(mut self, ttl: Duration) -> Self {
        self.csrf_ttl = ttl;
        self
    }

    /// How [`App::serve`] treats connections: the deadlines for request heads, idle
    /// connections and request bodies, and how long a shutdown waits.
    pub fn serve_config(mut self, config: ServeConfig) -> Self {
        self.serve = config;
        self
    }

    /// Serves TLS, with HTTP/2 for clients that offer it (ALPN `h2`, else `http/1.1`), from
    /// [`App::serve`] and [`App::serve_listener`]. Without it, `App::serve` reads
    /// `DSTAR_TLS_CERT` and `DSTAR_TLS_KEY`.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: crate::serve::Tls) -> Self {
        self.security = Security::Tls(tls);
        self
    }

    /// The security headers every page's HTML gets: `X-Content-Type-Options`,
    /// `Referrer-Policy`, `X-Frame-Options`, `Content-Security-Policy` and `Cache-Control`.
    /// The default is the safe set the [`security`](crate::security) module describes; set a
    /// field to `None` to leave that header out (for example when a proxy adds it).
    pub fn security_headers(mut self, headers: SecurityHeaders) -> Self {
        self.security_headers = headers;
        self
    }

    /// Compresses live streams and stateless event answers with `gzip` or `br`, whichever the
    /// request's `Accept-Encoding` prefers (gzip on a tie), and sends them as they are to
    /// clients that accept neither. Off by default.
    ///
    /// Each event (and heartbeat) is compressed and flushed on its own, so events arrive as
    /// soon as without compression. The trade is memory and CPU for bandwidth: a compressed
    /// stream holds its encoder for as long as it is open (measured: about 41 KB of heap for
    /// gzip and 55 KB for brotli beyond an uncompressed stream), and every event costs the
    /// time to compress it; in return a stream of re-rendered pages shrinks many times over
    /// (28x with gzip, 9x with brotli on a todo list). The [`compress`](crate::compress)
    /// module and BENCHMARKS.md have the figures.
    ///
    /// tower-http's `CompressionLayer` leaves `text/event-stream` alone; keep it for the app's
    /// other responses (HTML, assets) and let dstar compress its streams.
    pub fn compress_streams(mut self, on: bool) -> Self {
        self.compress_streams = on;
        self
    }

    /// The id of the element page bodies are rendered into, instead of `dstar-root`: for a
    /// layout or stylesheet that expects its own (`App::builder().root_id("app")` gives
    /// `<div id="app">`, and every re-render patches `#app`). An HTML id of ASCII letters,
    /// digits, `-` and `_`, starting with a letter; `build` refuses any other.
    ///
    /// ```
    /// use dstar_runtime::app::App;
    ///
    /// let key = b"a doc example's key, 32 bytes or more";
    /// let app = App::builder().secret_key(key).root_id("app").build()?;
    /// assert_eq!((app.root_id(), app.root_selector()), ("app", "#app"));
    /// let refused = App::builder().secret_key(key).root_id("my app").build();
    /// assert!(refused.unwrap_err().to_string().starts_with("root id `my app` refused"));
    /// # Ok::<(), dstar_runtime::app::ConfigError>(())
    /// ```
    pub fn root_id(mut self, id: impl Into<String>) -> Self {
        self.root_id = id.into();
        self
    }

    /// Builds the app. Fails in release builds when no signing key is configured, and on a
    /// root id that is not a plain HTML id.
    pub fn build(self) -> std::result::Result<App, ConfigError> {
        let id = &self.root_id;
        if !id.starts_with(|c: char| c.is_ascii_alphabetic())
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(ConfigError::RootId(self.root_id));
        }
        if let Some(len) = self.short_key {
            return Err(ConfigError::ShortSecretKey {
                from: "App::builder().secret_key(..)",
                len,
            });
        }
        let keys = match self.keys {
            Some(keys) => keys,
            None => match std::env::var(SECRET_KEY_ENV) {
                Ok(secret) if secret.len() >= MIN_SECRET_LEN => Keys::new(secret.as_bytes()),
                Ok(secret) if !secret.is_empty() => {
                    return Err(ConfigError::ShortSecretKey {
                        from: SECRET_KEY_ENV,
                        len: secret.len(),
                    });
                }
                _ if cfg!(debug_assertions) => dev_keys(),
                _ => return Err(ConfigError::MissingSecretKey),
            },
        };
        let pubsub = self
            .pubsub
            .unwrap_or_else(|| Arc::new(LocalPubSub::default()));
        Ok(App {
            inner: Arc::new(Inner {
                templates: self.templates.build(),
                keys,
                client_url: self.client_url,
                layout: self.layout,
                error_template: self.error_template,
                state: self.state,
                layout_values: self.layout_values,
                presence: Presence::new(self.presence, Arc::clone(&pubsub)),
                pubsub,
                sessions: Registry::new(self.sessions),
                csrf_ttl: self.csrf_ttl,
                serve: self.serve,
                security: self.security,
                security_headers: self.security_headers,
                compress_streams: self.compress_streams,
                root: (self.root_id.clone(), format!("#{}", self.root_id)),
            }),
        })
    }
}

/// The file a debug build keeps its signing key in, under the Cargo target directory.
pub const DEV_KEY_FILE: &str = "dstar-dev-key";

/// The signing key of a debug build without a configured one: kept in [`DEV_KEY_FILE`] in the
/// Cargo target directory the binary was built into, so `cargo run` again keeps every open
/// tab's tokens valid (the tab goes on, re-mounted in place, instead of freezing on a 401).
/// Found as the nearest directory above the executable holding Cargo's `CACHEDIR.TAG`. A
/// binary outside a target directory, or one that cannot use the file, gets a random key
/// (tokens then last as long as the process) and a warning saying why.
fn dev_keys() -> Keys {
    let target = std::env::current_exe().ok().and_then(|exe| {
        exe.ancestors()
            .skip(1)
            .find(|dir| dir.join("CACHEDIR.TAG").is_file())
            .map(std::path::Path::to_path_buf)
    });
    let Some(target) = target else {
        tracing::warn!(
            "no Cargo target directory above the executable: a random signing key is used, so open tabs reload after a restart (set `{SECRET_KEY_ENV}` to keep them)"
        );
        return Keys::random();
    };
    let path = target.join(DEV_KEY_FILE);
    Keys::dev_file(&path).unwrap_or_else(|err| {
        tracing::warn!(
            "cannot use the development key file {}: {err}; a random signing key is used",
            path.display()
        );
        Keys::random()
    })
}

/// The shortest signing secret accepted, in bytes: 256 bits, the size of HMAC-SHA256's output.
pub const MIN_SECRET_LEN: usize = 32;

/// The app's configuration is incomplete. Its `Debug` is its message too, so that
/// `.expect(..)` and a `main` returning `Result` print what to do.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A release build has no signing key.
    MissingSecretKey,
    /// The signing secret is shorter than [`MIN_SECRET_LEN`] bytes.
    ShortSecretKey {
        /// Where it came from: the builder or the environment variable.
        from: &'static str,
        /// Its length in bytes.
        len: usize,
    },
    /// The root id given to [`AppBuilder::root_id`] is not a plain HTML id.
    RootId(String),
}

/// How to make a key, for the messages.
const MAKE_A_KEY: &str = "make one with `openssl rand -hex 32` and keep it secret";

impl fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::MissingSecretKey => write!(
                f,
                "no signing key: set the environment variable `{SECRET_KEY_ENV}` to a secret of at least {MIN_SECRET_LEN} bytes ({MAKE_A_KEY}), or call `App::builder().secret_key(...)`; release builds do not make one up"
            ),
            ConfigError::RootId(id) => write!(
                f,
                "root id `{}` refused: use ASCII letters, digits, `-` and `_`, starting with a letter (it is written into the page and used as the `#id` selector of every re-render)",
                id.escape_debug()
            ),
            ConfigError::ShortSecretKey { from, len } => write!(
                f,
                "the signing secret from {from} is {len} bytes; at least {MIN_SECRET_LEN} are needed ({MAKE_A_KEY})"
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_secret_is_refused_saying_what_to_do() {
        let err = App::builder().secret_key(b"too short").build().unwrap_err();
        assert_eq!(
            err,
            ConfigError::ShortSecretKey {
                from: "App::builder().secret_key(..)",
                len: 9
            }
        );
        // `.expect(..)` prints the `Debug`: it must say what to do, not name a variant.
        let shown = format!("{err:?}");
        assert!(shown.contains("9 bytes; at least 32"), "{shown}");
        assert!(shown.contains("openssl rand -hex 32"), "{shown}");
        assert!(App::builder().secret_key(&[7; 32]).build().is_ok());
    }

    #[test]
    fn a_missing_key_names_the_variable_and_how_to_make_one() {
        let shown = format!("{:?}", ConfigError::MissingSecretKey);
        assert!(shown.contains("DSTAR_SECRET_KEY"), "{shown}");
        assert!(shown.contains("openssl rand -hex 32"), "{shown}");
        assert!(!shown.contains("MissingSecretKey"), "{shown}");
    }
}

/// What [`AppBuilder::layout_values`] keeps: the app's values for the layout, from a request.
type LayoutValues = Arc<dyn Fn(&http::request::Parts) -> minijinja::Value + Send + Sync>;

fn missing_state<T>() -> Error {
    Error::internal(format!(
        "no app state of type `{}`: add it with `App::builder().state(...)`",
        std::any::type_name::<T>()
    ))
}

/// Extracts app state registered with [`AppBuilder::state`] in the app's own axum handlers,
/// so state is registered once for pages and handlers alike. The router needs the [`App`] as
/// its state: `into_router` returns a router of any state type, so add the handlers and then
/// `.with_state(app)`.
///
/// ```ignore
/// async fn sign_in(AppState(users): AppState<Users>) -> &'static str {
///     // `users` is the `Arc<Users>` pages read with `state::<Users>()`.
///     "welcome"
/// }
///
/// let app = App::builder().state(Users::default()).build()?;
/// let router: axum::Router = dstar::router![Home]
///     .into_router(app.clone())
///     .route("/login", post(sign_in))
///     .with_state(app);
/// ```
///
/// A state never registered answers `500` naming the type and the fix, and logs it.
#[derive(Debug)]
pub struct AppState<T>(pub Arc<T>);

impl<T> std::ops::Deref for AppState<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<S, T> axum::extract::FromRequestParts<S> for AppState<T>
where
    App: FromRef<S>,
    S: Send + Sync,
    T: Send + Sync + 'static,
{
    type Rejection = Error;

    async fn from_request_parts(_parts: &mut http::request::Parts, state: &S) -> Result<Self> {
        <App as FromRef<S>>::from_ref(state)
            .shared_state()
            .map(AppState)
    }
}
