//! The metrics dstar records, through the [`metrics`](https://docs.rs/metrics) facade: install
//! any exporter (Prometheus, StatsD, ...) as the global recorder and these appear; without one
//! they cost a relaxed atomic load each.
//!
//! | name | kind | labels | what |
//! | --- | --- | --- | --- |
//! | [`LIVE_SESSIONS`] | gauge | | running live session tasks |
//! | [`OPEN_STREAMS`] | gauge | | live streams attached to a session |
//! | [`EVENTS`] | counter | `page`, `outcome` (`ok`, `refused`, `failed`) | events that reached a page's handler |
//! | [`EVENT_SECONDS`] | histogram | `page` | time from an event reaching its page to its patches queued |
//! | [`STREAM_OVERFLOWS`] | counter | | stream queues that overflowed: one full render replaced the backlog |
//! | [`RESYNCS`] | counter | | full renders asked for by a multi-node PubSub (`SessionHandle::resync`): the session may have missed messages |
//! | [`RECONNECTS`] | counter | | streams that came back with `Last-Event-ID` |
//! | [`REMOUNTS`] | counter | | sessions re-mounted in place for a tab whose session was gone |
//! | [`REPLAYS`] | counter | `kind` (`exact`, `full`) | reconnects that missed events: replayed from the ring, or one full render |
//! | [`PUBSUB_PUBLISHED`] | counter | `kind` (`message`, `broadcast`) | PubSub publishes |
//! | [`PUBSUB_DELIVERED`] | counter | `kind` | sessions those publishes reached |

use std::time::Duration;

use http::StatusCode;

/// Gauge: running live session tasks.
pub const LIVE_SESSIONS: &str = "dstar_live_sessions";
/// Gauge: live streams attached to a session.
pub const OPEN_STREAMS: &str = "dstar_open_streams";
/// Counter: events that reached a page's handler, by `page` and `outcome`.
pub const EVENTS: &str = "dstar_events_total";
/// Histogram (seconds): an event's handling, by `page`.
pub const EVENT_SECONDS: &str = "dstar_event_duration_seconds";
/// Counter: stream queue overflows (each replaced by one full render).
pub const STREAM_OVERFLOWS: &str = "dstar_stream_overflows_total";
/// Counter: full renders asked for with `SessionHandle::resync` (a multi-node PubSub lost
/// messages the session may have needed).
pub const RESYNCS: &str = "dstar_resyncs_total";
/// Counter: streams that reconnected with `Last-Event-ID`.
pub const RECONNECTS: &str = "dstar_reconnects_total";
/// Counter: sessions re-mounted in place (a tab's stream came back for a session that was
/// gone).
pub const REMOUNTS: &str = "dstar_remounts_total";
/// Counter: reconnects that had missed events, by `kind` (`exact` replay or `full` render).
pub const REPLAYS: &str = "dstar_replays_total";
/// Counter: PubSub publishes, by `kind` (`message` or `broadcast`).
pub const PUBSUB_PUBLISHED: &str = "dstar_pubsub_published_total";
/// Counter: sessions reached by PubSub publishes, by `kind`.
pub const PUBSUB_DELIVERED: &str = "dstar_pubsub_delivered_total";

/// Records an event handled by `page`: `status` is `None` when it succeeded.
pub(crate) fn event_handled(page: &'static str, status: Option<StatusCode>, took: Duration) {
    let outcome = match status {
        // A redirect is an answer the handler chose.
        None => "ok",
        Some(status) if status.is_redirection() => "ok",
        Some(status) if status.is_server_error() => "failed",
        Some(_) => "refused",
    };
    metrics::counter!(EVENTS, "page" => page, "outcome" => outcome).increment(1);
    metrics::histogram!(EVENT_SECONDS, "page" => page).record(took.as_secs_f64());
}

pub(crate) fn live_sessions(delta: f64) {
    metrics::gauge!(LIVE_SESSIONS).increment(delta);
}

pub(crate) fn open_streams(delta: f64) {
    metrics::gauge!(OPEN_STREAMS).increment(delta);
}

pub(crate) fn stream_overflow() {
    metrics::counter!(STREAM_OVERFLOWS).increment(1);
}

pub(crate) fn resync() {
    metrics::counter!(RESYNCS).increment(1);
}

pub(crate) fn reconnect() {
    metrics::counter!(RECONNECTS).increment(1);
}

pub(crate) fn remount() {
    metrics::counter!(REMOUNTS).increment(1);
}

/// A reconnect that had missed events: `exact` when the ring still held them.
pub(crate) fn replay(exact: bool) {
    let kind = if exact { "exact" } else { "full" };
    metrics::counter!(REPLAYS, "kind" => kind).increment(1);
}

/// A PubSub publish (`broadcast`: pre-encoded events) that reached `delivered` sessions.
pub(crate) fn published(broadcast: bool, delivered: usize) {
    let kind = if broadcast { "broadcast" } else { "message" };
    metrics::counter!(PUBSUB_PUBLISHED, "kind" => kind).increment(1);
    metrics::counter!(PUBSUB_DELIVERED, "kind" => kind).increment(delivered as u64);
}
