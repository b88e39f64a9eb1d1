//! What dstar records through `tracing`: a span per request, the session task's span as the
//! parent of what the session does, each event's patches recorded inside that event's span
//! (which points back at the POST), refusals at `debug` and failures at `error`.
//!
//! The tests run on tokio's current-thread runtime, so the session tasks run on the test's
//! thread and see the subscriber installed for it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use dstar::test::TestClient;
use dstar::{App, Ctx, Error, Event, Html, Mount, Page, Route, View};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

struct Live;

impl Page for Live {
    const ROUTE: Route = Route::new("Live", "/live", file!(), line!())
        .live()
        .events(&["bump", "fail"]);

    async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
        Ok(Live)
    }

    fn render(&self, _view: &View<'_>) -> dstar::Result<Html> {
        Ok(Html::from("<p id=\"n\">live</p>"))
    }

    async fn event(&mut self, cx: &mut Ctx<'_>, event: Event<'_>) -> dstar::Result<()> {
        match event.name() {
            "bump" => cx.patch_signals(&serde_json::json!({ "n": 1 })),
            _ => Err(Error::internal("the database is gone")
                .with_source(std::io::Error::other("connection refused"))),
        }
    }
}

/// A span as recorded: its name, level, fields, parent, and the spans it follows from.
#[derive(Debug, Clone)]
struct SpanRecord {
    name: String,
    level: Level,
    fields: HashMap<String, String>,
    parent: Option<u64>,
    follows: Vec<u64>,
}

/// A log event as recorded: level, message, fields, and the id of the span it was in.
#[derive(Debug, Clone)]
struct EventRecord {
    level: Level,
    message: String,
    fields: HashMap<String, String>,
    span: Option<u64>,
}

#[derive(Default)]
struct Records {
    spans: HashMap<u64, SpanRecord>,
    events: Vec<EventRecord>,
}

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Records>>);

struct Fields<'a>(&'a mut HashMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(
            field.name().to_owned(),
            format!("{value:?}").trim_matches('"').to_owned(),
        );
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Recorder {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut record = SpanRecord {
            name: attrs.metadata().name().to_owned(),
            level: *attrs.metadata().level(),
            fields: HashMap::new(),
            parent: ctx
                .span(id)
                .and_then(|s| s.parent())
                .map(|p| p.id().into_u64()),
            follows: Vec::new(),
        };
        attrs.record(&mut Fields(&mut record.fields));
        self.0.lock().unwrap().spans.insert(id.into_u64(), record);
    }

    fn on_record(&self, id: &Id, values: &tracing::span::Record<'_>, _ctx: Context<'_, S>) {
        if let Some(record) = self.0.lock().unwrap().spans.get_mut(&id.into_u64()) {
            values.record(&mut Fields(&mut record.fields));
        }
    }

    fn on_follows_from(&self, id: &Id, follows: &Id, _ctx: Context<'_, S>) {
        if let Some(record) = self.0.lock().unwrap().spans.get_mut(&id.into_u64()) {
            record.follows.push(follows.into_u64());
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        let mut fields = HashMap::new();
        event.record(&mut Fields(&mut fields));
        let message = fields.remove("message").unwrap_or_default();
        self.0.lock().unwrap().events.push(EventRecord {
            level: *event.metadata().level(),
            message,
            fields,
            span: ctx.event_span(event).map(|s| s.id().into_u64()),
        });
    }
}

impl Recorder {
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        tracing::subscriber::set_default(tracing_subscriber::registry().with(self.clone()))
    }

    fn event(&self, message: &str) -> EventRecord {
        let records = self.0.lock().unwrap();
        let found = records
            .events
            .iter()
            .find(|e| e.message == message)
            .cloned();
        found.unwrap_or_else(|| {
            let seen: Vec<&str> = records.events.iter().map(|e| e.message.as_str()).collect();
            panic!("no `{message}` was recorded; recorded: {seen:?}")
        })
    }

    fn events(&self, message: &str) -> Vec<EventRecord> {
        let records = self.0.lock().unwrap();
        records
            .events
            .iter()
            .filter(|e| e.message == message)
            .cloned()
            .collect()
    }

    fn span(&self, id: u64) -> SpanRecord {
        self.0.lock().unwrap().spans[&id].clone()
    }
}

fn router() -> axum::Router {
    let app = App::builder()
        .secret_key(b"tracing tests (a test key of 32+ bytes)")
        .build()
        .unwrap();
    dstar::router![Live].into_router(app)
}

#[tokio::test]
async fn an_events_patches_are_recorded_in_its_span_inside_the_session() {
    let recorder = Recorder::default();
    let _guard = recorder.install();
    let client = TestClient::new(router());
    let mut tab = client.get("/live").await.unwrap();
    tab.click("bump").await.unwrap();

    let queued = recorder.event("patches queued");
    assert_eq!(queued.level, Level::DEBUG);
    assert!(queued.fields.contains_key("ids"), "{queued:?}");
    let event_span = recorder.span(queued.span.expect("inside a span"));
    assert_eq!(event_span.name, "event");
    assert_eq!(event_span.fields["name"], "bump");
    // At `info`, without the session's span, the event span alone names the page and session.
    assert_eq!(event_span.fields["page"], "Live");
    assert_eq!(event_span.fields["session"].len(), 8);

    let session = recorder.span(event_span.parent.expect("the event span has a parent"));
    assert_eq!(session.name, "dstar.session");
    assert_eq!(
        session.level,
        Level::DEBUG,
        "open for the session's life: debug only"
    );
    assert_eq!(session.fields["page"], "Live");
    let short_id = &session.fields["session"];
    assert_eq!(short_id.len(), 8, "a short session id: {short_id}");

    let request = recorder.span(
        *event_span
            .follows
            .first()
            .expect("the event span points back at its request"),
    );
    assert_eq!(request.name, "dstar.event");
    assert_eq!(request.fields["event"], "bump");
    assert_eq!(&request.fields["session"], short_id, "same session");
    assert_eq!(&event_span.fields["session"], short_id, "same session");
}

#[tokio::test]
async fn refusals_log_at_debug_and_failures_at_error_with_their_causes() {
    let recorder = Recorder::default();
    let _guard = recorder.install();
    let client = TestClient::new(router());
    let mut tab = client.get("/live").await.unwrap();
    assert!(
        tab.click("fail").await.is_err(),
        "the failing handler answers 500"
    );
    assert!(
        tab.click("nope").await.is_err(),
        "an unknown event answers 404"
    );

    let failed = recorder.event("request failed");
    assert_eq!(failed.level, Level::ERROR);
    assert_eq!(failed.fields["status"], "500");
    assert_eq!(failed.fields["error"], "the database is gone");
    assert_eq!(failed.fields["caused_by"], "connection refused");
    let span = recorder.span(failed.span.expect("inside the request's span"));
    assert_eq!(span.name, "dstar.event");
    assert_eq!(span.fields["event"], "fail");

    // (The test client's own sync requests are refused too: find the one for `nope`.)
    let refusals = recorder.events("request refused");
    let refused = refusals
        .iter()
        .find(|e| e.fields["reason"].contains("unknown event `nope`"))
        .unwrap_or_else(|| panic!("no refusal of `nope`: {refusals:?}"));
    assert_eq!(refused.level, Level::DEBUG);
    assert_eq!(refused.fields["status"], "404");
}
