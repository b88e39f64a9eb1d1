//! The conformance endpoint as a library, so tests can serve it in-process.

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use dstar::response::Sse;
use dstar::signals::Signals;
use dstar::sse::{ExecuteScript, Mode, Namespace, PatchElements, PatchSignals};
use serde::Deserialize;
use serde_json::Value;

/// The router serving `GET|POST /test`.
pub fn app() -> Router {
    Router::new().route("/test", get(test).post(test))
}

#[derive(Debug, Deserialize)]
struct Input {
    events: Vec<SdkCall>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
enum SdkCall {
    PatchElements(PatchElementsCall),
    PatchSignals(PatchSignalsCall),
    ExecuteScript(ExecuteScriptCall),
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Common {
    event_id: Option<String>,
    retry_duration: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PatchElementsCall {
    #[serde(flatten)]
    common: Common,
    #[serde(default)]
    elements: String,
    selector: Option<String>,
    mode: Option<String>,
    #[serde(default)]
    use_view_transition: bool,
    view_transition_selector: Option<String>,
    namespace: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PatchSignalsCall {
    #[serde(flatten)]
    common: Common,
    signals: Option<Value>,
    #[serde(rename = "signals-raw")]
    signals_raw: Option<String>,
    #[serde(default)]
    only_if_missing: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExecuteScriptCall {
    #[serde(flatten)]
    common: Common,
    script: String,
    auto_remove: Option<bool>,
    #[serde(default)]
    attributes: Ordered,
}

/// A JSON object's entries in the order the input gives them. `serde_json::Map` sorts its keys
/// (unless the whole build turns on `preserve_order`), and the official cases expect the
/// script's attributes in the order they were given (`type` before `blocking`).
#[derive(Debug, Default)]
struct Ordered(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Entries;
        impl<'de> serde::de::Visitor<'de> for Entries {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of attributes")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Ordered, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, Value>()? {
                    entries.push(entry);
                }
                Ok(Ordered(entries))
            }
        }
        deserializer.deserialize_map(Entries)
    }
}

async fn test(Signals(input): Signals<Input>) -> Result<Sse, (axum::http::StatusCode, String)> {
    let mut out = Vec::new();
    for call in &input.events {
        encode(call, &mut out).map_err(|msg| (axum::http::StatusCode::BAD_REQUEST, msg))?;
    }
    Ok(Sse::once(out))
}

fn encode(call: &SdkCall, out: &mut Vec<u8>) -> Result<(), String> {
    match call {
        SdkCall::PatchElements(call) => {
            let mut event =
                PatchElements::new(&call.elements).view_transition(call.use_view_transition);
            if let Some(selector) = &call.selector {
                event = event.selector(selector);
            }
            if let Some(mode) = &call.mode {
                event = event
                    .mode(Mode::from_name(mode).ok_or_else(|| format!("unknown mode `{mode}`"))?);
            }
            if let Some(selector) = &call.view_transition_selector {
                event = event.view_transition_selector(selector);
            }
            if let Some(namespace) = &call.namespace {
                event = event.namespace(match namespace.as_str() {
                    "html" => Namespace::Html,
                    "svg" => Namespace::Svg,
                    "mathml" => Namespace::MathMl,
                    _ => return Err(format!("unknown namespace `{namespace}`")),
                });
            }
            let (id, retry) = common(&call.common);
            if let Some(id) = id {
                event = event.id(id);
            }
            if let Some(retry) = retry {
                event = event.retry(retry);
            }
            event.write_to(out);
        }
        SdkCall::PatchSignals(call) => {
            let json = match (&call.signals_raw, &call.signals) {
                (Some(raw), _) => raw.clone(),
                (None, Some(signals)) => signals.to_string(),
                (None, None) => {
                    return Err("patchSignals needs `signals` or `signals-raw`".to_owned());
                }
            };
            let mut event = PatchSignals::raw(&json).only_if_missing(call.only_if_missing);
            let (id, retry) = common(&call.common);
            if let Some(id) = id {
                event = event.id(id);
            }
            if let Some(retry) = retry {
                event = event.retry(retry);
            }
            event.write_to(out);
        }
        SdkCall::ExecuteScript(call) => {
            let attributes: Vec<(&str, String)> = call
                .attributes
                .0
                .iter()
                .map(|(name, value)| {
                    let value = match value {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (name.as_str(), value)
                })
                .collect();
            let attributes: Vec<(&str, &str)> = attributes
                .iter()
                .map(|(name, value)| (*name, value.as_str()))
                .collect();
            let mut event = ExecuteScript::new(&call.script)
                .auto_remove(call.auto_remove.unwrap_or(true))
                .attributes(&attributes);
            let (id, retry) = common(&call.common);
            if let Some(id) = id {
                event = event.id(id);
            }
            if let Some(retry) = retry {
                event = event.retry(retry);
            }
            event.write_to(out);
        }
    }
    Ok(())
}

fn common(common: &Common) -> (Option<&str>, Option<Duration>) {
    (
        common.event_id.as_deref(),
        common.retry_duration.map(Duration::from_millis),
    )
}
