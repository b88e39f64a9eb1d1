//! What the backplane tests share: a real `redis-server` on its own port (killed by PID when
//! dropped, also when a test fails), nodes (an `App` on the backplane served over HTTP on
//! 127.0.0.1), and tabs of a live page whose stream is read event by event.
//!
//! The tests need `redis-server`, so they run only when `DSTAR_REDIS_TESTS` is set (`.ci/run`
//! sets it and installs Redis); without it they say so and pass, and with it but no
//! `redis-server` on `PATH` they fail.
#![allow(dead_code, unreachable_pub, clippy::print_stderr)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use dstar::sse::Mode;
use dstar::test::sse::SseEvent;
use dstar::{App, Ctx, Event, Html, Message, Mount, Page, Route, View};
use dstar_redis::RedisPubSub;
use dstar_tests::{SseStream, TestServer, token_after};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

/// How long anything expected may take: generous, since a test waits on conditions, never on
/// time (a frozen Redis is noticed by a ping every 5 s answered within 2 s).
pub const WAIT: Duration = Duration::from_secs(30);

/// The variable that asks for these tests.
pub const ASKED: &str = "DSTAR_REDIS_TESTS";

/// A `redis-server` of this test's own, on a port nobody else uses, saving nothing to disk.
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts one when the tests were asked for; otherwise says so and returns `None`.
    /// Panics when they were asked for and `redis-server` cannot be started.
    pub async fn start_if_asked(test: &str) -> Option<RedisServer> {
        if std::env::var_os(ASKED).is_none_or(|v| v.is_empty()) {
            eprintln!(
                "{test}: not run; these tests need a real Redis: set {ASKED}=1 and have \
                 `redis-server` on PATH"
            );
            return None;
        }
        let dir =
            std::env::temp_dir().join(format!("dstar-redis-test-{}-{}", std::process::id(), test));
        std::fs::create_dir_all(&dir).expect("a scratch directory for redis-server");
        let mut server = RedisServer {
            port: free_port(),
            dir,
            child: None,
        };
        // The port was free a moment ago; should another process take it meanwhile, the
        // server exits at once, and another port is tried.
        for _ in 0..2 {
            match server.spawn().await {
                Ok(()) => return Some(server),
                Err(exited) => eprintln!("{exited}; trying another port"),
            }
            server.port = free_port();
        }
        server
            .spawn()
            .await
            .unwrap_or_else(|exited| panic!("{exited}"));
        Some(server)
    }

    /// The URL nodes connect to.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server and waits until it answers; `Err` when it exits at start.
    async fn spawn(&mut self) -> Result<(), String> {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| {
                panic!(
                    "{ASKED} is set but `redis-server` cannot be started ({err}): install it \
                     (`apt-get install redis-server`) or unset {ASKED}"
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + WAIT;
        loop {
            if self.answers_ping().await {
                return Ok(());
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Err(format!(
                    "redis-server on port {} exited at start: {status}",
                    self.port
                ));
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on port {} did not answer within {WAIT:?}",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn answers_ping(&self) -> bool {
        let Ok(mut socket) = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await else {
            return false;
        };
        if socket.write_all(b"PING\r\n").await.is_err() {
            return false;
        }
        let mut answer = [0u8; 7];
        socket.read_exact(&mut answer).await.is_ok() && &answer == b"+PONG\r\n"
    }

    /// Kills the server (SIGKILL, by PID) and waits for it to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes (`SIGSTOP`) or thaws (`SIGCONT`) the server: its sockets stay open, nothing is
    /// answered, as with a peer that hangs without closing its connections.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("a running redis-server").id();
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} {pid}: {status}");
    }

    /// Starts the server again on the same port, empty.
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn()
            .await
            .unwrap_or_else(|exited| panic!("{exited}"));
    }

    /// Publishes raw bytes on `channel`, as any Redis client could.
    pub async fn publish_raw(&self, channel: &str, frame: &[u8]) {
        let client = redis::Client::open(self.url()).unwrap();
        let mut connection = client.get_multiplexed_async_connection().await.unwrap();
        redis::cmd("PUBLISH")
            .arg(channel)
            .arg(frame)
            .exec_async(&mut connection)
            .await
            .unwrap();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A port free a moment ago: bound to 127.0.0.1:0, then let go.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("an ephemeral port on 127.0.0.1")
        .port()
}

/// What the board's tabs say to each other across nodes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Note {
    pub text: String,
}

/// The message types every node registers.
pub fn backplane(redis: &RedisServer, namespace: &str) -> dstar_redis::RedisPubSubBuilder {
    RedisPubSub::builder(redis.url(), namespace).message::<Note>("note")
}

/// A live page subscribed to `board`: every note its `info` gets is appended to `#log` as
/// `<li>text</li>` (a `String` payload, never registered, as `<li>local:text</li>`), with no
/// re-render, so a root patch on its stream is a resync and nothing else.
pub struct Board {
    notes: Vec<String>,
}

impl Page for Board {
    const ROUTE: Route = Route::new("Board", "/board", file!(), line!())
        .live()
        .events(&["say"]);

    async fn mount(mount: &mut Mount<'_>) -> dstar::Result<Self> {
        mount.subscribe("board");
        Ok(Board { notes: Vec::new() })
    }

    fn render(&self, view: &View<'_>) -> dstar::Result<Html> {
        view.render_str(
            r#"<ul id="log">{% for n in notes %}<li>{{ n }}</li>{% endfor %}</ul>"#,
            serde_json::json!({ "notes": self.notes }),
        )
    }

    async fn event(&mut self, cx: &mut Ctx<'_>, event: Event<'_>) -> dstar::Result<()> {
        let note: Note = event.signals()?;
        cx.skip_render();
        cx.publish_others("board", note);
        Ok(())
    }

    async fn info(&mut self, cx: &mut Ctx<'_>, message: Message) -> dstar::Result<()> {
        cx.skip_render();
        let text = if let Some(note) = message.get::<Note>() {
            note.text.clone()
        } else if let Some(local) = message.get::<String>() {
            format!("local:{local}")
        } else {
            return Ok(());
        };
        cx.patch_into("#log", Mode::Append, format!("<li>{text}</li>"));
        self.notes.push(text);
        Ok(())
    }
}

/// One node: an app on its own backplane, served on 127.0.0.1.
pub struct Node {
    pub app: App,
    pub backplane: Arc<RedisPubSub>,
    pub server: TestServer,
}

impl Node {
    pub async fn start(backplane: dstar_redis::RedisPubSubBuilder) -> Node {
        let backplane = backplane
            .connect()
            .await
            .expect("connect to the test's Redis");
        let app = App::builder()
            .secret_key(b"redis tests (a test key of 32+ bytes)")
            .pubsub(backplane.clone())
            .build()
            .unwrap();
        let server = TestServer::start(dstar::router![Board].into_router(app.clone())).await;
        Node {
            app,
            backplane,
            server,
        }
    }

    /// Waits until the backplane says whether it is connected.
    pub async fn wait_connected(&self, connected: bool) {
        wait_until(
            &format!("node {} connected: {connected}", self.backplane.node_id()),
            || self.backplane.is_connected() == connected,
        )
        .await;
    }
}

/// Polls `check` until it holds, failing after [`WAIT`].
pub async fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A browser tab showing the board, its stream read event by event.
pub struct Tab {
    pub name: &'static str,
    event_token: String,
    stream: SseStream,
    /// Every event its stream delivered so far.
    pub events: Vec<SseEvent>,
}

impl Tab {
    pub async fn open(node: &Node, name: &'static str) -> Tab {
        let page = node.server.get("/board", &[]).await;
        assert_eq!(page.status, 200, "{}", page.text());
        let stream_token = token_after(page.text(), "_dstarStream");
        let stream = node
            .server
            .open_sse(
                "POST",
                "/__dstar/stream",
                &[("x-dstar-token", &stream_token)],
                Some(b"{}"),
            )
            .await
            .unwrap();
        assert_eq!(stream.status, 200);
        Tab {
            name,
            event_token: token_after(page.text(), "_dstarToken"),
            stream,
            events: Vec::new(),
        }
    }

    /// Sends the `say` event: the tab publishes `text` to every other tab.
    pub async fn say(&self, node: &Node, text: &str) {
        let body = serde_json::to_vec(&Note { text: text.into() }).unwrap();
        let reply = node
            .server
            .post(
                "/__dstar/event",
                &[
                    ("x-dstar-token", &self.event_token),
                    ("x-dstar-event", "say"),
                    ("content-type", "application/json"),
                ],
                body,
            )
            .await;
        assert_eq!(reply.status, 204, "{}", reply.text());
    }

    /// Reads the stream until an event that `want` accepts arrives.
    pub async fn wait_for(&mut self, what: &str, want: impl Fn(&SseEvent) -> bool) {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stream.next_event(left).await {
                Ok(Some(event)) => {
                    let found = want(&event);
                    self.events.push(event);
                    if found {
                        return;
                    }
                }
                Ok(None) => panic!("{}: the stream ended while waiting for {what}", self.name),
                Err(err) => panic!(
                    "{}: waited {WAIT:?} for {what} in vain ({err}); the stream brought {:#?}",
                    self.name, self.events
                ),
            }
        }
    }

    /// Reads the stream until `text` is appended to the log.
    pub async fn wait_for_note(&mut self, text: &str) {
        let li = format!("<li>{text}</li>");
        self.wait_for(&format!("note `{text}`"), |e| is_note(e, &li))
            .await;
    }

    /// Reads the stream until a full render arrives.
    pub async fn wait_for_full_render(&mut self) {
        self.wait_for("a full render", is_full_render).await;
    }

    /// How many times `text` was appended to the log so far.
    pub fn notes(&self, text: &str) -> usize {
        let li = format!("<li>{text}</li>");
        self.events.iter().filter(|e| is_note(e, &li)).count()
    }

    /// How many full renders the stream brought so far.
    pub fn full_renders(&self) -> usize {
        self.events.iter().filter(|e| is_full_render(e)).count()
    }
}

fn is_note(event: &SseEvent, li: &str) -> bool {
    event.event.as_deref() == Some("datastar-patch-elements")
        && event.value("selector").as_deref() == Some("#log")
        && event.value("elements").as_deref() == Some(li)
}

fn is_full_render(event: &SseEvent) -> bool {
    event.event.as_deref() == Some("datastar-patch-elements")
        && event.value("selector").as_deref() == Some("#dstar-root")
}

/// A frame as the crate docs lay it out, written by hand: pre-encoded events from `origin`.
pub fn events_frame(origin: u64, seq: u64, topic: &str, events: &[u8]) -> Vec<u8> {
    let mut frame = vec![1, 2];
    frame.extend_from_slice(&origin.to_be_bytes());
    frame.extend_from_slice(&seq.to_be_bytes());
    frame.extend_from_slice(&(topic.len() as u16).to_be_bytes());
    frame.extend_from_slice(topic.as_bytes());
    frame.extend_from_slice(events);
    frame
}

/// A message frame from `origin`, written by hand, with no sender.
pub fn message_frame(origin: u64, seq: u64, topic: &str, name: &str, json: &str) -> Vec<u8> {
    let mut frame = vec![1, 1];
    frame.extend_from_slice(&origin.to_be_bytes());
    frame.extend_from_slice(&seq.to_be_bytes());
    frame.extend_from_slice(&(topic.len() as u16).to_be_bytes());
    frame.extend_from_slice(topic.as_bytes());
    frame.push(0);
    frame.push(name.len() as u8);
    frame.extend_from_slice(name.as_bytes());
    frame.extend_from_slice(json.as_bytes());
    frame
}

/// Events that append `<li>text</li>` to the board's log, encoded once.
pub fn note_events(text: &str) -> bytes::Bytes {
    dstar::sse::PatchElements::new(&format!("<li>{text}</li>"))
        .selector("#log")
        .mode(Mode::Append)
        .to_bytes()
}
