//! Reading the signals a Datastar request carries.
//!
//! The client sends its (non-underscore) signals as a JSON object: in the URL-encoded `datastar`
//! query parameter for `GET` and `DELETE`, and as the request body for `POST`, `PUT`, `PATCH`
//! and `QUERY`. Signals are untrusted input, so every failure is an answer, never a panic:
//!
//! | problem | status |
//! | --- | --- |
//! | not UTF-8 (in the body, or percent-decoded from `?datastar=`), not JSON, or JSON that is not an object | 400 Bad Request |
//! | body over the limit (1 MiB unless [`SignalsLimit`] says otherwise) | 413 Payload Too Large |
//! | a field of the wrong type, or a required field missing | 422 Unprocessable Entity, naming the field path |

use axum::extract::{FromRequest, Request};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// The default largest signals payload accepted: 1 MiB.
pub const DEFAULT_LIMIT: usize = 1024 * 1024;

/// The largest signals payload accepted, in bytes. Put it in the request extensions (for
/// example with `axum::Extension(SignalsLimit(64 * 1024))` as a layer) to change the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignalsLimit(pub usize);

/// An axum extractor for a request's signals, as a JSON map (the default) or any `serde` type.
///
/// ```
/// use dstar_runtime::signals::Signals;
///
/// #[derive(serde::Deserialize)]
/// struct Search { query: String, page: u32 }
///
/// async fn search(Signals(search): Signals<Search>) -> String {
///     format!("{} (page {})", search.query, search.page)
/// }
/// # let _: axum::routing::MethodRouter = axum::routing::post(search);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Signals<T = Map<String, Value>>(pub T);

/// Why a request's signals could not be read. Its response is the status and a plain-text
/// message naming the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalsError {
    status: StatusCode,
    message: String,
}

impl SignalsError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        SignalsError {
            status,
            message: message.into(),
        }
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// What was wrong, for a person to read.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl std::fmt::Display for SignalsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SignalsError {}

impl IntoResponse for SignalsError {
    fn into_response(self) -> Response {
        (self.status, self.message).into_response()
    }
}

impl<S, T> FromRequest<S> for Signals<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = SignalsError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let raw = read_raw(req).await?;
        parse(&raw).map(Signals)
    }
}

/// Reads the raw signals JSON of a request (an empty object when there is none), without
/// parsing it. Useful when the type to parse into is chosen later, as page events do.
pub async fn read_raw(req: Request) -> Result<Bytes, SignalsError> {
    let (parts, body) = req.into_parts();
    read_raw_parts(&parts, body).await
}

/// Like [`read_raw`], for a request already split into its parts and body.
pub async fn read_raw_parts(
    parts: &http::request::Parts,
    body: axum::body::Body,
) -> Result<Bytes, SignalsError> {
    let limit = parts
        .extensions
        .get::<SignalsLimit>()
        .map_or(DEFAULT_LIMIT, |l| l.0);
    if reads_query(&parts.method) {
        let query = parts.uri.query().unwrap_or("");
        let raw = query_param(query, "datastar").unwrap_or_else(|| b"{}".to_vec());
        if raw.len() > limit {
            return Err(too_large(limit));
        }
        check_utf8(&raw)?;
        return Ok(Bytes::from(raw));
    }
    let body = axum::body::to_bytes(body, limit).await.map_err(|err| {
        if is_length_limit(&err) {
            too_large(limit)
        } else {
            SignalsError::new(
                StatusCode::BAD_REQUEST,
                format!("could not read the request body: {}", with_sources(&err)),
            )
        }
    })?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Bytes::from_static(b"{}"));
    }
    check_utf8(&body)?;
    Ok(body)
}

/// JSON is UTF-8. Checked for the whole payload: the parser checks only the strings it keeps,
/// so bad bytes in a field the handler ignores would otherwise pass.
fn check_utf8(raw: &[u8]) -> Result<(), SignalsError> {
    std::str::from_utf8(raw).map(drop).map_err(|err| {
        SignalsError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "signals are not valid UTF-8: invalid byte at offset {}",
                err.valid_up_to()
            ),
        )
    })
}

/// The value of the first `name` parameter of a URL-encoded `query`, percent-decoded to bytes
/// (`+` is a space; a `%` not followed by two hex digits stays as it is). Unlike
/// `form_urlencoded::parse`, which replaces bytes that are not UTF-8 with U+FFFD, this keeps
/// them, so [`check_utf8`] refuses them as it does in a body.
fn query_param(query: &str, name: &str) -> Option<Vec<u8>> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(key) == name.as_bytes()).then(|| percent_decode(value))
    })
}

fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match escaped_byte(&bytes[i + 1..]) {
                Some(byte) => {
                    out.push(byte);
                    i += 2;
                }
                None => out.push(b'%'),
            },
            other => out.push(other),
        }
        i += 1;
    }
    out
}

/// The byte two hex digits at the start of `digits` stand for.
fn escaped_byte(digits: &[u8]) -> Option<u8> {
    let high = hex(*digits.first()?)?;
    let low = hex(*digits.get(1)?)?;
    Some(high << 4 | low)
}

fn hex(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// An error's message followed by those of its sources (hyper's body errors say what was wrong
/// only in a source: "error reading a body from connection: invalid chunk size line").
fn with_sources(err: &(dyn std::error::Error + 'static)) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.ends_with(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

/// Parses raw signals JSON into `T`, with the statuses described in the module docs.
pub fn parse<T: DeserializeOwned>(raw: &[u8]) -> Result<T, SignalsError> {
    match raw.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => {}
        None => {
            return Err(SignalsError::new(
                StatusCode::BAD_REQUEST,
                "signals must be a JSON object, got nothing",
            ));
        }
        Some(_) => {
            let kind = match serde_json::from_slice::<Value>(raw) {
                Ok(Value::Array(_)) => "an array",
                Ok(Value::String(_)) => "a string",
                Ok(Value::Number(_)) => "a number",
                Ok(Value::Bool(_)) => "a boolean",
                Ok(Value::Null) => "null",
                Ok(Value::Object(_)) | Err(_) => "text that is not JSON",
            };
            return Err(SignalsError::new(
                StatusCode::BAD_REQUEST,
                format!("signals must be a JSON object, got {kind}"),
            ));
        }
    }
    // Valid input takes the plain parser; only a failure is parsed again, tracking the path,
    // to name the field that was wrong.
    if let Ok(value) = serde_json::from_slice(raw) {
        return Ok(value);
    }
    let mut de = serde_json::Deserializer::from_slice(raw);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(path_error)?;
    de.end().map_err(|err| {
        SignalsError::new(
            StatusCode::BAD_REQUEST,
            format!("signals are not valid JSON: {err}"),
        )
    })?;
    Ok(value)
}

/// Merges the JSON object of the `x-dstar-args` header (what `event("name", {...})` writes)
/// into the raw signals; `args` empty means there is none.
pub(crate) fn merge_args(raw: Bytes, args: &str) -> Result<Bytes, SignalsError> {
    if args.is_empty() {
        return Ok(raw);
    }
    let args: Map<String, Value> = serde_json::from_str(args).map_err(|err| {
        SignalsError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "`{}` must be a JSON object: {err}",
                crate::protocol::ARGS_HEADER
            ),
        )
    })?;
    let mut signals: Map<String, Value> = parse(&raw)?;
    signals.extend(args);
    let json = serde_json::to_vec(&signals).expect("a JSON map always serialises");
    Ok(Bytes::from(json))
}

fn path_error(err: serde_path_to_error::Error<serde_json::Error>) -> SignalsError {
    let path = err.path().to_string();
    let inner = err.into_inner();
    match inner.classify() {
        serde_json::error::Category::Data => {
            let message = if path == "." {
                format!("invalid signals: {inner}")
            } else {
                format!("invalid signal `{path}`: {inner}")
            };
            SignalsError::new(StatusCode::UNPROCESSABLE_ENTITY, message)
        }
        _ => SignalsError::new(
            StatusCode::BAD_REQUEST,
            format!("signals are not valid JSON: {inner}"),
        ),
    }
}

fn reads_query(method: &Method) -> bool {
    method == Method::GET || method == Method::DELETE || method == Method::HEAD
}

fn too_large(limit: usize) -> SignalsError {
    SignalsError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("signals are larger than the limit of {limit} bytes"),
    )
}

/// Whether reading the body stopped at the limit: `axum::body::to_bytes` reports it as an
/// `http_body_util::LengthLimitError` somewhere in the error's chain.
fn is_length_limit(err: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct User {
        name: String,
        address: Address,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Address {
        zip: u32,
    }

    #[test]
    fn wrong_type_names_the_field_path() {
        let err = parse::<User>(br#"{"name":"a","address":{"zip":"x"}}"#).unwrap_err();
        assert_eq!(err.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            err.message().starts_with("invalid signal `address.zip`"),
            "{}",
            err.message()
        );
    }

    #[test]
    fn non_object_is_bad_request() {
        let err = parse::<Map<String, Value>>(b"[1,2]").unwrap_err();
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        assert_eq!(err.message(), "signals must be a JSON object, got an array");
    }

    #[test]
    fn over_limit_bodies_are_too_large() {
        let request = |body: &'static str| {
            let mut req = Request::post("/")
                .body(axum::body::Body::from(body))
                .unwrap();
            req.extensions_mut().insert(SignalsLimit(4));
            req
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let err = runtime
            .block_on(read_raw(request("{\"a\":1}")))
            .unwrap_err();
        assert_eq!(err.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            err.message(),
            "signals are larger than the limit of 4 bytes"
        );
        assert_eq!(runtime.block_on(read_raw(request("{}"))).unwrap(), "{}");
    }

    #[tokio::test]
    async fn a_body_that_is_not_utf8_is_bad_request_even_in_an_ignored_field() {
        #[derive(Debug, serde::Deserialize)]
        struct Count {
            #[allow(dead_code)]
            count: i64,
        }
        let body = b"{\"count\": 1, \"ignored\": \"\xff\xfe\"}".to_vec();
        // serde_json alone lets the bad bytes through: they are in a field nobody reads.
        assert!(serde_json::from_slice::<Count>(&body).is_ok());
        let req = Request::post("/")
            .body(axum::body::Body::from(body))
            .unwrap();
        let err = read_raw(req).await.unwrap_err();
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        assert!(err.to_string().contains("not valid UTF-8"), "{err}");
        assert!(err.to_string().contains("offset 25"), "{err}");
    }

    #[tokio::test]
    async fn query_signals_are_decoded_without_losing_bad_bytes() {
        assert_eq!(
            query_param("a=1&datastar=%7B%22q%22%3A%22a+b%22%7D", "datastar").unwrap(),
            br#"{"q":"a b"}"#
        );
        assert_eq!(query_param("data%73tar=x", "datastar").unwrap(), b"x");
        assert_eq!(query_param("datastar", "datastar").unwrap(), b"");
        assert_eq!(query_param("other=1", "datastar"), None);
        // A `%` without two hex digits after it is kept as it is.
        assert_eq!(percent_decode("%ZZ%4"), b"%ZZ%4");
        assert_eq!(percent_decode("%e9t%C3%A9"), b"\xe9t\xc3\xa9");

        let req = Request::get("/?datastar=%7B%22q%22%3A%22%FF%22%7D")
            .body(axum::body::Body::empty())
            .unwrap();
        let err = read_raw(req).await.unwrap_err();
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            err.message(),
            "signals are not valid UTF-8: invalid byte at offset 6"
        );
    }

    #[test]
    fn malformed_json_is_bad_request() {
        let err = parse::<Map<String, Value>>(b"{\"a\":").unwrap_err();
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        let err = parse::<Map<String, Value>>(b"{} trailing").unwrap_err();
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    }
}
