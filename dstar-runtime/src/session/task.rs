//! The session task: one per live tab, owning the page. It works through its mailbox one
//! command at a time (events, messages, streams attaching, navigation), numbers what it sends,
//! keeps the replay ring, and ends on its deadlines or at shutdown.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tracing::{Instrument, Span, info_span};

use super::handle::{Attach, Command, EventCommand, Mailbox, Navigate, SessionHandle, short_id};
use super::page::LivePage;
use super::queue::{End, StreamQueue};
use super::tokens::{nav_token, token_signals, token_signals_with};
use crate::app::App;
use crate::document::write_root_patch;
use crate::error::{Error, Result};
use crate::page::{
    Ctx, Event, Message, Mount, PageData, Render, SessionEnd, View, live_page_value,
};
use crate::security::Nonce;
use crate::sse::{ExecuteScript, PatchSignals};

pub(crate) struct Session {
    id: u128,
    app: App,
    page: Box<dyn LivePage>,
    mailbox: Arc<Mailbox>,
    stream: Option<Arc<StreamQueue>>,
    generation: u64,
    seq: u64,
    /// Recent events for replay: id, the session's own bytes, and a shared body (empty for
    /// events the session encoded itself).
    ring: VecDeque<(u64, Bytes, Bytes)>,
    /// A boxed slice, not a `Vec`: it never grows, and the 8 bytes of a capacity would move
    /// every idle session's task into tokio's next size class (see BENCHMARKS.md).
    subscriptions: Box<[String]>,
    /// The page's URL as the browser sees it: the mount prefix, then the app path and query.
    url: String,
    /// How much of `url` is the mount prefix (`/app`): what the page's own URLs go under.
    prefix_len: u16,
    renew_at: Instant,
    /// The session's span, boxed and only when a subscriber wants it: an idle session pays
    /// one pointer for it, not a `Span` in every task (which tips the task's memory into the
    /// next 128-byte size class).
    span: Option<Box<Span>>,
}

/// Frees the slot and counts the task out however the task ends, and on a panic tells the
/// browser to reload. (On `Session` itself rather than a guard holding copies of its fields:
/// whatever the task keeps across an await is paid by every idle session.)
impl Drop for Session {
    fn drop(&mut self) {
        let _span = self.span.as_deref().map(Span::enter);
        let pending = self.mailbox.close();
        for command in pending {
            match command {
                Command::Event(event) => {
                    // Not applied: the tab may send it again to the session re-mounted in
                    // place, unless the session was ended on purpose.
                    let ended = self.app.sessions().ended().get(self.id).is_some();
                    let _ = event.reply.send(Err(if ended {
                        super::handle::session_ended()
                    } else {
                        super::handle::session_unavailable()
                    }));
                }
                // A stream that reached the session while it was ending (a reconnect during a
                // slow `terminate`): cut, as a network failure would be, so the client
                // reconnects and finds the session gone, rather than held open for ever on
                // heartbeats from nothing.
                Command::Attach(attach) => attach.queue.end(End::Abort, None),
                _ => {}
            }
        }
        // Not unsubscribed: PubSub drops an ended session from its topics itself (see
        // `PubSub::subscribe`), which keeps reaping free of the topics' locks.
        self.app.sessions().remove(self.id);
        self.app.presence().ended(&self.handle());
        if let Some(stream) = &self.stream {
            if std::thread::panicking() {
                tracing::error!("a handler panicked: the session ends and its tab reloads");
                let mut out = Vec::new();
                write_script(&mut out, &crate::protocol::reload_script(), self.nonce());
                stream.end(End::Close, Some(Bytes::from(out)));
            } else {
                stream.end(End::Close, None);
            }
        }
        self.app.sessions().task_ended();
    }
}

enum Waiting {
    /// No stream has connected yet.
    Connect,
    /// A stream is attached.
    Attached,
    /// The stream dropped.
    Reconnect,
    /// The tab paused its stream.
    Paused,
}

impl Session {
    pub(crate) fn new(
        app: &App,
        id: u128,
        page: Box<dyn LivePage>,
        mailbox: Arc<Mailbox>,
        subscriptions: Vec<String>,
        (url, prefix_len): (String, usize),
        span: Span,
    ) -> Self {
        Session {
            id,
            app: app.clone(),
            page,
            mailbox,
            stream: None,
            generation: 0,
            seq: 0,
            ring: VecDeque::new(),
            subscriptions: subscriptions.into_boxed_slice(),
            url,
            // Longer prefixes are refused before a session starts (`check_prefix`).
            prefix_len: u16::try_from(prefix_len).unwrap_or(0),
            renew_at: Instant::now() + app.sessions().config().token_ttl / 2,
            span: (!span.is_disabled()).then(|| Box::new(span)),
        }
    }

    pub(crate) async fn run(mut self) {
        // Every local held across the loop's await is part of every idle session's task, so
        // there are few: the settings are read where they are needed, not copied.
        // A session re-mounted in place starts with its stream attached.
        let mut waiting = if self.stream.is_some() {
            Waiting::Attached
        } else {
            Waiting::Connect
        };
        if matches!(waiting, Waiting::Attached)
            && let Some(ending) = Box::pin(self.connected()).await
        {
            // Ended on purpose by `connected` itself: as after the loop below.
            self.end_on_purpose(ending);
            self.page.terminate().await;
            return;
        }
        let mut deadline = Instant::now() + self.app.sessions().config().connect_deadline;
        let mailbox = self.mailbox.clone();
        loop {
            let command = tokio::select! {
                command = mailbox.recv() => command,
                () = tokio::time::sleep_until(match waiting {
                    Waiting::Attached => self.renew_at,
                    Waiting::Connect | Waiting::Reconnect | Waiting::Paused => {
                        deadline.min(self.renew_at)
                    }
                }) => {
                    if !matches!(waiting, Waiting::Attached) && Instant::now() >= deadline {
                        break;
                    }
                    self.renew_tokens();
                    continue;
                }
            };
            match command {
                Command::Event(event) => {
                    // A child of the session's span that points back at the POST: one click
                    // can be followed from the request to the ids of the patches it sent.
                    let span = info_span!(
                        parent: self.span_id(),
                        "event",
                        name = %event.name,
                        page = self.page.route().name,
                        session = %short_id(self.id)
                    );
                    span.follows_from(&event.request);
                    let (result, ending) =
                        Box::pin(self.handle_event(&event)).instrument(span).await;
                    let _ = event.reply.send(result);
                    if let Some(ending) = ending {
                        self.end_on_purpose(ending);
                        break;
                    }
                }
                Command::Shared(events) => self.send_shared(&events),
                Command::Message(message) => {
                    let span = info_span!(
                        parent: self.span_id(),
                        "info",
                        topic = message.topic().unwrap_or(""),
                        page = self.page.route().name,
                        session = %short_id(self.id)
                    );
                    let (result, ending) =
                        Box::pin(self.handle_info(message)).instrument(span).await;
                    if let Err(err) = result {
                        let report =
                            format!("`info` of `{}` failed: {err}", self.page.route().name);
                        crate::error::log(crate::error::Level::Error, &report);
                        // No request to answer: in debug builds the tab's console hears of it.
                        self.console_error(&report);
                    }
                    if let Some(ending) = ending {
                        self.end_on_purpose(ending);
                        break;
                    }
                }
                Command::Attach(attach) => {
                    self.attach(*attach);
                    waiting = Waiting::Attached;
                    if let Some(ending) = Box::pin(self.connected()).await {
                        self.end_on_purpose(ending);
                        break;
                    }
                }
                Command::Detached(generation) => {
                    if generation == self.generation && self.stream.is_some() {
                        self.stream = None;
                        waiting = Waiting::Reconnect;
                        deadline = Instant::now() + self.app.sessions().config().reconnect_grace;
                    }
                }
                Command::Navigate(mut nav) => {
                    // Unboxed only inside the boxed future: a `Navigate` local would sit in
                    // every session's task for good.
                    let reply = std::mem::replace(&mut nav.reply, oneshot::channel().0);
                    let span = info_span!(
                        parent: self.span_id(),
                        "navigate",
                        url = %nav.url,
                        session = %short_id(self.id)
                    );
                    let result = Box::pin(self.navigate(*nav)).instrument(span).await;
                    let _ = reply.send(result);
                }
                Command::Rerender => self.rerender(),
                Command::Snapshot(reply) => {
                    let _ = reply.send(self.snapshot());
                }
                Command::End(ending) => {
                    self.end_on_purpose(ending);
                    break;
                }
                Command::Pause => {
                    // Whatever the stream's state: a tab hidden before its stream connected
                    // pauses too. Ending the stream cleanly gives the browser its connection
                    // back at once; the tab resumes with `Last-Event-ID`.
                    if let Some(stream) = self.stream.take() {
                        stream.end(End::Close, None);
                    }
                    waiting = Waiting::Paused;
                    deadline = Instant::now() + self.app.sessions().config().hidden_grace;
                }
                Command::Disconnect => {
                    if let Some(stream) = self.stream.take() {
                        stream.end(End::Abort, None);
                        waiting = Waiting::Reconnect;
                        deadline = Instant::now() + self.app.sessions().config().reconnect_grace;
                    }
                }
                Command::Shutdown => {
                    if let Some(stream) = self.stream.take() {
                        let mut out = Vec::new();
                        crate::sse::write_retry(&mut out, Duration::from_secs(1));
                        stream.end(End::Abort, Some(Bytes::from(out)));
                    }
                    break;
                }
            }
        }
        // Dropping `self` then frees the slot and closes the stream.
        self.page.terminate().await;
    }

    /// The script nonce of the page this session serves: every script it sends carries it.
    fn nonce(&self) -> Nonce {
        Nonce::for_session(self.app.keys(), self.id)
    }

    /// The path the page is mounted under (`/app`, or empty at the root).
    fn prefix(&self) -> &str {
        &self.url[..usize::from(self.prefix_len)]
    }

    /// The page's value for templates.
    fn page_value(&self) -> minijinja::Value {
        live_page_value(&self.url, self.prefix())
    }

    /// The parent of the spans of what the session does.
    fn span_id(&self) -> Option<tracing::Id> {
        self.span.as_deref().and_then(Span::id)
    }

    fn attach(&mut self, attach: Attach) {
        if let Some(old) = self.stream.take() {
            old.end(End::Close, None);
        }
        self.generation = attach.generation;
        let capacity = self.app.sessions().config().stream_queue;
        if attach.last_event_id.is_some() {
            crate::metrics::reconnect();
        }
        let last = attach.last_event_id.unwrap_or(0);
        if last < self.seq {
            let oldest = self.ring.front().map_or(u64::MAX, |(id, _, _)| *id);
            crate::metrics::replay(oldest <= last + 1);
            if oldest <= last + 1 {
                for (id, head, body) in &self.ring {
                    if *id > last {
                        attach
                            .queue
                            .push_all([head.clone(), body.clone()], usize::MAX);
                    }
                }
            } else if let Ok(bytes) = self.full_render() {
                attach.queue.push(bytes, capacity);
            }
        }
        self.stream = Some(attach.queue);
        // Present from the first stream connection (later ones find nothing pending).
        self.app.presence().connected(&self.handle());
    }

    /// Attaches the stream of a session re-mounted in place (see the session module's docs):
    /// event ids go on above the tab's `Last-Event-ID`, and the first batch is fresh tokens
    /// and one full render.
    pub(crate) fn attach_remounted(&mut self, attach: Attach) -> Result<()> {
        let mut out = Vec::new();
        let json = token_signals(&self.app, self.id);
        PatchSignals::raw(&json).write_to(&mut out);
        let script = crate::protocol::nav_token_script(&nav_token(&self.app, self.id));
        write_script(&mut out, &script, self.nonce());
        let view = View {
            app: &self.app,
            route: self.page.route(),
            page: live_page_value(&self.url, self.prefix()),
        };
        write_root_patch(&self.app, &mut out, &self.page.render(&view)?);
        self.seq = attach.last_event_id.unwrap_or(0);
        self.generation = attach.generation;
        self.stream = Some(attach.queue);
        self.send(&out);
        Ok(())
    }

    /// Ends the session on purpose (`Ctx::end_session`): remembered first, so a request that
    /// finds the session gone from now on is told so; then the stream gets its last
    /// instruction and ends without a retry.
    fn end_on_purpose(&mut self, ending: SessionEnd) {
        tracing::debug!(?ending, "session ended on purpose");
        self.app.sessions().ended().insert(self.id, ending.clone());
        if let Some(stream) = self.stream.take() {
            let last = final_script(&ending).map(|script| {
                let mut out = Vec::new();
                write_script(&mut out, &script, self.nonce());
                Bytes::from(out)
            });
            stream.end(End::Close, last);
        }
    }

    /// Runs an event's handler: its answer is the cookies it set, or its error.
    async fn handle_event(
        &mut self,
        event: &EventCommand,
    ) -> (Result<Vec<http::HeaderValue>>, Option<SessionEnd>) {
        let name = event.name.as_str();
        if !self.page.route().events.contains(&name) {
            return (Err(Event::new(name, b"").unknown()), None);
        }
        let started = std::time::Instant::now();
        let app = self.app.clone();
        let route = self.page.route();
        if route.keep_signals {
            // Shared, not copied: the event's own buffer.
            app.sessions().keep_signals(self.id, event.signals.clone());
        }
        let prefix = self.prefix().to_owned();
        let mut cx = Ctx::new(&app, route, &prefix, PageData::Value(self.page_value()));
        cx.session = Some(self.handle());
        cx.request = Some(&event.headers);
        let result = self
            .page
            .event(&mut cx, Event::new(name, &event.signals))
            .await;
        let result = match result {
            Err(err) if err.location().is_some() => {
                cx.redirect_unchecked(err.location().unwrap_or("/"));
                Ok(())
            }
            other => other,
        };
        let rerender = result.is_ok() && cx.render != Render::Never;
        let cookies = std::mem::take(&mut cx.set_cookies);
        let ending = self.finish(cx, rerender);
        let status = result.as_ref().err().map(Error::status);
        crate::metrics::event_handled(route.name, status, started.elapsed());
        (result.map(|()| cookies), ending)
    }

    async fn handle_info(&mut self, message: Message) -> (Result<()>, Option<SessionEnd>) {
        let app = self.app.clone();
        let route = self.page.route();
        let prefix = self.prefix().to_owned();
        let mut cx = Ctx::new(&app, route, &prefix, PageData::Value(self.page_value()));
        cx.session = Some(self.handle());
        let result = self.page.info(&mut cx, message).await;
        let rerender = result.is_ok() && cx.render != Render::Never;
        let ending = self.finish(cx, rerender);
        (result, ending)
    }

    /// Runs the page's `connected` for the stream just attached; a failure is reported as
    /// `info`'s are. Hands back how it ended the session, if it did.
    async fn connected(&mut self) -> Option<SessionEnd> {
        let app = self.app.clone();
        let route = self.page.route();
        let prefix = self.prefix().to_owned();
        let mut cx = Ctx::new(&app, route, &prefix, PageData::Value(self.page_value()));
        cx.session = Some(self.handle());
        let span = info_span!(
            parent: self.span_id(),
            "connected",
            page = route.name,
            session = %short_id(self.id)
        );
        let result = self.page.connected(&mut cx).instrument(span).await;
        let rerender = result.is_ok() && cx.render == Render::Always;
        let ending = self.finish(cx, rerender);
        if let Err(err) = result {
            let report = format!("`connected` of `{}` failed: {err}", route.name);
            crate::error::log(crate::error::Level::Error, &report);
            self.console_error(&report);
        }
        ending
    }

    fn handle(&self) -> SessionHandle {
        SessionHandle::new(self.id, self.mailbox.clone())
    }

    /// Sends what a handler queued, then the re-render (none when the handler ended the
    /// session with a navigation); hands back how the handler ended the session, if it did.
    fn finish(&mut self, mut cx: Ctx<'_>, rerender: bool) -> Option<SessionEnd> {
        let ending = cx.ending.take();
        if !cx.flashes.is_empty() {
            let leaving = cx.redirected || matches!(ending, Some(SessionEnd::Navigate(_)));
            let flashes = std::mem::take(&mut cx.flashes);
            if leaving {
                // Set before the redirect's script runs: first in the batch.
                match self.app.cookie_header(&crate::flash::cookie(&flashes)) {
                    Ok(line) => {
                        let script = format!(
                            "document.cookie = {}",
                            crate::protocol::js_string(line.to_str().unwrap_or_default())
                        );
                        let mut first = Vec::new();
                        write_script(&mut first, &script, self.nonce());
                        first.extend_from_slice(&cx.out);
                        cx.out = first;
                    }
                    Err(err) => crate::error::log(crate::error::Level::Error, &err.to_string()),
                }
            } else {
                crate::flash::write_patch(&mut cx.out, &flashes);
            }
        }
        let rerender = rerender && !matches!(ending, Some(SessionEnd::Navigate(_)));
        if let Some(query) = cx.url.take() {
            let path = self.url.split('?').next().unwrap_or("/").to_owned();
            self.url = format!("{path}{query}");
            cx.page = PageData::Value(self.page_value());
        }
        if rerender {
            let view = cx.view();
            match self.page.render(&view) {
                Ok(body) => write_root_patch(&self.app, &mut cx.out, &body),
                Err(err) => crate::error::log(
                    crate::error::Level::Error,
                    &format!("render of `{}` failed: {err}", self.page.route().name),
                ),
            }
        }
        let out = std::mem::take(&mut cx.out);
        drop(cx);
        self.send(&out);
        ending
    }

    /// Gives each event of `batch` the next id, keeps it for replay, and queues it.
    fn send(&mut self, batch: &[u8]) {
        if batch.is_empty() {
            return;
        }
        let first = self.seq + 1;
        let stamped = self.stamp(batch);
        tracing::debug!(ids = %format_args!("{first}..={}", self.seq), bytes = stamped.len(), "patches queued");
        let capacity = self.app.sessions().config().stream_queue;
        if let Some(stream) = &self.stream
            && !stream.push(stamped, capacity)
        {
            // The client is too slow: what it missed is replaced by one full render.
            tracing::debug!("stream queue full: one full render replaces the backlog");
            crate::metrics::stream_overflow();
            if let Ok(bytes) = self.full_render()
                && let Some(stream) = &self.stream
            {
                stream.push(bytes, usize::MAX);
            }
        }
    }

    /// Numbers the events of `batch` into one buffer and records each in the ring.
    fn stamp(&mut self, batch: &[u8]) -> Bytes {
        let mut out = Vec::with_capacity(batch.len() + 16);
        let mut ranges = Vec::new();
        crate::sse::number_events(batch, &mut self.seq, &mut out, true, |id, written, _| {
            ranges.push((id, written));
        });
        let bytes = Bytes::from(out);
        for (id, range) in ranges {
            self.remember(id, bytes.slice(range), Bytes::new());
        }
        bytes
    }

    /// Keeps an event for replay, within the ring's count and byte bounds (oldest out first).
    /// An event larger than the byte bound alone empties the ring: a reconnect that missed it
    /// gets one full render, which is never older than what it replaces.
    fn remember(&mut self, id: u64, head: Bytes, body: Bytes) {
        let config = self.app.sessions().config();
        let (max_events, max_bytes) = (config.replay_events, config.replay_bytes);
        self.ring.push_back((id, head, body));
        // Counted afresh: the ring is short, and a running total would grow every session.
        let mut bytes: usize = self.ring.iter().map(|(_, h, b)| h.len() + b.len()).sum();
        while self.ring.len() > max_events || bytes > max_bytes {
            let Some((_, head, body)) = self.ring.pop_front() else {
                break;
            };
            bytes -= head.len() + body.len();
        }
    }

    /// Queues events encoded once for many sessions: each gets this session's next id in a
    /// small head of its own (`event:` line and `id:` line); the rest is the shared bytes.
    fn send_shared(&mut self, shared: &Bytes) {
        let capacity = self.app.sessions().config().stream_queue;
        let mut heads = Vec::new();
        let mut spans = Vec::with_capacity(1);
        crate::sse::number_events(
            shared,
            &mut self.seq,
            &mut heads,
            false,
            |id, head, body| {
                spans.push((id, head, body));
            },
        );
        let heads = Bytes::from(heads);
        let mut pieces = Vec::with_capacity(2 * spans.len());
        for (id, head, body) in spans {
            let (head, body) = (heads.slice(head), shared.slice(body));
            self.remember(id, head.clone(), body.clone());
            pieces.push(head);
            pieces.push(body);
        }
        if let Some(stream) = &self.stream
            && !stream.push_all(pieces, capacity)
        {
            crate::metrics::stream_overflow();
            if let Ok(bytes) = self.full_render()
                && let Some(stream) = &self.stream
            {
                stream.push(bytes, usize::MAX);
            }
        }
    }

    /// The whole page body as one root patch (with the next id).
    fn full_render(&mut self) -> Result<Bytes> {
        let view = View {
            app: &self.app,
            route: self.page.route(),
            page: self.page_value(),
        };
        let body = self.page.render(&view)?;
        let mut out = Vec::new();
        write_root_patch(&self.app, &mut out, &body);
        Ok(self.stamp(&out))
    }

    /// The page as it is now, for `SessionHandle::snapshot`.
    fn snapshot(&self) -> Result<super::handle::Snapshot> {
        let view = View {
            app: &self.app,
            route: self.page.route(),
            page: self.page_value(),
        };
        let html = self.page.render(&view)?.0;
        let signals = self
            .app
            .sessions()
            .kept_signals(self.id)
            .and_then(|raw| serde_json::from_slice(&raw).ok());
        Ok(super::handle::Snapshot {
            html,
            url: self.url.clone(),
            signals,
        })
    }

    /// Renders the page again and sends it whole (live reload). A template that no longer
    /// renders is reported (and, in debug builds, in the tab's console); the tab keeps what
    /// it shows.
    fn rerender(&mut self) {
        match self.full_render() {
            Ok(bytes) => {
                if let Some(stream) = &self.stream {
                    stream.push(bytes, usize::MAX);
                }
            }
            Err(err) => {
                let report = format!("`{}` did not render: {err}", self.page.route().name);
                crate::error::log(crate::error::Level::Error, &report);
                self.console_error(&report);
            }
        }
    }

    /// In debug builds, logs `report` in the tab's console.
    fn console_error(&mut self, report: &str) {
        if cfg!(debug_assertions) {
            let mut out = Vec::new();
            let script = crate::sse::console_script(
                crate::sse::ConsoleLevel::Error,
                &format!("dstar: {report}"),
            );
            write_script(&mut out, &script, self.nonce());
            self.send(&out);
        }
    }

    fn renew_tokens(&mut self) {
        let ttl = self.app.sessions().config().token_ttl;
        self.renew_at = Instant::now() + ttl / 2;
        let json = token_signals(&self.app, self.id);
        let mut out = Vec::new();
        PatchSignals::raw(&json).write_to(&mut out);
        let script = crate::protocol::nav_token_script(&nav_token(&self.app, self.id));
        write_script(&mut out, &script, self.nonce());
        self.send(&out);
    }

    /// Mounts the target page (its authorization runs here), then swaps it in.
    async fn navigate(&mut self, nav: Navigate) -> Result<bool> {
        let target = nav.target;
        if target.route.group != self.page.route().group {
            return Ok(false);
        }
        let app = self.app.clone();
        let mut mount = Mount::new(&app, &nav.parts, &target.params, Some(self.handle()));
        let mounted = (target.live.mount)(&mut mount).await;
        // A soft navigation has no page answer to carry cookies (set them in an event).
        if !mount.set_cookies.is_empty() {
            tracing::warn!(
                page = target.route.name,
                "cookies set by `mount` during a soft navigation are not sent"
            );
        }
        app.sessions()
            .tag(&self.handle(), std::mem::take(&mut mount.tags));
        let tracked = std::mem::take(&mut mount.tracked);
        let page = match mounted {
            Ok(page) => page,
            Err(err) if err.location().is_some() => {
                let mut out = Vec::new();
                let location = crate::protocol::under_prefix(
                    &nav.url[..nav.prefix_len],
                    err.location().unwrap_or("/"),
                );
                let redirect = crate::sse::redirect_script(&location);
                write_script(&mut out, &redirect, self.nonce());
                self.send(&out);
                return Ok(true);
            }
            Err(err) => return Err(err),
        };
        let subscriptions = std::mem::take(&mut mount.subscriptions).into_boxed_slice();
        let title = mount.title.take();
        let signals = std::mem::take(&mut mount.signals);
        drop(mount);

        self.page.terminate().await;
        for topic in &self.subscriptions {
            app.pubsub().unsubscribe(topic, self.id);
        }
        for topic in &subscriptions {
            app.pubsub().subscribe(topic, self.handle());
        }
        self.subscriptions = subscriptions;
        self.page = page;
        // The old page's presence leaves, the new one's is there at once (the stream is).
        let handle = self.handle();
        app.presence().ended(&handle);
        app.presence().track(&handle, tracked);
        app.presence().connected(&handle);
        self.url = nav.url;
        self.prefix_len = u16::try_from(nav.prefix_len).unwrap_or(0);

        let route = self.page.route();
        // What a full load would show: the title through the layout ("Item · MyApp").
        let title = crate::document::layout_title(
            &app,
            route,
            title.as_deref(),
            (self.prefix(), &nav.parts),
        )?;
        let mut out = Vec::new();
        // The new page's initial signals (`Mount::signal`) with fresh tokens.
        let json = token_signals_with(&app, self.id, signals);
        PatchSignals::raw(&json).write_to(&mut out);
        let view = View {
            app: &app,
            route,
            page: self.page_value(),
        };
        let body = self.page.render(&view)?;
        write_root_patch(&self.app, &mut out, &body);
        let script = crate::protocol::after_navigation_script(
            &title,
            &self.url,
            nav.history,
            &nav_token(&app, self.id),
            route.background,
        );
        write_script(&mut out, &script, self.nonce());
        self.send(&out);
        Ok(true)
    }
}

/// The script that leaves a tab as `ending` says: a navigation, or none (`Stop`: the stream
/// just ends).
pub(crate) fn final_script(ending: &SessionEnd) -> Option<String> {
    match ending {
        SessionEnd::Navigate(url) => Some(crate::sse::redirect_script(url)),
        SessionEnd::Stop => None,
    }
}

/// Writes `source` as a script event whose element carries the page's `nonce`.
fn write_script(out: &mut Vec<u8>, source: &str, nonce: Nonce) {
    let nonce = nonce.to_string();
    ExecuteScript::new(source)
        .attributes(&[("nonce", &nonce)])
        .write_to(out);
}
