//! Event-to-patch round trip: the time from writing `POST /__dstar/event` to the patch it
//! causes arriving on the page's open SSE stream, against a hand-written axum app (a POST
//! handler that sends the patch into the client's `mpsc` channel, which feeds its SSE stream).
//!
//! The client runs in a second process with two keep-alive connections (events, stream) and
//! makes sequential round trips; the same client code drives every server.
//!
//! `cargo bench -p dstar-benchmarks --bench roundtrip` (`ROUNDTRIPS`, `ROUNDS` to change).
// A benchmark reports its figures on standard output.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use dstar_benchmarks::child::{Child, child_args, tell};
use dstar_benchmarks::client::{self, Conn};
use dstar_benchmarks::{median, micros, quantile};

const WARM_UP: usize = 300;

const KINDS: [(&str, &str); 4] = [
    ("raw", "hand-written axum + mpsc"),
    ("dstar", "dstar live page (render by hand)"),
    ("dstar-tpl", "dstar live page (minijinja template)"),
    (
        "dstar-click",
        "dstar live page (render by hand), each event with a click id as `event()` sends",
    ),
];

fn main() {
    if let Some(args) = child_args() {
        dstar_benchmarks::runtime().block_on(client_main(args));
        return;
    }
    let n = dstar_benchmarks::env_usize("ROUNDTRIPS", 2_000);
    let rounds = dstar_benchmarks::env_usize("ROUNDS", 3);
    let observed = dstar_benchmarks::observe_if_asked();
    dstar_benchmarks::runtime().block_on(async {
        if observed {
            println!("(with a tracing subscriber at `info` and a metrics recorder installed)\n");
        }
        let app = dstar_benchmarks::app(dstar_benchmarks::session_config());
        let addr = dstar_benchmarks::serve(dstar_benchmarks::router(&app)).await;
        println!(
            "# Event → patch round trip ({n} sequential round trips after {WARM_UP} warm-up, per run)\n"
        );
        println!("| run | server | p50 µs | p90 µs | p99 µs | mean µs |");
        println!("| ---: | --- | ---: | ---: | ---: | ---: |");
        let mut p50s: Vec<Vec<f64>> = vec![Vec::new(); KINDS.len()];
        let mut p99s: Vec<Vec<f64>> = vec![Vec::new(); KINDS.len()];
        for round in 1..=rounds {
            for (k, (kind, label)) in KINDS.iter().enumerate() {
                dstar_benchmarks::wait_quiet(Duration::from_secs(120)).await;
                let mut child = Child::spawn(&[
                    "roundtrip".into(),
                    (*kind).into(),
                    addr.to_string(),
                    n.to_string(),
                ]);
                let result = child.expect("result").await;
                child.finish().await;
                let v: Vec<f64> = result
                    .split_whitespace()
                    .map(|x| x.parse().expect("a number"))
                    .collect();
                println!(
                    "| {round} | {label} | {:.1} | {:.1} | {:.1} | {:.1} |",
                    v[0], v[1], v[2], v[3]
                );
                p50s[k].push(v[0]);
                p99s[k].push(v[2]);
            }
        }
        println!();
        let raw = median(&p50s[0]);
        println!("| server | median p50 µs | median p99 µs | p50 ratio vs hand-written |");
        println!("| --- | ---: | ---: | ---: |");
        for (k, (_, label)) in KINDS.iter().enumerate() {
            let p50 = median(&p50s[k]);
            println!(
                "| {label} | {p50:.1} | {:.1} | {:.2}x |",
                median(&p99s[k]),
                p50 / raw
            );
        }
        let ratio = median(&p50s[1]) / raw;
        println!(
            "\ntarget: dstar p50 within 1.2x of hand-written: {} ({ratio:.2}x)",
            if ratio <= 1.2 { "met" } else { "NOT met" }
        );
    });
}

async fn client_main(args: Vec<String>) {
    let [role, kind, addr, n] = &args[..] else {
        panic!("usage: roundtrip <kind> <addr> <n>");
    };
    assert_eq!(role, "roundtrip");
    let addr: SocketAddr = addr.parse().expect("an address");
    let n: usize = n.parse().expect("a count");

    let mut events = Conn::connect(addr).await.expect("connect");
    // `dstar-click`: each event carries its own click id, so its request is made per event.
    let mut click_token = None;
    let (stream_request, event_request) = match kind.as_str() {
        "raw" => {
            let id = events
                .request(&client::request("GET", "/raw/page", &[], b""))
                .await
                .expect("GET /raw/page")
                .text();
            (
                client::request("POST", "/raw/stream", &[("x-client", &id)], b"{}"),
                client::request(
                    "POST",
                    "/raw/event",
                    &[("x-client", &id), ("content-type", "application/json")],
                    b"{}",
                ),
            )
        }
        "dstar" | "dstar-tpl" | "dstar-click" => {
            let path = if kind == "dstar-tpl" {
                "/live-tpl"
            } else {
                "/live"
            };
            let html = events
                .request(&client::request("GET", path, &[], b""))
                .await
                .expect("GET the live page")
                .text();
            let stream = dstar_benchmarks::stream_token(&html);
            let event = dstar_benchmarks::event_token(&html);
            if kind == "dstar-click" {
                click_token = Some(event.clone());
            }
            (
                client::request(
                    "POST",
                    "/__dstar/stream",
                    &[("x-dstar-token", &stream)],
                    b"{}",
                ),
                client::request(
                    "POST",
                    "/__dstar/event",
                    &[
                        ("x-dstar-token", &event),
                        ("x-dstar-event", "bump"),
                        ("content-type", "application/json"),
                    ],
                    b"{}",
                ),
            )
        }
        other => panic!("unknown kind {other}"),
    };
    let mut stream = Conn::connect(addr).await.expect("connect the stream");
    stream
        .open_stream(&stream_request)
        .await
        .expect("open the stream");

    let mut times = Vec::with_capacity(n);
    let deadline = Instant::now() + Duration::from_secs(300);
    for i in 1..=WARM_UP + n {
        assert!(Instant::now() < deadline, "the run took too long");
        let marker = format!(">{i}</p>");
        let clicked = click_token.as_ref().map(|token| {
            client::request(
                "POST",
                "/__dstar/event",
                &[
                    ("x-dstar-token", token),
                    ("x-dstar-event", "bump"),
                    ("x-dstar-click", &format!("c{i}")),
                    ("content-type", "application/json"),
                ],
                b"{}",
            )
        });
        let start = Instant::now();
        events
            .send(clicked.as_ref().unwrap_or(&event_request))
            .await
            .expect("send the event");
        stream
            .wait_for(marker.as_bytes())
            .await
            .expect("the patch on the stream");
        let elapsed = start.elapsed();
        let reply = events.read_response().await.expect("the event's answer");
        assert_eq!(reply.status, 204, "{}", reply.text());
        if i > WARM_UP {
            times.push(elapsed);
        }
    }
    times.sort();
    let mean = times.iter().sum::<Duration>() / times.len() as u32;
    tell(
        "result",
        &format!(
            "{:.2} {:.2} {:.2} {:.2}",
            micros(quantile(&times, 0.5)),
            micros(quantile(&times, 0.9)),
            micros(quantile(&times, 0.99)),
            micros(mean)
        ),
    );
}
