//! A real server on an ephemeral port and a deliberately small HTTP/1.1 client to talk to it.
//!
//! The client writes requests by hand and decodes `Content-Length`, chunked and read-to-close
//! bodies itself, so tests see the bytes that go over the wire. The body reader keeps all its
//! decoding state in itself and only awaits cancel-safe reads, which is what lets a timeout
//! interrupt [`SseStream::next_event`] without losing bytes.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use dstar::test::sse::{SseEvent, SseParser};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The brotli decoder's output buffer. `brotli::DecompressorWriter` stops handing out output
/// once its input is used up, even when it has more decoded: its buffer must hold a whole
/// flushed frame (a browser's decoder has no such limit).
const BROTLI_OUT: usize = 1 << 20;

/// How long [`TestServer::get`] and [`TestServer::post`] wait for a whole response.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

/// An axum app served on `127.0.0.1` at a port the OS picked. The server stops when this is
/// dropped.
#[derive(Debug)]
pub struct TestServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl TestServer {
    /// Binds an ephemeral port and serves `app` on it in a background task.
    pub async fn start(app: Router) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind an ephemeral port on 127.0.0.1");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("the test server failed");
        });
        TestServer { addr, task }
    }

    /// Binds an ephemeral port and serves `router` on it with `App::serve`'s own server (its
    /// deadlines, as `app`'s `ServeConfig` sets them) in a background task.
    pub async fn serve(app: &dstar::App, router: Router) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind an ephemeral port on 127.0.0.1");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let app = app.clone();
        let task = tokio::spawn(async move {
            app.serve_listener(listener, router, std::future::pending())
                .await;
        });
        TestServer { addr, task }
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `GET path` with extra `headers`; panics on an I/O error or after [`RESPONSE_TIMEOUT`].
    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        self.request("GET", path, headers, None)
            .await
            .unwrap_or_else(|err| panic!("GET {path} failed: {err}"))
    }

    /// `POST path` with extra `headers` and `body`; panics on an I/O error or after
    /// [`RESPONSE_TIMEOUT`].
    pub async fn post(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: impl AsRef<[u8]>,
    ) -> Response {
        self.request("POST", path, headers, Some(body.as_ref()))
            .await
            .unwrap_or_else(|err| panic!("POST {path} failed: {err}"))
    }

    /// Sends any request and reads the whole response (until the body ends or the server
    /// closes the connection). A `body` gets a `Content-Length` header unless `headers` frame it
    /// themselves (`Content-Length` or `Transfer-Encoding`).
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> io::Result<Response> {
        self.request_bytes(method, path, headers, body).await
    }

    /// Like [`request`](Self::request), with header values as bytes, which need not be text
    /// (a Latin-1 `é` is the one byte `0xE9`).
    pub async fn request_bytes<V: AsRef<[u8]>>(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, V)],
        body: Option<&[u8]>,
    ) -> io::Result<Response> {
        let deadline = Instant::now() + RESPONSE_TIMEOUT;
        let read = async {
            let (head, mut reader) = self.send(method, path, headers, body).await?;
            let mut bytes = Vec::new();
            while let Some(chunk) = reader.next_chunk().await? {
                bytes.extend_from_slice(&chunk);
            }
            Ok(Response {
                status: head.status,
                headers: head.headers,
                body: bytes,
            })
        };
        tokio::time::timeout_at(deadline, read)
            .await
            .unwrap_or_else(|_| Err(timed_out(RESPONSE_TIMEOUT)))
    }

    /// `GET path` and returns once the response head is in, leaving the body to be read event
    /// by event. Panics on an I/O error or after [`RESPONSE_TIMEOUT`].
    pub async fn sse(&self, path: &str, headers: &[(&str, &str)]) -> SseStream {
        self.open_sse("GET", path, headers, None)
            .await
            .unwrap_or_else(|err| panic!("GET {path} (event stream) failed: {err}"))
    }

    /// Sends any request and returns once the response head is in; read the body with
    /// [`SseStream::next_event`].
    pub async fn open_sse(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> io::Result<SseStream> {
        let open = self.send(method, path, headers, body);
        let (head, body) = tokio::time::timeout(RESPONSE_TIMEOUT, open)
            .await
            .unwrap_or_else(|_| Err(timed_out(RESPONSE_TIMEOUT)))?;
        let content = ContentDecoder::for_coding(head.header("content-encoding"))?;
        Ok(SseStream {
            status: head.status,
            headers: head.headers,
            body,
            parser: SseParser::new(),
            content,
            wire_bytes: 0,
        })
    }

    async fn send<V: AsRef<[u8]>>(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, V)],
        body: Option<&[u8]>,
    ) -> io::Result<(Head, Body)> {
        let mut stream = TcpStream::connect(self.addr).await?;
        let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.addr);
        let has = |name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
        if !has("connection") {
            request.push_str("Connection: close\r\n");
        }
        if let Some(body) = body
            && !has("content-length")
            && !has("transfer-encoding")
        {
            request.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        let mut bytes = request.into_bytes();
        for (name, value) in headers {
            bytes.extend_from_slice(name.as_bytes());
            bytes.extend_from_slice(b": ");
            bytes.extend_from_slice(value.as_ref());
            bytes.extend_from_slice(b"\r\n");
        }
        bytes.extend_from_slice(b"\r\n");
        bytes.extend_from_slice(body.unwrap_or_default());
        stream.write_all(&bytes).await?;
        stream.flush().await?;

        let mut buffer = Vec::new();
        let head_len = loop {
            if let Some(end) = find(&buffer, b"\r\n\r\n") {
                break end + 4;
            }
            if read_more(&mut stream, &mut buffer).await? == 0 {
                return Err(invalid(
                    "the connection closed before the response head ended",
                ));
            }
        };
        let head = parse_head(&buffer[..head_len - 4])?;
        buffer.drain(..head_len);
        let framing = if method.eq_ignore_ascii_case("HEAD")
            || head.status < 200
            || head.status == 204
            || head.status == 304
        {
            Framing::Length(0)
        } else if head
            .header("transfer-encoding")
            .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"))
        {
            Framing::Chunked(ChunkState::Size)
        } else if let Some(length) = head.header("content-length") {
            let length = length
                .trim()
                .parse()
                .map_err(|_| invalid("a Content-Length that is not a number"))?;
            Framing::Length(length)
        } else {
            Framing::UntilClose
        };
        Ok((
            head,
            Body {
                stream,
                buffer,
                framing,
            },
        ))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A complete response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The headers in the order received, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body, with any chunked transfer encoding removed.
    pub body: Vec<u8>,
}

impl Response {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// The body as text; panics when it is not UTF-8.
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("the response body is not UTF-8")
    }

    /// The body with its `Content-Encoding` (`gzip`, `br`) undone; panics when it does not
    /// decode to a complete stream.
    pub fn decoded(&self) -> Vec<u8> {
        let mut decoder = ContentDecoder::for_coding(self.header("content-encoding"))
            .expect("a content coding the test kit knows");
        let mut out = decoder.feed(&self.body).expect("the body decodes");
        out.extend(decoder.finish().expect("the body is a complete stream"));
        out
    }
}

/// Undoes a response's content coding as its bytes arrive.
enum ContentDecoder {
    Identity,
    Gzip(Box<flate2::write::GzDecoder<Vec<u8>>>),
    Brotli(Box<brotli::DecompressorWriter<Vec<u8>>>),
}

impl std::fmt::Debug for ContentDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ContentDecoder::Identity => "identity",
            ContentDecoder::Gzip(_) => "gzip",
            ContentDecoder::Brotli(_) => "br",
        })
    }
}

impl ContentDecoder {
    fn for_coding(coding: Option<&str>) -> io::Result<Self> {
        match coding.map(str::trim) {
            None | Some("identity") => Ok(ContentDecoder::Identity),
            Some("gzip") => Ok(ContentDecoder::Gzip(Box::new(
                flate2::write::GzDecoder::new(Vec::new()),
            ))),
            Some("br") => Ok(ContentDecoder::Brotli(Box::new(
                brotli::DecompressorWriter::new(Vec::new(), BROTLI_OUT),
            ))),
            Some(other) => Err(invalid(&format!("an unknown Content-Encoding: {other}"))),
        }
    }

    /// The bytes `piece` completes: all a decoder can give out without waiting for more.
    fn feed(&mut self, piece: &[u8]) -> io::Result<Vec<u8>> {
        use std::io::Write;
        match self {
            ContentDecoder::Identity => Ok(piece.to_vec()),
            ContentDecoder::Gzip(decoder) => {
                decoder.write_all(piece)?;
                decoder.flush()?;
                Ok(std::mem::take(decoder.get_mut()))
            }
            ContentDecoder::Brotli(decoder) => {
                decoder.write_all(piece)?;
                decoder.flush()?;
                Ok(std::mem::take(decoder.get_mut()))
            }
        }
    }

    /// Checks that the coded stream ended properly (gzip's trailer, brotli's last block).
    fn finish(self) -> io::Result<Vec<u8>> {
        match self {
            ContentDecoder::Identity => Ok(Vec::new()),
            ContentDecoder::Gzip(decoder) => decoder.finish(),
            ContentDecoder::Brotli(decoder) => decoder
                .into_inner()
                .map_err(|_| invalid("the brotli stream did not end")),
        }
    }
}

/// A response whose body is read as an event stream, one block at a time.
#[derive(Debug)]
pub struct SseStream {
    /// The status code.
    pub status: u16,
    /// The headers in the order received, names lowercased.
    pub headers: Vec<(String, String)>,
    body: Body,
    parser: SseParser,
    content: ContentDecoder,
    wire_bytes: usize,
}

impl SseStream {
    /// How many body bytes came over the wire so far, before undoing any content coding
    /// (chunk framing not counted).
    pub fn wire_bytes(&self) -> usize {
        self.wire_bytes
    }

    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// The next block of the stream, comment-only blocks (heartbeats) included. `Ok(None)` when
    /// the stream ended; an error of kind `TimedOut` when no block completed within `timeout`.
    pub async fn next_block(&mut self, timeout: Duration) -> io::Result<Option<SseEvent>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(block) = self.parser.next_block() {
                return Ok(Some(block));
            }
            match tokio::time::timeout_at(deadline, self.body.next_chunk()).await {
                Err(_) => return Err(timed_out(timeout)),
                Ok(Ok(Some(chunk))) => {
                    // A compressed stream is decoded as it comes: every event must be readable
                    // from the bytes received so far.
                    self.wire_bytes += chunk.len();
                    let decoded = self.content.feed(&chunk)?;
                    self.parser.feed(&decoded);
                }
                Ok(Ok(None)) => {
                    // The coded stream must end properly too (gzip's trailer, brotli's end).
                    let content = std::mem::replace(&mut self.content, ContentDecoder::Identity);
                    let rest = content.finish()?;
                    if !rest.is_empty() {
                        self.parser.feed(&rest);
                        continue;
                    }
                    if self.parser.has_partial_block() {
                        return Err(invalid("the stream ended in the middle of an event"));
                    }
                    return Ok(None);
                }
                Ok(Err(err)) => return Err(err),
            }
        }
    }

    /// The next block a browser would dispatch (one with data), skipping heartbeats and other
    /// blocks without data. Same `None` and timeout rules as [`SseStream::next_block`].
    pub async fn next_event(&mut self, timeout: Duration) -> io::Result<Option<SseEvent>> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_block(left).await? {
                Some(block) if block.is_dispatched() => return Ok(Some(block)),
                Some(_) => {}
                None => return Ok(None),
            }
        }
    }

    /// Like [`SseStream::next_event`], but panics unless an event arrives within `timeout`.
    pub async fn expect_event(&mut self, timeout: Duration) -> SseEvent {
        match self.next_event(timeout).await {
            Ok(Some(event)) => event,
            Ok(None) => panic!("the event stream ended while an event was expected"),
            Err(err) => panic!("no event arrived: {err}"),
        }
    }
}

#[derive(Debug)]
struct Head {
    status: u16,
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

fn parse_head(head: &[u8]) -> io::Result<Head> {
    let head =
        std::str::from_utf8(head).map_err(|_| invalid("a response head that is not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .or_else(|| status_line.strip_prefix("HTTP/1.0 "))
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| invalid(&format!("a malformed status line: {status_line:?}")))?;
    let headers = lines
        .map(|line| {
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| invalid(&format!("a malformed header line: {line:?}")))?;
            Ok((name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        })
        .collect::<io::Result<_>>()?;
    Ok(Head { status, headers })
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

/// A response body being read off the connection.
#[derive(Debug)]
struct Body {
    stream: TcpStream,
    /// Bytes read from the connection but not decoded yet.
    buffer: Vec<u8>,
    framing: Framing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(usize),
    Chunked(ChunkState),
    UntilClose,
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Waiting for a chunk-size line.
    Size,
    /// Inside a chunk, with this many bytes still to come.
    Data(usize),
    /// After a chunk's data, waiting for its CRLF.
    DataEnd,
    /// After the last chunk, skipping trailer lines up to the blank one.
    Trailers,
}

impl Body {
    /// The next decoded piece of the body, `None` once it ended.
    async fn next_chunk(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            let decoded = self.decode()?;
            if !decoded.is_empty() {
                return Ok(Some(decoded));
            }
            if self.framing == Framing::Done {
                return Ok(None);
            }
            if read_more(&mut self.stream, &mut self.buffer).await? == 0 {
                if self.framing == Framing::UntilClose {
                    self.framing = Framing::Done;
                } else {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the connection closed before the body ended",
                    ));
                }
            }
        }
    }

    /// Decodes as much of the buffer as is complete, without awaiting anything.
    fn decode(&mut self) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            match self.framing {
                Framing::Done => break,
                Framing::UntilClose => {
                    out.append(&mut self.buffer);
                    break;
                }
                Framing::Length(left) => {
                    let take = left.min(self.buffer.len());
                    out.extend(self.buffer.drain(..take));
                    self.framing = if left == take {
                        Framing::Done
                    } else {
                        Framing::Length(left - take)
                    };
                    break;
                }
                Framing::Chunked(ChunkState::Data(left)) => {
                    if self.buffer.is_empty() {
                        break;
                    }
                    let take = left.min(self.buffer.len());
                    out.extend(self.buffer.drain(..take));
                    self.framing = Framing::Chunked(if left == take {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left - take)
                    });
                }
                Framing::Chunked(ChunkState::DataEnd) => {
                    if self.buffer.len() < 2 {
                        break;
                    }
                    if !self.buffer.starts_with(b"\r\n") {
                        return Err(invalid("a chunk not followed by CRLF"));
                    }
                    self.buffer.drain(..2);
                    self.framing = Framing::Chunked(ChunkState::Size);
                }
                Framing::Chunked(state @ (ChunkState::Size | ChunkState::Trailers)) => {
                    let Some(end) = find(&self.buffer, b"\r\n") else {
                        break;
                    };
                    let line: Vec<u8> = self.buffer.drain(..end + 2).take(end).collect();
                    self.framing = if state == ChunkState::Trailers {
                        if line.is_empty() {
                            Framing::Done
                        } else {
                            Framing::Chunked(ChunkState::Trailers)
                        }
                    } else {
                        match parse_chunk_size(&line)? {
                            0 => Framing::Chunked(ChunkState::Trailers),
                            size => Framing::Chunked(ChunkState::Data(size)),
                        }
                    };
                }
            }
        }
        Ok(out)
    }
}

fn parse_chunk_size(line: &[u8]) -> io::Result<usize> {
    let line = std::str::from_utf8(line).map_err(|_| invalid("a chunk size that is not text"))?;
    let digits = line.split(';').next().unwrap_or_default().trim();
    usize::from_str_radix(digits, 16)
        .map_err(|_| invalid(&format!("a malformed chunk size: {line:?}")))
}

/// Reads what the connection has into `buffer`. Cancel-safe: nothing is lost when the future
/// is dropped before it completes.
async fn read_more(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> io::Result<usize> {
    let mut chunk = [0; 8192];
    let n = stream.read(&mut chunk).await?;
    buffer.extend_from_slice(&chunk[..n]);
    Ok(n)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_owned())
}

fn timed_out(after: Duration) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("nothing complete arrived within {after:?}"),
    )
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::routing::get;
    use bytes::Bytes;
    use dstar::response::Sse;
    use tokio::sync::mpsc;

    use super::*;

    const WAIT: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn reads_a_sized_body() {
        let app = Router::new().route("/", get(|| async { "hello" }));
        let server = TestServer::start(app).await;
        let response = server.get("/", &[]).await;
        assert_eq!(response.status, 200);
        assert_eq!(response.header("Content-Length"), Some("5"));
        assert_eq!(response.text(), "hello");
    }

    #[tokio::test]
    async fn reads_a_chunked_stream_event_by_event() {
        let (sender, receiver) = mpsc::channel::<Bytes>(4);
        let receiver = Arc::new(Mutex::new(Some(receiver)));
        let app = Router::new().route(
            "/events",
            get(move || {
                let receiver = receiver.lock().unwrap().take().expect("one request only");
                async move { Sse::stream(receiver, Some(Duration::from_millis(50))) }
            }),
        );
        let server = TestServer::start(app).await;
        let mut stream = server.sse("/events", &[]).await;
        assert_eq!(stream.status, 200);
        assert_eq!(stream.header("transfer-encoding"), Some("chunked"));

        // One event split over two frames, so the parser has to wait for its end.
        sender
            .send(Bytes::from_static(b"event: a\nda"))
            .await
            .unwrap();
        sender.send(Bytes::from_static(b"ta: 1\n\n")).await.unwrap();
        let event = stream.expect_event(WAIT).await;
        assert_eq!(
            (event.event.as_deref(), event.data_text()),
            (Some("a"), "1".into())
        );

        let heartbeat = stream.next_block(WAIT).await.unwrap().unwrap();
        assert_eq!(heartbeat.comments, ["hb"]);
        assert!(!heartbeat.is_dispatched());

        let err = stream
            .next_event(Duration::from_millis(20))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);

        // A timeout loses nothing: the next event still arrives whole.
        sender
            .send(Bytes::from_static(b"data: 2\n\n"))
            .await
            .unwrap();
        assert_eq!(stream.expect_event(WAIT).await.data, ["2"]);
        drop(sender);
        assert_eq!(stream.next_event(WAIT).await.unwrap(), None);
    }
}
