//! Broadcast to N live streams over real loopback connections: the time from the publish
//! request to the last of N streams receiving the message.
//!
//! - dstar: N `Counter` sessions subscribed to one topic; `POST /bench/publish?n=K` calls
//!   `app.pubsub().publish(topic, K)`, and every session runs `info`, re-renders and queues its
//!   own patch.
//! - dstar shared: the same sessions; `POST /bench/broadcast?n=K` encodes the patch once and
//!   `app.pubsub().broadcast(topic, bytes)` hands the same `Bytes` to every session, which adds
//!   only its event id.
//! - hand-written: N clients with an `mpsc` channel each; `POST /raw/publish?n=K` encodes the
//!   same patch once and queues a clone of the `Bytes` on every channel.
//!
//! The client process opens the N streams, sends the publish request and timestamps each
//! stream's arrival; the server process answers with how many it queued and how long the
//! publish call itself took. Needs an open-file limit of at least N + 100 in each process.
//!
//! `cargo bench -p dstar-benchmarks --bench broadcast` (`STREAMS`, `MESSAGES`, `RUNS`).
// A benchmark reports its figures on standard output.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use dstar_benchmarks::child::{Child, Orders, child_args, tell};
use dstar_benchmarks::client::{self, Conn};
use dstar_benchmarks::{median, millis, quantile};
use tokio::sync::mpsc;

const KINDS: [(&str, &str); 3] = [
    (
        "raw",
        "hand-written: one encoded Bytes cloned into N mpsc channels",
    ),
    ("dstar", "dstar PubSub: N sessions run `info` and re-render"),
    (
        "dstar-shared",
        "dstar `PubSub::broadcast`: one encoded Bytes, each session adds its id",
    ),
];

fn main() {
    if let Some(args) = child_args() {
        dstar_benchmarks::runtime().block_on(client_main(args));
        return;
    }
    let streams = dstar_benchmarks::env_usize("STREAMS", 10_000);
    let messages = dstar_benchmarks::env_usize("MESSAGES", 10);
    let runs = dstar_benchmarks::env_usize("RUNS", 3);
    let observed = dstar_benchmarks::observe_if_asked();
    dstar_benchmarks::runtime().block_on(async {
        if observed {
            println!("(with a tracing subscriber at `info` and a metrics recorder installed)\n");
        }
        println!(
            "# Broadcast: publish → last of {streams} streams received ({messages} messages per run, real loopback sockets)\n"
        );
        println!(
            "| run | server | first message: last arrival ms | last p50 ms | last max ms | median stream p50 ms | publish call p50 ms | server CPU ms per message |"
        );
        println!("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        let mut lasts: Vec<Vec<f64>> = vec![Vec::new(); KINDS.len()];
        let mut cpus: Vec<Vec<f64>> = vec![Vec::new(); KINDS.len()];
        let mut firsts: Vec<Vec<f64>> = vec![Vec::new(); KINDS.len()];
        for run in 1..=runs {
            for (k, (kind, label)) in KINDS.iter().enumerate() {
                // A fresh app per run, so no session of an earlier run is still subscribed.
                let app = dstar_benchmarks::app(dstar_benchmarks::session_config());
                let addr = dstar_benchmarks::serve(dstar_benchmarks::router(&app)).await;
                let mut child = Child::spawn(&[
                    "broadcast".into(),
                    (*kind).into(),
                    addr.to_string(),
                    streams.to_string(),
                    messages.to_string(),
                ]);
                child.expect("begin").await;
                dstar_benchmarks::wait_quiet(Duration::from_secs(120)).await;
                let cpu = dstar_benchmarks::cpu_time();
                child.say("ok").await;
                child.expect("end").await;
                let cpu = dstar_benchmarks::cpu_time() - cpu;
                child.say("ok").await;
                let result = child.expect("result").await;
                child.finish().await;
                app.sessions().shutdown(Duration::from_secs(30)).await;
                let v: Vec<f64> = result
                    .split_whitespace()
                    .map(|x| x.parse().expect("a number"))
                    .collect();
                let cpu_per_message = millis(cpu) / messages as f64;
                println!(
                    "| {run} | {label} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} | {cpu_per_message:.1} |",
                    v[4], v[0], v[1], v[2], v[3]
                );
                lasts[k].push(v[0]);
                firsts[k].push(v[4]);
                cpus[k].push(cpu_per_message);
            }
        }
        let raw = median(&lasts[0]);
        let raw_first = median(&firsts[0]);
        let raw_cpu = median(&cpus[0]);
        let spread = |v: &[f64]| {
            let min = v.iter().copied().fold(f64::INFINITY, f64::min);
            let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            format!("{:.1} ({min:.1}–{max:.1})", median(v))
        };
        println!();
        println!(
            "| server | last-arrival p50 ms | ratio | first message, last arrival ms | ratio | server CPU ms per message | ratio |"
        );
        println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        for (k, (_, label)) in KINDS.iter().enumerate() {
            println!(
                "| {label} | {} | {:.2}x | {} | {:.2}x | {} | {:.2}x |",
                spread(&lasts[k]),
                median(&lasts[k]) / raw,
                spread(&firsts[k]),
                median(&firsts[k]) / raw_first,
                spread(&cpus[k]),
                median(&cpus[k]) / raw_cpu
            );
        }
        println!("\nmedian (min–max) of {runs} runs; ratios are of the medians.");
    });
}

async fn client_main(args: Vec<String>) {
    let [role, kind, addr, n, messages] = &args[..] else {
        panic!("usage: broadcast <kind> <addr> <n> <messages>");
    };
    assert_eq!(role, "broadcast");
    let addr: SocketAddr = addr.parse().expect("an address");
    let n: usize = n.parse().expect("a count");
    let messages: usize = messages.parse().expect("a count");
    let mut orders = Orders::new();

    let (requests, publish_path) = match kind.as_str() {
        "raw" => (
            client::get_many(addr, "/raw/page", n, 4)
                .await
                .iter()
                .map(|id| client::request("POST", "/raw/stream", &[("x-client", id)], b"{}"))
                .collect::<Vec<_>>(),
            "/raw/publish",
        ),
        "dstar" | "dstar-shared" => (
            client::get_many(addr, "/live", n, 4)
                .await
                .iter()
                .map(|html| client::dstar_stream_request(html))
                .collect(),
            if kind == "dstar" {
                "/bench/publish"
            } else {
                "/bench/broadcast"
            },
        ),
        other => panic!("unknown kind {other}"),
    };
    let conns = client::open_streams(addr, requests, 64).await;
    assert_eq!(conns.len(), n);
    // Let the sessions take their streams before the first message.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let (arrivals, mut arrived) = mpsc::unbounded_channel::<(usize, Instant)>();
    for mut conn in conns {
        let arrivals = arrivals.clone();
        tokio::spawn(async move {
            for message in 1..=messages {
                let marker = format!(">{message}</p>");
                if conn.wait_for(marker.as_bytes()).await.is_err() {
                    return;
                }
                let _ = arrivals.send((message, Instant::now()));
            }
        });
    }
    drop(arrivals);

    let mut control = Conn::connect(addr).await.expect("connect");
    // The server's process reads its CPU time between `begin` and `end`.
    tell("begin", "");
    assert_eq!(orders.next().await, "ok");
    let mut last = Vec::new();
    let mut middle = Vec::new();
    let mut calls = Vec::new();
    for message in 1..=messages {
        let request = client::request("POST", &format!("{publish_path}?n={message}"), &[], b"");
        let start = Instant::now();
        let reply = control.request(&request).await.expect("publish");
        assert_eq!(reply.status, 200, "{}", reply.text());
        let reply = reply.text();
        let mut parts = reply.split_whitespace();
        let sent: usize = parts.next().and_then(|s| s.parse().ok()).expect("a count");
        let call_us: f64 = parts.next().and_then(|s| s.parse().ok()).expect("a time");
        assert_eq!(sent, n, "the publish reached {sent} of {n}");
        calls.push(Duration::from_secs_f64(call_us / 1e6));
        let mut times = Vec::with_capacity(n);
        let deadline = start + Duration::from_secs(60);
        while times.len() < n {
            let got = tokio::time::timeout_at(deadline.into(), arrived.recv())
                .await
                .expect("every stream receives the message within 60 s")
                .expect("stream readers alive");
            assert_eq!(got.0, message, "messages arrive in order");
            times.push(got.1.duration_since(start));
        }
        times.sort();
        last.push(times[n - 1]);
        middle.push(quantile(&times, 0.5));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tell("end", "");
    assert_eq!(orders.next().await, "ok");
    // The first message is reported apart: it is the one that finds every stream cold.
    let first = last[0];
    last.sort();
    middle.sort();
    calls.sort();
    tell(
        "result",
        &format!(
            "{:.3} {:.3} {:.3} {:.4} {:.3}",
            millis(quantile(&last, 0.5)),
            millis(last[last.len() - 1]),
            millis(quantile(&middle, 0.5)),
            millis(quantile(&calls, 0.5)),
            millis(first),
        ),
    );
}
