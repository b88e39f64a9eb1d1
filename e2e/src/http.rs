//! A minimal HTTP/1.1 client for chromedriver on localhost: one connection per request,
//! JSON in and out, `Content-Length` or chunked responses.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A whole response: status code and body.
#[derive(Debug)]
pub(crate) struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Sends one request and reads the whole response. `timeout` bounds connecting and each read.
pub(crate) fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
    timeout: Duration,
) -> io::Result<Response> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.set_nodelay(true)?;

    let body = body.unwrap_or_default();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json\r\n\
         Connection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        head.push_str("Content-Type: application/json; charset=utf-8\r\n");
    }
    head.push_str("\r\n");
    let mut message = head.into_bytes();
    message.extend_from_slice(body);
    stream.write_all(&message)?;

    read_response(&mut stream)
}

fn read_response(stream: &mut impl Read) -> io::Result<Response> {
    let mut buf = Vec::with_capacity(8 * 1024);
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(parsed) = parse(&buf)? {
            return Ok(parsed);
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            // The peer closed: whatever we have is all there is.
            return parse_at_eof(&buf);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

struct Head {
    status: u16,
    body_start: usize,
    content_length: Option<usize>,
    chunked: bool,
}

fn parse_head(buf: &[u8]) -> io::Result<Option<Head>> {
    let Some(end) = find(buf, b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&buf[..end]).map_err(|_| invalid("non-UTF-8 HTTP head"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| invalid(format!("bad status line {status_line:?}")))?;
    let mut content_length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            content_length = Some(
                value
                    .parse()
                    .map_err(|_| invalid(format!("bad Content-Length {value:?}")))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        }
    }
    Ok(Some(Head {
        status,
        body_start: end + 4,
        content_length,
        chunked,
    }))
}

/// A complete response if `buf` holds one, `None` if more bytes are needed.
fn parse(buf: &[u8]) -> io::Result<Option<Response>> {
    let Some(head) = parse_head(buf)? else {
        return Ok(None);
    };
    let rest = &buf[head.body_start..];
    if head.chunked {
        return Ok(dechunk(rest)?.map(|body| Response {
            status: head.status,
            body,
        }));
    }
    match head.content_length {
        Some(len) if rest.len() >= len => Ok(Some(Response {
            status: head.status,
            body: rest[..len].to_vec(),
        })),
        _ => Ok(None),
    }
}

fn parse_at_eof(buf: &[u8]) -> io::Result<Response> {
    if let Some(response) = parse(buf)? {
        return Ok(response);
    }
    match parse_head(buf)? {
        // Neither a length nor chunks: the body runs to the end of the connection.
        Some(head) if head.content_length.is_none() && !head.chunked => Ok(Response {
            status: head.status,
            body: buf[head.body_start..].to_vec(),
        }),
        _ => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed before the whole HTTP response arrived",
        )),
    }
}

/// Decodes a chunked body; `None` until the last chunk has arrived.
fn dechunk(mut rest: &[u8]) -> io::Result<Option<Vec<u8>>> {
    let mut body = Vec::new();
    loop {
        let Some(line_end) = find(rest, b"\r\n") else {
            return Ok(None);
        };
        let size_text = std::str::from_utf8(&rest[..line_end]).map_err(|_| invalid("bad chunk"))?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| invalid(format!("bad chunk size {size_text:?}")))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(Some(body));
        }
        if rest.len() < size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: &[u8]) -> io::Result<Response> {
        read_response(&mut &bytes[..])
    }

    #[test]
    fn content_length_without_space_after_colon() {
        // chromedriver writes its headers as `Name:value`.
        let r =
            read(b"HTTP/1.1 200 OK\r\nContent-Length:14\r\n\r\n{\"value\":null}trailing").unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"{\"value\":null}");
    }

    #[test]
    fn chunked() {
        let r = read(b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n")
            .unwrap();
        assert_eq!(r.status, 404);
        assert_eq!(r.body, b"abcde");
    }

    #[test]
    fn body_to_eof() {
        let r = read(b"HTTP/1.0 500 Oops\r\n\r\nbroken").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (500, &b"broken"[..]));
    }

    #[test]
    fn truncated() {
        assert!(read(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc").is_err());
        assert!(read(b"HTTP/1.1 200 OK\r\nContent-Le").is_err());
    }
}
