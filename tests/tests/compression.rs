//! Compressed streams over real HTTP: `Accept-Encoding` picks `br` or `gzip` for a live stream
//! and a stateless event answer when the app turns compression on; every event decodes from
//! the bytes received so far while the stream is still open (a flush per event); a stream that
//! ends closes its coding properly; and identity is sent when compression is off, when the
//! client accepts neither coding, or refuses them with `q=0`.

use std::time::Duration;

use dstar::{App, Ctx, Event, Html, Mount, Page, Route, View};
use dstar_tests::{SseStream, TestServer, token_after};

const WAIT: Duration = Duration::from_secs(5);

/// A live todo list: `add` appends an item and the page re-renders.
struct Todos {
    items: Vec<u32>,
}

impl Page for Todos {
    const ROUTE: Route = Route::new("Todos", "/todos", file!(), line!())
        .live()
        .events(&["add"]);

    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Ok(Todos { items: Vec::new() })
    }

    fn render(&self, _view: &View<'_>) -> dstar::Result<Html> {
        let mut html = String::from("<ul id=\"todos\">");
        for item in &self.items {
            html.push_str(&format!(
                "<li id=\"todo-{item}\" class=\"active\"><label><input type=\"checkbox\"> \
                 <span class=\"title\">Item number {item}</span></label></li>"
            ));
        }
        html.push_str("</ul>");
        Ok(Html(html))
    }

    async fn event(&mut self, _cx: &mut Ctx<'_>, event: Event<'_>) -> dstar::Result<()> {
        match event.name() {
            "add" => {
                self.items.push(self.items.len() as u32 + 1);
                Ok(())
            }
            _ => Err(event.unknown()),
        }
    }
}

/// A stateless page whose event answers a signals patch and a list.
struct Poke;

impl Page for Poke {
    const ROUTE: Route = Route::new("Poke", "/", file!(), line!()).events(&["poke"]);

    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Ok(Poke)
    }

    fn render(&self, view: &View<'_>) -> dstar::Result<Html> {
        view.render_str(
            r#"<button data-on-click="{{ event('poke') }}">poke</button>"#,
            (),
        )
    }

    async fn event(&mut self, cx: &mut Ctx<'_>, _event: Event<'_>) -> dstar::Result<()> {
        cx.skip_render();
        let list: String = (0..50).map(|i| format!("<li>row {i}</li>")).collect();
        cx.patch_elements(format!("<ul id=\"rows\">{list}</ul>"));
        cx.patch_signals(&serde_json::json!({ "poked": true }))
    }
}

async fn serve(compress: bool) -> TestServer {
    let app = App::builder()
        .secret_key(b"compression tests (a test key of 32+ bytes)")
        .compress_streams(compress)
        .build()
        .unwrap();
    TestServer::start(dstar::router![Todos, Poke].into_router(app)).await
}

/// Loads the todo page and opens its stream with `accept` as `Accept-Encoding` (none when
/// empty); the stream and the event token.
async fn open(server: &TestServer, accept: &str) -> (SseStream, String) {
    let page = server.get("/todos", &[]).await;
    assert_eq!(page.status, 200, "{}", page.text());
    let stream_token = token_after(page.text(), "_dstarStream");
    let mut headers = vec![("x-dstar-token", stream_token.as_str())];
    if !accept.is_empty() {
        headers.push(("accept-encoding", accept));
    }
    let stream = server
        .open_sse("POST", "/__dstar/stream", &headers, Some(b"{}"))
        .await
        .unwrap();
    assert_eq!(stream.status, 200);
    (stream, token_after(page.text(), "_dstarToken"))
}

async fn add(server: &TestServer, token: &str) {
    let answer = server
        .post(
            "/__dstar/event",
            &[("x-dstar-token", token), ("x-dstar-event", "add")],
            b"{}",
        )
        .await;
    assert_eq!(answer.status, 204, "{}", answer.text());
}

/// Sends `n` events one after the other, each only after the previous one's patch was decoded
/// off the open stream: a stream that held bytes back until more came would time out here.
async fn each_event_arrives(server: &TestServer, stream: &mut SseStream, token: &str, n: u32) {
    for i in 1..=n {
        add(server, token).await;
        let event = stream.expect_event(WAIT).await;
        assert_eq!(event.event_type(), "datastar-patch-elements");
        assert!(
            event
                .data_text()
                .contains(&format!("Item number {i}</span>")),
            "event {i} decoded: {}",
            event.data_text()
        );
    }
}

#[tokio::test]
async fn live_streams_negotiate_br_or_gzip_and_flush_every_event() {
    let server = serve(true).await;
    for (accept, expected) in [
        ("br", "br"),
        ("gzip, deflate", "gzip"),
        ("gzip, deflate, br, zstd", "gzip"),
        ("gzip;q=0.5, br;q=0.9", "br"),
        ("br;q=0, *", "gzip"),
    ] {
        let (mut stream, token) = open(&server, accept).await;
        assert_eq!(
            stream.header("content-encoding"),
            Some(expected),
            "{accept}"
        );
        assert_eq!(stream.header("vary"), Some("accept-encoding"));
        assert_eq!(stream.header("content-type"), Some("text/event-stream"));
        each_event_arrives(&server, &mut stream, &token, 12).await;
    }
}

#[tokio::test]
async fn a_compressed_stream_is_smaller_than_what_it_carries() {
    let server = serve(true).await;
    for coding in ["gzip", "br"] {
        let (mut plain, plain_token) = open(&server, "").await;
        let (mut packed, packed_token) = open(&server, coding).await;
        each_event_arrives(&server, &mut plain, &plain_token, 30).await;
        each_event_arrives(&server, &mut packed, &packed_token, 30).await;
        assert!(
            packed.wire_bytes() * 4 < plain.wire_bytes(),
            "{coding}: {} bytes on the wire for {} uncompressed",
            packed.wire_bytes(),
            plain.wire_bytes()
        );
    }
}

#[tokio::test]
async fn a_replaced_compressed_stream_ends_its_coding_properly() {
    let server = serve(true).await;
    for coding in ["gzip", "br"] {
        let page = server.get("/todos", &[]).await;
        let stream_token = token_after(page.text(), "_dstarStream");
        let event_token = token_after(page.text(), "_dstarToken");
        let headers = [
            ("x-dstar-token", stream_token.as_str()),
            ("accept-encoding", coding),
        ];
        let mut first = server
            .open_sse("POST", "/__dstar/stream", &headers, Some(b"{}"))
            .await
            .unwrap();
        each_event_arrives(&server, &mut first, &event_token, 3).await;
        // A second stream for the session replaces the first, which ends normally: its
        // decoder must see the coding's end (gzip's checksum and length, brotli's last block).
        let _second = server
            .open_sse("POST", "/__dstar/stream", &headers, Some(b"{}"))
            .await
            .unwrap();
        match first.next_event(WAIT).await {
            Ok(None) => {}
            other => panic!("{coding}: the replaced stream should end cleanly: {other:?}"),
        }
    }
}

#[tokio::test]
async fn identity_when_off_not_accepted_or_refused() {
    let off = serve(false).await;
    let (mut stream, token) = open(&off, "gzip, br").await;
    assert_eq!(stream.header("content-encoding"), None);
    assert_eq!(
        stream.header("vary"),
        None,
        "nothing varies when compression is off"
    );
    each_event_arrives(&off, &mut stream, &token, 2).await;

    let on = serve(true).await;
    for accept in [
        "",
        "identity",
        "deflate",
        "gzip;q=0, br;q=0",
        "*;q=0",
        "gzip;q=0.5, identity",
    ] {
        let (mut stream, token) = open(&on, accept).await;
        assert_eq!(stream.header("content-encoding"), None, "{accept:?}");
        assert_eq!(stream.header("vary"), Some("accept-encoding"), "{accept:?}");
        each_event_arrives(&on, &mut stream, &token, 2).await;
    }
}

#[tokio::test]
async fn stateless_event_answers_are_compressed_too() {
    let server = serve(true).await;
    let page = server.get("/", &[]).await;
    let token = token_after(page.text(), "x-dstar-token");
    let poke = |accept: &'static str| {
        let token = token.clone();
        let server = &server;
        async move {
            server
                .post(
                    "/",
                    &[
                        ("x-dstar-token", token.as_str()),
                        ("x-dstar-event", "poke"),
                        ("accept-encoding", accept),
                    ],
                    b"{}",
                )
                .await
        }
    };
    let plain = poke("identity").await;
    assert_eq!(plain.status, 200, "{}", plain.text());
    assert_eq!(plain.header("content-encoding"), None);
    assert_eq!(plain.header("vary"), Some("accept-encoding"));
    assert!(plain.text().contains("<li>row 49</li>"));
    assert!(plain.text().contains("\"poked\":true"));
    for coding in ["gzip", "br"] {
        let answer = poke(coding).await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.header("content-encoding"), Some(coding));
        assert_eq!(answer.header("vary"), Some("accept-encoding"));
        assert_eq!(answer.header("content-type"), Some("text/event-stream"));
        assert_eq!(answer.header("cache-control"), Some("no-store"));
        assert_eq!(
            answer.decoded(),
            plain.body,
            "{coding} decodes to the same events"
        );
        assert!(
            answer.body.len() < plain.body.len() / 2,
            "{coding} is smaller"
        );
    }
}
