//! The security headers dstar puts on its answers, and the per-response script nonce.
//!
//! Every page's HTML gets [`SecurityHeaders`] (configured with
//! `AppBuilder::security_headers`); every answer
//! of dstar's own endpoints (live streams, event answers, navigation answers) gets
//! `Cache-Control: no-store`, always.
//!
//! The defaults, and why:
//!
//! | header | default | why |
//! | --- | --- | --- |
//! | `X-Content-Type-Options` | `nosniff` | a response is only ever what its `Content-Type` says |
//! | `Referrer-Policy` | `same-origin` | other sites never see page URLs (they may carry ids or queries); same-origin requests keep the referrer, which dstar's own requests may rely on (a live page can be re-mounted from its stream request's `Referer`: a stricter policy such as `no-referrer` makes that fall back to a full reload) |
//! | `X-Frame-Options` | `DENY` | no other page can frame this one (clickjacking); for older browsers, next to `frame-ancestors` |
//! | `Content-Security-Policy` | [`ContentSecurityPolicy::default`]: `frame-ancestors 'none'; base-uri 'self'; object-src 'none'` | framing refused, no `<base>` hijacking, no plugins; scripts are not restricted by default (see below) |
//! | `Cache-Control` | `no-store` | every page carries a CSRF token, live pages their session's tokens: no cache may keep or share them |
//!
//! # Content-Security-Policy and scripts
//!
//! dstar puts a fresh nonce (128 bits no one can guess without the signing key) on the
//! scripts it writes into every page: the Datastar client's `<script type="module">`, the live
//! and debug client scripts. The
//! layout template gets the same nonce as `nonce`, for the layout's own `<script>` and
//! `<style>` elements (`<style nonce="{{ nonce }}">`). A live session keeps its page's nonce
//! (16 bytes) and puts it on every script it sends over the stream (reloads, redirects,
//! navigation updates, `execute_script`), so [`ContentSecurityPolicy::strict`] (opt-in) runs a
//! live page with a `script-src` free of `'unsafe-inline'`.
//!
//! The strict policy needs `'unsafe-eval'`: the Datastar v1.0.2 client compiles every `data-*`
//! expression with `Function("el", "$", "__action", "evt", ..., expression)` (and parses
//! non-JSON signal literals with `Function`), so without it no `data-*` attribute works.
//! Scripts sent over SSE are run by the client by re-creating each `<script>` element and
//! copying its attributes, the nonce included, so they run under the nonce.
//!
//! A stateless page keeps nothing between requests: its nonce is derived from the page's CSRF
//! token under the signing key, so the answer to one of its events, which carries that token,
//! puts the same nonce on its scripts (a redirect from a handler, `execute_script`). A live
//! page's nonce is derived from its session id the same way, so a re-mounted session's
//! scripts and a reload sent to a tab whose session is gone carry it too.
//!
//! What [`ContentSecurityPolicy::strict`] does not cover, which is why it is not the default:
//! a page loaded before a key rotation holds a nonce derived with the previous key, so its
//! scripts from the server are blocked until it reloads (patches and signals still apply);
//! and the layout's and templates' own inline scripts need the `nonce`. Inline `style="..."`
//! attributes in templates are blocked by its `style-src` (Datastar's own style changes, such
//! as `data-show`, go through the CSSOM and are not).
//!
//! ```
//! use dstar_runtime::http::HeaderValue;
//! use dstar_runtime::security::{ContentSecurityPolicy, SecurityHeaders};
//!
//! let headers = SecurityHeaders {
//!     referrer_policy: Some(HeaderValue::from_static("strict-origin")),
//!     frame_options: None,
//!     content_security_policy: Some(ContentSecurityPolicy::strict()),
//!     ..SecurityHeaders::default()
//! };
//! # let _ = headers;
//! ```

use std::fmt;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// The headers put on every page's HTML (stateless and live). Each is `None` to leave it out;
/// [`Default`] is the safe set described in the [module docs](self).
#[derive(Debug, Clone)]
pub struct SecurityHeaders {
    /// `X-Content-Type-Options`. Default `nosniff`.
    pub content_type_options: Option<HeaderValue>,
    /// `Referrer-Policy`. Default `same-origin`: a stricter policy hides the referrer from
    /// dstar's own same-origin requests too, and what relies on it falls back to a reload.
    pub referrer_policy: Option<HeaderValue>,
    /// `X-Frame-Options`. Default `DENY`.
    pub frame_options: Option<HeaderValue>,
    /// `Content-Security-Policy`. Default [`ContentSecurityPolicy::default`] (framing, `<base>`
    /// and plugins only); [`ContentSecurityPolicy::strict`] restricts scripts too.
    pub content_security_policy: Option<ContentSecurityPolicy>,
    /// `Cache-Control` on page HTML. Default `no-store`: the HTML carries tokens.
    pub cache_control: Option<HeaderValue>,
}

impl Default for SecurityHeaders {
    fn default() -> Self {
        SecurityHeaders {
            content_type_options: Some(HeaderValue::from_static("nosniff")),
            referrer_policy: Some(HeaderValue::from_static("same-origin")),
            frame_options: Some(HeaderValue::from_static("DENY")),
            content_security_policy: Some(ContentSecurityPolicy::default()),
            cache_control: Some(HeaderValue::from_static("no-store")),
        }
    }
}

impl SecurityHeaders {
    /// Puts the configured headers on a page answer whose scripts carry `nonce`.
    pub(crate) fn apply(&self, headers: &mut HeaderMap, nonce: Nonce) {
        let fixed = [
            (header::X_CONTENT_TYPE_OPTIONS, &self.content_type_options),
            (header::REFERRER_POLICY, &self.referrer_policy),
            (header::X_FRAME_OPTIONS, &self.frame_options),
            (header::CACHE_CONTROL, &self.cache_control),
        ];
        for (name, value) in fixed {
            if let Some(value) = value {
                headers.insert(name, value.clone());
            }
        }
        if let Some(policy) = &self.content_security_policy {
            headers.insert(policy.header_name(), policy.value(nonce));
        }
    }
}

/// A `Content-Security-Policy`, with `{nonce}` standing for each response's script nonce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentSecurityPolicy {
    /// The policy split at each `{nonce}`.
    pieces: Vec<String>,
    report_only: bool,
}

/// The placeholder a policy writes where the response's nonce goes.
pub const NONCE_PLACEHOLDER: &str = "{nonce}";

impl Default for ContentSecurityPolicy {
    /// `frame-ancestors 'none'; base-uri 'self'; object-src 'none'`: refuses framing, `<base>`
    /// elements pointing elsewhere and plugins, and leaves scripts and styles alone, so every
    /// page and every script dstar sends works.
    fn default() -> Self {
        ContentSecurityPolicy::new("frame-ancestors 'none'; base-uri 'self'; object-src 'none'")
    }
}

impl ContentSecurityPolicy {
    /// The policy `policy`, where each `{nonce}` is replaced by the response's nonce (write
    /// `'nonce-{nonce}'` in a source list).
    ///
    /// # Panics
    ///
    /// When `policy` is not a valid header value (control characters, non-ASCII).
    pub fn new(policy: impl Into<String>) -> Self {
        let policy = policy.into();
        assert!(
            HeaderValue::from_str(&policy).is_ok(),
            "dstar: `{}` is not a valid Content-Security-Policy header value",
            policy.escape_debug()
        );
        ContentSecurityPolicy {
            pieces: policy.split(NONCE_PLACEHOLDER).map(str::to_owned).collect(),
            report_only: false,
        }
    }

    /// A policy that allows only scripts carrying the response's nonce, from any origin, or
    /// from this origin, plus `'unsafe-eval'`, without which the Datastar client cannot
    /// evaluate `data-*` expressions (it compiles them with `Function`):
    ///
    /// ```text
    /// default-src 'self'; script-src 'self' 'nonce-{nonce}' 'unsafe-eval';
    /// style-src 'self' 'nonce-{nonce}'; img-src 'self' data:; object-src 'none';
    /// base-uri 'self'; form-action 'self'; frame-ancestors 'none'
    /// ```
    ///
    /// Not the default: the [module docs](self) say what it blocks that dstar may send.
    pub fn strict() -> Self {
        ContentSecurityPolicy::new(
            "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'unsafe-eval'; \
             style-src 'self' 'nonce-{nonce}'; img-src 'self' data:; object-src 'none'; \
             base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
        )
    }

    /// Sends the policy as `Content-Security-Policy-Report-Only`: violations are reported (to
    /// the policy's `report-to`/`report-uri`, and in the browser console) but nothing is
    /// blocked. A way to try a stricter policy on a running app.
    pub fn report_only(mut self) -> Self {
        self.report_only = true;
        self
    }

    fn header_name(&self) -> HeaderName {
        if self.report_only {
            header::CONTENT_SECURITY_POLICY_REPORT_ONLY
        } else {
            header::CONTENT_SECURITY_POLICY
        }
    }

    /// The policy for a response whose nonce is `nonce`.
    pub(crate) fn value(&self, nonce: Nonce) -> HeaderValue {
        let nonce = nonce.to_string();
        let value = self.pieces.join(&nonce);
        HeaderValue::from_str(&value).expect("checked in `new`; a nonce is hex")
    }
}

/// A script nonce: 128 random bits, fresh for every page response, written as 32 hex digits.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Nonce(u128);

impl Nonce {
    /// A fresh random nonce (an error page's: nothing answers it later).
    pub(crate) fn random() -> Self {
        Nonce(crate::token::random_id())
    }

    /// The nonce of live session `session`'s page: derived from the signing key, so it is as
    /// unguessable as a random one and the session need not keep it (16 bytes in every idle
    /// session would move its task into tokio's next 128-byte size class).
    pub(crate) fn for_session(keys: &crate::token::Keys, session: u128) -> Self {
        Nonce(keys.derive(b"dstar script nonce", session))
    }

    /// The nonce of a stateless page whose CSRF token is `token`: derived from the token (new
    /// for every page response) under the signing key, so the answers to the page's events,
    /// which carry the token, put the same nonce on their scripts without the server keeping
    /// anything.
    pub(crate) fn for_page_token(keys: &crate::token::Keys, token: &str) -> Self {
        let tag = keys.tag(b"dstar stateless script nonce", token.as_bytes());
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&tag[..16]);
        Nonce(u128::from_be_bytes(bytes))
    }
}

impl fmt::Display for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Nonce(..)")
    }
}

/// `Cache-Control: no-store`, on every answer of dstar's own endpoints: they carry tokens or
/// session state that no cache may keep.
pub(crate) fn no_store(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nonce_goes_where_the_placeholder_is() {
        let policy =
            ContentSecurityPolicy::new("script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'");
        let nonce = Nonce(0xab);
        assert_eq!(
            policy.value(nonce),
            "script-src 'nonce-000000000000000000000000000000ab'; style-src 'nonce-000000000000000000000000000000ab'"
        );
    }

    #[test]
    fn nonces_differ_by_page_token_and_key() {
        let keys = crate::token::Keys::new(b"nonce tests (a test key of 32+ bytes)");
        let other = crate::token::Keys::new(b"another key (a test key of 32+ bytes)");
        let one = Nonce::for_page_token(&keys, "token-a");
        assert_eq!(one, Nonce::for_page_token(&keys, "token-a"));
        assert_ne!(one, Nonce::for_page_token(&keys, "token-b"));
        assert_ne!(one, Nonce::for_page_token(&other, "token-a"));
    }
}
