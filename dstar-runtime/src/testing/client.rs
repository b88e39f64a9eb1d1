//! The client: requests through the router in-process, with the browser's cookies and headers,
//! and page loads that follow redirects.

use std::fmt;
use std::future::poll_fn;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request, StatusCode, header};
use tower_service::Service;

use super::error::TestError;

/// How long the client waits for an answer or a stream event unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// How many loads one action may cause before the client gives up.
pub(super) const MAX_LOADS: usize = 10;

/// An in-process browser for an `axum::Router`: every request is a direct call of the router
/// (no socket). Cheap to clone; clones share cookies.
#[derive(Clone)]
pub struct TestClient {
    router: Router,
    headers: HeaderMap,
    pub(super) timeout: Duration,
    cookies: Arc<Mutex<Vec<(String, String)>>>,
}

impl fmt::Debug for TestClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestClient")
            .field("headers", &self.headers)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl TestClient {
    /// A client for `router` (for example `dstar::router![...].into_router(app)`, with any
    /// layers and state your app adds).
    pub fn new(router: Router) -> Self {
        TestClient {
            router,
            headers: HeaderMap::new(),
            timeout: DEFAULT_TIMEOUT,
            cookies: Arc::default(),
        }
    }

    /// Sends `name: value` with every request (for example an auth header).
    ///
    /// # Panics
    ///
    /// When `name` or `value` is not a valid header name or value.
    #[must_use]
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        let name = HeaderName::try_from(name)
            .unwrap_or_else(|err| panic!("`{name}` is not a header name: {err}"));
        let value = HeaderValue::try_from(value)
            .unwrap_or_else(|err| panic!("`{value}` is not a header value: {err}"));
        self.headers.insert(name, value);
        self
    }

    /// How long to wait for an answer or a stream event (default 5 s).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The value of cookie `name`, as the server last set it.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.jar()
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    }

    /// Sends any request through the router, with the client's headers and cookies, and
    /// returns the response as is (for endpoints that are not pages).
    pub async fn send(&self, request: Request<Body>) -> Result<Response, TestError> {
        let what = format!("{} {}", request.method(), request.uri());
        self.call(request, &what).await
    }

    fn jar(&self) -> std::sync::MutexGuard<'_, Vec<(String, String)>> {
        self.cookies.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) async fn call(
        &self,
        mut request: Request<Body>,
        what: &str,
    ) -> Result<Response, TestError> {
        for (name, value) in &self.headers {
            if !request.headers().contains_key(name) {
                request.headers_mut().insert(name, value.clone());
            }
        }
        let cookies = self
            .jar()
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ");
        if !cookies.is_empty()
            && !request.headers().contains_key(header::COOKIE)
            && let Ok(value) = HeaderValue::try_from(cookies)
        {
            request.headers_mut().insert(header::COOKIE, value);
        }
        let mut router = self.router.clone();
        let call = async move {
            let ready = poll_fn(|cx| Service::<Request<Body>>::poll_ready(&mut router, cx)).await;
            match ready {
                Ok(()) => router.call(request).await,
                Err(never) => match never {},
            }
        };
        let response = match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(response)) => response,
            Ok(Err(never)) => match never {},
            Err(_) => {
                return Err(TestError::Timeout {
                    waiting_for: format!("the answer to {what}"),
                    after: self.timeout,
                });
            }
        };
        self.store_cookies(response.headers());
        Ok(response)
    }

    fn store_cookies(&self, headers: &HeaderMap) {
        let mut jar = self.jar();
        for value in headers.get_all(header::SET_COOKIE) {
            let Ok(value) = value.to_str() else { continue };
            let mut parts = value.split(';');
            let Some((name, value)) = parts.next().and_then(|pair| pair.split_once('=')) else {
                continue;
            };
            let (name, value) = (name.trim().to_owned(), value.trim().to_owned());
            let expired = parts.any(|attribute| {
                let attribute = attribute.trim().to_ascii_lowercase();
                attribute == "max-age=0" || attribute.starts_with("max-age=-")
            });
            jar.retain(|(key, _)| *key != name);
            if !expired {
                jar.push((name, value));
            }
        }
    }

    /// Sends a request and reads the whole answer.
    pub(super) async fn fetch(
        &self,
        request: Request<Body>,
        what: &str,
    ) -> Result<(StatusCode, HeaderMap, Bytes), TestError> {
        let response = self.call(request, what).await?;
        let (parts, body) = response.into_parts();
        let body = tokio::time::timeout(self.timeout, axum::body::to_bytes(body, usize::MAX))
            .await
            .map_err(|_| TestError::Timeout {
                waiting_for: format!("the body of the answer to {what}"),
                after: self.timeout,
            })?
            .map_err(|err| TestError::protocol(format!("reading the answer to {what}: {err}")))?;
        Ok((parts.status, parts.headers, body))
    }

    /// GETs a page, following `3xx` redirects; returns its final URL and HTML.
    pub(super) async fn document(&self, url: &str) -> Result<(String, String), TestError> {
        let mut url = url.to_owned();
        let mut chain = vec![url.clone()];
        loop {
            let request = Request::get(url.as_str())
                .header(header::ACCEPT, "text/html")
                .body(Body::empty())
                .map_err(|err| TestError::protocol(format!("`{url}` is not a URL: {err}")))?;
            let what = format!("GET {url}");
            let (status, headers, body) = self.fetch(request, &what).await?;
            if status.is_redirection()
                && let Some(location) = headers.get(header::LOCATION)
            {
                let location = location.to_str().unwrap_or("/");
                url = resolve(&url, location);
                chain.push(url.clone());
                if chain.len() > MAX_LOADS {
                    return Err(TestError::TooManyRedirects { chain });
                }
                continue;
            }
            let text = String::from_utf8_lossy(&body).into_owned();
            if !status.is_success() {
                return Err(TestError::Status {
                    request: what,
                    status,
                    body: text,
                });
            }
            return Ok((url, text));
        }
    }
}

/// Resolves a `Location` against the URL it answered.
fn resolve(base: &str, location: &str) -> String {
    if location.starts_with('/') && !location.starts_with("//") {
        return location.to_owned();
    }
    if let Some(rest) = location
        .strip_prefix("http://")
        .or_else(|| location.strip_prefix("https://"))
        .or_else(|| location.strip_prefix("//"))
    {
        return rest
            .find('/')
            .map_or("/".to_owned(), |at| rest[at..].to_owned());
    }
    let path = base.split(['?', '#']).next().unwrap_or("/");
    let dir = path.rfind('/').map_or("/", |at| &path[..=at]);
    format!("{dir}{location}")
}

pub(super) fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"))
}
