//! The message types that cross nodes: each registered Rust type with the name it has on the
//! wire, how to write it as JSON, and how to read it back.

use std::any::{Any, TypeId};
use std::collections::HashMap;

use dstar_runtime::page::{DecodePayload, Message};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::frame::MAX_TYPE_NAME;

/// Appends a message's payload as JSON.
type Encode = fn(&Message, &mut Vec<u8>) -> serde_json::Result<()>;

/// One registered type, as the builder collected it.
#[derive(Clone)]
pub(crate) struct Registration {
    type_id: TypeId,
    rust_name: &'static str,
    name: String,
    encode: Encode,
    decode: DecodePayload,
}

impl Registration {
    pub(crate) fn of<T: Serialize + DeserializeOwned + Send + Sync + 'static>(name: &str) -> Self {
        Registration {
            type_id: TypeId::of::<T>(),
            rust_name: std::any::type_name::<T>(),
            name: name.to_owned(),
            encode: encode::<T>,
            decode: decode::<T>,
        }
    }
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} as `{}`", self.rust_name, self.name)
    }
}

fn encode<T: Serialize + 'static>(message: &Message, out: &mut Vec<u8>) -> serde_json::Result<()> {
    match message.get::<T>() {
        Some(payload) => serde_json::to_writer(out, payload),
        // Types are looked up by the payload's `TypeId`, so this is never reached.
        None => Err(serde::ser::Error::custom("the payload changed type")),
    }
}

fn decode<T: DeserializeOwned + Send + Sync + 'static>(
    json: &[u8],
) -> serde_json::Result<Box<dyn Any + Send + Sync>> {
    Ok(Box::new(serde_json::from_slice::<T>(json)?))
}

/// The registered types, by Rust type (to send) and by wire name (to receive).
#[derive(Debug, Default)]
pub(crate) struct Types {
    by_type: HashMap<TypeId, Registration>,
    by_name: HashMap<String, DecodePayload>,
}

impl Types {
    /// Checks the registrations: every problem, one per line.
    pub(crate) fn new(registrations: Vec<Registration>) -> Result<Types, String> {
        let mut types = Types::default();
        let mut problems = Vec::new();
        for registration in registrations {
            if registration.name.is_empty() || registration.name.len() > MAX_TYPE_NAME {
                problems.push(format!(
                    "`{}` is registered as `{}`: a message name has 1 to {MAX_TYPE_NAME} bytes",
                    registration.rust_name, registration.name
                ));
                continue;
            }
            if let Some(earlier) = types.by_type.get(&registration.type_id) {
                problems.push(format!(
                    "`{}` is registered twice, as `{}` and as `{}`",
                    registration.rust_name, earlier.name, registration.name
                ));
                continue;
            }
            if let Some(earlier) = types.by_type.values().find(|r| r.name == registration.name) {
                problems.push(format!(
                    "`{}` names both `{}` and `{}`",
                    registration.name, earlier.rust_name, registration.rust_name
                ));
                continue;
            }
            types
                .by_name
                .insert(registration.name.clone(), registration.decode);
            types.by_type.insert(registration.type_id, registration);
        }
        if problems.is_empty() {
            Ok(types)
        } else {
            Err(problems.join("\n"))
        }
    }

    /// The wire name of `message`'s payload and how to encode it, if its type is registered.
    pub(crate) fn sending(&self, message: &Message) -> Option<(&str, Encode)> {
        let registration = self.by_type.get(&message.payload_type_id())?;
        Some((&registration.name, registration.encode))
    }

    /// How to decode a payload sent under `name`, if that name is registered here.
    pub(crate) fn receiving(&self, name: &str) -> Option<DecodePayload> {
        self.by_name.get(name).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Note {
        text: String,
    }

    #[test]
    fn a_registered_type_goes_out_and_comes_back_as_itself() {
        let types = Types::new(vec![Registration::of::<Note>("note")]).unwrap();
        let message = Message::new(Note { text: "hi".into() });
        let (name, encode) = types.sending(&message).unwrap();
        assert_eq!(name, "note");
        let mut json = Vec::new();
        encode(&message, &mut json).unwrap();
        assert_eq!(json, br#"{"text":"hi"}"#);

        let decode = types.receiving("note").unwrap();
        let back = Message::from_other_node(None, json.into(), decode);
        assert_eq!(back.get::<Note>(), Some(&Note { text: "hi".into() }));

        assert!(types.sending(&Message::new(1u8)).is_none());
        assert!(types.receiving("other").is_none());
    }

    #[test]
    fn clashing_registrations_are_all_reported() {
        let problems = Types::new(vec![
            Registration::of::<Note>("note"),
            Registration::of::<Note>("again"),
            Registration::of::<u8>("note"),
            Registration::of::<u16>(""),
            Registration::of::<u32>(&"x".repeat(256)),
        ])
        .unwrap_err();
        let lines: Vec<&str> = problems.lines().collect();
        assert_eq!(lines.len(), 4, "{problems}");
        assert!(lines[0].contains("is registered twice, as `note` and as `again`"));
        assert!(lines[1].starts_with("`note` names both `"));
        assert!(lines[2].contains("a message name has 1 to 255 bytes"));
    }
}
