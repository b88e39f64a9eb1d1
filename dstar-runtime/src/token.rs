//! Signed tokens (HMAC-SHA256 with `ring`).
//!
//! A token names its purpose (stream, navigation or CSRF), the session it belongs to (a 128-bit
//! id; zero for stateless pages), when it was issued and when it expires. It is the hex of
//! `purpose (1) | session (16) | issued (8) | expires (8) | tag (32)`, where the tag is the
//! HMAC of the first 33 bytes. Verification checks the tag in constant time (`ring::hmac::verify`)
//! against the current key and then the previous one, so keys can be rotated without logging
//! every open tab out.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

const PAYLOAD: usize = 33;
const TAG: usize = 32;

/// What a token may be used for. A token of one purpose is refused for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Purpose {
    /// Opening a live page's event stream.
    Stream = 1,
    /// Soft navigation inside a session.
    Navigation = 2,
    /// Sending events (cross-site request forgery protection).
    Csrf = 3,
}

impl Purpose {
    fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(Purpose::Stream),
            2 => Some(Purpose::Navigation),
            3 => Some(Purpose::Csrf),
            _ => None,
        }
    }
}

/// The verified contents of a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claims {
    /// What the token is for.
    pub purpose: Purpose,
    /// The session it belongs to (zero for stateless pages).
    pub session: u128,
    /// Milliseconds since the Unix epoch when it was issued.
    pub issued: u64,
    /// Milliseconds since the Unix epoch when it stops being accepted.
    pub expires: u64,
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// No token was sent.
    Missing,
    /// The token is not of the token format.
    Malformed,
    /// The signature does not match any key.
    Forged,
    /// The token's time is up.
    Expired,
    /// The token was issued for another purpose.
    WrongPurpose,
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TokenError::Missing => "token missing",
            TokenError::Malformed => "token malformed",
            TokenError::Forged => "token signature invalid",
            TokenError::Expired => "token expired",
            TokenError::WrongPurpose => "token issued for another purpose",
        })
    }
}

impl std::error::Error for TokenError {}

/// The signing keys: the current one signs and verifies; a previous one only verifies.
#[derive(Clone)]
pub struct Keys {
    current: hmac::Key,
    previous: Option<hmac::Key>,
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keys")
            .field("previous", &self.previous.is_some())
            .finish_non_exhaustive()
    }
}

impl Keys {
    /// Keys from secret bytes (at least 32 bytes of randomness is advisable).
    pub fn new(secret: &[u8]) -> Self {
        Keys {
            current: hmac::Key::new(hmac::HMAC_SHA256, secret),
            previous: None,
        }
    }

    /// A fresh random key, for development: tokens do not survive a restart.
    pub fn random() -> Self {
        let mut secret = [0u8; 32];
        SystemRandom::new()
            .fill(&mut secret)
            .expect("the system random source failed");
        Keys::new(&secret)
    }

    /// Also accepts tokens signed with `secret`, the key being rotated out.
    pub fn with_previous(mut self, secret: &[u8]) -> Self {
        self.previous = Some(hmac::Key::new(hmac::HMAC_SHA256, secret));
        self
    }

    /// Signs a token for `purpose` and `session`, valid for `ttl` from now.
    pub fn sign(&self, purpose: Purpose, session: u128, ttl: Duration) -> String {
        let issued = now();
        self.sign_at(
            purpose,
            session,
            issued,
            issued.saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)),
        )
    }

    /// Signs a token with explicit times (tests use it to make expired tokens).
    pub fn sign_at(&self, purpose: Purpose, session: u128, issued: u64, expires: u64) -> String {
        let mut bytes = [0u8; PAYLOAD + TAG];
        bytes[0] = purpose as u8;
        bytes[1..17].copy_from_slice(&session.to_be_bytes());
        bytes[17..25].copy_from_slice(&issued.to_be_bytes());
        bytes[25..33].copy_from_slice(&expires.to_be_bytes());
        let tag = hmac::sign(&self.current, &bytes[..PAYLOAD]);
        bytes[PAYLOAD..].copy_from_slice(tag.as_ref());
        to_hex(&bytes)
    }

    /// Checks a token's signature, expiry and purpose.
    pub fn verify(&self, token: &str, purpose: Purpose) -> Result<Claims, TokenError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(TokenError::Missing);
        }
        let bytes = from_hex(token).ok_or(TokenError::Malformed)?;
        if bytes.len() != PAYLOAD + TAG {
            return Err(TokenError::Malformed);
        }
        let (payload, tag) = bytes.split_at(PAYLOAD);
        let signed = hmac::verify(&self.current, payload, tag).is_ok()
            || self
                .previous
                .as_ref()
                .is_some_and(|key| hmac::verify(key, payload, tag).is_ok());
        if !signed {
            return Err(TokenError::Forged);
        }
        let claims = Claims {
            purpose: Purpose::from_byte(payload[0]).ok_or(TokenError::Malformed)?,
            session: u128::from_be_bytes(payload[1..17].try_into().expect("16 bytes")),
            issued: u64::from_be_bytes(payload[17..25].try_into().expect("8 bytes")),
            expires: u64::from_be_bytes(payload[25..33].try_into().expect("8 bytes")),
        };
        if claims.purpose != purpose {
            return Err(TokenError::WrongPurpose);
        }
        if now() >= claims.expires {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

/// A random 128-bit id (never zero).
pub fn random_id() -> u128 {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system random source failed");
    u128::from_be_bytes(bytes).max(1)
}

/// Milliseconds since the Unix epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 0xf)] as char);
    }
    out
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    fn digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    let text = text.as_bytes();
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.chunks(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tampering() {
        let keys = Keys::new(b"secret");
        let token = keys.sign(Purpose::Stream, 42, Duration::from_secs(60));
        let claims = keys.verify(&token, Purpose::Stream).unwrap();
        assert_eq!(claims.session, 42);
        assert_eq!(
            keys.verify(&token, Purpose::Csrf),
            Err(TokenError::WrongPurpose)
        );
        assert_eq!(
            Keys::new(b"other").verify(&token, Purpose::Stream),
            Err(TokenError::Forged)
        );
        assert_eq!(
            keys.verify("zz", Purpose::Stream),
            Err(TokenError::Malformed)
        );
        assert_eq!(keys.verify("", Purpose::Stream), Err(TokenError::Missing));
        // Flip one bit in every byte position: each must be refused.
        for i in 0..token.len() {
            let mut bytes = token.clone().into_bytes();
            bytes[i] = if bytes[i] == b'0' { b'1' } else { b'0' };
            let tampered = String::from_utf8(bytes).unwrap();
            assert!(keys.verify(&tampered, Purpose::Stream).is_err(), "byte {i}");
        }
    }

    #[test]
    fn expired_and_rotated() {
        let keys = Keys::new(b"new");
        let old = keys.sign_at(Purpose::Csrf, 0, 1, 2);
        assert_eq!(keys.verify(&old, Purpose::Csrf), Err(TokenError::Expired));
        let token = Keys::new(b"old").sign(Purpose::Csrf, 0, Duration::from_secs(60));
        assert_eq!(keys.verify(&token, Purpose::Csrf), Err(TokenError::Forged));
        let rotated = Keys::new(b"new").with_previous(b"old");
        assert!(rotated.verify(&token, Purpose::Csrf).is_ok());
    }
}
