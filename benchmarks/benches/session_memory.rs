//! Live session memory, counted by a global allocator that tracks live heap bytes.
//!
//! (a) In-process, no sockets: live page loads are driven through the router with tower
//!     `oneshot`, and the live bytes before and after N sessions give the bytes per session
//!     (stream not connected). Then each session's stream request is driven the same way and
//!     its response body held (as hyper would hold it), which adds the session side of a
//!     connected stream; a bare `Sse::stream` over an `mpsc` channel is measured the same way.
//! (b) Real loopback connections: a client process opens N streams of an SSE endpoint in the
//!     same router and process (dstar's `Sse::stream` over an `mpsc` channel, served by
//!     `axum::serve`), then N dstar live sessions with their streams; the server process
//!     counts its live bytes. This is not a bare axum server: the `connections` bench
//!     compares `App::serve` with a minimal `axum::serve` SSE server in its own process.
//! (c) Busy sessions: sessions of a page that renders ~1 KB receive 64, 200 and 1,000 events,
//!     and the heap and RSS per session are read after each step (`BUSY_SESSIONS`, `ROUNDS`),
//!     with the default replay ring and with a ring bounded by count alone. Draws
//!     `benchmarks/charts/busy_session_memory.svg`.
//!
//! `cargo bench -p dstar-benchmarks --bench session_memory` (set `SESSIONS` / `CONNECTIONS` to
//! change N). Needs an open-file limit of at least `CONNECTIONS + 100`.
// A benchmark reports its figures on standard output.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::alloc::System;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use cap::Cap;
use dstar_benchmarks::child::{Child, child_args};
use dstar_benchmarks::client;
use tower::ServiceExt;

#[global_allocator]
static ALLOC: Cap<System> = Cap::new(System, usize::MAX);

const WARM_UP: usize = 200;
/// A stream token is the hex of 69 bytes.
const TOKEN_LEN: usize = 138;

fn live() -> usize {
    ALLOC.allocated()
}

fn main() {
    if let Some(args) = child_args() {
        dstar_benchmarks::runtime().block_on(client_main(args));
        return;
    }
    let sessions = dstar_benchmarks::env_usize("SESSIONS", 10_000);
    let connections = dstar_benchmarks::env_usize("CONNECTIONS", 2_000);
    let runtime = dstar_benchmarks::runtime();
    let observed = dstar_benchmarks::observe_if_asked();
    runtime.block_on(async {
        if observed {
            println!("(with a tracing subscriber at `info` and a metrics recorder installed)\n");
        }
        println!("# Live session memory (live heap bytes, counted by a global allocator)\n");
        in_process(sessions).await;
        with_connections(connections).await;
        busy(dstar_benchmarks::env_usize("BUSY_SESSIONS", 300)).await;
    });
}

async fn settle() {
    tokio::time::sleep(Duration::from_millis(300)).await;
}

async fn call(router: &Router, request: Request<Body>) -> axum::response::Response {
    router.clone().oneshot(request).await.expect("infallible")
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).expect("request")
}

async fn body_text(response: axum::response::Response) -> String {
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Loads `path` `n` times; the stream tokens go into `tokens` (preallocated by the caller so
/// that they are counted before and after alike).
async fn load_pages(router: &Router, path: &str, n: usize, tokens: &mut String) {
    for _ in 0..n {
        let response = call(router, get(path)).await;
        assert_eq!(response.status(), 200);
        let html = body_text(response).await;
        let token = dstar_benchmarks::stream_token(&html);
        assert_eq!(token.len(), TOKEN_LEN);
        assert!(tokens.len() + TOKEN_LEN <= tokens.capacity());
        tokens.push_str(&token);
    }
}

struct Row {
    what: String,
    n: usize,
    bytes: f64,
    note: String,
}

fn print_rows(rows: &[Row]) {
    println!("| what | N | bytes each | note |");
    println!("| --- | ---: | ---: | --- |");
    for row in rows {
        println!(
            "| {} | {} | {:.0} | {} |",
            row.what, row.n, row.bytes, row.note
        );
    }
    println!();
}

async fn in_process(n: usize) {
    println!("## (a) In-process: sessions without and with their stream, no sockets\n");
    let mut rows = Vec::new();
    for (page, path, state) in [
        ("Idle (zero-sized, no subscription)", "/idle", 0usize),
        ("Counter (8 B state, one PubSub topic)", "/live", 8),
    ] {
        let app = dstar_benchmarks::app(dstar_benchmarks::session_config());
        let router = dstar_benchmarks::router(&app);
        let mut warm_tokens = String::with_capacity(WARM_UP * TOKEN_LEN);
        load_pages(&router, path, WARM_UP, &mut warm_tokens).await;
        let mut tokens = String::with_capacity(n * TOKEN_LEN);
        let mut bodies: Vec<Body> = Vec::with_capacity(n);
        settle().await;

        let s0 = live();
        load_pages(&router, path, n, &mut tokens).await;
        settle().await;
        let s1 = live();
        assert_eq!(app.sessions().len(), WARM_UP + n);

        for i in 0..n {
            let token = &tokens[i * TOKEN_LEN..(i + 1) * TOKEN_LEN];
            let request = Request::post("/__dstar/stream")
                .header("x-dstar-token", token)
                .body(Body::from("{}"))
                .expect("request");
            let response = call(&router, request).await;
            assert_eq!(response.status(), 200);
            bodies.push(response.into_body());
        }
        settle().await;
        let s2 = live();

        let per_session = (s1 as f64 - s0 as f64) / n as f64;
        let attach = (s2 as f64 - s1 as f64) / n as f64;
        rows.push(Row {
            what: format!("dstar session, stream not connected: {page}"),
            n,
            bytes: per_session,
            note: format!(
                "{:.0} B beyond the {state} B page state (target ≤ 1024)",
                per_session - state as f64
            ),
        });
        rows.push(Row {
            what: format!("+ its stream attached (response body held, no socket): {page}"),
            n,
            bytes: attach,
            note: format!("session + stream = {:.0} B", per_session + attach),
        });
        drop(bodies);
        app.sessions().shutdown(Duration::from_secs(10)).await;
    }

    // The bare baseline: an mpsc channel and `Sse::stream`, response body held.
    let app = dstar_benchmarks::app(dstar_benchmarks::session_config());
    let router = dstar_benchmarks::router(&app);
    let mut warm_bodies: Vec<Body> = Vec::with_capacity(WARM_UP);
    for _ in 0..WARM_UP {
        warm_bodies.push(call(&router, get("/sse")).await.into_body());
    }
    let mut bodies: Vec<Body> = Vec::with_capacity(n);
    settle().await;
    let s0 = live();
    for _ in 0..n {
        let response = call(&router, get("/sse")).await;
        assert_eq!(response.status(), 200);
        bodies.push(response.into_body());
    }
    settle().await;
    let s1 = live();
    rows.push(Row {
        what: "bare axum SSE: mpsc channel + `Sse::stream` body held, no socket".into(),
        n,
        bytes: (s1 as f64 - s0 as f64) / n as f64,
        note: "the baseline for the row above".into(),
    });
    drop(bodies);
    print_rows(&rows);
}

async fn with_connections(n: usize) {
    println!("## (b) Real loopback connections (client in a second process)\n");
    let app = dstar_benchmarks::app(dstar_benchmarks::session_config());
    let addr = dstar_benchmarks::serve(dstar_benchmarks::router(&app)).await;
    let mut results: Vec<(&str, f64)> = Vec::new();
    for round in 0..2 {
        for kind in ["bare", "dstar"] {
            let mut child = Child::spawn(&[
                "connect".into(),
                kind.into(),
                addr.to_string(),
                n.to_string(),
            ]);
            child.expect("warm").await;
            settle().await;
            let s0 = live();
            child.say("go").await;
            let opened: usize = child.expect("ready").await.parse().expect("a count");
            assert_eq!(opened, n + 20);
            tokio::time::sleep(Duration::from_millis(700)).await;
            let s1 = live();
            let per = (s1 as f64 - s0 as f64) / n as f64;
            println!("round {round}: {kind}: {per:.0} B per connection");
            results.push((kind, per));
            child.say("quit").await;
            child.finish().await;
            settle().await;
        }
    }
    let bare: Vec<f64> = results
        .iter()
        .filter(|r| r.0 == "bare")
        .map(|r| r.1)
        .collect();
    let dstar: Vec<f64> = results
        .iter()
        .filter(|r| r.0 == "dstar")
        .map(|r| r.1)
        .collect();
    let (bare, dstar) = (
        dstar_benchmarks::median(&bare),
        dstar_benchmarks::median(&dstar),
    );
    println!();
    print_rows(&[
        Row {
            what: "in-router SSE endpoint (mpsc + dstar's `Sse::stream`), connected".into(),
            n,
            bytes: bare,
            note: "median of 2 rounds".into(),
        },
        Row {
            what: "dstar live session (Idle page, 0 B state), stream connected".into(),
            n,
            bytes: dstar,
            note: "median of 2 rounds".into(),
        },
        Row {
            what: "difference".into(),
            n,
            bytes: dstar - bare,
            note: format!(
                "target ≤ 1536: {}",
                if dstar - bare <= 1536.0 {
                    "met"
                } else {
                    "NOT met"
                }
            ),
        },
    ]);
}

async fn client_main(args: Vec<String>) {
    let [role, kind, addr, n] = &args[..] else {
        panic!("usage: connect <bare|dstar> <addr> <n>");
    };
    assert_eq!(role, "connect");
    let addr: SocketAddr = addr.parse().expect("an address");
    let n: usize = n.parse().expect("a count");
    assert!(kind == "dstar" || kind == "bare", "unknown kind {kind}");
    client::hold_streams(addr, kind == "dstar", 20, n).await;
}

/// Busy sessions: `n` sessions of a page whose renders are ~1 KB each get 64, then 200, then
/// 1,000 events (no stream attached: every event is kept for replay as it would be for a tab
/// that is away), with the replay ring bounded by the default bytes and, for comparison, by
/// count alone (`replay_bytes: usize::MAX`, the ring before it had a byte bound).
async fn busy(n: usize) {
    println!("## (c) Busy sessions: heap and RSS per session after many ~1 KB re-renders\n");
    let rounds = dstar_benchmarks::env_usize("ROUNDS", 3).max(1);
    let steps = [64usize, 200, 1_000];
    let default_bytes = dstar::session::SessionConfig::default().replay_bytes;
    let bounds = [
        (
            format!("ring bounded by {default_bytes} B (default)"),
            default_bytes,
        ),
        (
            "ring bounded by count alone (64 events)".to_string(),
            usize::MAX,
        ),
    ];
    // (bound, step) -> per-round (heap, rss) bytes per session.
    let mut figures = vec![vec![Vec::new(); steps.len()]; bounds.len()];
    for _ in 0..rounds {
        for (b, (_, replay_bytes)) in bounds.iter().enumerate() {
            let config = dstar::session::SessionConfig {
                replay_bytes: *replay_bytes,
                ..dstar_benchmarks::session_config()
            };
            let app = dstar_benchmarks::app(config);
            let router = dstar_benchmarks::router(&app);
            let mut warm = String::with_capacity(WARM_UP * TOKEN_LEN);
            load_pages(&router, "/busy", WARM_UP, &mut warm).await;
            let mut tokens = Vec::with_capacity(n);
            settle().await;
            let (heap0, rss0) = (live(), dstar_benchmarks::rss());
            for _ in 0..n {
                let response = call(&router, get("/busy")).await;
                assert_eq!(response.status(), 200);
                tokens.push(dstar_benchmarks::event_token(&body_text(response).await));
            }
            let mut sent = 0;
            for (s, step) in steps.iter().enumerate() {
                for token in &tokens {
                    for _ in sent..*step {
                        let request = Request::post("/__dstar/event")
                            .header("x-dstar-token", token.as_str())
                            .header("x-dstar-event", "bump")
                            .header("content-type", "application/json")
                            .body(Body::from("{}"))
                            .expect("request");
                        assert_eq!(call(&router, request).await.status(), 204);
                    }
                }
                sent = *step;
                settle().await;
                let heap = (live() as f64 - heap0 as f64) / n as f64;
                let rss = (dstar_benchmarks::rss() as f64 - rss0 as f64) / n as f64;
                figures[b][s].push((heap, rss));
            }
            app.sessions().shutdown(Duration::from_secs(10)).await;
        }
    }
    println!("| replay ring | events per session | heap per session | RSS per session |");
    println!("| --- | ---: | ---: | ---: |");
    let spread = |values: Vec<f64>| {
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        format!(
            "{:.0} B ({:.0}–{:.0})",
            dstar_benchmarks::median(&values),
            min,
            max
        )
    };
    let mut series = Vec::new();
    for (b, (name, _)) in bounds.iter().enumerate() {
        let mut points = Vec::new();
        for (s, step) in steps.iter().enumerate() {
            let heap: Vec<f64> = figures[b][s].iter().map(|f| f.0).collect();
            let rss: Vec<f64> = figures[b][s].iter().map(|f| f.1).collect();
            points.push((*step as f64, dstar_benchmarks::median(&heap) / 1024.0));
            println!("| {name} | {step} | {} | {} |", spread(heap), spread(rss));
        }
        series.push((format!("heap, {name}"), points));
    }
    println!(
        "\n({n} sessions of a page rendering ~1 KB, {rounds} rounds: median (min–max); \
         target ≤ 8 KB per busy session)\n"
    );
    let path = dstar_benchmarks::chart::line(
        "busy_session_memory.svg",
        "Heap per live session against events received (~1 KB renders)",
        "events received",
        "KB of heap per session",
        &series,
    );
    println!("Chart: {}\n", path.display());
}
