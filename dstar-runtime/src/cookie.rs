//! Cookies: the ones a request carries, the `Set-Cookie` an answer sends, and values signed or
//! encrypted with the app's key.
//!
//! - **Plain** values are what the browser sent, percent-decoded (dstar percent-encodes what
//!   it writes: bytes a cookie may not hold, and `%`).
//! - **Signed** values ([`Cookie::signed`]) can be read but not changed by the browser: the
//!   value, `.`, and the HMAC-SHA256 (hex) of the cookie's name and value under the app's key.
//!   A value whose tag does not check is not there.
//! - **Private** values ([`Cookie::private`]) can be neither read nor changed: AES-256-GCM
//!   under a key derived from the app's, with a random nonce and the cookie's name as
//!   associated data (so a value cannot be moved to another cookie), in hex.
//!
//! Both check against the previous key too while one is rotated out
//! ([`Keys::with_previous`]), so signed-in users stay signed in across a rotation.

use std::fmt::Write as _;
use std::time::Duration;

use http::{HeaderMap, HeaderValue, header};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

use crate::token::{Keys, from_hex, to_hex};

/// What a signed cookie's tag covers besides its value: the name, under this label.
const SIGNED_LABEL: &[u8] = b"dstar signed cookie";
/// The label the private cookies' cipher key is derived under.
const PRIVATE_LABEL: &[u8] = b"dstar private cookie";
/// The hex length of an HMAC-SHA256 tag.
const TAG_HEX: usize = 64;

/// The cookies of one request.
#[derive(Debug, Clone, Copy)]
pub struct Cookies<'a> {
    headers: &'a HeaderMap,
    keys: &'a Keys,
}

impl<'a> Cookies<'a> {
    pub(crate) fn new(headers: &'a HeaderMap, keys: &'a Keys) -> Self {
        Cookies { headers, keys }
    }

    /// The value of cookie `name` as the browser sent it (percent-decoded); the first when
    /// there are several.
    pub fn get(&self, name: &str) -> Option<String> {
        self.raw(name).map(percent_decode)
    }

    /// The value of signed cookie `name`, if its signature checks.
    pub fn signed(&self, name: &str) -> Option<String> {
        let raw = self.raw(name)?;
        let (value, tag) = raw.rsplit_once('.')?;
        let mut bytes = [0u8; TAG_HEX / 2];
        if tag.len() != TAG_HEX || !from_hex(tag, &mut bytes) {
            return None;
        }
        let value = percent_decode(value);
        self.keys
            .check_tag(&signed_label(name), value.as_bytes(), &bytes)
            .then_some(value)
    }

    /// The value of private cookie `name`, if it decrypts and authenticates.
    pub fn private(&self, name: &str) -> Option<String> {
        let raw = self.raw(name)?;
        if raw.len() % 2 != 0 || raw.len() < 2 * (NONCE_LEN + AES_256_GCM.tag_len()) {
            return None;
        }
        let mut bytes = vec![0u8; raw.len() / 2];
        if !from_hex(raw, &mut bytes) {
            return None;
        }
        let (current, previous) = self.keys.derived_keys(PRIVATE_LABEL);
        std::iter::once(current)
            .chain(previous)
            .find_map(|key| open(&key, name, bytes.clone()))
    }

    /// The raw text of cookie `name`: the first pair of that name in any `Cookie` header.
    fn raw(&self, name: &str) -> Option<&'a str> {
        self.headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|line| line.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.trim_matches('"'))
    }
}

/// `response` with the `Set-Cookie` values a page or a handler asked for.
pub(crate) fn with_cookies(
    mut response: axum::response::Response,
    cookies: Vec<HeaderValue>,
) -> axum::response::Response {
    for cookie in cookies {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

fn open(key: &[u8; 32], name: &str, mut bytes: Vec<u8>) -> Option<String> {
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).ok()?);
    let (nonce, sealed) = bytes.split_at_mut(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let plain = key
        .open_in_place(nonce, Aad::from(name.as_bytes()), sealed)
        .ok()?;
    String::from_utf8(plain.to_vec()).ok()
}

fn signed_label(name: &str) -> Vec<u8> {
    let mut label = SIGNED_LABEL.to_vec();
    label.push(0);
    label.extend_from_slice(name.as_bytes());
    label
}

/// How a cookie's value is kept from the browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protection {
    Plain,
    Signed,
    Private,
}

/// The `SameSite` attribute of a cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    /// Sent only with requests from this site.
    Strict,
    /// Also sent when the person follows a link from another site (the default).
    Lax,
    /// Sent with every request (needs [`Cookie::secure`]).
    None,
}

/// A cookie for an answer to set (or, with [`Cookie::removal`], to delete): `HttpOnly`,
/// `SameSite=Lax` and `Path=/` unless changed.
///
/// ```
/// use std::time::Duration;
/// use dstar_runtime::cookie::Cookie;
///
/// let session = Cookie::new("user", "42").private().max_age(Duration::from_secs(86_400));
/// let theme = Cookie::new("theme", "dark").http_only(false);
/// let logout = Cookie::removal("user");
/// # let _ = (session, theme, logout);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cookie {
    name: String,
    value: String,
    protection: Protection,
    path: String,
    max_age: Option<Duration>,
    http_only: bool,
    secure: bool,
    same_site: SameSite,
}

impl Cookie {
    /// Cookie `name` holding `value` (any text: what a cookie cannot hold is percent-encoded).
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Cookie {
            name: name.into(),
            value: value.into(),
            protection: Protection::Plain,
            path: "/".to_owned(),
            max_age: None,
            http_only: true,
            secure: false,
            same_site: SameSite::Lax,
        }
    }

    /// Deletes cookie `name` (set at `Path=/`, as [`Cookie::new`] sets them).
    pub fn removal(name: impl Into<String>) -> Self {
        Cookie::new(name, "").max_age(Duration::ZERO)
    }

    /// Signs the value: the browser can read it but any change makes it unreadable
    /// ([`Cookies::signed`]).
    pub fn signed(mut self) -> Self {
        self.protection = Protection::Signed;
        self
    }

    /// Encrypts the value: the browser can neither read nor change it ([`Cookies::private`]).
    pub fn private(mut self) -> Self {
        self.protection = Protection::Private;
        self
    }

    /// The path the browser sends the cookie for (`/` by default). Under a mount prefix, the
    /// prefix's path (`/app`) keeps it to the app.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// How long the browser keeps it; without, until the browser closes.
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// Whether scripts on the page can read it (not by default).
    pub fn http_only(mut self, http_only: bool) -> Self {
        self.http_only = http_only;
        self
    }

    /// Whether the browser sends it only over HTTPS.
    pub fn secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// Its `SameSite` attribute (`Lax` by default).
    pub fn same_site(mut self, same_site: SameSite) -> Self {
        self.same_site = same_site;
        self
    }

    /// The cookie's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The `Set-Cookie` header value, its value signed or encrypted with `keys`. Fails on a
    /// name that is not an HTTP token, or a path with `;` or control characters.
    pub(crate) fn to_header(&self, keys: &Keys) -> Result<HeaderValue, String> {
        if self.name.is_empty() || !self.name.bytes().all(is_token) {
            return Err(format!(
                "cookie name `{}` is not an HTTP token (letters, digits and !#$%&'*+-.^_`|~)",
                self.name.escape_debug()
            ));
        }
        if self.path.bytes().any(|b| b == b';' || b.is_ascii_control()) {
            return Err(format!(
                "cookie `{}`: path `{}` holds `;` or a control character",
                self.name,
                self.path.escape_debug()
            ));
        }
        let value = match self.protection {
            Protection::Plain => percent_encode(&self.value),
            Protection::Signed => {
                let tag = keys.tag(&signed_label(&self.name), self.value.as_bytes());
                format!("{}.{}", percent_encode(&self.value), to_hex(&tag))
            }
            Protection::Private => to_hex(&seal(keys, &self.name, &self.value)),
        };
        let mut line = format!("{}={value}; Path={}", self.name, self.path);
        if let Some(max_age) = self.max_age {
            let _ = write!(line, "; Max-Age={}", max_age.as_secs());
        }
        if self.http_only {
            line.push_str("; HttpOnly");
        }
        if self.secure {
            line.push_str("; Secure");
        }
        line.push_str(match self.same_site {
            SameSite::Strict => "; SameSite=Strict",
            SameSite::Lax => "; SameSite=Lax",
            SameSite::None => "; SameSite=None",
        });
        HeaderValue::from_str(&line).map_err(|err| format!("cookie `{}`: {err}", self.name))
    }
}

fn seal(keys: &Keys, name: &str, value: &str) -> Vec<u8> {
    let (current, _) = keys.derived_keys(PRIVATE_LABEL);
    let key = LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, &current).expect("a 32-byte key suits AES-256-GCM"),
    );
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .expect("the system random source failed");
    let mut sealed = value.as_bytes().to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(name.as_bytes()),
        &mut sealed,
    )
    .expect("a cookie value is far below AES-GCM's limit");
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    out
}

/// RFC 9110 token characters (what a cookie name may hold).
fn is_token(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// Whether `byte` may stand in a cookie value as it is (RFC 6265's cookie-octet, less `%`,
/// which starts an escape).
fn is_cookie_octet(byte: u8) -> bool {
    matches!(byte, 0x21 | 0x23..=0x24 | 0x26..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E)
}

fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for &byte in value.as_bytes() {
        if is_cookie_octet(byte) {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let escaped = (bytes[at] == b'%')
            .then(|| value.get(at + 1..at + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                at += 3;
            }
            None => {
                out.push(bytes[at]);
                at += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys::new(b"cookie tests (a test key of 32+ bytes)")
    }

    /// The `Cookie` request header a browser would send back for `cookie`.
    fn sent(cookie: &Cookie, keys: &Keys) -> HeaderMap {
        let line = cookie.to_header(keys).unwrap();
        let pair = line.to_str().unwrap().split(';').next().unwrap().to_owned();
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, format!("a=1; {pair}; z=2").parse().unwrap());
        headers
    }

    #[test]
    fn plain_values_round_trip_whatever_they_hold() {
        let keys = keys();
        let text = "50% off; \"quoted\", spaced\u{e9}";
        let headers = sent(&Cookie::new("note", text), &keys);
        let cookies = Cookies::new(&headers, &keys);
        assert_eq!(cookies.get("note").as_deref(), Some(text));
        assert_eq!(cookies.get("a").as_deref(), Some("1"));
        assert_eq!(cookies.get("missing"), None);
    }

    #[test]
    fn set_cookie_lines_carry_the_attributes() {
        let keys = keys();
        let line = Cookie::new("theme", "dark")
            .max_age(Duration::from_secs(60))
            .secure(true)
            .same_site(SameSite::Strict)
            .to_header(&keys)
            .unwrap();
        assert_eq!(
            line,
            "theme=dark; Path=/; Max-Age=60; HttpOnly; Secure; SameSite=Strict"
        );
        assert_eq!(
            Cookie::removal("theme").to_header(&keys).unwrap(),
            "theme=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"
        );
        let bad = Cookie::new("a b", "x").to_header(&keys).unwrap_err();
        assert!(bad.contains("`a b` is not an HTTP token"), "{bad}");
        let bad = Cookie::new("a", "x")
            .path("/;x")
            .to_header(&keys)
            .unwrap_err();
        assert!(bad.contains("path"), "{bad}");
    }

    #[test]
    fn signed_values_are_readable_and_refused_once_changed() {
        let keys = keys();
        let headers = sent(&Cookie::new("user", "42").signed(), &keys);
        let cookies = Cookies::new(&headers, &keys);
        assert_eq!(cookies.signed("user").as_deref(), Some("42"));
        let line = headers[header::COOKIE].to_str().unwrap();
        assert!(line.contains("user=42."), "{line}");
        // Another value under the same tag, the same value under another name, another key.
        let forged = line.replace("user=42.", "user=43.");
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, forged.parse().unwrap());
        assert_eq!(Cookies::new(&headers, &keys).signed("user"), None);
        let moved = line.replace("user=42.", "admin=42.");
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, moved.parse().unwrap());
        assert_eq!(Cookies::new(&headers, &keys).signed("admin"), None);
        let other = Keys::new(b"another key (a test key of 32+ bytes)");
        let headers = sent(&Cookie::new("user", "42").signed(), &keys);
        assert_eq!(Cookies::new(&headers, &other).signed("user"), None);
    }

    #[test]
    fn private_values_are_hidden_bound_to_their_name_and_survive_a_rotation() {
        let keys = keys();
        let headers = sent(&Cookie::new("user", "alice").private(), &keys);
        let line = headers[header::COOKIE].to_str().unwrap().to_owned();
        assert!(!line.contains("alice"), "{line}");
        assert_eq!(
            Cookies::new(&headers, &keys).private("user").as_deref(),
            Some("alice")
        );
        // Read as plain or signed it is noise; under another name it does not open.
        assert_eq!(Cookies::new(&headers, &keys).signed("user"), None);
        let mut moved = HeaderMap::new();
        moved.insert(
            header::COOKIE,
            line.replace("user=", "admin=").parse().unwrap(),
        );
        assert_eq!(Cookies::new(&moved, &keys).private("admin"), None);
        // A key rotated out still opens it; a foreign key does not.
        let rotated = Keys::new(b"the next key (a test key of 32+ bytes)")
            .with_previous(b"cookie tests (a test key of 32+ bytes)");
        assert_eq!(
            Cookies::new(&headers, &rotated).private("user").as_deref(),
            Some("alice")
        );
        let foreign = Keys::new(b"another key (a test key of 32+ bytes)");
        assert_eq!(Cookies::new(&headers, &foreign).private("user"), None);
        // Two seals of one value differ (random nonces).
        let again = sent(&Cookie::new("user", "alice").private(), &keys);
        assert_ne!(again[header::COOKIE], headers[header::COOKIE]);
    }

    #[test]
    fn malformed_values_are_absent_not_errors() {
        let keys = keys();
        for line in [
            "user=%zz%4",
            "user=.",
            "user=42.abc",
            "user=zz",
            "user",
            "user=",
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(header::COOKIE, line.parse().unwrap());
            let cookies = Cookies::new(&headers, &keys);
            assert_eq!(cookies.signed("user"), None, "{line}");
            assert_eq!(cookies.private("user"), None, "{line}");
        }
    }
}
