//! Live reload, in debug builds only: open tabs follow template edits.
//!
//! Debug builds already re-read template files when they change. The debug client script in
//! every page asks [`DEV_PATH`](crate::protocol::DEV_PATH) once a second, while its tab is
//! visible, which version of the templates the server renders ([`Engine::generation`]). The
//! first such request after a change tells every live session to render its page again and
//! send it whole, so live tabs show the edit in place with their state kept; a stateless page
//! (or a live one whose session is gone) reloads. A template that no longer renders is
//! reported in the log and the tab's console, and the tab keeps what it shows. The layout is
//! outside a live page's root: an edit to it shows on the next load.
//!
//! A poll rather than a stream: a stream per tab would hold one of the browser's six
//! connections per site (see the session module's many-tabs rules), a poll holds none
//! between requests.
//!
//! [`Engine::generation`]: crate::template::Engine::generation

use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::app::App;
use crate::protocol::DEV_PATH;

/// Adds the live-reload endpoint, in debug builds.
pub(crate) fn register<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    app: &App,
) -> Router<S> {
    if !cfg!(debug_assertions) {
        return router;
    }
    let app = app.clone();
    router.route(DEV_PATH, get(move || generation(app.clone())))
}

async fn generation(app: App) -> Response {
    if app.templates().take_change().is_some() {
        tracing::info!("a template changed: open live pages render again");
        app.sessions().rerender_all();
    }
    let mut response = app.templates().generation().to_string().into_response();
    crate::security::no_store(response.headers_mut());
    response
}
