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
//! - A tab that pauses its stream (`POST /__dstar/pause`: hidden for `hidden_pause`, or over
//!   the browser's `browser_streams` limit) gets it ended cleanly, and the session waits
//!   `hidden_grace` instead. The tab resumes with `Last-Event-ID` like any reconnect; past the
//!   grace its stream finds the session gone and re-mounts it in place (below).
//!
//! # Many tabs
//!
//! The stream is run by dstar's live client script (`protocol/live.js`, inline in every live
//! page), not by a Datastar `@post`: Datastar's own fetch can close a hidden tab's stream,
//! but not after a delay, not only when no event is in flight, and not to keep several tabs
//! under the browser's connection limit. The script reads the SSE events itself and hands
//! each to Datastar as Datastar's fetch does (a `datastar-fetch` event on `document`), keeps
//! the last whole event's id for `Last-Event-ID`, retries a failed stream with the same
//! doubling back-off (reset by each open), and does not retry one the server ended. A pause
//! is asked of the server rather than done by closing the connection: the server cannot tell
//! a closed connection from a closed tab, and ending the response itself gives the
//! connection back to the browser's pool at once. The script waits for the pause's answer
//! before it opens the stream again, so a pause never lands on the stream that replaced it.
//!
//! Over HTTP/1.1 (the navigation entry's `nextHopProtocol`), tabs announce an open stream on
//! a `BroadcastChannel` with when they were last focused, and withdraw it when they pause or
//! go; every tab sorts the same list, so the ones focused least recently that are over the
//! limit pause themselves, with no leader to elect. A tab opening its stream asks everyone to
//! announce again, which also forgets tabs that crashed without a word.
//! - Every event sent on the stream has an `id`. The session keeps a bounded ring of recent
//!   events; a reconnect carrying `Last-Event-ID` gets exactly the events it missed, or a full
//!   re-render when the ring no longer has them.
//! - A stream for a session that is gone is re-mounted in place (the table below).
//! - A panic in a handler ends that session only: its stream gets a reload instruction,
//!   `terminate` is skipped (the state may be half-updated), the slot is freed.
//! - A slow client cannot block its session: the stream queue is bounded, and when it overflows
//!   the queued patches are dropped and replaced by one full re-render.
//! - [`Registry::shutdown`] ends every stream with a retry hint and runs `terminate`.
//!
//! # A tab whose session is gone
//!
//! | case | stream request (`POST /__dstar/stream`) | event request (`POST /__dstar/event`) |
//! | --- | --- | --- |
//! | forged or tampered token | `401` | `403` |
//! | authentic token, session gone (server restarted, reaped, evicted), token expired or signed by the previous key | re-mounted in place; a guarded reload when it cannot be | `503` with `Retry-After: 1`: not applied, safe to send again |
//! | session ended on purpose ([`Ctx::end_session`](crate::page::Ctx::end_session): a logout, a finished flow) | its last instruction (a navigation, or for `Stop` nothing), and the stream ends; never re-mounted | `410` with a message |
//! | authentic but expired token, session running | the session ends, the stream is cut after a short `retry:` hint, and the client's retry re-mounts it (so `mount` authorizes the tab again) | `403` (the page's event token is renewed through a signal long before it expires) |
//!
//! **Re-mounting in place.** The page is the stream request's `Referer` (the URL the tab is
//! on), taken only when its authority is the request's `Host` and its path a same-origin
//! path, and looked up in the route table as soft navigation does. `mount` runs again with
//! this request's headers and cookies, so authorization holds, and an `Error::redirect` from
//! it is followed (the stream answers with a navigation and starts no session). The new
//! session takes back the **same id** ([`Registry`] keeps such sessions in a map beside its
//! slab). Its stream's first batch is fresh tokens and one full render, with event ids going
//! on above the tab's `Last-Event-ID`. No `Referer` (a `Referrer-Policy` of `no-referrer`), a
//! foreign one, a page that is not live, a failing `mount` or a full registry: the stream
//! answers with a reload, guarded against loops (each further reload within a minute waits
//! twice as long; past three it stops and shows a message asking the person to reload).
//!
//! **Why the same id**, not a new one handed over in fresh token signals: the Datastar v1.0.2
//! client builds an action's headers once, when the action starts, and every retry of that
//! fetch (after a network failure; each `200` open resets the retry count) sends those same
//! headers again, only adding `Last-Event-ID`. So after a re-mount, every later reconnect of
//! the tab still carries the original stream token. Under a new id each of them would find
//! nothing, re-mount again and lose the state (leaving the previous copy to be reaped); under
//! the same id a reconnect resumes the re-mounted session with an exact replay. The page's
//! script nonce is derived from the id too, so scripts the re-mounted session sends still
//! match the page's Content-Security-Policy. Events read the token signal at each click, so
//! both the page's original token and the fresh one reach the session. (One gap: a tab loaded
//! before a key rotation holds a nonce derived with the previous key, so under the opt-in
//! strict Content-Security-Policy the scripts of its re-mounted session, a fresh navigation
//! token or a redirect, are blocked until it reloads; patches and signals still apply.)
//!
//! **Events during a re-mount.** An event for a session that is not running was not applied,
//! and neither was one still queued when a session ended: both get `503` and
//! `Retry-After: 1`, as does an event refused because the session's mailbox is full. A `503`
//! from the event endpoint always means "not applied; send it again". A live page's `event()`
//! action does: it retries a failed request a bounded number of times
//! ([`EVENT_RETRIES`](crate::protocol::EVENT_RETRIES), about 15 s in all, with the client's
//! doubling back-off), and after the last one the client reports the failure in the console.
//! Each click carries a random click id that the retries resend unchanged, and the `outcomes`
//! log answers a click the session already handled with its first answer (a retry that
//! arrives while it is still being handled gets `503`), so a click is applied once, never
//! twice, even when its handler failed half-way or its answer was lost.
//!
//! **Ended on purpose.** When a handler calls `Ctx::end_session`, the session is remembered
//! as ended (with the instruction it left its tab) before it goes, its stream gets that
//! instruction and ends normally (the client does not retry a stream that ends normally),
//! and `terminate` runs. The memory is bounded (an hour, 4,096 sessions; the oldest go
//! first): a tab that comes back later is treated as any tab whose session is gone, and the
//! re-mount's `mount` authorizes it again from the request's cookies, which after a logout
//! redirects or refuses it. The memory is a courtesy, `mount` the guard. (A mark inside the
//! tokens could not work: the tab's tokens were signed before the session ended.)
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
//! - `outcomes`: the answers of recent clicks, so an event sent again is applied once.
//! - `queue`: the stream queue between the task and the stream's body.
//! - `page`: type-erased live pages (a session holds any page of its group).
//! - `task`: the session task's loop: events, messages, streams, navigation, replay ring.
//! - `stream`: the live stream's response body.
//! - `endpoints`: the page GET, the stream and event endpoints.
//! - `tokens`: the tokens a live page carries.
//!
//! `handle`, `outcomes`, `queue` and `page` are the model other modules use (`app`, `page`, `pubsub`
//! import only them); the rest serves HTTP.

pub(crate) mod endpoints;
pub(crate) mod handle;
pub(crate) mod outcomes;
pub(crate) mod page;
pub(crate) mod queue;
pub(crate) mod stream;
pub(crate) mod task;
pub(crate) mod tokens;

pub use handle::{Registry, SessionConfig, SessionHandle, Snapshot};
