//! What a user does on a page: events, clicks, navigation, and waiting for what a live page's
//! stream brings.

use axum::body::Body;
use bytes::Bytes;
use http::{Request, StatusCode};
use serde::Serialize;
use serde_json::{Map, Value};

use super::client::is_event_stream;
use super::error::TestError;
use super::html::{self, Tree};
use super::page::{HistoryChange, TestPage};
use super::script;
use super::selector::Selector;
use super::signals;
use crate::protocol::{
    ARGS_HEADER, EVENT_HEADER, EVENT_PATH, HISTORY_HEADER, NAV_PATH, NAVIGATE_CALL, TOKEN_HEADER,
    URL_HEADER,
};

/// The action a `data-on:click` attribute performs.
enum ClickAction {
    Event {
        name: String,
        args: Map<String, Value>,
        token: Option<String>,
    },
    Navigate(String),
}

impl TestPage {
    /// Sends event `name` with the page's signals, as `event('name')` in a template does.
    pub async fn click(&mut self, name: &str) -> Result<(), TestError> {
        self.send_event(name, Map::new(), None).await
    }

    /// Sends event `name` with extra values: `args` (a JSON object) is merged over the signals
    /// (top-level keys replace), as `event('name', {...})` in a template does.
    pub async fn event(&mut self, name: &str, args: Value) -> Result<(), TestError> {
        let Value::Object(args) = args else {
            return Err(TestError::protocol(format!(
                "the arguments of event `{name}` must be a JSON object, got {args}"
            )));
        };
        self.send_event(name, args, None).await
    }

    /// Like [`event`](Self::event), with the extra values from a `serde` type (a struct or a
    /// map).
    pub async fn event_with<T: Serialize + ?Sized>(
        &mut self,
        name: &str,
        args: &T,
    ) -> Result<(), TestError> {
        let args = serde_json::to_value(args).map_err(|err| {
            TestError::protocol(format!(
                "the arguments of event `{name}` are not JSON: {err}"
            ))
        })?;
        self.event(name, args).await
    }

    /// Clicks the first element matching `selector`: runs the dstar action in its
    /// `data-on:click` (an `event(...)` with its arguments, or a `link(...)`/`navigate(...)`),
    /// or follows it if it is a plain `<a href>`.
    pub async fn click_on(&mut self, selector: &str) -> Result<(), TestError> {
        let action = self.click_action(selector)?;
        match action {
            ClickAction::Event { name, args, token } => self.send_event(&name, args, token).await,
            ClickAction::Navigate(url) => self.navigate(&url).await,
        }
    }

    fn click_action(&self, selector: &str) -> Result<ClickAction, TestError> {
        let parsed = Selector::parse(selector).map_err(|reason| TestError::Selector {
            selector: selector.to_owned(),
            reason,
        })?;
        let tree = Tree::parse(&self.document);
        let element = tree
            .select(&parsed)
            .first()
            .map(|&i| &tree.elements[i])
            .ok_or_else(|| {
                TestError::protocol(format!(
                    "no element matches `{selector}` to click on\n{}",
                    self.describe_html()
                ))
            })?;
        let action = element
            .attrs
            .iter()
            .find(|(name, _)| {
                name.strip_prefix("data-on:click")
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with("__"))
            })
            .map(|(_, value)| value.as_str());
        let after = |text: &str, marker: &str| {
            text.find(marker)
                .and_then(|at| script::string_literal(text[at + marker.len()..].trim_start()))
        };
        if let Some(action) = action {
            if let Some(name) = after(action, &format!("'{EVENT_HEADER}':")) {
                let args = match after(action, &format!("'{ARGS_HEADER}':")) {
                    Some(json) => match serde_json::from_str(&json) {
                        Ok(Value::Object(args)) => args,
                        _ => {
                            return Err(TestError::protocol(format!(
                                "the event arguments of `{selector}` are not a JSON object: {json}"
                            )));
                        }
                    },
                    None => Map::new(),
                };
                let token = after(action, &format!("'{TOKEN_HEADER}':"));
                return Ok(ClickAction::Event { name, args, token });
            }
            if let Some(url) = after(action, NAVIGATE_CALL) {
                return Ok(ClickAction::Navigate(url));
            }
            if element.name != "a" {
                return Err(TestError::protocol(format!(
                    "the `data-on:click` of `{selector}` is not a dstar action the test client \
                     knows (`event(...)`, `link(...)`, `navigate(...)`): {action}"
                )));
            }
        }
        match (element.name.as_str(), element.attr("href")) {
            ("a", Some(href)) => Ok(ClickAction::Navigate(href.to_owned())),
            _ => Err(TestError::protocol(format!(
                "`{selector}` has no `data-on:click` action and is not a link: {}",
                html::snippet(&self.document[element.outer.clone()])
            ))),
        }
    }

    async fn send_event(
        &mut self,
        name: &str,
        args: Map<String, Value>,
        token: Option<String>,
    ) -> Result<(), TestError> {
        let mut body = signals::outgoing(&self.signals);
        body.extend(args);
        let body = Value::Object(body).to_string();
        let live = self.live.is_some();
        let (url, token) = if live {
            (self.live_path(EVENT_PATH), self.live_token()?)
        } else {
            let token = token.or_else(|| self.stateless_token()).ok_or_else(|| {
                TestError::protocol(format!(
                    "cannot send event `{name}`: the page has no `event(...)` action, so there \
                     is no token to send it with\n{}",
                    self.describe_html()
                ))
            })?;
            (self.url.clone(), token)
        };
        let request = self.action_request(&url, &token, body, &[(EVENT_HEADER, name)])?;
        let what = format!("POST {url} (event `{name}`)");
        let (status, headers, answer) = self.client.fetch(request, &what).await?;
        let error = |body: &Bytes| TestError::Status {
            request: what.clone(),
            status,
            body: String::from_utf8_lossy(body).into_owned(),
        };
        if live {
            if status == StatusCode::NO_CONTENT {
                return self.settle().await;
            }
            // What a failed handler queued was still sent; take it in, then report.
            if status.is_success() && is_event_stream(&headers) {
                let load = self.apply_body(&answer)?;
                self.follow(load).await?;
                return self.settle().await;
            }
            let _ = self.settle().await;
            return Err(error(&answer));
        }
        if status.is_success() && is_event_stream(&headers) {
            let load = self.apply_body(&answer)?;
            return self.follow(load).await;
        }
        Err(error(&answer))
    }

    /// Navigates to `url` like a `link()`: a soft navigation on a live page (falling back to a
    /// full load when the server says so), a full load otherwise.
    pub async fn navigate(&mut self, url: &str) -> Result<(), TestError> {
        self.go(url, HistoryChange::Push).await
    }

    /// Goes back one entry in this tab's history, like the Back button.
    pub async fn back(&mut self) -> Result<(), TestError> {
        if self.position == 0 {
            return Err(TestError::protocol(format!(
                "cannot go back: {} is the first page of this tab",
                self.url
            )));
        }
        self.position -= 1;
        let url = self.history[self.position].clone();
        self.go(&url, HistoryChange::Keep).await
    }

    /// Loads the current URL again (a new session for a live page).
    pub async fn reload(&mut self) -> Result<(), TestError> {
        let url = self.url.clone();
        self.follow(Some((url, HistoryChange::Keep))).await
    }

    async fn go(&mut self, url: &str, change: HistoryChange) -> Result<(), TestError> {
        let nav = self.live.as_ref().and_then(|live| live.nav.clone());
        let Some(nav) = nav else {
            return self.follow(Some((url.to_owned(), change))).await;
        };
        let history = if change == HistoryChange::Push {
            "push"
        } else {
            "replace"
        };
        let nav_path = self.live_path(NAV_PATH);
        let request = Request::post(&nav_path)
            .header(TOKEN_HEADER, nav)
            .header(URL_HEADER, url)
            .header(HISTORY_HEADER, history)
            .body(Body::empty())
            .map_err(|err| TestError::protocol(format!("cannot navigate to `{url}`: {err}")))?;
        let what = format!("POST {nav_path} (navigation to `{url}`)");
        let (status, _headers, answer) = self.client.fetch(request, &what).await?;
        match status {
            StatusCode::NO_CONTENT => self.settle().await,
            StatusCode::OK => {
                let load = serde_json::from_slice::<Value>(&answer)
                    .ok()
                    .and_then(|answer| answer.get("load")?.as_str().map(str::to_owned))
                    .ok_or_else(|| {
                        TestError::protocol(format!(
                            "{what} answered 200 without `{{\"load\": url}}`: {}",
                            String::from_utf8_lossy(&answer)
                        ))
                    })?;
                self.follow(Some((load, change))).await
            }
            _ => Err(TestError::Status {
                request: what,
                status,
                body: String::from_utf8_lossy(&answer).into_owned(),
            }),
        }
    }

    /// Waits (up to the client's timeout) until the live page's stream delivers at least one
    /// event, then applies it and everything else that has arrived.
    pub async fn next_update(&mut self) -> Result<(), TestError> {
        let timeout = self.client.timeout;
        let url = self.url.clone();
        let live = self.live.as_mut().ok_or_else(|| TestError::NotLive {
            action: "next_update",
            url: url.clone(),
        })?;
        let events = live.stream.next(timeout).await.map_err(|err| match err {
            Some(after) => TestError::Timeout {
                waiting_for: format!("an update on the stream of {url}"),
                after,
            },
            None => TestError::StreamClosed { url: url.clone() },
        })?;
        let load = self.apply(events)?;
        self.follow(load).await
    }

    /// Applies everything the live page's session had been sent before this call: see
    /// [When an action returns](super#when-an-action-returns). Does nothing on a stateless page.
    pub async fn settle(&mut self) -> Result<(), TestError> {
        let load = self.sync().await?;
        self.follow(load).await
    }

    /// The token of the first `event(...)` action in the page (stateless pages).
    fn stateless_token(&self) -> Option<String> {
        let marker = format!("'{TOKEN_HEADER}':");
        let tree = Tree::parse(&self.document);
        tree.elements
            .iter()
            .flat_map(|element| element.attrs.iter())
            .find_map(|(_, value)| {
                let at = value.find(&marker)?;
                script::string_literal(value[at + marker.len()..].trim_start())
            })
    }
}
