//! Event-to-patch round trips: the time from writing `POST /__dstar/event` to the patch it
//! causes arriving on the page's open SSE stream, against a hand-written axum app (a POST
//! handler that sends the patch into the client's `mpsc` channel, which feeds its SSE stream).
//!
//! Two loads, each run against every server in turn, `ROUNDS` times (medians and spread):
//!
//! - sequential: one tab, one event at a time (`ROUNDTRIPS` of them after a warm-up): p50,
//!   p99 and the server's CPU per event;
//! - in flight: `TABS` tabs (32 by default), each with its own stream and event connection,
//!   making round trips at once (`PER_TAB` each), so that many events are in flight: events
//!   per second and the server's CPU per event.
//!
//! The server also holds `BACKGROUND` idle sessions (and as many baseline clients), as a
//! server with other users does. The client runs in a second process; the same client code
//! drives every server. `DSTAR_BENCH_OBSERVE=0` measures without the tracing subscriber and
//! metrics recorder a production server runs with.
//!
//! `cargo bench -p dstar-benchmarks --bench roundtrip`.
// A benchmark reports its figures on standard output.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use dstar_benchmarks::child::{Child, child_args, tell};
use dstar_benchmarks::client::{self, Conn};
use dstar_benchmarks::{median, micros, quantile, spread};
use tower::ServiceExt;

const WARM_UP: usize = 300;

const KINDS: [(&str, &str); 3] = [
    ("raw", "hand-written axum + mpsc"),
    ("dstar", "dstar live page (render by hand)"),
    ("dstar-tpl", "dstar live page (minijinja template)"),
];

fn numbers(line: &str) -> Vec<f64> {
    line.split_whitespace()
        .map(|x| x.parse().expect("a number"))
        .collect()
}

fn main() {
    if let Some(args) = child_args() {
        dstar_benchmarks::runtime().block_on(client_main(args));
        return;
    }
    let n = dstar_benchmarks::env_usize("ROUNDTRIPS", 5_000);
    let rounds = dstar_benchmarks::env_usize("ROUNDS", 3);
    let tabs = dstar_benchmarks::env_usize("TABS", 32);
    let per_tab = dstar_benchmarks::env_usize("PER_TAB", 500);
    let background = dstar_benchmarks::env_usize("BACKGROUND", 1_000);
    let observed = dstar_benchmarks::observe_if_asked();
    dstar_benchmarks::runtime().block_on(async {
        println!(
            "({})\n",
            if observed {
                "with a tracing subscriber at `info` and a metrics recorder installed"
            } else {
                "no tracing subscriber, no metrics recorder"
            }
        );
        let app = dstar_benchmarks::app(dstar_benchmarks::session_config());
        let router = dstar_benchmarks::router(&app);
        for _ in 0..background {
            for path in ["/live", "/raw/page"] {
                let request = Request::get(path).body(Body::empty()).expect("request");
                let response = router.clone().oneshot(request).await.expect("infallible");
                assert!(response.status().is_success());
            }
        }
        let addr = dstar_benchmarks::serve(router).await;
        // Per kind, per round: the figures `run` returns.
        let mut sequential: Vec<Vec<Vec<f64>>> = vec![Vec::new(); KINDS.len()];
        let mut loaded: Vec<Vec<Vec<f64>>> = vec![Vec::new(); KINDS.len()];
        for _ in 0..rounds {
            for (k, (kind, _)) in KINDS.iter().enumerate() {
                if skip(kind) {
                    sequential[k].push(vec![f64::NAN; 3]);
                    loaded[k].push(vec![f64::NAN; 4]);
                    continue;
                }
                sequential[k].push(run(addr, kind, 1, WARM_UP + n).await);
                loaded[k].push(run(addr, kind, tabs, per_tab).await);
            }
        }
        println!(
            "# Event → patch round trips ({rounds} rounds; {background} idle background sessions)\n"
        );
        println!(
            "## One tab, sequential ({n} round trips after {WARM_UP} warm-up)\n\n\
             | server | p50 µs | p99 µs | server CPU µs per event | p50 vs hand-written | CPU vs hand-written |"
        );
        println!("| --- | ---: | ---: | ---: | ---: | ---: |");
        table(&sequential, &[(0, 1, true), (1, 1, true), (2, 1, true)]);
        println!(
            "\n## {tabs} tabs at once ({per_tab} round trips each: {tabs} events in flight)\n\n\
             | server | events/s | p50 µs | p99 µs | server CPU µs per event | events/s vs hand-written | CPU vs hand-written |"
        );
        println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        table(&loaded, &[(0, 0, false), (1, 1, true), (2, 1, true), (3, 1, true)]);
        println!("\nmedian (min–max) of {rounds} rounds; ratios are of the medians.");
    });
}

/// With `ONLY=<kind>` (for profiling), every other server is skipped.
fn skip(kind: &str) -> bool {
    std::env::var("ONLY").is_ok_and(|only| only != kind)
}

/// Prints one row per server: the listed columns `(index, decimals, _)` as medians with
/// spread, then the first and last column's ratio against the hand-written server.
fn table(figures: &[Vec<Vec<f64>>], columns: &[(usize, usize, bool)]) {
    let column = |k: usize, i: usize| -> Vec<f64> { figures[k].iter().map(|r| r[i]).collect() };
    let first = columns[0].0;
    let last = columns[columns.len() - 1].0;
    for (k, (_, label)) in KINDS.iter().enumerate() {
        let cells: Vec<String> = columns
            .iter()
            .map(|&(i, digits, _)| spread(&column(k, i), digits))
            .collect();
        println!(
            "| {label} | {} | {:.2}x | {:.2}x |",
            cells.join(" | "),
            median(&column(k, first)) / median(&column(0, first)),
            median(&column(k, last)) / median(&column(0, last)),
        );
    }
}

/// One client run of `tabs` tabs making `per_tab` round trips each. Returns the client's
/// figures followed by the server's CPU µs per event: for one tab `[p50 µs, p99 µs, cpu]`
/// (the warm-up excluded from the times), for many `[events/s, p50 µs, p99 µs, cpu]`.
async fn run(addr: SocketAddr, kind: &str, tabs: usize, per_tab: usize) -> Vec<f64> {
    let mut child = Child::spawn(&[
        "roundtrip".into(),
        kind.into(),
        addr.to_string(),
        tabs.to_string(),
        per_tab.to_string(),
    ]);
    child.expect("ready").await;
    dstar_benchmarks::wait_quiet(Duration::from_secs(120)).await;
    let cpu = dstar_benchmarks::cpu_time();
    child.say("go").await;
    let result = child.expect("result").await;
    let cpu = dstar_benchmarks::cpu_time() - cpu;
    child.finish().await;
    let mut figures = numbers(&result);
    figures.push(micros(cpu) / (tabs * per_tab) as f64);
    figures
}

/// A tab on the client side: its event connection, its stream, and its event request.
struct Tab {
    events: Conn,
    stream: Conn,
    event_request: Vec<u8>,
}

impl Tab {
    async fn open(addr: SocketAddr, kind: &str) -> Tab {
        let mut events = Conn::connect(addr).await.expect("connect");
        let (stream_request, event_request) = match kind {
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
            "dstar" | "dstar-tpl" => {
                let path = if kind == "dstar" {
                    "/live"
                } else {
                    "/live-tpl"
                };
                let html = events
                    .request(&client::request("GET", path, &[], b""))
                    .await
                    .expect("GET the live page")
                    .text();
                let event = dstar_benchmarks::event_token(&html);
                (
                    client::dstar_stream_request(&html),
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
        Tab {
            events,
            stream,
            event_request,
        }
    }

    /// Makes `count` round trips; the time of each.
    async fn round_trips(&mut self, count: usize) -> Vec<Duration> {
        let mut times = Vec::with_capacity(count);
        let deadline = Instant::now() + Duration::from_secs(600);
        for i in 1..=count {
            assert!(Instant::now() < deadline, "the run took too long");
            let marker = format!(">{i}</p>");
            let start = Instant::now();
            self.events
                .send(&self.event_request)
                .await
                .expect("send the event");
            self.stream
                .wait_for(marker.as_bytes())
                .await
                .expect("the patch on the stream");
            times.push(start.elapsed());
            let reply = self
                .events
                .read_response()
                .await
                .expect("the event's answer");
            assert_eq!(reply.status, 204, "{}", reply.text());
        }
        times
    }
}

async fn client_main(args: Vec<String>) {
    let [role, kind, addr, tabs, per_tab] = &args[..] else {
        panic!("usage: roundtrip <kind> <addr> <tabs> <per tab>");
    };
    assert_eq!(role, "roundtrip");
    let addr: SocketAddr = addr.parse().expect("an address");
    let tabs: usize = tabs.parse().expect("a count");
    let per_tab: usize = per_tab.parse().expect("a count");
    let mut opened = Vec::with_capacity(tabs);
    for _ in 0..tabs {
        opened.push(Tab::open(addr, kind).await);
    }
    let mut orders = dstar_benchmarks::child::Orders::new();
    tell("ready", "");
    assert_eq!(orders.next().await, "go");
    if tabs == 1 {
        let mut times = opened[0].round_trips(per_tab).await;
        // The warm-up is left out of the times (not of the server's CPU).
        let mut times = times.split_off(WARM_UP.min(times.len()));
        times.sort();
        tell(
            "result",
            &format!(
                "{:.2} {:.2}",
                micros(quantile(&times, 0.5)),
                micros(quantile(&times, 0.99))
            ),
        );
        return;
    }
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for mut tab in opened {
        tasks.spawn(async move { tab.round_trips(per_tab).await });
    }
    let mut times = Vec::with_capacity(tabs * per_tab);
    while let Some(done) = tasks.join_next().await {
        times.extend(done.expect("a tab"));
    }
    let elapsed = start.elapsed();
    times.sort();
    tell(
        "result",
        &format!(
            "{:.0} {:.2} {:.2}",
            times.len() as f64 / elapsed.as_secs_f64(),
            micros(quantile(&times, 0.5)),
            micros(quantile(&times, 0.99))
        ),
    );
}
