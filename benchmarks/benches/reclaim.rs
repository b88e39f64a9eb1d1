//! Memory given back: the server's RSS before, with and after many live sessions.
//!
//! In-process, no sockets: `SESSIONS` (100,000 by default) live pages are loaded through the
//! router with tower `oneshot`, then every session ends (as when their tabs go away), and the
//! RSS is read after the sessions are gone and again after `IDLE_SECONDS` (default 5) of
//! quiet. What the process keeps depends on the allocator, not on dstar: run it with glibc's
//! defaults, with glibc tunables, and built with `--features mimalloc`:
//!
//! ```text
//! cargo bench -p dstar-benchmarks --bench reclaim
//! GLIBC_TUNABLES=glibc.malloc.trim_threshold=65536:glibc.malloc.arena_max=2 cargo bench -p dstar-benchmarks --bench reclaim
//! cargo bench -p dstar-benchmarks --bench reclaim --features mimalloc
//! ```
// A benchmark reports its figures on standard output.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use tower::ServiceExt;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Without mimalloc, the system allocator with a live-bytes counter, to tell memory still in
/// use from memory freed but kept by the allocator.
#[cfg(not(feature = "mimalloc"))]
#[global_allocator]
static GLOBAL: cap::Cap<std::alloc::System> = cap::Cap::new(std::alloc::System, usize::MAX);

fn heap_mb() -> Option<f64> {
    #[cfg(not(feature = "mimalloc"))]
    return Some(GLOBAL.allocated() as f64 / 1024.0 / 1024.0);
    #[cfg(feature = "mimalloc")]
    None
}

fn mb(value: Option<f64>) -> String {
    value.map_or("–".into(), |v| format!("{v:.1}"))
}

fn rss_mb() -> f64 {
    dstar_benchmarks::rss() as f64 / 1024.0 / 1024.0
}

fn main() {
    let sessions = dstar_benchmarks::env_usize("SESSIONS", 100_000);
    let idle = dstar_benchmarks::env_usize("IDLE_SECONDS", 5) as u64;
    let rounds = dstar_benchmarks::env_usize("ROUNDS", 3).max(1);
    let allocator = if cfg!(feature = "mimalloc") {
        "mimalloc".to_string()
    } else {
        match std::env::var("GLIBC_TUNABLES") {
            Ok(t) => format!("glibc malloc, GLIBC_TUNABLES={t}"),
            Err(_) => "glibc malloc, defaults".to_string(),
        }
    };
    let runtime = dstar_benchmarks::runtime();
    let observed = dstar_benchmarks::observe_if_asked();
    runtime.block_on(async {
        println!("# RSS with and after {sessions} live sessions ({allocator})\n");
        if observed {
            println!("(with a tracing subscriber at `info` and a metrics recorder installed)\n");
        }
        println!(
            "| round | RSS before MB | RSS, {sessions} sessions live MB | RSS, all ended MB | RSS after {idle} s idle MB | heap in use after MB |"
        );
        println!("| ---: | ---: | ---: | ---: | ---: | ---: |");
        let app = dstar_benchmarks::app(dstar::session::SessionConfig {
            max_sessions: sessions + 1,
            ..dstar_benchmarks::session_config()
        });
        let router = dstar_benchmarks::router(&app);
        for round in 1..=rounds {
            let before = rss_mb();
            for _ in 0..sessions {
                let request = Request::get("/busy").body(Body::empty()).expect("request");
                let response = router.clone().oneshot(request).await.expect("infallible");
                assert!(response.status().is_success());
                // The page's HTML is read, as hyper would send it.
                let _ = axum::body::to_bytes(response.into_body(), usize::MAX).await;
            }
            let live = rss_mb();
            app.sessions().shutdown(Duration::from_secs(600)).await;
            assert_eq!(app.sessions().tasks(), 0);
            let ended = rss_mb();
            tokio::time::sleep(Duration::from_secs(idle)).await;
            println!(
                "| {round} | {before:.1} | {live:.1} | {ended:.1} | {:.1} | {} |",
                rss_mb(),
                mb(heap_mb())
            );
        }
    });
}
