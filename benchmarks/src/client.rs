//! A small keep-alive HTTP/1.1 client for load: requests are prebuilt byte strings, responses
//! are read just far enough to know where they end, and event streams are searched for a
//! marker without being parsed.
//!
//! The same code drives dstar and the baselines, so any cost it has is paid equally.

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Encodes a request (keep-alive; a body gets a `Content-Length`).
pub fn request(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    if !body.is_empty() || method != "GET" {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    for (name, value) in headers {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// A response read off a connection.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The body (chunked encoding removed).
    pub body: Vec<u8>,
}

impl Response {
    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One connection.
#[derive(Debug)]
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    /// Connects to `addr` with `TCP_NODELAY`.
    pub async fn connect(addr: SocketAddr) -> io::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(1024),
        })
    }

    /// Writes a prebuilt request.
    pub async fn send(&mut self, request: &[u8]) -> io::Result<()> {
        self.stream.write_all(request).await
    }

    /// Sends `request` and reads the whole response.
    pub async fn request(&mut self, request: &[u8]) -> io::Result<Response> {
        self.send(request).await?;
        self.read_response().await
    }

    async fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 4096];
        let n = self.stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    /// Reads a response head: the status and whether the body is chunked or how long it is.
    async fn read_head(&mut self) -> io::Result<(u16, Framing)> {
        let end = loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                break end;
            }
            self.fill().await?;
        };
        let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        self.buf.drain(..end + 4);
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|line| line.get(9..12))
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| invalid("malformed status line"))?;
        let mut framing = Framing::Length(0);
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                framing =
                    Framing::Length(value.parse().map_err(|_| invalid("bad content-length"))?);
            } else if name.eq_ignore_ascii_case("transfer-encoding")
                && value.eq_ignore_ascii_case("chunked")
            {
                framing = Framing::Chunked;
            }
        }
        Ok((status, framing))
    }

    /// Reads a whole response (`Content-Length`, chunked or empty body).
    pub async fn read_response(&mut self) -> io::Result<Response> {
        let (status, framing) = self.read_head().await?;
        let body = match framing {
            Framing::Length(length) => {
                while self.buf.len() < length {
                    self.fill().await?;
                }
                self.buf.drain(..length).collect()
            }
            Framing::Chunked => {
                let mut body = Vec::new();
                loop {
                    let line_end = loop {
                        if let Some(end) = find(&self.buf, b"\r\n") {
                            break end;
                        }
                        self.fill().await?;
                    };
                    let size = std::str::from_utf8(&self.buf[..line_end])
                        .ok()
                        .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
                        .ok_or_else(|| invalid("bad chunk size"))?;
                    while self.buf.len() < line_end + 2 + size + 2 {
                        self.fill().await?;
                    }
                    body.extend_from_slice(&self.buf[line_end + 2..line_end + 2 + size]);
                    self.buf.drain(..line_end + 2 + size + 2);
                    if size == 0 {
                        break;
                    }
                }
                body
            }
        };
        Ok(Response { status, body })
    }

    /// Sends `request` and reads only the response head, leaving the connection as an open
    /// event stream. Fails unless the status is 200.
    pub async fn open_stream(&mut self, request: &[u8]) -> io::Result<()> {
        self.send(request).await?;
        let (status, _) = self.read_head().await?;
        if status != 200 {
            return Err(invalid(&format!("stream answered {status}")));
        }
        Ok(())
    }

    /// Sends `request` and reads the response head, leaving the connection as an open event
    /// stream; the head's headers (names lowercased). Fails unless the status is 200.
    pub async fn open_stream_with_headers(
        &mut self,
        request: &[u8],
    ) -> io::Result<Vec<(String, String)>> {
        self.send(request).await?;
        let end = loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                break end;
            }
            self.fill().await?;
        };
        let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        self.buf.drain(..end + 4);
        let mut lines = head.split("\r\n");
        let status = lines.next().and_then(|line| line.get(9..12)).unwrap_or("");
        if status != "200" {
            return Err(invalid(&format!("stream answered {status}")));
        }
        Ok(lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
            .collect())
    }

    /// The next chunk's payload of a chunked body (empty at its end).
    pub async fn next_chunk(&mut self) -> io::Result<Vec<u8>> {
        let line_end = loop {
            if let Some(end) = find(&self.buf, b"\r\n") {
                break end;
            }
            self.fill().await?;
        };
        let size = std::str::from_utf8(&self.buf[..line_end])
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
            .ok_or_else(|| invalid("bad chunk size"))?;
        while self.buf.len() < line_end + 2 + size + 2 {
            self.fill().await?;
        }
        let payload = self.buf[line_end + 2..line_end + 2 + size].to_vec();
        self.buf.drain(..line_end + 2 + size + 2);
        Ok(payload)
    }

    /// Reads the stream until `marker` has arrived; what came before it (and the marker) is
    /// dropped.
    pub async fn wait_for(&mut self, marker: &[u8]) -> io::Result<()> {
        loop {
            if let Some(at) = find(&self.buf, marker) {
                self.buf.drain(..at + marker.len());
                return Ok(());
            }
            let keep = marker.len().saturating_sub(1);
            if self.buf.len() > keep {
                let cut = self.buf.len() - keep;
                self.buf.drain(..cut);
            }
            self.fill().await?;
        }
    }
}

enum Framing {
    Length(usize),
    Chunked,
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_owned())
}

/// `GET path` `n` times over `connections` keep-alive connections at once; the bodies, in no
/// particular order. Panics on any failure or non-200 answer.
pub async fn get_many(addr: SocketAddr, path: &str, n: usize, connections: usize) -> Vec<String> {
    let request = request("GET", path, &[], b"");
    let mut tasks = tokio::task::JoinSet::new();
    let connections = connections.clamp(1, n.max(1));
    for worker in 0..connections {
        let count = n / connections + usize::from(worker < n % connections);
        let request = request.clone();
        tasks.spawn(async move {
            let mut conn = Conn::connect(addr).await.expect("connect");
            let mut bodies = Vec::with_capacity(count);
            for _ in 0..count {
                let response = conn.request(&request).await.expect("GET");
                assert_eq!(response.status, 200, "GET answered {}", response.status);
                bodies.push(response.text());
            }
            bodies
        });
    }
    let mut bodies = Vec::with_capacity(n);
    while let Some(done) = tasks.join_next().await {
        bodies.extend(done.expect("a GET worker"));
    }
    bodies
}

/// Opens one event stream per request, `parallel` connecting at a time; the open connections.
/// Panics on any failure.
pub async fn open_streams(addr: SocketAddr, requests: Vec<Vec<u8>>, parallel: usize) -> Vec<Conn> {
    let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(parallel.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for request in requests {
        let permits = permits.clone();
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await.expect("semaphore");
            let mut conn = Conn::connect(addr).await.expect("connect a stream");
            conn.open_stream(&request).await.expect("open a stream");
            conn
        });
    }
    let mut conns = Vec::new();
    while let Some(done) = tasks.join_next().await {
        conns.push(done.expect("a stream opener"));
    }
    conns
}

/// The stream request a loaded dstar live page would make (its `data-init`).
pub fn dstar_stream_request(html: &str) -> Vec<u8> {
    let token = crate::stream_token(html);
    request(
        "POST",
        "/__dstar/stream",
        &[("x-dstar-token", &token)],
        b"{}",
    )
}

/// In a client process: holds SSE streams open against the server at `addr` for a memory
/// bench. Opens `warm` streams, says `warm`, waits for `go`, opens `n` more, says
/// `ready COUNT`, and holds them until the server's process sends the next line. `dstar`
/// streams are live sessions of the `Idle` page (its page load, then its stream); the others
/// are `GET /sse` of a baseline.
pub async fn hold_streams(addr: SocketAddr, dstar: bool, warm: usize, n: usize) {
    let mut orders = crate::child::Orders::new();
    let mut streams = open_idle_streams(addr, dstar, warm).await;
    crate::child::tell("warm", "");
    assert_eq!(orders.next().await, "go");
    streams.extend(open_idle_streams(addr, dstar, n).await);
    crate::child::tell("ready", &streams.len().to_string());
    let _ = orders.next().await;
}

async fn open_idle_streams(addr: SocketAddr, dstar: bool, n: usize) -> Vec<Conn> {
    let requests = if dstar {
        get_many(addr, "/idle", n, 4)
            .await
            .iter()
            .map(|html| dstar_stream_request(html))
            .collect()
    } else {
        vec![request("GET", "/sse", &[], b""); n]
    };
    open_streams(addr, requests, 64).await
}
