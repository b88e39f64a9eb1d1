//! The hand-written axum apps dstar is measured against: what an app author would write
//! without dstar, with a tokio `mpsc` channel per client feeding an SSE response.
//!
//! They use dstar's SSE encoder and `Sse` response type so that both sides put the same bytes
//! on the wire; everything between the request and those bytes is hand-written.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use dstar::response::Sse;
use dstar::sse::{Mode, PatchElements, PatchSignals};
use dstar::token::{Keys, Purpose};
use tokio::sync::mpsc;

use crate::pages::{CountIn, CountOut, counter_html};

/// The heartbeat both dstar and the baselines use (dstar's default).
pub const HEARTBEAT: Duration = Duration::from_secs(15);

/// How many encoded batches a baseline client's channel holds (dstar's default stream queue).
pub const CHANNEL: usize = 64;

/// The header a baseline client names itself with.
pub const CLIENT_HEADER: &str = "x-client";

#[derive(Default)]
struct Clients {
    next: u64,
    clients: HashMap<u64, Client>,
}

struct Client {
    count: u64,
    events: Option<mpsc::Sender<Bytes>>,
}

/// The shared state of the baseline routes.
#[derive(Clone, Default)]
pub struct Baseline {
    clients: Arc<Mutex<Clients>>,
    /// Senders of the bare SSE endpoint, kept so its streams never end.
    bare: Arc<Mutex<Vec<mpsc::Sender<Bytes>>>>,
    keys: Option<Arc<Keys>>,
}

impl std::fmt::Debug for Baseline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Baseline").finish_non_exhaustive()
    }
}

impl Baseline {
    /// Baseline routes; `keys` enables `/raw/count-csrf`, which checks a CSRF token as dstar does.
    pub fn new(keys: Option<Keys>) -> Self {
        Baseline {
            keys: keys.map(Arc::new),
            ..Baseline::default()
        }
    }

    /// The routes:
    ///
    /// - `GET /sse`: a bare SSE stream that never ends.
    /// - `GET /raw/page`: registers a client, answers its id.
    /// - `POST /raw/stream` (`x-client`): the client's SSE stream.
    /// - `POST /raw/event` (`x-client`): adds one to the client's count and sends it the patch.
    /// - `POST /raw/publish?n=K`: encodes one patch and queues it on every client's stream;
    ///   answers how many and how long that took (µs).
    /// - `POST /raw/count`: parses `{"count": n}` and answers a one-shot signals patch `n + 1`.
    /// - `POST /raw/count-csrf`: the same after checking a CSRF token header.
    pub fn router(self) -> Router {
        Router::new()
            .route("/sse", get(bare_stream))
            .route("/raw/page", get(register))
            .route("/raw/stream", post(stream))
            .route("/raw/event", post(event))
            .route("/raw/publish", post(publish))
            .route("/raw/count", post(count))
            .route("/raw/count-csrf", post(count_csrf))
            .with_state(self)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Clients> {
        self.clients.lock().unwrap_or_else(|e| e.into_inner())
    }
}

async fn bare_stream(State(state): State<Baseline>) -> Sse {
    let (sender, receiver) = mpsc::channel(CHANNEL);
    state
        .bare
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(sender);
    Sse::stream(receiver, Some(HEARTBEAT))
}

async fn register(State(state): State<Baseline>) -> String {
    let mut clients = state.lock();
    clients.next += 1;
    let id = clients.next;
    clients.clients.insert(
        id,
        Client {
            count: 0,
            events: None,
        },
    );
    id.to_string()
}

fn client_id(headers: &HeaderMap) -> Option<u64> {
    headers.get(CLIENT_HEADER)?.to_str().ok()?.parse().ok()
}

async fn stream(State(state): State<Baseline>, request: Request) -> Response {
    let Some(id) = client_id(request.headers()) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let (sender, receiver) = mpsc::channel(CHANNEL);
    match state.lock().clients.get_mut(&id) {
        Some(client) => client.events = Some(sender),
        None => return StatusCode::NOT_FOUND.into_response(),
    }
    Sse::stream(receiver, Some(HEARTBEAT)).into_response()
}

fn patch(html: &str) -> Bytes {
    let mut out = Vec::with_capacity(html.len() + 80);
    PatchElements::new(html)
        .selector("#dstar-root")
        .mode(Mode::Inner)
        .write_to(&mut out);
    Bytes::from(out)
}

async fn event(State(state): State<Baseline>, request: Request) -> StatusCode {
    let (parts, body) = request.into_parts();
    let Some(id) = client_id(&parts.headers) else {
        return StatusCode::BAD_REQUEST;
    };
    if axum::body::to_bytes(body, 1024 * 1024).await.is_err() {
        return StatusCode::BAD_REQUEST;
    }
    let (count, events) = {
        let mut clients = state.lock();
        let Some(client) = clients.clients.get_mut(&id) else {
            return StatusCode::NOT_FOUND;
        };
        client.count += 1;
        (client.count, client.events.clone())
    };
    if let Some(events) = events {
        let _ = events.try_send(patch(&counter_html(count)));
    }
    StatusCode::NO_CONTENT
}

#[derive(serde::Deserialize)]
struct PublishQuery {
    n: u64,
}

async fn publish(State(state): State<Baseline>, Query(query): Query<PublishQuery>) -> String {
    let start = std::time::Instant::now();
    let bytes = patch(&counter_html(query.n));
    let clients = state.lock();
    let mut sent = 0;
    for client in clients.clients.values() {
        if let Some(events) = &client.events
            && events.try_send(bytes.clone()).is_ok()
        {
            sent += 1;
        }
    }
    format!("{sent} {:.1}", start.elapsed().as_secs_f64() * 1e6)
}

fn count_answer(body: &[u8]) -> Response {
    let signals: CountIn = match serde_json::from_slice(body) {
        Ok(signals) => signals,
        Err(err) => return (StatusCode::BAD_REQUEST, err.to_string()).into_response(),
    };
    let json = match serde_json::to_string(&CountOut {
        count: signals.count + 1,
    }) {
        Ok(json) => json,
        Err(err) => return (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()).into_response(),
    };
    let mut out = Vec::with_capacity(json.len() + 48);
    PatchSignals::raw(&json).write_to(&mut out);
    Sse::once(out).into_response()
}

async fn count(body: Bytes) -> Response {
    count_answer(&body)
}

async fn count_csrf(State(state): State<Baseline>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let token = parts
        .headers
        .get("x-dstar-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let verified = state
        .keys
        .as_ref()
        .is_some_and(|keys| keys.verify(token, Purpose::Csrf).is_ok());
    if !verified {
        return StatusCode::FORBIDDEN.into_response();
    }
    match axum::body::to_bytes(body, 1024 * 1024).await {
        Ok(body) => count_answer(&body),
        Err(err) => (StatusCode::BAD_REQUEST, err.to_string()).into_response(),
    }
}
