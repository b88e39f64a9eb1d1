//! The app: configuration and shared services every page request uses.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::pubsub::{LocalPubSub, PubSub};
use crate::security::SecurityHeaders;
use crate::serve::ServeConfig;
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
    state: HashMap<TypeId, Box<dyn Any + Send + Sync>>,
    pubsub: Arc<dyn PubSub>,
    sessions: Registry,
    csrf_ttl: Duration,
    serve: ServeConfig,
    security_headers: SecurityHeaders,
    compress_streams: bool,
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
    /// An app with no templates but the built-in layout and, in debug builds, a random
    /// signing key. Release builds need a key: use [`App::builder`].
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
            pubsub: None,
            sessions: SessionConfig::default(),
            csrf_ttl: Duration::from_secs(12 * 3600),
            serve: ServeConfig::default(),
            security_headers: SecurityHeaders::default(),
            compress_streams: false,
        }
    }

    /// App state of type `T`.
    pub fn state<T: Send + Sync + 'static>(&self) -> Result<&T> {
        self.inner
            .state
            .get(&TypeId::of::<T>())
            .and_then(|boxed| boxed.downcast_ref())
            .ok_or_else(|| {
                Error::internal(format!(
                    "no app state of type `{}`: add it with `App::builder().state(...)`",
                    std::any::type_name::<T>()
                ))
            })
    }

    /// The template engine.
    pub fn templates(&self) -> &Engine {
        &self.inner.templates
    }

    /// The signing keys.
    pub fn keys(&self) -> &Keys {
        &self.inner.keys
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

    /// The PubSub live sessions subscribe through.
    pub fn pubsub(&self) -> &Arc<dyn PubSub> {
        &self.inner.pubsub
    }

    /// The live session registry.
    pub fn sessions(&self) -> &Registry {
        &self.inner.sessions
    }

    /// Serves `router` on the address in `DSTAR_ADDR` (else `default_addr`), prints
    /// `listening on http://ADDR` once bound, and runs until ctrl-c or `SIGTERM`; then ends the
    /// live sessions and lets the requests in flight finish, as
    /// [`serve_listener`](Self::serve_listener) does.
    ///
    /// This is the production server: HTTP/1.1 on hyper, with deadlines for request heads,
    /// idle keep-alive connections and stalled request bodies that never cut a live page's
    /// stream (configured with [`AppBuilder::serve_config`]); failed accepts (out of file
    /// descriptors) are reported and retried. The [`serve`](crate::serve) module says what
    /// each deadline covers, and what an app served with `axum::serve` instead loses and how
    /// to add back what it can.
    ///
    /// # Errors
    ///
    /// When the address cannot be bound.
    pub async fn serve(&self, router: axum::Router, default_addr: &str) -> std::io::Result<()> {
        let addr = std::env::var(ADDR_ENV).unwrap_or_else(|_| default_addr.to_owned());
        let listener = tokio::net::TcpListener::bind(&addr).await?;
        crate::error::log(
            crate::error::Level::Info,
            &format!("listening on http://{}", listener.local_addr()?),
        );
        self.serve_listener(listener, router, crate::serve::signal())
            .await;
        Ok(())
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
    state: HashMap<TypeId, Box<dyn Any + Send + Sync>>,
    pubsub: Option<Arc<dyn PubSub>>,
    sessions: SessionConfig,
    csrf_ttl: Duration,
    serve: ServeConfig,
    security_headers: SecurityHeaders,
    compress_streams: bool,
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

    /// The secret tokens are signed with. Without one, `DSTAR_SECRET_KEY` is read; without
    /// that, debug builds use a random key and release builds refuse to build.
    pub fn secret_key(mut self, secret: &[u8]) -> Self {
        self.keys = Some(Keys::new(secret));
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
    /// `title`, `head` (the client script tag, to put in `<head>`) and `body` (the page root).
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

    /// Adds app state that pages read with `state::<T>()`. One value per type.
    pub fn state<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.state.insert(TypeId::of::<T>(), Box::new(value));
        self
    }

    /// Replaces the in-process PubSub (for example with a multi-node backend).
    pub fn pubsub(mut self, pubsub: Arc<dyn PubSub>) -> Self {
        self.pubsub = Some(pubsub);
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

    /// Builds the app. Fails in release builds when no signing key is configured.
    pub fn build(self) -> std::result::Result<App, ConfigError> {
        let keys = match self.keys {
            Some(keys) => keys,
            None => match std::env::var(SECRET_KEY_ENV) {
                Ok(secret) if !secret.is_empty() => Keys::new(secret.as_bytes()),
                _ if cfg!(debug_assertions) => Keys::random(),
                _ => return Err(ConfigError::MissingSecretKey),
            },
        };
        Ok(App {
            inner: Arc::new(Inner {
                templates: self.templates.build(),
                keys,
                client_url: self.client_url,
                layout: self.layout,
                error_template: self.error_template,
                state: self.state,
                pubsub: self
                    .pubsub
                    .unwrap_or_else(|| Arc::new(LocalPubSub::default())),
                sessions: Registry::new(self.sessions),
                csrf_ttl: self.csrf_ttl,
                serve: self.serve,
                security_headers: self.security_headers,
                compress_streams: self.compress_streams,
            }),
        })
    }
}

/// The app's configuration is incomplete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// A release build has no signing key.
    MissingSecretKey,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::MissingSecretKey => write!(
                f,
                "no signing key: set `{SECRET_KEY_ENV}` or call `App::builder().secret_key(...)` (release builds do not make one up)"
            ),
        }
    }
}

impl std::error::Error for ConfigError {}
