//! The one error type pages return.
//!
//! An [`Error`] carries the HTTP status it answers with and a message for a person. Pages use it
//! to refuse a request (`Error::forbidden`), send the browser elsewhere (`Error::redirect`) or
//! report a bug (`Error::internal`); the runtime uses it for bad input (unknown events, signals
//! of the wrong shape). Messages of 500 errors are logged with their causes, never shown to the
//! browser.
//!
//! # `?` on any error
//!
//! Handlers and `mount` can use `?` on any `std::error::Error + Send + Sync + 'static`: the
//! error becomes a 500 whose message is the error's `Display` and whose [`source`](Error::source)
//! is the error itself, so the log shows the whole chain. Errors the runtime knows are recognised
//! by type, not by text: a [`SignalsError`] keeps its status (400, 413 or 422) and message, and a
//! template error's message says which template and line failed.
//!
//! That conversion is a blanket `impl<E: std::error::Error> From<E> for Error`, and Rust does not
//! allow it next to `impl std::error::Error for Error` (the blanket impl would then overlap with
//! `impl<T> From<T> for T`). So, as `anyhow::Error` does, `Error` itself does not implement
//! `std::error::Error`. The chain is still there:
//!
//! - [`Error::source`] and [`Error::chain`] walk it;
//! - `Error` derefs to a `dyn std::error::Error + Send + Sync` (`&*err`), for code that takes
//!   one;
//! - it converts into `Box<dyn std::error::Error + Send + Sync>` (and without `Send + Sync`), so
//!   `?` works in a `fn main() -> Result<(), Box<dyn std::error::Error>>`.
//!
//! To get at the error `?` converted, downcast its source:
//! `err.source().and_then(|e| e.downcast_ref::<std::io::Error>())`. (A `downcast_ref` on the
//! `Error` itself goes through `Deref` to dstar's own error and never finds it.)
//!
//! [`SignalsError`]: crate::signals::SignalsError

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;
use std::ops::Deref;

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

use crate::signals::SignalsError;

/// A result whose error is a dstar [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error that can be the source of another and cross threads.
type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// What went wrong handling a page request, and the status it answers with.
///
/// `?` turns any `std::error::Error + Send + Sync + 'static` into one (see the
/// [module docs](self) for how, and why `Error` does not implement `std::error::Error` itself).
pub struct Error {
    // Boxed: errors are rare, and a one-pointer error keeps every `Result<T>` small.
    inner: Box<Inner>,
}

/// The error proper, which does implement `std::error::Error`, so it can be lent out as one.
#[derive(Debug)]
struct Inner {
    status: StatusCode,
    message: Cow<'static, str>,
    location: Option<String>,
    source: Option<BoxError>,
}

impl Error {
    /// An error with any status.
    pub fn new(status: StatusCode, message: impl Into<Cow<'static, str>>) -> Self {
        Error {
            inner: Box::new(Inner {
                status,
                message: message.into(),
                location: None,
                source: None,
            }),
        }
    }

    /// 400: the request itself is wrong.
    pub fn bad_request(message: impl Into<Cow<'static, str>>) -> Self {
        Error::new(StatusCode::BAD_REQUEST, message)
    }

    /// 403: the user may not see this page or do this.
    pub fn forbidden(message: impl Into<Cow<'static, str>>) -> Self {
        Error::new(StatusCode::FORBIDDEN, message)
    }

    /// 404: there is nothing here.
    pub fn not_found(message: impl Into<Cow<'static, str>>) -> Self {
        Error::new(StatusCode::NOT_FOUND, message)
    }

    /// 422: the input is well-formed but not acceptable (an empty message, a name too long).
    pub fn unprocessable(message: impl Into<Cow<'static, str>>) -> Self {
        Error::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }

    /// 500: a bug or a failed dependency. The message is logged, not shown.
    pub fn internal(message: impl fmt::Display) -> Self {
        Error::new(StatusCode::INTERNAL_SERVER_ERROR, message.to_string())
    }

    /// Sends the browser to `location` (a same-origin path such as `/login?next=/admin`).
    /// A full-page request gets a `303 See Other`; an event or a navigation gets a redirect
    /// script. Targets that are not same-origin paths are refused with a 500, as a bug.
    ///
    /// `location` is a path of the app: under a prefix (`Router::nest("/app", ..)`) the browser
    /// is sent to `/app/login?next=/admin` (the query is left as written).
    pub fn redirect(location: impl Into<String>) -> Self {
        let location = location.into();
        if !crate::protocol::is_same_origin_path(&location) {
            return Error::internal(format!(
                "refused to redirect to `{location}`: not a same-origin path"
            ));
        }
        let mut err = Error::new(StatusCode::SEE_OTHER, "redirect");
        err.inner.location = Some(location);
        err
    }

    /// The same error, caused by `source`: it is logged with a 500's message and returned by
    /// [`source`](Self::source).
    ///
    /// ```
    /// # use dstar_runtime::error::Error;
    /// # fn load() -> Result<String, std::io::Error> { Ok(String::new()) }
    /// let config = load().map_err(|err| Error::internal("could not load the config").with_source(err))?;
    /// # Ok::<(), Error>(())
    /// ```
    pub fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.inner.source = Some(Box::new(source));
        self
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        self.inner.status
    }

    /// The message for a person.
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// A redirect's location put under `prefix`, the path the app is mounted under; any other
    /// error is returned unchanged.
    pub(crate) fn under_prefix(mut self, prefix: &str) -> Self {
        if !prefix.is_empty()
            && let Some(location) = &mut self.inner.location
        {
            *location = crate::protocol::under_prefix(prefix, location);
        }
        self
    }

    /// Where a redirect error sends the browser.
    pub fn location(&self) -> Option<&str> {
        self.inner.location.as_deref()
    }

    /// The error that caused this one: the error `?` converted, or the one given to
    /// [`with_source`](Self::with_source).
    pub fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner.source()
    }

    /// This error, then its source, that error's source, and so on.
    pub fn chain(&self) -> Chain<'_> {
        Chain {
            next: Some(&*self.inner),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}

impl fmt::Display for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status, self.message)
    }
}

impl StdError for Inner {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source.as_deref().map(|source| source as _)
    }
}

impl Deref for Error {
    type Target = dyn StdError + Send + Sync + 'static;

    fn deref(&self) -> &Self::Target {
        &*self.inner
    }
}

impl AsRef<dyn StdError + Send + Sync + 'static> for Error {
    fn as_ref(&self) -> &(dyn StdError + Send + Sync + 'static) {
        &*self.inner
    }
}

impl AsRef<dyn StdError + 'static> for Error {
    fn as_ref(&self) -> &(dyn StdError + 'static) {
        &*self.inner
    }
}

impl From<Error> for Box<dyn StdError + Send + Sync + 'static> {
    fn from(err: Error) -> Self {
        err.inner
    }
}

impl From<Error> for Box<dyn StdError + 'static> {
    fn from(err: Error) -> Self {
        err.inner
    }
}

impl<E> From<E> for Error
where
    E: StdError + Send + Sync + 'static,
{
    #[cold]
    fn from(err: E) -> Self {
        from_boxed(Box::new(err))
    }
}

/// Maps the errors the runtime knows by their type, and anything else to a 500.
fn from_boxed(err: BoxError) -> Error {
    let err = match err.downcast::<SignalsError>() {
        Ok(signals) => {
            return Error::new(signals.status(), signals.message().to_owned())
                .with_source(*signals);
        }
        Err(err) => err,
    };
    let err = match err.downcast::<minijinja::Error>() {
        Ok(template) => {
            return Error::internal(crate::template::describe(&template)).with_source(*template);
        }
        Err(err) => err,
    };
    Error {
        inner: Box::new(Inner {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: Cow::Owned(err.to_string()),
            location: None,
            source: Some(err),
        }),
    }
}

/// An error and its sources, outermost first: see [`Error::chain`].
#[derive(Debug, Clone)]
pub struct Chain<'a> {
    next: Option<&'a (dyn StdError + 'static)>,
}

impl<'a> Iterator for Chain<'a> {
    type Item = &'a (dyn StdError + 'static);

    fn next(&mut self) -> Option<Self::Item> {
        let current = self.next?;
        self.next = current.source();
        Some(current)
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        if let Some(location) = self.location() {
            let mut response = StatusCode::SEE_OTHER.into_response();
            if let Ok(value) = HeaderValue::from_str(location) {
                response.headers_mut().insert(header::LOCATION, value);
            }
            return response;
        }
        self.report();
        self.plain_response()
    }
}

impl Error {
    /// Logs the error as its answer is sent: a 5xx at `error` with its causes, a refusal at
    /// `debug`.
    pub(crate) fn report(&self) {
        let status = self.status();
        if status.is_server_error() {
            log_error(self);
        } else if self.location().is_none() {
            tracing::debug!(status = status.as_u16(), reason = %self.message(), "request refused");
        }
    }

    /// The answer as plain text, not logged: a 4xx's message; for a 500 the reason only in
    /// release builds, and in debug builds the reason, the message and the causes (which the
    /// debug client script shows in the browser's console).
    pub(crate) fn plain_response(&self) -> Response {
        let Inner {
            status, message, ..
        } = &*self.inner;
        if status.is_server_error() {
            // A 500's message is for the logs (it may name internals); other 5xx (a 503 "too
            // many sessions") are written for the person who sees them.
            if *status == StatusCode::INTERNAL_SERVER_ERROR {
                let reason = status.canonical_reason().unwrap_or("server error");
                if !cfg!(debug_assertions) {
                    return (*status, reason).into_response();
                }
                let mut text = format!("{reason}: {message}");
                for cause in self.causes() {
                    text.push_str("\n  caused by: ");
                    text.push_str(&cause);
                }
                return (*status, text).into_response();
            }
        }
        (*status, message.clone().into_owned()).into_response()
    }

    /// The causes a person reading this error needs besides its message: each source whose
    /// text the message does not already say (an error converted by `?` is its own message's
    /// source, and a template error's message lists its causes).
    pub(crate) fn causes(&self) -> Vec<String> {
        let message = self.message();
        let mut causes = Vec::new();
        let mut source = self.source();
        while let Some(cause) = source {
            let text = cause.to_string();
            if !message.contains(&text) {
                causes.push(text);
            }
            source = cause.source();
        }
        causes
    }
}

/// Logs a 5xx at `error`: its message, then each cause the message does not already say (an
/// error converted by `?` is its own message's source, and a template error's message lists
/// its causes).
fn log_error(err: &Error) {
    let causes = err.causes().join(": ");
    tracing::error!(
        status = err.status().as_u16(),
        error = %err.message(),
        caused_by = %causes,
        "request failed"
    );
}

/// Refuses a mount prefix too long for a live session to keep (64 KiB: hyper's HTTP/1 server
/// refuses such request lines anyway).
pub(crate) fn check_mount_prefix(prefix: &str) -> Result<()> {
    if u16::try_from(prefix.len()).is_err() {
        return Err(Error::new(
            http::StatusCode::URI_TOO_LONG,
            "the path the app is mounted under is longer than 65535 bytes",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_config() -> Result<String> {
        let text = std::fs::read_to_string("/this/file/does/not/exist")?;
        Ok(text)
    }

    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("could not load the page data")
        }
    }

    impl StdError for Outer {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn question_mark_on_io_error_is_a_500_keeping_the_error() {
        let err = read_config().unwrap_err();
        assert_eq!(err.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let source = err.source().expect("the io error is the source");
        let io = source
            .downcast_ref::<std::io::Error>()
            .expect("an io error");
        assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
        assert_eq!(err.message(), io.to_string());
    }

    #[test]
    fn the_source_chain_is_visible() {
        let err = Error::from(Outer(std::io::Error::other("disk on fire")));
        assert_eq!(err.message(), "could not load the page data");
        let chain: Vec<String> = err.chain().map(ToString::to_string).collect();
        assert_eq!(
            chain,
            [
                "500 Internal Server Error: could not load the page data",
                "could not load the page data",
                "disk on fire",
            ]
        );
        // Through `Deref`, for code that takes a `std::error::Error`.
        let outer = StdError::source(&*err).expect("a source");
        assert!(outer.is::<Outer>());
        assert_eq!(outer.source().unwrap().to_string(), "disk on fire");
    }

    #[test]
    fn with_source_keeps_the_status_and_message() {
        let err = Error::forbidden("no").with_source(std::io::Error::other("why"));
        assert_eq!(err.status(), StatusCode::FORBIDDEN);
        assert_eq!(err.message(), "no");
        assert_eq!(err.source().unwrap().to_string(), "why");
    }

    #[test]
    fn a_users_serde_json_error_is_not_about_signals() {
        fn parse() -> Result<serde_json::Value> {
            Ok(serde_json::from_str("{ not json")?)
        }
        let err = parse().unwrap_err();
        assert_eq!(err.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!err.message().contains("signals"), "{}", err.message());
        assert!(
            err.message().starts_with("key must be a string"),
            "{}",
            err.message()
        );
        assert!(err.source().unwrap().is::<serde_json::Error>());
    }

    #[test]
    fn signals_errors_keep_their_status() {
        for (raw, status) in [
            (&b"[1]"[..], StatusCode::BAD_REQUEST),
            (&br#"{"n":"x"}"#[..], StatusCode::UNPROCESSABLE_ENTITY),
        ] {
            #[derive(Debug, serde::Deserialize)]
            #[allow(dead_code)]
            struct N {
                n: u32,
            }
            let signals = crate::signals::parse::<N>(raw).unwrap_err();
            let message = signals.message().to_owned();
            let err = Error::from(signals);
            assert_eq!(err.status(), status);
            assert_eq!(err.message(), message);
        }
        fn read() -> Result<()> {
            Err(SignalsError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too large",
            ))?;
            Ok(())
        }
        let err = read().unwrap_err();
        assert_eq!(err.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(err.message(), "too large");
    }

    #[test]
    fn template_errors_are_described() {
        let engine = crate::template::Templates::new()
            .with("bad.html", "{{ missing.field }}")
            .build();
        let template = engine
            .render("bad.html", minijinja::context! {})
            .unwrap_err();
        let err = Error::from(template);
        assert_eq!(err.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            err.message().starts_with("template error: "),
            "{}",
            err.message()
        );
        assert!(err.message().contains("bad.html"), "{}", err.message());
        assert!(err.source().unwrap().is::<minijinja::Error>());
    }

    #[test]
    fn a_boxed_error_main_can_use_question_mark() {
        fn main_like() -> std::result::Result<(), Box<dyn StdError>> {
            Err(Error::not_found("gone"))?;
            Ok(())
        }
        fn threaded() -> std::result::Result<(), Box<dyn StdError + Send + Sync>> {
            read_config()?;
            Ok(())
        }
        assert_eq!(main_like().unwrap_err().to_string(), "404 Not Found: gone");
        let err = threaded().unwrap_err();
        assert!(err.source().unwrap().is::<std::io::Error>());
    }

    #[test]
    fn a_500_says_its_reason_and_only_debug_builds_add_the_message() {
        fn body(err: Error) -> (StatusCode, String) {
            let response = err.into_response();
            let status = response.status();
            let body = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap()
                .block_on(axum::body::to_bytes(response.into_body(), usize::MAX))
                .unwrap();
            (status, String::from_utf8(body.to_vec()).unwrap())
        }
        let (status, text) = body(read_config().unwrap_err());
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        if cfg!(debug_assertions) {
            // Debug builds tell the developer (through the console) what failed.
            assert!(
                text.starts_with("Internal Server Error: No such file"),
                "{text}"
            );
        } else {
            assert_eq!(text, "Internal Server Error");
        }
        assert_eq!(
            body(Error::bad_request("nope")),
            (StatusCode::BAD_REQUEST, "nope".to_owned())
        );
    }
}

impl Error {
    /// The answer to an event request: a redirect becomes a script the client runs (an SSE
    /// client does not follow a 303 to a page); anything else is its status and message.
    pub(crate) fn into_event_response(self) -> Response {
        if let Some(location) = self.location() {
            let mut out = Vec::new();
            crate::sse::ExecuteScript::new(&crate::sse::redirect_script(location))
                .write_to(&mut out);
            return crate::response::Sse::once(out).into_response();
        }
        self.into_response()
    }
}

/// How much a message of the runtime's own matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    /// What the operator asked to see (the address `App::serve` listens on).
    Info,
    /// A failure nobody is waiting for (a failed `info` or render, a failed accept).
    Error,
}

/// A message of the runtime's own, through `tracing` (install a subscriber to see it).
pub(crate) fn log(level: Level, message: &str) {
    match level {
        Level::Info => tracing::info!("{message}"),
        Level::Error => tracing::error!("{message}"),
    }
}
