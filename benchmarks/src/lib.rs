//! dstar's benchmarks: live session memory, event round trips, broadcast fan-out and stateless
//! event throughput, each against a hand-written axum baseline measured in the same run.
//!
//! The benches are in `benches/` (`cargo bench -p dstar-benchmarks --bench <name>`); this
//! library holds what they share: the pages, the baselines, a load client, and the plumbing
//! that runs the client in a second process.
// Benchmarks report their figures on standard output.
#![allow(clippy::print_stdout, clippy::print_stderr)]

pub mod baseline;
pub mod chart;
pub mod child;
pub mod client;
pub mod pages;

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::Query;
use axum::routing::post;
use dstar::session::SessionConfig;
use dstar::sse::PatchElements;
use dstar::token::Keys;
use dstar::{App, Message, Templates};

use crate::baseline::Baseline;
use crate::pages::{COUNTER_TEMPLATE, COUNTER_TEMPLATE_SOURCE, Count, Counter, Idle, TOPIC};

/// The signing secret of the benchmark app (also used by the CSRF baseline).
pub const SECRET: &[u8] = b"dstar benchmark secret (a test key of 32+ bytes)";

/// Session settings for benchmarks: defaults, except that sessions wait long enough for
/// thousands of streams to connect.
pub fn session_config() -> SessionConfig {
    SessionConfig {
        connect_deadline: Duration::from_secs(600),
        reconnect_grace: Duration::from_secs(600),
        ..SessionConfig::default()
    }
}

/// The dstar app the benches serve.
pub fn app(config: SessionConfig) -> App {
    App::builder()
        .secret_key(SECRET)
        .sessions(config)
        .templates(Templates::new().with(COUNTER_TEMPLATE, COUNTER_TEMPLATE_SOURCE))
        .build()
        .expect("the benchmark app")
}

/// dstar's pages, the baselines, `POST /bench/publish?n=K` (publishes `K` to every
/// [`Counter`] session; answers how many got it and how long the call took, in µs) and
/// `POST /bench/broadcast?n=K` (the same patch encoded once, `PubSub::broadcast`) on one
/// router.
pub fn router(app: &App) -> Router {
    let publisher = app.clone();
    let broadcaster = app.clone();
    dstar::router![Idle, Counter, pages::TemplatedCounter, Count, pages::Busy]
        .into_router(app.clone())
        .route(
            "/bench/publish",
            post(move |Query(q): Query<PublishQuery>| {
                let app = publisher.clone();
                async move {
                    let start = std::time::Instant::now();
                    let sent = app.pubsub().publish(TOPIC, Message::new(q.n));
                    format!("{sent} {:.1}", start.elapsed().as_secs_f64() * 1e6)
                }
            }),
        )
        .route(
            "/bench/broadcast",
            post(move |Query(q): Query<PublishQuery>| {
                let app = broadcaster.clone();
                async move {
                    let start = std::time::Instant::now();
                    let html = format!("<p id=\"n\">{}</p>", q.n);
                    let sent = app
                        .pubsub()
                        .broadcast(TOPIC, PatchElements::new(&html).to_bytes());
                    format!("{sent} {:.1}", start.elapsed().as_secs_f64() * 1e6)
                }
            }),
        )
        .merge(Baseline::new(Some(Keys::new(SECRET))).router())
}

#[derive(serde::Deserialize)]
struct PublishQuery {
    n: u64,
}

/// Serves `router` on `127.0.0.1` at a port the OS picks.
pub async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1");
    let addr = listener.local_addr().expect("the bound address");
    tokio::spawn(async move {
        axum::serve(listener, router).await.expect("serve");
    });
    addr
}

/// A multi-threaded runtime with one worker per core (two on the benchmark machine).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// A multi-threaded runtime with `workers` worker threads.
pub fn runtime_with(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers.max(1))
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// The `q` quantile (0..=1) of sorted `values`.
pub fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// Microseconds, for tables.
pub fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Milliseconds, for tables.
pub fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The median of `values` (unsorted).
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return 0.0;
    }
    let mid = v.len() / 2;
    if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    }
}

/// `median (min–max)` of `values`, with `digits` decimals: how the benches report a figure
/// over several runs.
pub fn spread(values: &[f64], digits: usize) -> String {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!(
        "{:.digits$} ({:.digits$}–{:.digits$})",
        median(values),
        min,
        max
    )
}

/// The stream token in a live page's HTML.
pub fn stream_token(html: &str) -> String {
    dstar_tests::token_after(html, "_dstarStream")
}

/// The event (CSRF) token in a live page's HTML.
pub fn event_token(html: &str) -> String {
    dstar_tests::token_after(html, "_dstarToken")
}

/// CPU time this process has used so far, summed over its live threads (from
/// `/proc/self/task/*/schedstat`, in nanoseconds; Linux only, zero elsewhere).
pub fn cpu_time() -> Duration {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    let mut total = 0u64;
    for task in tasks.flatten() {
        if let Ok(stat) = std::fs::read_to_string(task.path().join("schedstat")) {
            total += stat
                .split_whitespace()
                .next()
                .and_then(|ns| ns.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Duration::from_nanos(total)
}

/// Waits (up to `max`) until the machine is quiet: less than 10% of its CPU time busy over a
/// one-second sample (`/proc/stat`). Other work on a 2-core machine skews every figure, so the
/// benches call this before each measured run. Returns the last busy fraction; prints a
/// warning when it gave up waiting.
pub async fn wait_quiet(max: Duration) -> f64 {
    let deadline = tokio::time::Instant::now() + max;
    loop {
        let before = cpu_counters();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let after = cpu_counters();
        let (busy, total) = (
            after.0.saturating_sub(before.0),
            after.1.saturating_sub(before.1),
        );
        let fraction = if total == 0 {
            0.0
        } else {
            busy as f64 / total as f64
        };
        if fraction < 0.10 {
            return fraction;
        }
        if tokio::time::Instant::now() >= deadline {
            println!(
                "(warning: the machine stayed busy, {:.0}% of CPU, while waiting to measure)",
                fraction * 100.0
            );
            return fraction;
        }
    }
}

/// (busy, total) jiffies of all CPUs from `/proc/stat`.
fn cpu_counters() -> (u64, u64) {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return (0, 0);
    };
    let Some(line) = stat.lines().find(|line| line.starts_with("cpu ")) else {
        return (0, 0);
    };
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let total: u64 = fields.iter().take(8).sum();
    let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// A count from the environment (`ROUNDS=5`), or `default`.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Installs what a production server runs with, unless `DSTAR_BENCH_OBSERVE=0`: a `tracing`
/// subscriber at `info` (plain text, as a server logs to a file or journal, formatted to a sink
/// so only the spans' cost is measured, not a terminal's) and the Prometheus metrics recorder
/// (without its HTTP listener). `DSTAR_BENCH_OBSERVE=tracing` or `=metrics` installs only that
/// one, to tell their costs apart. Returns whether it installed anything, for the report.
pub fn observe_if_asked() -> bool {
    let what = std::env::var("DSTAR_BENCH_OBSERVE").unwrap_or_default();
    if what == "0" {
        return false;
    }
    if what != "metrics" {
        tracing_subscriber::fmt()
            .with_writer(std::io::sink)
            .with_ansi(false)
            .with_max_level(tracing_subscriber::filter::LevelFilter::INFO)
            .init();
    }
    if what == "tracing" {
        return true;
    }
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).expect("no other metrics recorder");
    // What the exporter's HTTP listener does between scrapes: fold the histograms' buffered
    // samples into their summaries. Without it every recorded sample is kept, which a bench
    // would count as the sessions' memory.
    std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(std::time::Duration::from_millis(100));
                handle.run_upkeep();
            }
        })
        .expect("spawn the metrics upkeep thread");
    true
}

/// The dstar app of the compression bench: [`app`] with compressed streams on (clients that
/// send no `Accept-Encoding` get identity from the same server).
pub fn compressing_app(config: SessionConfig) -> App {
    App::builder()
        .secret_key(SECRET)
        .sessions(config)
        .compress_streams(true)
        .build()
        .expect("the benchmark app")
}

/// The resident set size of this process, in bytes (`VmRSS` in `/proc/self/status`; Linux
/// only, zero elsewhere).
pub fn rss() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|kb| {
                    kb.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<usize>()
                        .ok()
                })
        })
        .map_or(0, |kb| kb * 1024)
}
