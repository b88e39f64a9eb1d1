//! Compressed streams: a live todo list (twenty items, the whole page re-rendered on every
//! update, as the showcase's todos page does) receives `UPDATES` updates over one stream
//! negotiated as identity, gzip or br from the same server in the same run.
//!
//! Per coding: the stream's body bytes on the wire for the updates (chunk framing not counted)
//! against identity's; the server's CPU time per update (the whole process: event request,
//! handler, render, encoding, compression, socket writes); event → patch p50, the client
//! decoding the stream as it arrives; and the extra memory a compressed stream holds: `STREAMS`
//! sessions each open a stream and receive one update, and the server's live heap (counted by
//! a global allocator) and RSS grow by so much per stream beyond identity's.
//!
//! `cargo bench -p dstar-benchmarks --bench compression` (`UPDATES`, `STREAMS`, `ROUNDS`).
// A benchmark reports its figures on standard output.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::alloc::System;
use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cap::Cap;
use dstar_benchmarks::child::{Child, Orders, child_args, tell};
use dstar_benchmarks::client::{self, Conn};
use dstar_benchmarks::pages::Todos;
use dstar_benchmarks::{median, micros, quantile};

/// The brotli decoder's output buffer. `brotli::DecompressorWriter` stops handing out output
/// once its input is used up, even when it has more decoded: its buffer must hold a whole
/// flushed frame (a browser's decoder has no such limit).
const BROTLI_OUT: usize = 1 << 20;

#[global_allocator]
static ALLOC: Cap<System> = Cap::new(System, usize::MAX);

const CODINGS: [&str; 3] = ["identity", "gzip", "br"];

fn main() {
    if let Some(args) = child_args() {
        dstar_benchmarks::runtime().block_on(client_main(args));
        return;
    }
    let updates = dstar_benchmarks::env_usize("UPDATES", 200);
    let streams = dstar_benchmarks::env_usize("STREAMS", 200);
    let rounds = dstar_benchmarks::env_usize("ROUNDS", 3);
    dstar_benchmarks::runtime().block_on(async {
        let app = dstar_benchmarks::compressing_app(dstar_benchmarks::session_config());
        let router = dstar::router![Todos].into_router(app);
        let addr = dstar_benchmarks::serve(router).await;
        // Warm the server up (first-use allocations, lazy statics) before anything is measured.
        run_updates(addr, "gzip", 50).await;
        run_updates(addr, "br", 50).await;

        println!("# Compressed streams: a todo-like live page, {updates} updates per stream\n");
        println!(
            "| run | coding | wire bytes | uncompressed bytes | CPU µs / update | p50 µs | p90 µs | busy before |"
        );
        println!("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        let mut runs: Vec<Vec<Run>> = vec![Vec::new(); CODINGS.len()];
        for round in 1..=rounds {
            for (c, coding) in CODINGS.iter().enumerate() {
                let busy = dstar_benchmarks::wait_quiet(Duration::from_secs(60)).await;
                let run = run_updates(addr, coding, updates).await;
                println!(
                    "| {round} | {coding} | {} | {} | {:.1} | {:.1} | {:.1} | {:.0}% |",
                    run.wire,
                    run.plain,
                    run.cpu_per_update,
                    run.p50,
                    run.p90,
                    busy * 100.0
                );
                runs[c].push(run);
            }
        }

        println!("\n# Memory per stream ({streams} sessions, each stream sent one update)\n");
        println!("| run | coding | heap B / stream | RSS B / stream |");
        println!("| ---: | --- | ---: | ---: |");
        let mut memory: Vec<Vec<(f64, f64)>> = vec![Vec::new(); CODINGS.len()];
        for round in 1..=rounds {
            for (c, coding) in CODINGS.iter().enumerate() {
                dstar_benchmarks::wait_quiet(Duration::from_secs(60)).await;
                let (heap, rss) = hold_streams(addr, coding, streams).await;
                println!("| {round} | {coding} | {heap:.0} | {rss:.0} |");
                memory[c].push((heap, rss));
            }
        }

        encoder_alone(updates, 5);

        println!("\n# Summary (medians of {rounds} runs, min–max in brackets)\n");
        println!(
            "| coding | wire bytes | smaller than identity | CPU µs / update | p50 µs | extra heap B / stream | extra RSS B / stream |"
        );
        println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        let plain_wire = median(&runs[0].iter().map(|r| r.wire as f64).collect::<Vec<_>>());
        for (c, coding) in CODINGS.iter().enumerate() {
            let wire: Vec<f64> = runs[c].iter().map(|r| r.wire as f64).collect();
            let cpu: Vec<f64> = runs[c].iter().map(|r| r.cpu_per_update).collect();
            let p50: Vec<f64> = runs[c].iter().map(|r| r.p50).collect();
            // Each round's extra memory against that round's identity run.
            let heap: Vec<f64> = (0..memory[c].len())
                .map(|r| memory[c][r].0 - memory[0][r].0)
                .collect();
            let rss: Vec<f64> = (0..memory[c].len())
                .map(|r| memory[c][r].1 - memory[0][r].1)
                .collect();
            println!(
                "| {coding} | {:.0} | {:.1}x | {} | {} | {} | {} |",
                median(&wire),
                plain_wire / median(&wire),
                spread(&cpu, 1),
                spread(&p50, 1),
                spread(&heap, 0),
                spread(&rss, 0),
            );
        }
    });
}

/// The encoders alone, in this process with the server idle: the frames a todo stream carries
/// for `updates` updates (the page's markup in a `datastar-patch-elements` event), each written
/// and flushed; CPU time per frame (this process's, so the scheduler's other work on a busy
/// machine is not counted) over `runs` fresh encoders.
fn encoder_alone(updates: usize, runs: usize) {
    use dstar::compress::{Encoder, Encoding};
    use dstar_benchmarks::pages::{TODO_ITEMS, todos_html};
    let mut done = vec![false; TODO_ITEMS as usize];
    let frames: Vec<Vec<u8>> = (1..=updates as u64)
        .map(|n| {
            let at = ((n - 1) % TODO_ITEMS) as usize;
            done[at] = !done[at];
            let mut out = Vec::new();
            dstar::sse::PatchElements::new(&todos_html(&done, n)).write_to(&mut out);
            out
        })
        .collect();
    let plain: usize = frames.iter().map(Vec::len).sum();
    println!("\n# The encoders alone ({updates} frames, {plain} bytes, {runs} runs)\n");
    println!("| coding | bytes out | smaller | CPU µs / frame, median [min–max] |");
    println!("| --- | ---: | ---: | ---: |");
    for encoding in [Encoding::Gzip, Encoding::Brotli] {
        let mut times = Vec::new();
        let mut out = 0;
        for _ in 0..runs {
            let start = dstar_benchmarks::cpu_time();
            let mut encoder = Encoder::new(encoding);
            out = 0;
            for frame in &frames {
                encoder.write(frame);
                out += encoder.flush().len();
            }
            times.push(micros(dstar_benchmarks::cpu_time() - start) / updates as f64);
        }
        println!(
            "| {encoding} | {out} | {:.1}x | {} |",
            plain as f64 / out as f64,
            spread(&times, 1)
        );
    }
}

/// `median [min–max]`.
fn spread(values: &[f64], decimals: usize) -> String {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!(
        "{:.*} [{:.*}–{:.*}]",
        decimals,
        median(values),
        decimals,
        min,
        decimals,
        max
    )
}

#[derive(Debug, Clone)]
struct Run {
    wire: usize,
    plain: usize,
    cpu_per_update: f64,
    p50: f64,
    p90: f64,
}

/// One client process: a session whose stream is negotiated as `coding` gets `updates`
/// updates, one after the other; the server's CPU time is read around them.
async fn run_updates(addr: SocketAddr, coding: &str, updates: usize) -> Run {
    let mut child = Child::spawn(&[
        "updates".into(),
        coding.into(),
        addr.to_string(),
        updates.to_string(),
    ]);
    child.expect("ready").await;
    let cpu = dstar_benchmarks::cpu_time();
    child.say("go").await;
    let result = child.expect("result").await;
    let cpu = dstar_benchmarks::cpu_time() - cpu;
    child.finish().await;
    let v: Vec<f64> = result
        .split_whitespace()
        .map(|x| x.parse().expect("a number"))
        .collect();
    Run {
        p50: v[0],
        p90: v[1],
        wire: v[2] as usize,
        plain: v[3] as usize,
        cpu_per_update: micros(cpu) / updates as f64,
    }
}

/// One client process holds `streams` streams negotiated as `coding`, each having received
/// one update; the server's live heap and RSS per stream.
async fn hold_streams(addr: SocketAddr, coding: &str, streams: usize) -> (f64, f64) {
    let mut child = Child::spawn(&[
        "hold".into(),
        coding.into(),
        addr.to_string(),
        streams.to_string(),
    ]);
    child.expect("warm").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (heap, rss) = (ALLOC.allocated(), dstar_benchmarks::rss());
    child.say("go").await;
    child.expect("ready").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let heap = (ALLOC.allocated() as f64 - heap as f64) / streams as f64;
    let rss = (dstar_benchmarks::rss() as f64 - rss as f64) / streams as f64;
    child.say("quit").await;
    child.finish().await;
    (heap, rss)
}

/// A live session of the todo page seen from the client: its event request and open stream.
struct Session {
    event: Vec<u8>,
    stream: Conn,
    decoder: Decoder,
    decoded: Vec<u8>,
    wire: usize,
    plain: usize,
}

impl Session {
    async fn open(addr: SocketAddr, html: &str, coding: &str) -> Session {
        let stream_token = dstar_benchmarks::stream_token(html);
        let event_token = dstar_benchmarks::event_token(html);
        let mut headers = vec![("x-dstar-token", stream_token.as_str())];
        if coding != "identity" {
            headers.push(("accept-encoding", coding));
        }
        let mut stream = Conn::connect(addr).await.expect("connect the stream");
        let head = stream
            .open_stream_with_headers(&client::request("POST", "/__dstar/stream", &headers, b"{}"))
            .await
            .expect("open the stream");
        let got = head
            .iter()
            .find(|(name, _)| name == "content-encoding")
            .map_or("identity", |(_, value)| value.as_str());
        assert_eq!(got, coding, "the negotiated coding");
        Session {
            event: client::request(
                "POST",
                "/__dstar/event",
                &[
                    ("x-dstar-token", &event_token),
                    ("x-dstar-event", "toggle"),
                    ("content-type", "application/json"),
                ],
                b"{}",
            ),
            stream,
            decoder: Decoder::new(coding),
            decoded: Vec::new(),
            wire: 0,
            plain: 0,
        }
    }

    /// Reads and decodes the stream until update `n`'s page has arrived.
    async fn wait_for_update(&mut self, n: u64) {
        let marker = Todos::marker(n);
        loop {
            if let Some(at) = find(&self.decoded, marker.as_bytes()) {
                self.decoded.drain(..at + marker.len());
                return;
            }
            let chunk = self.stream.next_chunk().await.expect("a stream chunk");
            assert!(!chunk.is_empty(), "the stream ended");
            self.wire += chunk.len();
            let plain = self.decoder.feed(&chunk);
            self.plain += plain.len();
            self.decoded.extend_from_slice(&plain);
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

enum Decoder {
    Identity,
    Gzip(Box<flate2::write::GzDecoder<Vec<u8>>>),
    Brotli(Box<brotli::DecompressorWriter<Vec<u8>>>),
}

impl Decoder {
    fn new(coding: &str) -> Decoder {
        match coding {
            "identity" => Decoder::Identity,
            "gzip" => Decoder::Gzip(Box::new(flate2::write::GzDecoder::new(Vec::new()))),
            "br" => Decoder::Brotli(Box::new(brotli::DecompressorWriter::new(
                Vec::new(),
                BROTLI_OUT,
            ))),
            other => panic!("unknown coding {other}"),
        }
    }

    fn feed(&mut self, chunk: &[u8]) -> Vec<u8> {
        match self {
            Decoder::Identity => chunk.to_vec(),
            Decoder::Gzip(d) => {
                d.write_all(chunk).expect("gzip decodes");
                d.flush().expect("gzip flushes");
                std::mem::take(d.get_mut())
            }
            Decoder::Brotli(d) => {
                d.write_all(chunk).expect("br decodes");
                d.flush().expect("br flushes");
                std::mem::take(d.get_mut())
            }
        }
    }
}

async fn client_main(args: Vec<String>) {
    let [role, coding, addr, n] = &args[..] else {
        panic!("usage: <updates|hold> <coding> <addr> <n>");
    };
    let addr: SocketAddr = addr.parse().expect("an address");
    let n: usize = n.parse().expect("a count");
    let mut orders = Orders::new();
    match role.as_str() {
        "updates" => {
            let mut events = Conn::connect(addr).await.expect("connect");
            let html = events
                .request(&client::request("GET", "/todos", &[], b""))
                .await
                .expect("GET /todos")
                .text();
            let mut session = Session::open(addr, &html, coding).await;
            tell("ready", "");
            assert_eq!(orders.next().await, "go");
            let mut times = Vec::with_capacity(n);
            for i in 1..=n as u64 {
                let start = Instant::now();
                events.send(&session.event).await.expect("send the event");
                session.wait_for_update(i).await;
                times.push(start.elapsed());
                let reply = events.read_response().await.expect("the event's answer");
                assert_eq!(reply.status, 204, "{}", reply.text());
            }
            times.sort();
            tell(
                "result",
                &format!(
                    "{:.2} {:.2} {} {}",
                    micros(quantile(&times, 0.5)),
                    micros(quantile(&times, 0.9)),
                    session.wire,
                    session.plain
                ),
            );
        }
        "hold" => {
            let warm = open_and_update(addr, coding, 10).await;
            tell("warm", "");
            assert_eq!(orders.next().await, "go");
            let held = open_and_update(addr, coding, n).await;
            tell("ready", &held.len().to_string());
            let _ = orders.next().await;
            drop((warm, held));
        }
        other => panic!("unknown role {other}"),
    }
}

/// Opens `n` sessions of the todo page with streams negotiated as `coding`, and gives each one
/// update (waiting until its stream has it).
async fn open_and_update(addr: SocketAddr, coding: &str, n: usize) -> Vec<Session> {
    let pages = client::get_many(addr, "/todos", n, 4).await;
    let mut sessions = Vec::with_capacity(n);
    for html in &pages {
        sessions.push(Session::open(addr, html, coding).await);
    }
    let mut events = Conn::connect(addr).await.expect("connect");
    for session in &mut sessions {
        let reply = events.request(&session.event).await.expect("an update");
        assert_eq!(reply.status, 204, "{}", reply.text());
        session.wait_for_update(1).await;
    }
    sessions
}
