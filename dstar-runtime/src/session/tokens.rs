//! The tokens a live page carries: an event (CSRF) token and a stream token as signals, and a
//! navigation token kept by the navigation client script. All are bound to the session id.

use std::time::Duration;

use crate::app::App;
use crate::protocol::{STREAM_SIGNAL, TOKEN_SIGNAL};
use crate::token::Purpose;

/// How long a stream token is valid: a tab's stream may reconnect for that long.
const STREAM_TOKEN_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// The token signals of session `id`, as the JSON object the root's `data-signals` holds.
pub(crate) fn token_signals(app: &App, id: u128) -> String {
    token_signals_with(app, id, serde_json::Map::new())
}

/// The token signals of session `id` added to the page's own initial signals (`signals`,
/// from `Mount::signal`), as one JSON object.
pub(crate) fn token_signals_with(
    app: &App,
    id: u128,
    mut signals: serde_json::Map<String, serde_json::Value>,
) -> String {
    let ttl = app.sessions().config().token_ttl;
    signals.insert(
        TOKEN_SIGNAL.to_owned(),
        app.keys().sign(Purpose::Csrf, id, ttl).into(),
    );
    signals.insert(
        STREAM_SIGNAL.to_owned(),
        app.keys()
            .sign(Purpose::Stream, id, STREAM_TOKEN_TTL)
            .into(),
    );
    serde_json::Value::Object(signals).to_string()
}

/// A navigation token for session `id`.
pub(crate) fn nav_token(app: &App, id: u128) -> String {
    app.keys()
        .sign(Purpose::Navigation, id, app.sessions().config().token_ttl)
}
