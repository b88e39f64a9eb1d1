//! Signed tokens (HMAC-SHA256 with `ring`).
//!
//! A token names its purpose (stream, navigation or CSRF), the session it belongs to (a 128-bit
//! id; zero for stateless pages), when it was issued and when it expires. It is the hex of
//! `purpose (1) | session (16) | issued (8) | expires (8) | nonce (4) | tag (32)`, where the tag
//! is the HMAC of the first 37 bytes. Verification checks the tag in constant time
//! (`ring::hmac::verify`) against the current key and then the previous one, so keys can be
//! rotated without logging every open tab out.
//!
//! The nonce is a count of the tokens this process has signed, passed through a permutation of
//! `u32` keyed at start-up. Without it, two tokens for the same purpose and session signed in
//! the same millisecond were the same token, so "a fresh token" (after a navigation, say) could
//! not be told from the old one. A counter rather than random bytes makes tokens signed by one
//! process never equal, at the cost of an atomic add; the keyed permutation keeps the count
//! (how much traffic the server has) out of what a client can read.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, RwLock};

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

const PAYLOAD: usize = 37;
const TAG: usize = 32;

/// The nonce of the next token signed. Wrapping is harmless: equal nonces would also need the
/// same purpose, session and millisecond, four billion tokens apart.
static NONCE: AtomicU32 = AtomicU32::new(0);

/// A permutation of `u32` with random keys: distinct counts give distinct nonces (each step
/// is invertible: xor with a key, multiplication by an odd number, xor-shift), and without the
/// keys consecutive nonces do not show how far apart their counts are.
fn scramble(count: u32) -> u32 {
    static KEYS: std::sync::OnceLock<[u32; 3]> = std::sync::OnceLock::new();
    let [k1, k2, k3] = *KEYS.get_or_init(|| {
        let r = random_id();
        // Truncations of the 128 random bits; the multipliers are made odd.
        [r as u32, (r >> 32) as u32 | 1, (r >> 64) as u32 | 1]
    });
    let mut x = count ^ k1;
    x = x.wrapping_mul(k2);
    x ^= x >> 16;
    x = x.wrapping_mul(k3);
    x ^ (x >> 15)
}

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
    verified: Arc<VerifiedCache>,
}

/// Tokens whose signature was already checked, so a page's token, sent with every one of its
/// events, costs one HMAC rather than one per event. A hit needs the *whole* token to match
/// (not just its tag), and expiry and purpose are checked on every use.
#[derive(Default)]
struct VerifiedCache {
    tokens: RwLock<Verified>,
}

/// Verified tokens by a key taken from their tag (the whole token and its claims), and the
/// keys in a list, to pick one to evict.
#[derive(Default)]
struct Verified {
    map: HashMap<u64, (Box<[u8]>, Claims), BuildHasherDefault<TagHasher>>,
    keys: Vec<u64>,
}

/// The most tokens remembered. When the cache is full, a new token replaces one picked at
/// random (by the new token's own random key), in O(1). With more distinct tokens in use than
/// this, the hit rate falls gradually with their number: about 42% at 1.5x, 20% at 2x (a
/// cache that started over when full missed every time once one token more than it held was
/// used in turn, and evicting by age does the same).
const VERIFIED_CAPACITY: usize = 4096;

impl Verified {
    fn insert(&mut self, key: u64, token: &[u8], claims: Claims) {
        let entry = (Box::from(token), claims);
        if let Some(existing) = self.map.get_mut(&key) {
            *existing = entry;
            return;
        }
        if self.keys.len() >= VERIFIED_CAPACITY {
            let slot = (key % self.keys.len() as u64) as usize;
            self.map.remove(&self.keys[slot]);
            self.keys[slot] = key;
        } else {
            self.keys.push(key);
        }
        self.map.insert(key, entry);
    }
}

/// The cache's keys are already random (hex digits of an HMAC tag): no hashing needed.
#[derive(Default)]
struct TagHasher(u64);

impl Hasher for TagHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
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
            verified: Arc::default(),
        }
    }

    /// A fresh random key: tokens do not survive a restart (see [`Keys::dev_file`] for one
    /// that does).
    pub fn random() -> Self {
        let mut secret = [0u8; 32];
        SystemRandom::new()
            .fill(&mut secret)
            .expect("the system random source failed");
        Keys::new(&secret)
    }

    /// The development key kept in the file at `path`: read when the file exists, otherwise
    /// made (32 random bytes, hex) and written there first. Every process that reads the same
    /// file signs with the same key, so tokens of open tabs survive a restart.
    ///
    /// The file is written under a temporary name and then hard-linked into place, so two
    /// processes starting at once agree on one key: the second link fails and that process
    /// reads the first one's file.
    ///
    /// # Errors
    ///
    /// When the file can neither be read nor created, or holds something other than 64 hex
    /// digits.
    pub fn dev_file(path: &std::path::Path) -> std::io::Result<Self> {
        fn read(path: &std::path::Path) -> std::io::Result<Keys> {
            let text = std::fs::read_to_string(path)?;
            let mut secret = [0u8; 32];
            if !from_hex(text.trim(), &mut secret) {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "{} is not a dstar development key (64 hex digits); delete it to make a new one",
                        path.display()
                    ),
                ));
            }
            Ok(Keys::new(&secret))
        }
        match read(path) {
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            other => return other,
        }
        let mut secret = [0u8; 32];
        SystemRandom::new()
            .fill(&mut secret)
            .map_err(|_| std::io::Error::other("the system random source failed"))?;
        let temporary = path.with_extension(format!("{:08x}.tmp", random_id() as u32));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let written = options
            .open(&temporary)
            .and_then(|mut file| std::io::Write::write_all(&mut file, to_hex(&secret).as_bytes()))
            .and_then(|()| std::fs::hard_link(&temporary, path));
        let _ = std::fs::remove_file(&temporary);
        match written {
            Ok(()) => Ok(Keys::new(&secret)),
            // Another process linked its key first: use that one.
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => read(path),
            Err(err) => Err(err),
        }
    }

    /// Also accepts tokens signed with `secret`, the key being rotated out.
    pub fn with_previous(mut self, secret: &[u8]) -> Self {
        self.previous = Some(hmac::Key::new(hmac::HMAC_SHA256, secret));
        self.verified = Arc::default();
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

    /// 128 bits only this server can compute for `session` and `label`: the HMAC of both
    /// under the current key. What a session needs to remember (a script nonce) is derived
    /// again when needed instead of kept in every session.
    pub(crate) fn derive(&self, label: &[u8], session: u128) -> u128 {
        let mut context = hmac::Context::with_key(&self.current);
        context.update(label);
        context.update(&session.to_be_bytes());
        let tag = context.sign();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&tag.as_ref()[..16]);
        u128::from_be_bytes(bytes)
    }

    /// The HMAC of `label` and `data` under the current key (signed cookies).
    pub(crate) fn tag(&self, label: &[u8], data: &[u8]) -> [u8; TAG] {
        tag_with(&self.current, label, data)
    }

    /// Whether `tag` is the HMAC of `label` and `data` under the current or the previous key,
    /// checked in constant time.
    pub(crate) fn check_tag(&self, label: &[u8], data: &[u8], tag: &[u8]) -> bool {
        let check = |key: &hmac::Key| {
            let mut message = Vec::with_capacity(label.len() + 1 + data.len());
            message.extend_from_slice(label);
            message.push(0);
            message.extend_from_slice(data);
            hmac::verify(key, &message, tag).is_ok()
        };
        check(&self.current) || self.previous.as_ref().is_some_and(check)
    }

    /// 32 bytes derived from each key for `label` (the current key's first): key material
    /// for other primitives (the private cookies' cipher) that rotates with the signing key.
    pub(crate) fn derived_keys(&self, label: &[u8]) -> ([u8; TAG], Option<[u8; TAG]>) {
        (
            tag_with(&self.current, b"dstar derived key", label),
            self.previous
                .as_ref()
                .map(|key| tag_with(key, b"dstar derived key", label)),
        )
    }

    /// Signs a token with explicit times (tests use it to make expired tokens).
    pub fn sign_at(&self, purpose: Purpose, session: u128, issued: u64, expires: u64) -> String {
        let mut bytes = [0u8; PAYLOAD + TAG];
        bytes[0] = purpose as u8;
        bytes[1..17].copy_from_slice(&session.to_be_bytes());
        bytes[17..25].copy_from_slice(&issued.to_be_bytes());
        bytes[25..33].copy_from_slice(&expires.to_be_bytes());
        // Only uniqueness matters, not the order in which threads get their numbers.
        let nonce = scramble(NONCE.fetch_add(1, Ordering::Relaxed));
        bytes[33..37].copy_from_slice(&nonce.to_be_bytes());
        let tag = hmac::sign(&self.current, &bytes[..PAYLOAD]);
        bytes[PAYLOAD..].copy_from_slice(tag.as_ref());
        to_hex(&bytes)
    }

    /// Checks a token's signature, expiry and purpose.
    pub fn verify(&self, token: &str, purpose: Purpose) -> Result<Claims, TokenError> {
        let claims = self.authenticate(token, purpose)?;
        if now() >= claims.expires {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }

    /// Checks a token's signature and purpose, not its expiry: whether this server signed it
    /// (with the current or the previous key) for `purpose`. An expired token still names
    /// its session authentically, which is what re-mounting a tab in place needs; it never
    /// grants access to a running session by itself.
    pub fn authenticate(&self, token: &str, purpose: Purpose) -> Result<Claims, TokenError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(TokenError::Missing);
        }
        if token.len() != (PAYLOAD + TAG) * 2 {
            return Err(TokenError::Malformed);
        }
        // The tag's hex digits are random, so its last eight are a cache key as they are.
        let key = u64::from_le_bytes(
            token.as_bytes()[token.len() - 8..]
                .try_into()
                .expect("8 bytes"),
        );
        let known = {
            let tokens = self
                .verified
                .tokens
                .read()
                .unwrap_or_else(|e| e.into_inner());
            tokens
                .map
                .get(&key)
                .filter(|(known, _)| **known == *token.as_bytes())
                .map(|(_, claims)| *claims)
        };
        let claims = match known {
            Some(claims) => claims,
            None => {
                let mut bytes = [0u8; PAYLOAD + TAG];
                if !from_hex(token, &mut bytes) {
                    return Err(TokenError::Malformed);
                }
                let (payload, tag) = bytes.split_at(PAYLOAD);
                let claims = self.check_signature(payload, tag)?;
                let mut tokens = self
                    .verified
                    .tokens
                    .write()
                    .unwrap_or_else(|e| e.into_inner());
                tokens.insert(key, token.as_bytes(), claims);
                claims
            }
        };
        if claims.purpose != purpose {
            return Err(TokenError::WrongPurpose);
        }
        Ok(claims)
    }

    fn check_signature(&self, payload: &[u8], tag: &[u8]) -> Result<Claims, TokenError> {
        let signed = hmac::verify(&self.current, payload, tag).is_ok()
            || self
                .previous
                .as_ref()
                .is_some_and(|key| hmac::verify(key, payload, tag).is_ok());
        if !signed {
            return Err(TokenError::Forged);
        }
        Ok(Claims {
            purpose: Purpose::from_byte(payload[0]).ok_or(TokenError::Malformed)?,
            session: u128::from_be_bytes(payload[1..17].try_into().expect("16 bytes")),
            issued: u64::from_be_bytes(payload[17..25].try_into().expect("8 bytes")),
            expires: u64::from_be_bytes(payload[25..33].try_into().expect("8 bytes")),
        })
    }
}

/// A random 128-bit id (never zero).
fn tag_with(key: &hmac::Key, label: &[u8], data: &[u8]) -> [u8; TAG] {
    let mut context = hmac::Context::with_key(key);
    context.update(label);
    context.update(&[0]);
    context.update(data);
    let mut tag = [0u8; TAG];
    tag.copy_from_slice(context.sign().as_ref());
    tag
}

pub(crate) fn random_id() -> u128 {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system random source failed");
    u128::from_be_bytes(bytes).max(1)
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

pub(crate) fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 0xf)] as char);
    }
    out
}

/// Decodes lowercase hex into `out`, which must be exactly half as long as `text`.
pub(crate) fn from_hex(text: &str, out: &mut [u8]) -> bool {
    fn digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    let text = text.as_bytes();
    if text.len() != out.len() * 2 {
        return false;
    }
    for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        match (digit(pair[0]), digit(pair[1])) {
            (Some(high), Some(low)) => *byte = high << 4 | low,
            _ => return false,
        }
    }
    true
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
    fn a_full_cache_replaces_one_token_and_stays_bounded() {
        let keys = Keys::new(b"secret");
        let cached = |keys: &Keys, tokens: &[String]| {
            let map = &keys.verified.tokens.read().unwrap().map;
            tokens
                .iter()
                .filter(|t| map.values().any(|(known, _)| **known == *t.as_bytes()))
                .count()
        };
        let tokens: Vec<String> = (0..VERIFIED_CAPACITY as u128 * 3)
            .map(|session| keys.sign(Purpose::Csrf, session, Duration::from_secs(60)))
            .collect();
        for (i, token) in tokens.iter().enumerate() {
            assert_eq!(
                keys.verify(token, Purpose::Csrf).unwrap().session,
                i as u128
            );
            let len = keys.verified.tokens.read().unwrap().map.len();
            assert!(len <= VERIFIED_CAPACITY, "{len} tokens cached");
        }
        // One more distinct token than the cache holds, used in turn: most stay cached (a cache
        // that started over when full kept one of them).
        let cycle = &tokens[..=VERIFIED_CAPACITY];
        for token in cycle {
            keys.verify(token, Purpose::Csrf).unwrap();
        }
        let kept = cached(&keys, cycle);
        assert!(
            kept >= VERIFIED_CAPACITY / 2,
            "{kept} of {} cached",
            cycle.len()
        );
        // Hits still check the whole token, expiry and purpose.
        assert_eq!(
            keys.verify(&cycle[VERIFIED_CAPACITY], Purpose::Stream),
            Err(TokenError::WrongPurpose)
        );
    }

    #[test]
    fn tokens_signed_in_the_same_millisecond_differ() {
        let keys = Keys::new(b"secret");
        let (issued, expires) = (now(), now() + 60_000);
        let first = keys.sign_at(Purpose::Navigation, 7, issued, expires);
        let second = keys.sign_at(Purpose::Navigation, 7, issued, expires);
        assert_ne!(first, second);
        assert_eq!(first.len(), (PAYLOAD + TAG) * 2);
        let claims = keys.verify(&first, Purpose::Navigation).unwrap();
        assert_eq!(keys.verify(&second, Purpose::Navigation), Ok(claims));
        assert_eq!(
            (claims.session, claims.issued, claims.expires),
            (7, issued, expires)
        );
    }

    #[test]
    fn expired_and_rotated() {
        let keys = Keys::new(b"new");
        let old = keys.sign_at(Purpose::Csrf, 0, 1, 2);
        assert_eq!(keys.verify(&old, Purpose::Csrf), Err(TokenError::Expired));
        assert_eq!(keys.authenticate(&old, Purpose::Csrf).unwrap().expires, 2);
        assert_eq!(
            keys.authenticate(&old, Purpose::Stream),
            Err(TokenError::WrongPurpose)
        );
        assert_eq!(
            Keys::new(b"other").authenticate(&old, Purpose::Csrf),
            Err(TokenError::Forged)
        );
        let token = Keys::new(b"old").sign(Purpose::Csrf, 0, Duration::from_secs(60));
        assert_eq!(keys.verify(&token, Purpose::Csrf), Err(TokenError::Forged));
        let rotated = Keys::new(b"new").with_previous(b"old");
        assert!(rotated.verify(&token, Purpose::Csrf).is_ok());
    }

    #[test]
    fn a_dev_key_file_is_made_once_and_read_after() {
        let dir = std::env::temp_dir().join(format!("dstar-dev-key-{:032x}", random_id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("dev-key");
        let first = Keys::dev_file(&path).unwrap();
        let token = first.sign(Purpose::Stream, 9, Duration::from_secs(60));
        // A restart reads the same file: the old process's tokens verify.
        let second = Keys::dev_file(&path).unwrap();
        assert_eq!(second.verify(&token, Purpose::Stream).unwrap().session, 9);
        assert_eq!(std::fs::read_to_string(&path).unwrap().len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        // A different file is a different key.
        let other = Keys::dev_file(&dir.join("other")).unwrap();
        assert_eq!(
            other.verify(&token, Purpose::Stream),
            Err(TokenError::Forged)
        );
        std::fs::write(&path, "not hex").unwrap();
        let err = Keys::dev_file(&path).map(|_| ()).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("delete it"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn processes_starting_at_once_agree_on_one_dev_key() {
        let dir = std::env::temp_dir().join(format!("dstar-dev-key-{:032x}", random_id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("dev-key");
        let tokens: Vec<String> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|i| {
                    let path = &path;
                    scope.spawn(move || {
                        Keys::dev_file(path).unwrap().sign(
                            Purpose::Csrf,
                            i,
                            Duration::from_secs(60),
                        )
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let keys = Keys::dev_file(&path).unwrap();
        for token in &tokens {
            assert!(keys.verify(token, Purpose::Csrf).is_ok());
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn nonces_are_distinct_for_distinct_counts() {
        let nonces: std::collections::HashSet<u32> = (0..100_000).map(scramble).collect();
        assert_eq!(nonces.len(), 100_000);
    }
}
