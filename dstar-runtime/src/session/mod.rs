//! Live sessions: one tokio task per browser tab that owns the page state.
//!
//! ```text
//!  GET /page ──► mount + render ──► spawn session task ──► HTML with tokens
//!                                         │
//!  POST /__dstar/stream ──attach──────────┤ (one stream per session; a new one replaces the old)
//!  POST /__dstar/event ───event──────────►│──► handler ──► patches ──► stream queue ──► SSE
//!  PubSub / SessionHandle ──message──────►│──► info    ──► patches ──┘
//! ```
//!
//! # Lifecycle
//!
//! - A session whose stream never connects is reaped after `connect_deadline`.
//! - When the stream drops, the session waits `reconnect_grace`; a reconnect within it resumes
//!   the same state, otherwise `terminate` runs and the session is removed.
//! - Every event sent on the stream has an `id`. The session keeps a bounded ring of recent
//!   events; a reconnect carrying `Last-Event-ID` gets exactly the events it missed, or a full
//!   re-render when the ring no longer has them.
//! - A reconnect to a session that is gone (expired, server restarted) gets `200` and an event
//!   that reloads the page: the Datastar client ignores most error statuses, which would leave
//!   the tab frozen.
//! - A panic in a handler ends that session only: its stream gets a reload instruction,
//!   `terminate` is skipped (the state may be half-updated), the slot is freed.
//! - A slow client cannot block its session: the stream queue is bounded, and when it overflows
//!   the queued patches are dropped and replaced by one full re-render.
//! - [`Registry::shutdown`] ends every stream with a retry hint and runs `terminate`.
//!
//! # Why the stream is a POST
//!
//! The Datastar client closes `GET` streams while a tab is hidden (and reopens them when it is
//! shown); a non-GET stream stays open, so state and PubSub messages keep flowing to background
//! tabs and nothing is replayed on every tab switch. The token travels in a header either way.
//!
//! # Memory
//!
//! An idle session is its page state plus: one slab slot, an `Arc`'d mailbox (a mutex-guarded
//! `VecDeque` that allocates nothing until a message arrives, and a `Notify`), the task and its
//! future. The event ring is empty until events are sent.
//!
//! # Files
//!
//! - `handle`: settings, the registry of running sessions, the mailbox, [`SessionHandle`].
//! - `queue`: the stream queue between the task and the stream's body.
//! - `page`: type-erased live pages (a session holds any page of its group).
//! - `task`: the session task's loop: events, messages, streams, navigation, replay ring.
//! - `stream`: the live stream's response body.
//! - `endpoints`: the page GET, the stream and event endpoints.
//! - `tokens`: the tokens a live page carries.
//!
//! `handle`, `queue` and `page` are the model other modules use (`app`, `page`, `pubsub`
//! import only them); the rest serves HTTP.

pub(crate) mod endpoints;
pub(crate) mod handle;
pub(crate) mod page;
pub(crate) mod queue;
pub(crate) mod stream;
pub(crate) mod task;
pub(crate) mod tokens;

pub use handle::{Registry, SessionConfig, SessionHandle};
