//! Typed forms: a handler takes `Form<T>` for its signals, and gets either a `T` that passed
//! its checks or the error of each field, to render next to it.
//!
//! ```ignore
//! #[derive(serde::Deserialize)]
//! struct NewItem { name: String, quantity: u32 }
//!
//! impl Validate for NewItem {
//!     fn validate(&self, errors: &mut FieldErrors) {
//!         if self.name.trim().is_empty() {
//!             errors.add("name", "is required");
//!         }
//!         if self.quantity == 0 {
//!             errors.add("quantity", "must be at least 1");
//!         }
//!     }
//! }
//!
//! #[event]
//! async fn save(&mut self, cx: &mut Ctx<'_>, form: Form<NewItem>) -> dstar::Result<()> {
//!     let item = match form.validate() {
//!         Ok(item) => item,
//!         Err(errors) => {
//!             self.errors = errors; // rendered with `{{ field_error(errors, "name") }}`
//!             return Ok(());
//!         }
//!     };
//!     ...
//! }
//! ```
//!
//! - A value of the wrong type is a field error, not a refused request: `quantity: "abc"`
//!   gives "must be a whole number" on `quantity`. A number typed into a text input arrives as
//!   a string (`"12"`); a field that wants a number takes it.
//! - [`Validate`] is a small trait rather than a crate such as `validator` or `garde`: rules
//!   are plain Rust next to the type, there is no derive to learn or compile, and errors the
//!   server finds later (a name already taken in the database) go through the same
//!   [`FieldErrors::add`].
//! - Values stay in the browser: the inputs are bound to signals (`data-bind`), so a form
//!   re-rendered with its errors keeps what the person typed.
//! - The template helper `field_error(errors, "name")` writes
//!   `<p class="field-error" id="name-error" role="alert">is required</p>` for a field with
//!   an error and nothing for one without (no strict-mode trap on a missing key). Point the
//!   input at it with `aria-describedby="name-error"`.

use std::collections::BTreeMap;

use serde::de::{DeserializeOwned, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The checks of a form's type, beyond its field types.
pub trait Validate {
    /// Adds an error to `errors` for each field that is not acceptable.
    fn validate(&self, errors: &mut FieldErrors);
}

/// The error message of each field that has one (the first found), by field name. Serialises
/// as a map from field to message, which is what templates get.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct FieldErrors(BTreeMap<String, String>);

impl FieldErrors {
    /// No errors.
    pub fn new() -> Self {
        FieldErrors::default()
    }

    /// Records `message` for `field`, unless it has one already.
    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.entry(field.into()).or_insert_with(|| message.into());
    }

    /// The error of `field`.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.0.get(field).map(String::as_str)
    }

    /// Whether no field has an error.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many fields have an error.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// `Ok(())` without errors, else `Err(self)`.
    pub fn into_result(self) -> Result<(), FieldErrors> {
        if self.is_empty() { Ok(()) } else { Err(self) }
    }
}

/// A handler's signals read as form `T`: each field of the wrong type becomes a field error
/// instead of a refused request (see the module docs).
#[derive(Debug, Clone)]
pub struct Form<T> {
    values: Map<String, Value>,
    /// The form, read with a stand-in (`0`, `""`, `false`) for each field of the wrong type, so
    /// its other fields can still be checked; `None` when even that failed.
    value: Option<T>,
    /// The fields whose type was wrong.
    type_errors: FieldErrors,
}

impl<T> Form<T> {
    /// The signals as sent.
    pub fn values(&self) -> &Map<String, Value> {
        &self.values
    }

    /// The form, or the errors of the fields whose type was wrong.
    pub fn into_inner(self) -> Result<T, FieldErrors> {
        match self.value {
            Some(value) if self.type_errors.is_empty() => Ok(value),
            _ => Err(self.type_errors),
        }
    }

    /// The form if its field types are right and it passes [`Validate`], else every error
    /// found: a field of the wrong type says so, and the other fields are still checked.
    pub fn validate(self) -> Result<T, FieldErrors>
    where
        T: Validate,
    {
        let mut errors = self.type_errors;
        let Some(value) = self.value else {
            return Err(errors);
        };
        let mut checks = FieldErrors::new();
        value.validate(&mut checks);
        for (field, message) in checks.0 {
            errors.add(field, message);
        }
        errors.into_result().map(|()| value)
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Form<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let values = Map::deserialize(deserializer)?;
        let (value, type_errors) = parse(&values);
        Ok(Form {
            values,
            value,
            type_errors,
        })
    }
}

/// Reads `values` as `T`. A field that wants a number and got a string of digits (what a text
/// input bound to a signal sends) is read as that number; any other mismatch is its field's
/// error, and the field is read as a stand-in of its type so the rest can be read.
fn parse<T: DeserializeOwned>(values: &Map<String, Value>) -> (Option<T>, FieldErrors) {
    let mut values = values.clone();
    let mut errors = FieldErrors::new();
    // Each round fixes one field; a form has few fields.
    for _ in 0..=2 * values.len() + 1 {
        let err = match serde_path_to_error::deserialize::<_, T>(Value::Object(values.clone())) {
            Ok(form) => return (Some(form), errors),
            Err(err) => err,
        };
        let message = err.inner().to_string();
        let field = err
            .path()
            .iter()
            .next()
            .map(|segment| segment.to_string())
            .filter(|field| values.contains_key(field))
            .or_else(|| missing_field(&message));
        let Some(field) = field else {
            errors.add("", friendly(&message));
            return (None, errors);
        };
        if let Some(Value::String(text)) = values.get(&field)
            && wants_number(&message)
            && let Ok(number) = text.trim().parse::<serde_json::Number>()
        {
            values.insert(field, Value::Number(number));
            continue;
        }
        let Some(stand_in) = stand_in(&message) else {
            errors.add(field, friendly(&message));
            return (None, errors);
        };
        errors.add(field.clone(), friendly(&message));
        values.insert(field, stand_in);
    }
    (None, errors)
}

/// A value of the type `message` says was expected, to read the rest of a form past a field
/// of the wrong type.
fn stand_in(message: &str) -> Option<Value> {
    let expected = message.split("expected ").nth(1)?;
    if expected.starts_with('u') || expected.starts_with('i') || expected.starts_with('f') {
        Some(Value::from(0))
    } else if expected.starts_with("a boolean") {
        Some(Value::Bool(false))
    } else if expected.starts_with("a string") {
        Some(Value::String(String::new()))
    } else {
        None
    }
}

fn wants_number(message: &str) -> bool {
    message.starts_with("invalid type: string")
        && ["expected u", "expected i", "expected f"]
            .iter()
            .any(|expected| message.contains(expected))
}

/// The field a "missing field `x`" error names.
fn missing_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_owned())
}

/// A person's wording of serde's message.
fn friendly(message: &str) -> String {
    if message.starts_with("missing field") {
        return "is required".to_owned();
    }
    if message.contains("out of range") || message.starts_with("invalid value: integer") {
        return "is out of range".to_owned();
    }
    if let Some(expected) = message.split("expected ").nth(1) {
        if expected.starts_with('u') || expected.starts_with('i') {
            return "must be a whole number".to_owned();
        }
        if expected.starts_with('f') {
            return "must be a number".to_owned();
        }
        if expected.starts_with("a boolean") {
            return "must be yes or no".to_owned();
        }
        if expected.starts_with("a string") {
            return "must be text".to_owned();
        }
    }
    message.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Item {
        name: String,
        quantity: u8,
        #[serde(default)]
        price: f64,
    }

    impl Validate for Item {
        fn validate(&self, errors: &mut FieldErrors) {
            if self.name.is_empty() {
                errors.add("name", "is required");
            }
            if self.quantity == 0 {
                errors.add("quantity", "must be at least 1");
            }
        }
    }

    fn form(json: &str) -> Form<Item> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn numbers_typed_into_text_inputs_are_numbers() {
        let item = form(r#"{"name": "pen", "quantity": " 12", "price": "1.5"}"#)
            .validate()
            .unwrap();
        assert_eq!(
            item,
            Item {
                name: "pen".into(),
                quantity: 12,
                price: 1.5
            }
        );
        // A string field keeps digits as text.
        let item = form(r#"{"name": "42", "quantity": 1}"#).validate().unwrap();
        assert_eq!(item.name, "42");
    }

    #[test]
    fn wrong_types_and_missing_fields_are_field_errors() {
        let errors = form(r#"{"name": "pen", "quantity": "abc"}"#)
            .validate()
            .unwrap_err();
        assert_eq!(errors.get("quantity"), Some("must be a whole number"));
        // The other fields are still checked past a wrong type.
        let errors = form(r#"{"name": "", "quantity": "abc"}"#)
            .validate()
            .unwrap_err();
        assert_eq!(errors.get("quantity"), Some("must be a whole number"));
        assert_eq!(errors.get("name"), Some("is required"));
        assert_eq!(errors.len(), 2);
        let errors = form(r#"{"name": 7, "quantity": 1}"#)
            .into_inner()
            .unwrap_err();
        assert_eq!(errors.get("name"), Some("must be text"));
        let errors = form(r#"{"name": "pen", "quantity": 300}"#)
            .validate()
            .unwrap_err();
        assert_eq!(errors.get("quantity"), Some("is out of range"));
        let errors = form(r#"{"quantity": 1}"#).validate().unwrap_err();
        assert_eq!(errors.get("name"), Some("is required"));
        let errors = form(r#"{"name": "pen", "quantity": 1, "price": "x"}"#)
            .validate()
            .unwrap_err();
        assert_eq!(errors.get("price"), Some("must be a number"));
    }

    #[test]
    fn validation_reports_every_field_and_keeps_the_values() {
        let form = form(r#"{"name": "", "quantity": 0}"#);
        assert_eq!(form.values()["name"], "");
        let errors = form.validate().unwrap_err();
        assert_eq!(errors.len(), 2);
        assert_eq!(
            serde_json::to_value(&errors).unwrap(),
            serde_json::json!({"name": "is required", "quantity": "must be at least 1"})
        );
    }
}
