//! Live reload in debug builds (the tests are one): after a template file changes, the first
//! poll of `/__dstar/dev` has every live session render its page again, once.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use dstar::{App, Html, Mount, Templates, View};
use dstar_tests::{SseStream, TestServer};

const WAIT: Duration = Duration::from_secs(5);

struct Board;

#[dstar::page("/board", live, template = "board.html")]
impl Board {
    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Ok(Board)
    }

    fn render(&self, view: &View<'_>) -> dstar::Result<Html> {
        view.render(())
    }
}

/// A template directory of its own, removed at the end.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("dstar-live-reload-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }

    /// Writes `board.html`, dated `age` before now: each write has its own modification time
    /// whatever the file system's clock granularity.
    fn write(&self, source: &str, age: Duration) {
        let path = self.0.join("board.html");
        std::fs::write(&path, source).unwrap();
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(SystemTime::now() - age).unwrap();
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn open(server: &TestServer) -> (String, SseStream) {
    let page = server.get("/board", &[]).await;
    assert_eq!(page.status, 200, "{}", page.text());
    let html = page.text().to_owned();
    let generation = html
        .split("generation: \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the debug client is told the templates' generation")
        .to_owned();
    let token = html
        .split("&quot;_dstarStream&quot;:&quot;")
        .nth(1)
        .and_then(|rest| rest.split("&quot;").next())
        .expect("a stream token")
        .to_owned();
    let stream = server
        .open_sse(
            "POST",
            "/__dstar/stream",
            &[("x-dstar-token", token.as_str())],
            Some(b"{}"),
        )
        .await
        .unwrap();
    assert_eq!(stream.status, 200);
    (generation, stream)
}

#[tokio::test]
async fn a_changed_template_renders_open_live_pages_again_once() {
    let dir = Dir::new("rerender");
    dir.write("<p>before</p>", Duration::from_secs(60));
    let app = App::builder()
        .secret_key(b"live reload tests (a test key of 32+ bytes)")
        .templates(Templates::dir(&dir.0))
        .build()
        .unwrap();
    let server = TestServer::start(dstar::router![Board].into_router(app)).await;
    let (generation, mut stream) = open(&server).await;

    // Nothing changed: the same generation, nothing sent.
    let same = server.get("/__dstar/dev", &[]).await;
    assert_eq!(same.status, 200);
    assert_eq!(same.header("cache-control"), Some("no-store"));
    assert_eq!(same.text(), generation);

    dir.write("<p>after</p>", Duration::from_secs(30));
    let changed = server.get("/__dstar/dev", &[]).await;
    assert_ne!(changed.text(), generation);
    let event = stream.expect_event(WAIT).await;
    assert_eq!(event.value("selector").as_deref(), Some("#dstar-root"));
    assert_eq!(event.value("elements").as_deref(), Some("<p>after</p>"));

    // Told once: the next poll sends nothing more, and the next change is sent again.
    assert_eq!(server.get("/__dstar/dev", &[]).await.text(), changed.text());
    dir.write("<p>{{ broken </p>", Duration::from_secs(10));
    server.get("/__dstar/dev", &[]).await;
    let event = stream.expect_event(WAIT).await;
    let script = event.value("elements").unwrap();
    assert!(
        script.contains("console.error") && script.contains("did not render"),
        "a template that no longer renders is reported in the tab's console: {script}"
    );
}
