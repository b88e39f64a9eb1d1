//! Server memory per connected stream: dstar served by `App::serve` against a minimal
//! `axum::serve` SSE server, each in its own process, with the client in a third.
//!
//! - **baseline**: one route, `GET /sse`, answering axum's own `axum::response::sse::Sse` over
//!   a stream of an `mpsc` channel (whose sender the server keeps, as a server that pushes
//!   must), with axum's default keep-alive comments, served by a default `axum::serve`. No
//!   tracing subscriber and no metrics recorder: the least a real SSE server runs.
//! - **dstar**: the benchmark app's router (`dstar_benchmarks::router`, some twenty routes)
//!   served by `App::serve`, with a tracing subscriber at `info` and a metrics recorder
//!   installed as in production (`DSTAR_BENCH_OBSERVE=0` leaves them out). Each connection is
//!   a live session of the `Idle` page: the client loads the page (over four keep-alive
//!   connections) and opens its stream, so the figure is a whole connected live session.
//!
//! For each N (`CONNECTIONS`, default `1000,10000,18000`) and round (`ROUNDS`, default 3) a
//! fresh server process is started, the client opens 20 warm-up streams, the server reads its
//! own memory (live heap counted by the `cap` allocator, `VmRSS` from `/proc/self/status`,
//! anonymous memory from `/proc/self/smaps_rollup`), the client opens N more streams, and the
//! server reads its memory again. Reports per connection: medians over the rounds with the
//! spread, the ratio dstar / baseline, and draws `benchmarks/charts/connection_memory.svg`.
//!
//! `cargo bench -p dstar-benchmarks --bench connections`. Each process needs an open-file
//! limit of N + 100 (18,000 fits the 20,000 of the benchmark machine).
// A benchmark reports its figures on standard output.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::alloc::System;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use cap::Cap;
use dstar_benchmarks::child::{Child, Orders, child_args, tell};
use dstar_benchmarks::client;
use tokio::sync::mpsc;

#[global_allocator]
static ALLOC: Cap<System> = Cap::new(System, usize::MAX);

/// Streams opened before the first reading, so one-time costs (the runtime's first tasks, the
/// router's first answers, the allocator's first arenas) are not counted per connection.
const WARM_UP: usize = 20;

const KINDS: [&str; 2] = ["axum", "dstar"];

fn main() {
    if let Some(args) = child_args() {
        match args.first().map(String::as_str) {
            Some("server") => server_main(&args[1]),
            Some("client") => dstar_benchmarks::runtime().block_on(client_main(&args[1..])),
            other => panic!("unknown role {other:?}"),
        }
        return;
    }
    let counts: Vec<usize> = std::env::var("CONNECTIONS")
        .unwrap_or_else(|_| "1000,10000,18000".into())
        .split(',')
        .map(|n| {
            n.trim()
                .parse()
                .expect("CONNECTIONS: comma-separated counts")
        })
        .collect();
    let rounds = dstar_benchmarks::env_usize("ROUNDS", 3).max(1);
    dstar_benchmarks::runtime().block_on(coordinate(&counts, rounds));
}

/// Memory of the server process at one reading, in bytes.
#[derive(Debug, Clone, Copy)]
struct Memory {
    heap: f64,
    rss: f64,
    anon: f64,
}

impl Memory {
    fn parse(line: &str) -> Memory {
        let v: Vec<f64> = line
            .split_whitespace()
            .map(|x| x.parse().expect("a byte count"))
            .collect();
        Memory {
            heap: v[0],
            rss: v[1],
            anon: v[2],
        }
    }

    fn per(self, before: Memory, n: usize) -> Memory {
        let n = n as f64;
        Memory {
            heap: (self.heap - before.heap) / n,
            rss: (self.rss - before.rss) / n,
            anon: (self.anon - before.anon) / n,
        }
    }
}

async fn coordinate(counts: &[usize], rounds: usize) {
    println!("# Server memory per connected stream (each server in its own process)\n");
    let quiet = dstar_benchmarks::wait_quiet(Duration::from_secs(60)).await;
    println!("(CPU busy before the runs: {:.0}%)\n", quiet * 100.0);
    // [n][kind] -> per-round figures.
    let mut figures = vec![vec![Vec::new(); KINDS.len()]; counts.len()];
    for round in 0..rounds {
        for (c, &n) in counts.iter().enumerate() {
            for (k, kind) in KINDS.iter().enumerate() {
                let per = measure(kind, n).await;
                println!(
                    "round {round}: N = {n}: {kind}: heap {:.0} B, RSS {:.0} B, anon {:.0} B per connection",
                    per.heap, per.rss, per.anon
                );
                figures[c][k].push(per);
            }
        }
    }
    println!();
    report(counts, rounds, &figures);
}

/// One server process, one client process, N streams: the server's memory per stream.
async fn measure(kind: &str, n: usize) -> Memory {
    let mut server = Child::spawn(&["server".into(), kind.into()]);
    let addr = server.expect("listening").await;
    let mut client = Child::spawn(&["client".into(), kind.into(), addr, n.to_string()]);
    client.expect("warm").await;
    let before = reading(&mut server).await;
    client.say("go").await;
    let opened: usize = client.expect("ready").await.parse().expect("a count");
    assert_eq!(opened, WARM_UP + n, "every stream opened");
    let after = reading(&mut server).await;
    client.say("quit").await;
    client.finish().await;
    server.say("quit").await;
    server.finish().await;
    after.per(before, n)
}

/// Lets the server finish what the last answers started (its tasks' first polls, the session
/// tasks' start), then asks it for its memory.
async fn reading(server: &mut Child) -> Memory {
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.say("measure").await;
    Memory::parse(&server.expect("memory").await)
}

fn report(counts: &[usize], rounds: usize, figures: &[Vec<Vec<Memory>>]) {
    let spread = |values: &[f64]| {
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (dstar_benchmarks::median(values), min, max)
    };
    let cell = |(median, min, max): (f64, f64, f64)| format!("{median:.0} B ({min:.0}–{max:.0})");
    let ratio = |dstar: &[f64], axum: &[f64]| {
        let ratios: Vec<f64> = dstar.iter().zip(axum).map(|(d, a)| d / a).collect();
        let (median, min, max) = spread(&ratios);
        format!("{median:.2}x ({min:.2}–{max:.2})")
    };
    println!("| N | server | RSS per connection | anon per connection | heap per connection |");
    println!("| ---: | --- | ---: | ---: | ---: |");
    let mut series: Vec<(String, Vec<(f64, f64)>)> = KINDS
        .iter()
        .map(|kind| (server_name(kind).replace('`', ""), Vec::new()))
        .collect();
    for (c, n) in counts.iter().enumerate() {
        for (k, kind) in KINDS.iter().enumerate() {
            let of = |f: fn(&Memory) -> f64| figures[c][k].iter().map(f).collect::<Vec<f64>>();
            let (rss, anon, heap) = (of(|m| m.rss), of(|m| m.anon), of(|m| m.heap));
            series[k].1.push((*n as f64, spread(&rss).0 / 1024.0));
            println!(
                "| {n} | {} | {} | {} | {} |",
                server_name(kind),
                cell(spread(&rss)),
                cell(spread(&anon)),
                cell(spread(&heap))
            );
        }
        let of =
            |k: usize, f: fn(&Memory) -> f64| figures[c][k].iter().map(f).collect::<Vec<f64>>();
        println!(
            "| {n} | **dstar / axum** | {} | {} | {} |",
            ratio(&of(1, |m| m.rss), &of(0, |m| m.rss)),
            ratio(&of(1, |m| m.anon), &of(0, |m| m.anon)),
            ratio(&of(1, |m| m.heap), &of(0, |m| m.heap)),
        );
    }
    println!(
        "\n(median (min–max) of {rounds} rounds, a fresh pair of processes each; ratios per round; \
         target: dstar ≤ 0.75x the baseline's RSS)\n"
    );
    let path = dstar_benchmarks::chart::line(
        "connection_memory.svg",
        "Server RSS per connected stream (median of rounds)",
        "connected streams",
        "KB of server RSS per connection",
        &series,
    );
    println!("Chart: {}\n", path.display());
}

/// How the tables and the chart name each server.
fn server_name(kind: &str) -> &'static str {
    match kind {
        "axum" => "minimal `axum::serve` SSE server",
        _ => "dstar `App::serve`, `Idle` live session",
    }
}

/// The server process: serves `kind`, says `listening ADDR`, then answers `measure` with
/// `memory HEAP RSS ANON` until told anything else.
fn server_main(kind: &str) {
    let runtime = dstar_benchmarks::runtime();
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("the bound address");
        match kind {
            "axum" => {
                let router = baseline_router();
                tokio::spawn(async move {
                    axum::serve(listener, router).await.expect("serve");
                });
            }
            "dstar" => {
                dstar_benchmarks::observe_if_asked();
                let app = dstar_benchmarks::app(dstar_benchmarks::session_config());
                let router = dstar_benchmarks::router(&app);
                tokio::spawn(async move {
                    app.serve_listener(listener, router, std::future::pending())
                        .await;
                });
            }
            other => panic!("unknown server {other}"),
        }
        tell("listening", &addr.to_string());
        let mut orders = Orders::new();
        while orders.next().await == "measure" {
            let heap = ALLOC.allocated();
            tell(
                "memory",
                &format!(
                    "{heap} {} {}",
                    proc_kb("status", "VmRSS:"),
                    proc_kb("smaps_rollup", "Anonymous:")
                ),
            );
        }
    });
    // The client has closed its streams; nothing is left to wind down.
    std::process::exit(0);
}

/// A `kB` field of `/proc/self/<file>`, in bytes (zero where there is no `/proc`).
fn proc_kb(file: &str, field: &str) -> usize {
    std::fs::read_to_string(format!("/proc/self/{file}"))
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with(field))?;
            line.split_whitespace().nth(1)?.parse::<usize>().ok()
        })
        .map_or(0, |kb| kb * 1024)
}

/// The minimal SSE server: each `GET /sse` gets a channel whose sender the server keeps and
/// whose receiver is the response's stream.
fn baseline_router() -> Router {
    let senders: Arc<Mutex<Vec<mpsc::Sender<Event>>>> = Arc::default();
    Router::new().route("/sse", get(sse)).with_state(senders)
}

async fn sse(
    State(senders): State<Arc<Mutex<Vec<mpsc::Sender<Event>>>>>,
) -> Sse<axum::response::sse::KeepAliveStream<Events>> {
    let (sender, receiver) = mpsc::channel(16);
    senders
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(sender);
    Sse::new(Events(receiver)).keep_alive(KeepAlive::default())
}

/// A channel's receiver as a stream of SSE events.
struct Events(mpsc::Receiver<Event>);

impl futures_core::Stream for Events {
    type Item = Result<Event, Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().0.poll_recv(cx).map(|event| event.map(Ok))
    }
}

/// The client process: opens `WARM_UP` streams, says `warm`, waits for `go`, opens N more,
/// says `ready COUNT`, and holds them until the next line.
async fn client_main(args: &[String]) {
    let [kind, addr, n] = args else {
        panic!("usage: client <axum|dstar> <addr> <n>");
    };
    let addr: SocketAddr = addr.parse().expect("an address");
    let n: usize = n.parse().expect("a count");
    assert!(kind == "dstar" || kind == "axum", "unknown kind {kind}");
    client::hold_streams(addr, kind == "dstar", WARM_UP, n).await;
}
