//! Soak memory: the server's RSS after a first and a second identical round of `SESSIONS`
//! (10,000 by default) live sessions opened and closed over real connections, half ended by
//! the page (`end_session`: the stream ends), half by the client dropping its connection
//! (the session waits out a 200 ms reconnect grace). After each round the registry is empty,
//! no session task is left and `terminate` ran once per session; then the RSS and the heap
//! still in use are read.
//!
//! A second round that lands where the first did means the allocator reused what the first
//! freed; a second round adding as much again would be a leak. The heap column (live bytes,
//! counted by a global allocator) tells memory still in use from memory freed but kept.
//!
//! Each repeat (`REPEATS`, default 3) is a fresh server process, served by `App::serve`'s
//! server, with the client in a third process, so no figure carries another's allocations:
//!
//! ```text
//! cargo bench -p dstar-benchmarks --bench soak
//! ```
// A benchmark reports its figures on standard output.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::alloc::System;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cap::Cap;
use dstar::session::SessionConfig;
use dstar::{App, Ctx, Event, Html, Mount, Page, Route, SessionEnd, View};
use dstar_benchmarks::child::{Child, Orders, child_args, tell};
use dstar_benchmarks::client::{self, Conn};

#[global_allocator]
static ALLOC: Cap<System> = Cap::new(System, usize::MAX);

static TERMINATED: AtomicUsize = AtomicUsize::new(0);

/// Sessions each client worker runs one after the other.
const WORKERS: usize = 64;
/// Sessions opened and closed before the first figure, so that it includes what any server
/// allocates once (buffers, the route table's first use, the runtime's worker state).
const WARM_UP: usize = 200;

/// A live page that counts its `terminate`s; `ping` patches, `bye` ends the session.
struct Soak {
    pings: u32,
}

impl Page for Soak {
    const ROUTE: Route = Route::new("Soak", "/soak", file!(), line!())
        .live()
        .events(&["ping", "bye"]);

    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Ok(Soak { pings: 0 })
    }

    fn render(&self, _view: &View<'_>) -> dstar::Result<Html> {
        Ok(Html(format!("<p id=\"pings\">{}</p>", self.pings)))
    }

    async fn event(&mut self, cx: &mut Ctx<'_>, event: Event<'_>) -> dstar::Result<()> {
        match event.name() {
            "ping" => {
                self.pings += 1;
                Ok(())
            }
            "bye" => cx.end_session(SessionEnd::Stop),
            _ => Err(event.unknown()),
        }
    }

    async fn terminate(&mut self) {
        TERMINATED.fetch_add(1, Ordering::SeqCst);
    }
}

fn main() {
    match child_args().as_deref() {
        Some([role, addr]) if role == "client" => {
            let addr = addr.parse().expect("the server's address");
            dstar_benchmarks::runtime().block_on(client_main(addr));
        }
        Some([role, sessions]) if role == "server" => {
            let sessions = sessions.parse().expect("a session count");
            dstar_benchmarks::runtime().block_on(server_main(sessions));
        }
        _ => dstar_benchmarks::runtime().block_on(report()),
    }
}

/// The figures of one server process, in MB.
struct Figures {
    rss: [f64; 3],
    heap: [f64; 3],
}

async fn report() {
    let sessions = dstar_benchmarks::env_usize("SESSIONS", 10_000);
    let repeats = dstar_benchmarks::env_usize("REPEATS", 3).max(1);
    println!(
        "# Server memory after two identical rounds of {sessions} live sessions opened and closed\n"
    );
    println!(
        "Half end by `end_session`, half by a dropped connection; {WARM_UP} sessions warm up first. \
         Medians of {repeats} server processes (min–max).\n"
    );
    let mut runs = Vec::new();
    for _ in 0..repeats {
        dstar_benchmarks::wait_quiet(Duration::from_secs(30)).await;
        let mut server = Child::spawn(&["server".to_owned(), sessions.to_string()]);
        let line = server.expect("figures").await;
        server.finish().await;
        let values: Vec<f64> = line
            .split_whitespace()
            .map(|v| v.parse().expect("a figure"))
            .collect();
        runs.push(Figures {
            rss: [values[0], values[1], values[2]],
            heap: [values[3], values[4], values[5]],
        });
    }
    let column = |pick: &dyn Fn(&Figures) -> f64| {
        dstar_benchmarks::spread(&runs.iter().map(pick).collect::<Vec<_>>(), 1)
    };
    println!("| after | RSS MB | heap in use MB |");
    println!("| --- | ---: | ---: |");
    for (i, when) in ["warm-up", "round 1", "round 2"].iter().enumerate() {
        println!(
            "| {when} | {} | {} |",
            column(&|f| f.rss[i]),
            column(&|f| f.heap[i])
        );
    }
    println!(
        "| round 2 − round 1 | {} | {} |",
        column(&|f| f.rss[2] - f.rss[1]),
        column(&|f| f.heap[2] - f.heap[1])
    );
}

fn mb(bytes: usize) -> f64 {
    bytes as f64 / 1024.0 / 1024.0
}

async fn server_main(sessions: usize) {
    let app = App::builder()
        .secret_key(dstar_benchmarks::SECRET)
        .sessions(SessionConfig {
            reconnect_grace: Duration::from_millis(200),
            ..SessionConfig::default()
        })
        .build()
        .expect("the soak app");
    let router = dstar::router![Soak].into_router(app.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1");
    let addr = listener.local_addr().expect("the bound address");
    let server = app.clone();
    tokio::spawn(async move {
        server
            .serve_listener(listener, router, std::future::pending())
            .await;
    });

    let mut client = Child::spawn(&["client".to_owned(), addr.to_string()]);
    let mut rss = [0.0; 3];
    let mut heap = [0.0; 3];
    let mut expected = 0;
    for (i, count) in [WARM_UP, sessions, sessions].into_iter().enumerate() {
        client.say(&count.to_string()).await;
        client.expect("done").await;
        expected += count;
        all_ended(&app, expected).await;
        // Let the allocator and the runtime settle, as a server between bursts would.
        tokio::time::sleep(Duration::from_secs(1)).await;
        rss[i] = mb(dstar_benchmarks::rss());
        heap[i] = mb(ALLOC.allocated());
    }
    client.say("").await;
    client.finish().await;
    tell(
        "figures",
        &format!(
            "{:.2} {:.2} {:.2} {:.2} {:.2} {:.2}",
            rss[0], rss[1], rss[2], heap[0], heap[1], heap[2]
        ),
    );
}

/// Waits until `expected` sessions in all have terminated and the registry is empty.
async fn all_ended(app: &App, expected: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let sessions = app.sessions();
        if TERMINATED.load(Ordering::SeqCst) == expected
            && sessions.is_empty()
            && sessions.tasks() == 0
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "sessions left: {} terminated of {expected}, {} registered, {} tasks",
            TERMINATED.load(Ordering::SeqCst),
            sessions.len(),
            sessions.tasks()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs as many session lives as each order line says, then says `done`; an empty line ends.
async fn client_main(addr: SocketAddr) {
    let mut orders = Orders::new();
    loop {
        let order = orders.next().await;
        if order.is_empty() {
            return;
        }
        let count: usize = order.parse().expect("a session count");
        let next = Arc::new(AtomicUsize::new(0));
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..WORKERS {
            let next = next.clone();
            workers.spawn(async move {
                let mut requests = Conn::connect(addr).await.expect("connect");
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        return;
                    }
                    one_session(addr, &mut requests, i.is_multiple_of(2)).await;
                }
            });
        }
        while let Some(done) = workers.join_next().await {
            done.expect("a client worker");
        }
        tell("done", "");
    }
}

/// One session's life: its page, its stream, an event whose patch arrives on the stream, and
/// its end (clean: `bye`, and the stream ends; or the stream's connection dropped).
async fn one_session(addr: SocketAddr, requests: &mut Conn, clean: bool) {
    let page = requests
        .request(&client::request("GET", "/soak", &[], b""))
        .await
        .expect("the page");
    assert_eq!(page.status, 200);
    let html = page.text();
    let event_token = dstar_benchmarks::event_token(&html);
    let mut stream = Conn::connect(addr).await.expect("connect the stream");
    stream
        .open_stream(&client::dstar_stream_request(&html))
        .await
        .expect("the stream");
    let event = |name: &str| {
        client::request(
            "POST",
            "/__dstar/event",
            &[("x-dstar-token", &event_token), ("x-dstar-event", name)],
            b"{}",
        )
    };
    let ping = requests.request(&event("ping")).await.expect("ping");
    assert_eq!(ping.status, 204);
    stream
        .wait_for(b"<p id=\"pings\">1</p>")
        .await
        .expect("the patch");
    if clean {
        let bye = requests.request(&event("bye")).await.expect("bye");
        assert_eq!(bye.status, 204);
        // The stream ends: its last chunk, or the connection closing.
        while let Ok(chunk) = stream.next_chunk().await {
            if chunk.is_empty() {
                break;
            }
        }
    }
    drop(stream);
}
