//! The one error type pages return.
//!
//! An [`Error`] carries the HTTP status it answers with and a message for a person. Pages use it
//! to refuse a request (`Error::forbidden`), send the browser elsewhere (`Error::redirect`) or
//! report a bug (`Error::internal`); the runtime uses it for bad input (unknown events, signals
//! of the wrong shape). Messages of 500 errors are logged, never shown to the browser.

use std::borrow::Cow;
use std::fmt;

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

/// A result whose error is a dstar [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong handling a page request, and the status it answers with.
#[derive(Debug)]
pub struct Error {
    status: StatusCode,
    message: Cow<'static, str>,
    location: Option<String>,
}

impl Error {
    /// An error with any status.
    pub fn new(status: StatusCode, message: impl Into<Cow<'static, str>>) -> Self {
        Error {
            status,
            message: message.into(),
            location: None,
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
    pub fn redirect(location: impl Into<String>) -> Self {
        let location = location.into();
        if !crate::protocol::is_same_origin_path(&location) {
            return Error::internal(format!(
                "refused to redirect to `{location}`: not a same-origin path"
            ));
        }
        Error {
            status: StatusCode::SEE_OTHER,
            message: Cow::Borrowed("redirect"),
            location: Some(location),
        }
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The message for a person.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Where a redirect error sends the browser.
    pub fn location(&self) -> Option<&str> {
        self.location.as_deref()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status, self.message)
    }
}

impl std::error::Error for Error {}

impl From<minijinja::Error> for Error {
    fn from(err: minijinja::Error) -> Self {
        Error::internal(crate::template::describe(&err))
    }
}

impl From<serde_json::Error> for Error {
    fn from(err: serde_json::Error) -> Self {
        Error::internal(format!("could not serialise signals: {err}"))
    }
}

impl From<crate::signals::SignalsError> for Error {
    fn from(err: crate::signals::SignalsError) -> Self {
        Error::new(err.status(), err.message().to_owned())
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        if let Some(location) = &self.location {
            let mut response = StatusCode::SEE_OTHER.into_response();
            if let Ok(value) = HeaderValue::from_str(location) {
                response.headers_mut().insert(header::LOCATION, value);
            }
            return response;
        }
        if self.status == StatusCode::INTERNAL_SERVER_ERROR {
            log(Level::Error, &self.message);
            let text = self.status.canonical_reason().unwrap_or("server error");
            return (self.status, text).into_response();
        }
        (self.status, self.message.into_owned()).into_response()
    }
}

impl Error {
    /// The answer to an event request: a redirect becomes a script the client runs (an SSE
    /// client does not follow a 303 to a page); anything else is its status and message.
    pub(crate) fn into_event_response(self, version: http::Version) -> Response {
        if let Some(location) = self.location() {
            let mut out = Vec::new();
            crate::sse::ExecuteScript::new(&crate::sse::redirect_script(location))
                .write_to(&mut out);
            return crate::response::Sse::once(out)
                .version(version)
                .into_response();
        }
        self.into_response()
    }
}

/// How much a message of the runtime's own matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    /// What the operator asked to see (the address `App::serve` listens on): standard output.
    Info,
    /// A failure nobody is waiting for (a 500's cause, a failed `info` or render): standard
    /// error.
    Error,
}

/// The one place the runtime prints, until its output moves to `tracing`.
#[allow(clippy::print_stdout, clippy::print_stderr)]
pub(crate) fn log(level: Level, message: &str) {
    match level {
        Level::Info => println!("{message}"),
        Level::Error => eprintln!("dstar: {message}"),
    }
}
