//! What can go wrong driving a page, worded for a failing test's output.

use std::fmt;
use std::time::Duration;

use http::StatusCode;

use super::html;
use super::patch::PatchError;
use super::selector::SUPPORTED_SELECTORS;
use crate::sse::Mode;

/// What went wrong driving a page.
#[non_exhaustive]
pub enum TestError {
    /// The server answered with a status the action did not expect.
    Status {
        /// The request, as `POST /__dstar/event (event `add`)`.
        request: String,
        /// The status it got.
        status: StatusCode,
        /// The answer's body, as text.
        body: String,
    },
    /// Nothing arrived in time.
    Timeout {
        /// What the client was waiting for.
        waiting_for: String,
        /// How long it waited.
        after: Duration,
    },
    /// A selector the client does not understand.
    Selector {
        /// The selector.
        selector: String,
        /// Why it is not understood.
        reason: String,
    },
    /// An element patch found nothing to patch.
    NoTarget {
        /// `id `x`` or `selector `#x``.
        target: String,
        /// The patch mode.
        mode: &'static str,
        /// The start of the patch's elements.
        elements: String,
    },
    /// A live page's stream ended (the session is gone or another stream replaced it).
    StreamClosed {
        /// The page's URL.
        url: String,
    },
    /// The action needs a live page.
    NotLive {
        /// The action.
        action: &'static str,
        /// The page's URL.
        url: String,
    },
    /// Loads led to more loads, more than ten times.
    TooManyRedirects {
        /// The URLs loaded, in order.
        chain: Vec<String>,
    },
    /// The page or the server did something the client cannot follow: no token to send an
    /// event with, an element without the action asked for, a malformed event.
    Protocol {
        /// What happened.
        message: String,
    },
}

impl TestError {
    /// The status of a [`TestError::Status`] error.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            TestError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub(super) fn protocol(message: impl Into<String>) -> Self {
        TestError::Protocol {
            message: message.into(),
        }
    }

    pub(super) fn from_patch(err: PatchError, mode: Mode, elements: &str) -> Self {
        match err {
            PatchError::Selector { selector, reason } => TestError::Selector { selector, reason },
            PatchError::NoTarget { target } => TestError::NoTarget {
                target,
                mode: mode.as_str(),
                elements: html::snippet(elements),
            },
            PatchError::NoId { element } => TestError::protocol(format!(
                "a `{}` patch without a selector has an element without an id, so there is \
                 nothing to match it with: {element}",
                mode.as_str()
            )),
        }
    }
}

impl fmt::Display for TestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TestError::Status {
                request,
                status,
                body,
            } => {
                write!(f, "{request} answered {status}")?;
                if !body.is_empty() {
                    write!(f, ": {}", html::snippet(&readable(body)))?;
                }
                Ok(())
            }
            TestError::Timeout { waiting_for, after } => {
                write!(f, "timed out after {after:?} waiting for {waiting_for}")
            }
            TestError::Selector { selector, reason } => write!(
                f,
                "selector `{selector}` is not supported by the test client: {reason} \
                 (supported: {})",
                SUPPORTED_SELECTORS
            ),
            TestError::NoTarget {
                target,
                mode,
                elements,
            } => write!(
                f,
                "a `{mode}` element patch found no element with {target} in the page \
                 (patch elements: {elements:?})"
            ),
            TestError::StreamClosed { url } => write!(
                f,
                "the stream of the live page {url} ended (its session is gone, or another \
                 stream replaced it)"
            ),
            TestError::NotLive { action, url } => {
                write!(f, "`{action}` needs a live page, and {url} is stateless")
            }
            TestError::TooManyRedirects { chain } => {
                write!(f, "too many redirects: {}", chain.join(" -> "))
            }
            TestError::Protocol { message } => f.write_str(message),
        }
    }
}

impl fmt::Debug for TestError {
    /// The same as `Display`, so `.unwrap()` failures read well.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for TestError {}

/// An answer's body as a person reads it: an HTML page (an error page) by the text of its
/// `<body>`, anything else as it is.
fn readable(body: &str) -> String {
    let trimmed = body.trim_start();
    let is_html = trimmed.len() >= 5
        && (trimmed[..5].eq_ignore_ascii_case("<!doc")
            || trimmed[..5].eq_ignore_ascii_case("<html"));
    if !is_html {
        return body.to_owned();
    }
    let start = body
        .find("<body")
        .and_then(|at| body[at..].find('>').map(|end| at + end + 1))
        .unwrap_or(0);
    let end = body[start..]
        .find("</body>")
        .map_or(body.len(), |end| start + end);
    html::text_content(&body[start..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_page_reads_as_its_text() {
        let page = "<!doctype html><html><head><title>404</title></head>\n<body><h1>404 Not Found</h1>\n<p>no page at `/x`</p></body></html>";
        assert_eq!(readable(page), "404 Not Found no page at `/x`");
        assert_eq!(readable("unknown event `x`"), "unknown event `x`");
    }
}
