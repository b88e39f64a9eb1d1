//! A chat room: a live page. Each tab has its own session; a message posted in one tab is
//! published on the `chat` topic and every session (every tab) re-renders its message list.
//! The recent messages are app state shared by all sessions; who is online is the app's
//! presence on the topic: a tab counts from its stream's first connection (a page load that
//! never opens its stream, such as a link preview, is nobody) until its session ends.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use dstar::app::AppBuilder;
use dstar::presence::PresenceDiff;
use dstar::{App, Ctx, Error, Html, Message, Mount, Templates, View};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The PubSub topic the room talks on.
pub const TOPIC: &str = "chat";
/// How many messages the room keeps.
pub const HISTORY: usize = 100;

/// One chat line.
#[derive(Debug, Clone, Serialize)]
pub struct Line {
    /// Who said it.
    pub name: String,
    /// What they said.
    pub text: String,
}

/// The room: recent messages. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct ChatRoom {
    inner: Arc<RoomInner>,
}

#[derive(Debug, Default)]
struct RoomInner {
    lines: Mutex<VecDeque<Line>>,
}

impl ChatRoom {
    /// The recent messages, oldest first.
    pub fn lines(&self) -> Vec<Line> {
        self.inner
            .lines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    fn post(&self, line: Line) {
        let mut lines = self.inner.lines.lock().unwrap_or_else(|e| e.into_inner());
        lines.push_back(line);
        while lines.len() > HISTORY {
            lines.pop_front();
        }
    }
}

/// What the room publishes: a message was posted, re-render the list.
#[derive(Debug, Clone, Copy)]
pub enum RoomChanged {
    /// A message was posted.
    Posted,
}

/// The signals of the `send` event.
#[derive(Debug, Deserialize)]
pub struct Say {
    /// The sender's name.
    pub name: String,
    /// The message.
    pub message: String,
}

/// The chat page.
#[derive(Debug)]
pub struct Chat {
    room: ChatRoom,
    app: App,
}

#[dstar::page("/chat", live, group = "main", template = "chat.html", title = "Chat")]
impl Chat {
    async fn mount(mount: &mut Mount<'_>) -> dstar::Result<Self> {
        let room = mount.state::<ChatRoom>()?.clone();
        mount.subscribe(TOPIC);
        // Each tab is someone online (keyed by its session).
        if let Some(session) = mount.session() {
            let key = format!("{:032x}", session.id());
            mount.track(TOPIC, key, &json!({}))?;
        }
        Ok(Chat {
            room,
            app: mount.app().clone(),
        })
    }

    fn render(&self, view: &View<'_>) -> dstar::Result<Html> {
        view.render(self.context())
    }

    #[event]
    async fn send(&mut self, cx: &mut Ctx<'_>, say: Say) -> dstar::Result<()> {
        let name = say.name.trim();
        let text = say.message.trim();
        if text.is_empty() {
            return Err(Error::unprocessable("the message is empty"));
        }
        if name.chars().count() > 40 || text.chars().count() > 500 {
            return Err(Error::unprocessable(
                "names are at most 40 characters and messages at most 500",
            ));
        }
        let name = if name.is_empty() { "anonymous" } else { name };
        self.room.post(Line {
            name: name.to_owned(),
            text: text.to_owned(),
        });
        cx.publish(TOPIC, RoomChanged::Posted);
        // This tab re-renders when its own copy of the message arrives through `info`.
        cx.skip_render();
        cx.patch_signals(&json!({ "message": "" }))
    }

    async fn info(&mut self, cx: &mut Ctx<'_>, message: Message) -> dstar::Result<()> {
        // Patch only the parts that change, so what the user is typing is left alone.
        cx.skip_render();
        if let Some(RoomChanged::Posted) = message.get::<RoomChanged>() {
            return cx.patch_block("chat.html", "messages", self.context());
        }
        if message.get::<PresenceDiff>().is_some() {
            return cx.patch_block("chat.html", "online", self.context());
        }
        Ok(())
    }
}

impl Chat {
    fn context(&self) -> serde_json::Value {
        json!({ "messages": self.room.lines(), "online": self.app.presence().count(TOPIC) })
    }
}

/// The chat's templates, for apps that serve the chat page among their own.
pub fn templates() -> Templates {
    dstar::templates!("templates")
}

/// The chat app on its own; `builder` carries settings such as where the Datastar client is
/// served.
pub fn app(builder: AppBuilder) -> App {
    builder
        .templates(templates())
        .state(ChatRoom::default())
        .build()
        .expect("the chat app's configuration is complete")
}

/// The chat's routes.
pub fn router(app: &App) -> axum::Router {
    // The room lives at `/chat` (where the showcase serves it too); `/` leads there.
    axum::Router::new()
        .route(
            "/",
            axum::routing::get(|| async { axum::response::Redirect::to("/chat") }),
        )
        .merge(dstar::router![Chat].into_router(app.clone()))
}
