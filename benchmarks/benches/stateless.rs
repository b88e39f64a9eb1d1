//! Stateless event throughput: requests per second of `POST /count` (a dstar stateless page
//! whose `increment` event parses `{"count": n}` and answers a one-shot
//! `datastar-patch-signals` with `n + 1`) against hand-written axum handlers doing the same,
//! driven by `wrk` (Debian package `wrk`) with the same Lua script for every server.
//!
//! - `raw`: parse the body, answer the patch.
//! - `raw + CSRF`: the same after verifying the signed token header as dstar does (dstar
//!   refuses events without it, so this is the like-for-like hand-written handler).
//!
//! The server runs on one core and `wrk` on the other (`taskset`: the bench starts itself again
//! pinned to CPU 0 with one tokio worker, and `wrk` is pinned to CPU 1), so requests/s is what
//! one server core does. `PIN=0` runs unpinned with a worker per core instead.
//!
//! `cargo bench -p dstar-benchmarks --bench stateless` (`SECONDS`, `ROUNDS`, `CONNECTIONS`).
// A benchmark reports its figures on standard output.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::Command;
use std::time::Duration;

use dstar::token::{Keys, Purpose};
use dstar_benchmarks::client::{self, Conn};
use dstar_benchmarks::median;

const TARGETS: [(&str, &str); 3] = [
    ("/raw/count", "hand-written axum handler"),
    ("/raw/count-csrf", "hand-written + CSRF token check"),
    ("/count", "dstar stateless page"),
];

const PINNED_ENV: &str = "DSTAR_BENCH_PINNED";

fn main() {
    let pin = std::env::var("PIN").map_or(true, |v| v != "0");
    if pin && std::env::var_os(PINNED_ENV).is_none() {
        // Start again on CPU 0 only.
        let exe = std::env::current_exe().expect("the bench binary's path");
        let status = Command::new("taskset")
            .args(["-c", "0"])
            .arg(exe)
            .args(std::env::args_os().skip(1))
            .env(PINNED_ENV, "1")
            .status()
            .expect("run taskset (util-linux)");
        std::process::exit(status.code().unwrap_or(1));
    }
    let seconds = dstar_benchmarks::env_usize("SECONDS", 10);
    let rounds = dstar_benchmarks::env_usize("ROUNDS", 3);
    let connections = dstar_benchmarks::env_usize("CONNECTIONS", 32);
    if Command::new("wrk").arg("--version").output().is_err() {
        println!("wrk is not installed: `apt-get install -y wrk`");
        return;
    }
    let runtime = if pin {
        dstar_benchmarks::runtime_with(1)
    } else {
        dstar_benchmarks::runtime()
    };
    if dstar_benchmarks::observe_if_asked() {
        println!("(with a tracing subscriber at `info` and a metrics recorder installed)\n");
    }
    let app = dstar_benchmarks::app(dstar_benchmarks::session_config());
    let addr = runtime.block_on(dstar_benchmarks::serve(dstar_benchmarks::router(&app)));
    let token =
        Keys::new(dstar_benchmarks::SECRET).sign(Purpose::Csrf, 0, Duration::from_secs(24 * 3600));
    let headers = [
        ("x-dstar-token", token.as_str()),
        ("x-dstar-event", "increment"),
        ("content-type", "application/json"),
    ];
    // Every server answers the same patch.
    runtime.block_on(async {
        let mut conn = Conn::connect(addr).await.expect("connect");
        for (path, label) in TARGETS {
            let response = conn
                .request(&client::request("POST", path, &headers, br#"{"count":41}"#))
                .await
                .expect("POST");
            assert_eq!(response.status, 200, "{label}: {}", response.text());
            assert_eq!(
                response.text(),
                "event: datastar-patch-signals\ndata: signals {\"count\":42}\n\n",
                "{label}"
            );
        }
    });

    let script = std::env::temp_dir().join(format!("dstar-bench-{}.lua", std::process::id()));
    let mut lua = String::from("wrk.method = \"POST\"\nwrk.body = '{\"count\":41}'\n");
    for (name, value) in headers {
        lua.push_str(&format!("wrk.headers[\"{name}\"] = \"{value}\"\n"));
    }
    std::fs::write(&script, lua).expect("write the wrk script");

    println!(
        "# Stateless events: requests/s (wrk -t1 -c{connections} -d{seconds}s, keep-alive, same Lua script; {})\n",
        if pin {
            "server pinned to CPU 0 with 1 tokio worker, wrk pinned to CPU 1"
        } else {
            "unpinned, 2 tokio workers"
        }
    );
    println!("| round | server | requests/s | latency avg | latency p99 | server CPU µs/request |");
    println!("| ---: | --- | ---: | ---: | ---: | ---: |");
    // A short warm-up of each, then interleaved rounds.
    for (path, _) in TARGETS {
        wrk(
            &script,
            &format!("http://{addr}{path}"),
            connections,
            2,
            pin,
        );
    }
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); TARGETS.len()];
    let mut cpus: Vec<Vec<f64>> = vec![Vec::new(); TARGETS.len()];
    // `ONLY=/count` runs one server alone (for profiling it).
    let only = std::env::var("ONLY").ok();
    for round in 1..=rounds {
        for (k, (path, label)) in TARGETS.iter().enumerate() {
            if only.as_deref().is_some_and(|only| only != *path) {
                continue;
            }
            runtime.block_on(dstar_benchmarks::wait_quiet(Duration::from_secs(120)));
            let cpu = dstar_benchmarks::cpu_time();
            let result = wrk(
                &script,
                &format!("http://{addr}{path}"),
                connections,
                seconds,
                pin,
            );
            let cpu = dstar_benchmarks::cpu_time() - cpu;
            let cpu_per_request = dstar_benchmarks::micros(cpu) / result.requests.max(1.0);
            println!(
                "| {round} | {label} | {:.0} | {} | {} | {cpu_per_request:.2} |",
                result.rate, result.latency, result.p99
            );
            rates[k].push(result.rate);
            cpus[k].push(cpu_per_request);
        }
    }
    let _ = std::fs::remove_file(&script);
    if only.is_some() {
        return;
    }
    let raw = median(&rates[0]);
    println!();
    println!(
        "| server | median requests/s | vs hand-written | vs hand-written + CSRF | median server CPU µs/request |"
    );
    println!("| --- | ---: | ---: | ---: | ---: |");
    let csrf = median(&rates[1]);
    for (k, (_, label)) in TARGETS.iter().enumerate() {
        let rate = median(&rates[k]);
        println!(
            "| {label} | {rate:.0} | {:.2}x | {:.2}x | {:.2} |",
            rate / raw,
            rate / csrf,
            median(&cpus[k])
        );
    }
    let ratio = median(&rates[2]) / raw;
    println!(
        "\ntarget: dstar ≥ 1.0x of the hand-written handler: {} ({ratio:.2}x)",
        if ratio >= 1.0 { "met" } else { "NOT met" }
    );
    drop(runtime);
}

struct WrkResult {
    rate: f64,
    requests: f64,
    latency: String,
    p99: String,
}

fn wrk(
    script: &std::path::Path,
    url: &str,
    connections: usize,
    seconds: usize,
    pin: bool,
) -> WrkResult {
    let mut command = if pin {
        let mut command = Command::new("taskset");
        command.args(["-c", "1", "wrk"]);
        command
    } else {
        Command::new("wrk")
    };
    let output = command
        .args([
            "-t1",
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "--latency",
            "-s",
        ])
        .arg(script)
        .arg(url)
        .output()
        .expect("run wrk");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        !text.contains("Non-2xx"),
        "wrk saw error answers from {url}:\n{text}"
    );
    let field = |prefix: &str, index: usize| {
        text.lines()
            .find(|line| line.trim_start().starts_with(prefix))
            .and_then(|line| line.split_whitespace().nth(index))
            .unwrap_or("?")
            .to_owned()
    };
    WrkResult {
        rate: field("Requests/sec:", 1).parse().unwrap_or(0.0),
        requests: text
            .lines()
            .find(|line| line.contains(" requests in "))
            .and_then(|line| line.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0.0),
        latency: field("Latency", 1),
        p99: field("99%", 1),
    }
}
