//! Live sessions (work in progress).

use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use tokio::sync::mpsc;

use crate::app::App;
use crate::page::{Message, Page};
use crate::router::Entry;

/// Live session settings.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Most sessions at once; over it, live page loads answer 503.
    pub max_sessions: usize,
    /// How long a session waits for its stream to connect before it is reaped.
    pub connect_deadline: Duration,
    /// How long a session waits for a dropped stream to reconnect before it terminates.
    pub reconnect_grace: Duration,
    /// How often an idle stream gets a heartbeat comment.
    pub heartbeat: Duration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            max_sessions: 100_000,
            connect_deadline: Duration::from_secs(30),
            reconnect_grace: Duration::from_secs(30),
            heartbeat: Duration::from_secs(15),
        }
    }
}

/// The registry of running sessions.
#[derive(Debug)]
pub struct Registry {
    config: SessionConfig,
}

impl Registry {
    pub(crate) fn new(config: SessionConfig) -> Self {
        Registry { config }
    }

    /// The settings sessions run with.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }
}

pub(crate) enum Command {
    Message(Message),
}

/// A handle that sends messages to one running session.
#[derive(Clone)]
pub struct SessionHandle {
    id: u128,
    tx: mpsc::Sender<Command>,
}

impl std::fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionHandle").field("id", &format_args!("{:032x}", self.id)).finish()
    }
}

impl SessionHandle {
    /// The session's id.
    pub fn id(&self) -> u128 {
        self.id
    }

    /// Sends a message to the session's `info`. Returns `false` if the session is gone or its
    /// queue is full.
    pub fn send<T: std::any::Any + Send + Sync>(&self, payload: T) -> bool {
        self.send_message(Message::new(payload))
    }

    pub(crate) fn send_message(&self, message: Message) -> bool {
        self.tx.try_send(Command::Message(message)).is_ok()
    }

    /// Whether the session has ended.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// The type-erased entry points of a live page.
#[derive(Debug, Clone, Copy)]
pub struct LiveEntry {}

impl LiveEntry {
    pub(crate) fn of<P: Page>() -> Self {
        LiveEntry {}
    }
}

pub(crate) fn register(router: Router<()>, _app: &App, _table: &'static [Entry]) -> Router<()> {
    router
}

pub(crate) async fn get<P: Page>(_app: App, _req: Request) -> Response {
    (StatusCode::NOT_IMPLEMENTED, "live pages are not implemented yet").into_response()
}
