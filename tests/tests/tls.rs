//! `App::serve` with TLS (the `tls` feature), against a self-signed certificate made here:
//! a live page, its stream and its events over ONE HTTP/2 connection (and no deadline cuts the
//! stream), HTTP/1.1 for a client without `h2`, a handshake that stalls closed by the header
//! deadline, and certificates that cannot be used refused with a message naming the problem.
#![allow(clippy::print_stdout)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use bytes::Bytes;
use dstar::http::{Request, StatusCode, Version};
use dstar::serve::{ServeConfig, Tls};
use dstar::test::sse::SseParser;
use dstar::{App, Ctx, Html, Mount, View};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

/// The deadline under test.
const SHORT: Duration = Duration::from_millis(300);
/// How much later than its deadline a close may come on a loaded machine, and the bound on
/// waiting for anything that should arrive.
const SLACK: Duration = Duration::from_secs(5);

/// A live page with a counter.
struct Live {
    count: u64,
}

#[dstar::page("/p", live)]
impl Live {
    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Ok(Live { count: 0 })
    }

    fn render(&self, view: &View<'_>) -> dstar::Result<Html> {
        view.render_str(
            r#"<p id="n">{{ n }}</p>"#,
            serde_json::json!({ "n": self.count }),
        )
    }

    #[event]
    async fn bump(&mut self, _cx: &mut Ctx<'_>) -> dstar::Result<()> {
        self.count += 1;
        Ok(())
    }
}

/// A certificate for `localhost`, made for this test run.
struct Cert {
    der: CertificateDer<'static>,
    tls: Tls,
}

fn self_signed() -> Cert {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let tls = Tls::from_pem(
        made.cert.pem().as_bytes(),
        made.key_pair.serialize_pem().as_bytes(),
    )
    .unwrap();
    Cert {
        der: made.cert.der().clone(),
        tls,
    }
}

/// `App::serve_listener` with TLS and every deadline `SHORT`, in a task.
struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Server {
    async fn start(tls: Tls) -> Self {
        let app = App::builder()
            .secret_key(b"tls tests (a test key of 32+ bytes)")
            .serve_config(ServeConfig {
                header_timeout: SHORT,
                idle_timeout: SHORT,
                body_timeout: SHORT,
                shutdown_timeout: SLACK,
            })
            .tls(tls)
            .build()
            .unwrap();
        let router: Router = dstar::router![Live]
            .into_router(app.clone())
            .route("/ok", get(|| async { "ok" }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            app.serve_listener(listener, router, async {
                let _ = stopped.await;
            })
            .await;
        });
        Server {
            addr,
            stop: Some(stop),
            task,
        }
    }

    async fn stop(mut self) {
        let _ = self.stop.take().map(|stop| stop.send(()));
        tokio::time::timeout(SLACK, &mut self.task)
            .await
            .expect("the server stops")
            .unwrap();
    }
}

/// A TLS connection to `addr` that trusts `cert` and offers `alpn`.
async fn connect(
    addr: SocketAddr,
    cert: &Cert,
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.der.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = TcpStream::connect(addr).await.unwrap();
    TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap()
}

async fn send(
    sender: &mut SendRequest<Full<Bytes>>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &'static [u8],
) -> dstar::http::Response<hyper::body::Incoming> {
    let mut request = Request::builder()
        .method(method)
        .uri(format!("https://localhost{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Full::new(Bytes::from_static(body))).unwrap();
    tokio::time::timeout(SLACK, sender.send_request(request))
        .await
        .unwrap_or_else(|_| panic!("{method} {path}: no answer within {SLACK:?}"))
        .unwrap()
}

#[tokio::test]
async fn a_live_page_its_stream_and_events_share_one_http2_connection() {
    let cert = self_signed();
    let server = Server::start(cert.tls.clone()).await;
    let tls = connect(server.addr, &cert, &[b"h2", b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    let connection = tokio::spawn(conn);

    let page = send(&mut sender, "GET", "/p", &[], b"").await;
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.version(), Version::HTTP_2);
    let html = page.into_body().collect().await.unwrap().to_bytes();
    let html = std::str::from_utf8(&html).unwrap();
    let event_token = dstar_tests::token_after(html, "_dstarToken");
    let stream_token = dstar_tests::token_after(html, "_dstarStream");

    let stream = send(
        &mut sender,
        "POST",
        "/__dstar/stream",
        &[("x-dstar-token", &stream_token)],
        b"{}",
    )
    .await;
    assert_eq!(stream.status(), StatusCode::OK);
    assert_eq!(stream.version(), Version::HTTP_2);
    assert_eq!(
        stream.headers().get("content-type").unwrap(),
        "text/event-stream"
    );
    assert!(
        stream.headers().get("connection").is_none(),
        "no connection-specific header on HTTP/2: {:?}",
        stream.headers()
    );
    let mut body = stream.into_body();
    let mut parser = SseParser::new();

    // Longer than every deadline (this test is about time passing): the open stream keeps the
    // connection serving, so nothing closes it.
    let quiet_until = Instant::now() + SHORT * 4;
    while let Ok(frame) = tokio::time::timeout_at(quiet_until, body.frame()).await {
        let frame = frame.expect("the stream ended").expect("the stream failed");
        if let Ok(data) = frame.into_data() {
            parser.feed(&data);
        }
    }

    for expected in 1..=2 {
        let event = send(
            &mut sender,
            "POST",
            "/__dstar/event",
            &[("x-dstar-token", &event_token), ("x-dstar-event", "bump")],
            b"{}",
        )
        .await;
        assert_eq!(event.status(), StatusCode::NO_CONTENT);
        let patch = format!(r#"<p id="n">{expected}</p>"#);
        let arrived = async {
            loop {
                while let Some(event) = parser.next_event() {
                    if event.value("elements").as_deref() == Some(patch.as_str()) {
                        return;
                    }
                }
                let frame = body
                    .frame()
                    .await
                    .expect("the stream ended")
                    .expect("the stream failed");
                if let Ok(data) = frame.into_data() {
                    parser.feed(&data);
                }
            }
        };
        tokio::time::timeout(SLACK, arrived)
            .await
            .unwrap_or_else(|_| panic!("`{patch}` did not arrive on the stream"));
    }
    assert!(
        !connection.is_finished(),
        "everything went over the one connection, still open"
    );
    drop(body);
    server.stop().await;
}

#[tokio::test]
async fn a_client_without_h2_gets_http1_over_tls() {
    let cert = self_signed();
    let server = Server::start(cert.tls.clone()).await;
    let mut tls = connect(server.addr, &cert, &[b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    tls.write_all(b"GET /ok HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(SLACK, tls.read_to_end(&mut answer))
        .await
        .expect("the answer arrives")
        .unwrap();
    let answer = String::from_utf8(answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.ends_with("\r\n\r\nok"), "{answer}");
    server.stop().await;
}

#[tokio::test]
async fn a_handshake_that_stalls_is_closed_after_the_header_timeout() {
    let cert = self_signed();
    let server = Server::start(cert.tls.clone()).await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    let start = Instant::now();
    // The first bytes of a ClientHello record, then nothing.
    tcp.write_all(&[0x16, 0x03, 0x01, 0x00, 0xc8, 0x01])
        .await
        .unwrap();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(SHORT + SLACK, tcp.read_to_end(&mut rest))
        .await
        .unwrap_or_else(|_| panic!("still open after {:?}", SHORT + SLACK));
    let elapsed = start.elapsed();
    println!("stalled handshake: closed after {elapsed:?} (deadline {SHORT:?})");
    assert!(
        read.is_err() || rest.is_empty(),
        "no TLS answer to half a ClientHello: {rest:?}"
    );
    assert!(
        elapsed >= SHORT,
        "closed after {elapsed:?}, before the {SHORT:?} deadline"
    );
    server.stop().await;
}

#[test]
fn certificates_that_cannot_be_served_are_refused_naming_the_problem() {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let other = rcgen::KeyPair::generate().unwrap();
    let (cert, key) = (made.cert.pem(), made.key_pair.serialize_pem());

    let err = Tls::from_pem(b"not a certificate", key.as_bytes()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the certificate chain holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)"
    );
    let err = Tls::from_pem(cert.as_bytes(), cert.as_bytes()).unwrap_err();
    assert_eq!(err.to_string(), "the private key holds no PEM private key");
    let err = Tls::from_pem(cert.as_bytes(), other.serialize_pem().as_bytes()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the private key does not fit the certificate chain, or is of an unsupported kind"
    );
    assert!(std::error::Error::source(&err).is_some(), "rustls' reason");

    let dir = std::env::temp_dir().join(format!("dstar-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert_file, key_file) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_file, &cert).unwrap();
    std::fs::write(&key_file, &key).unwrap();
    Tls::from_pem_files(&cert_file, &key_file).expect("the files serve");
    let missing = dir.join("missing.pem");
    let err = Tls::from_pem_files(&missing, &key_file).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "could not read the certificate chain from `{}`",
            missing.display()
        )
    );
    let err = Tls::from_pem_files(&key_file, &key_file).unwrap_err();
    assert!(
        err.to_string().starts_with(&format!(
            "`{}` holds no PEM certificate",
            key_file.display()
        )),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
