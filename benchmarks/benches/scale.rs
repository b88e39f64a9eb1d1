//! Costs that must stay linear: creating, publishing to and reaping many live sessions.
//!
//! In-process, no sockets: page loads go through the router with tower `oneshot`, in steps of
//! `STEP` sessions up to `SESSIONS` (default 100,000), for pages side by side: `Idle` (no
//! subscription), `Counter` (subscribed to one topic that every session shares, the worst
//! case for a per-topic structure), and `Counter` again with one publish to all before the
//! reaping. For each step it records the wall time and the process CPU
//! per session created; then one `publish` to the shared topic reaches every `Counter` session
//! (and the bench waits until they have all handled it); then every session is ended (`Registry::shutdown`, which runs the same teardown as a reaped
//! session: unsubscribe, free the slot) and that CPU is recorded. Three runs, medians and spread.
//!
//! `cargo bench -p dstar-benchmarks --bench scale` (`SESSIONS`, `STEP`, `RUNS` change the
//! sizes). Writes `benchmarks/charts/scale.svg`: microseconds per session created against
//! sessions already live.
// A benchmark reports its figures on standard output.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use dstar::session::SessionConfig;
use dstar_benchmarks::{chart, cpu_time, median, micros, spread};
use tower::ServiceExt;

struct Run {
    /// Per step: (live sessions after the step, wall µs per session, CPU µs per session).
    steps: Vec<(usize, f64, f64)>,
    /// Wall time of one publish to every session of the page (zero for `Idle`).
    publish: Duration,
    /// CPU time to end every session.
    reap_cpu: Duration,
    /// Wall time to end every session.
    reap_wall: Duration,
}

fn main() {
    let sessions = dstar_benchmarks::env_usize("SESSIONS", 100_000);
    let step = dstar_benchmarks::env_usize("STEP", 10_000).max(1);
    let runs = dstar_benchmarks::env_usize("RUNS", 3).max(1);
    let runtime = dstar_benchmarks::runtime();
    let observed = dstar_benchmarks::observe_if_asked();
    runtime.block_on(async {
        if observed {
            println!("(with a tracing subscriber at `info` and a metrics recorder installed)\n");
        }
        println!("# Creating, publishing to and reaping {sessions} live sessions\n");
        let pages = [
            ("Idle", "/idle", "no subscription"),
            ("Counter", "/live", "all subscribed to one topic"),
            ("Counter", "/live", "subscribed, after one publish to all"),
        ];
        let mut results: Vec<Vec<Run>> = pages.iter().map(|_| Vec::new()).collect();
        for run in 0..runs {
            for (i, (name, path, _)) in pages.iter().enumerate() {
                dstar_benchmarks::wait_quiet(Duration::from_secs(60)).await;
                let result = one_run(path, i == 2, sessions, step).await;
                println!(
                    "run {}: {name}: created in {:.2} s, reaped in {:.2} s CPU",
                    run + 1,
                    result.steps.iter().map(|s| s.1).sum::<f64>() * step as f64 / 1e6,
                    result.reap_cpu.as_secs_f64()
                );
                results[i].push(result);
            }
        }
        report(&pages, &results, sessions);
    });
}

async fn one_run(path: &str, publish: bool, sessions: usize, step: usize) -> Run {
    let config = SessionConfig {
        max_sessions: sessions + 1,
        ..dstar_benchmarks::session_config()
    };
    let app = dstar_benchmarks::app(config);
    let router = dstar_benchmarks::router(&app);
    let mut steps = Vec::new();
    let mut live = 0;
    while live < sessions {
        let n = step.min(sessions - live);
        let (wall, cpu) = (Instant::now(), cpu_time());
        for _ in 0..n {
            load(&router, path).await;
        }
        let (wall, cpu) = (wall.elapsed(), cpu_time() - cpu);
        live += n;
        steps.push((live, micros(wall) / n as f64, micros(cpu) / n as f64));
    }
    assert_eq!(
        app.sessions().len(),
        sessions,
        "every page load kept its session"
    );
    let publish = if publish {
        let start = Instant::now();
        let reached = app
            .pubsub()
            .publish(dstar_benchmarks::pages::TOPIC, dstar::Message::new(1u64));
        let publish = start.elapsed();
        assert_eq!(reached, sessions, "the publish reached every session");
        // The sessions run `info` and re-render after the call returns: let them finish, so
        // their work is not counted as reaping.
        settle_cpu().await;
        publish
    } else {
        Duration::ZERO
    };
    let (wall, cpu) = (Instant::now(), cpu_time());
    app.sessions().shutdown(Duration::from_secs(600)).await;
    let (reap_wall, reap_cpu) = (wall.elapsed(), cpu_time() - cpu);
    assert_eq!(app.sessions().tasks(), 0, "every session ended");
    Run {
        steps,
        publish,
        reap_cpu,
        reap_wall,
    }
}

/// Waits (up to 60 s) until the process has used less than 2 ms of CPU in 100 ms.
async fn settle_cpu() {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let before = cpu_time();
        tokio::time::sleep(Duration::from_millis(100)).await;
        if cpu_time() - before < Duration::from_millis(2) || Instant::now() > deadline {
            return;
        }
    }
}

async fn load(router: &Router, path: &str) {
    let request = Request::get(path).body(Body::empty()).expect("request");
    let response = router.clone().oneshot(request).await.expect("infallible");
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    // The page's HTML is dropped unread, as a client that has received it would.
    drop(response);
}

fn report(pages: &[(&str, &str, &str)], results: &[Vec<Run>], sessions: usize) {
    println!(
        "\n| page | µs CPU per session, first step | µs CPU per session, last step | \
         last / first | one publish to all | reaping all: CPU | reaping all: wall |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    let mut reap_medians = Vec::new();
    for ((name, _, what), runs) in pages.iter().zip(results) {
        let first: Vec<f64> = runs.iter().map(|r| r.steps[0].2).collect();
        let last: Vec<f64> = runs.iter().map(|r| r.steps[r.steps.len() - 1].2).collect();
        let growth: Vec<f64> = first.iter().zip(&last).map(|(f, l)| l / f).collect();
        let publish: Vec<f64> = runs.iter().map(|r| r.publish.as_secs_f64() * 1e3).collect();
        let reap_cpu: Vec<f64> = runs.iter().map(|r| r.reap_cpu.as_secs_f64()).collect();
        let reap_wall: Vec<f64> = runs.iter().map(|r| r.reap_wall.as_secs_f64()).collect();
        reap_medians.push(median(&reap_cpu));
        let publish = if publish.iter().all(|p| *p == 0.0) {
            "–".to_string()
        } else {
            format!("{} ms", spread(&publish, 1))
        };
        println!(
            "| {name} ({what}) | {} | {} | {} | {publish} | {} s | {} s |",
            spread(&first, 1),
            spread(&last, 1),
            spread(&growth, 2),
            spread(&reap_cpu, 3),
            spread(&reap_wall, 3),
        );
    }
    if let [unsubscribed, subscribed, ..] = reap_medians[..] {
        println!(
            "\nReaping {sessions} subscribed sessions costs {:.2}x the CPU of {sessions} \
             unsubscribed ones (medians).",
            subscribed / unsubscribed
        );
    }
    let series: Vec<(String, Vec<(f64, f64)>)> = pages
        .iter()
        .zip(results)
        .map(|((name, _, what), runs)| {
            let points = (0..runs[0].steps.len())
                .map(|i| {
                    let cpu: Vec<f64> = runs.iter().map(|r| r.steps[i].2).collect();
                    (runs[0].steps[i].0 as f64, median(&cpu))
                })
                .collect();
            (format!("{name} ({what})"), points)
        })
        .collect();
    let path = chart::line(
        "scale.svg",
        "Creating live sessions: CPU per session (median of runs)",
        "live sessions",
        "µs CPU per session created",
        &series,
    );
    println!("\nChart: {}", path.display());
}
