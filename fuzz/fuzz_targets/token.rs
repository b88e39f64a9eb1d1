//! Tokens: text from outside never verifies, whatever it is; a token this key signed verifies
//! to its claims for its purpose only; changing any one of its digits, letting it expire or
//! signing it with another key gets it refused.
#![no_main]

use std::time::{SystemTime, UNIX_EPOCH};

use dstar_runtime::token::{Keys, Purpose, TokenError};
use libfuzzer_sys::fuzz_target;

const SECRET: &[u8] = b"fuzzing tokens (a test key of 32+ bytes)";
const PURPOSES: [Purpose; 3] = [Purpose::Stream, Purpose::Navigation, Purpose::Csrf];
const HEX: &[u8; 16] = b"0123456789abcdef";

fuzz_target!(|input: (&str, u8, u128, u32, usize, u8)| {
    let (text, purpose, session, ttl, at, digit) = input;
    let keys = Keys::new(SECRET);
    for purpose in PURPOSES {
        assert!(keys.verify(text, purpose).is_err(), "{text:?} verified");
        assert!(
            keys.authenticate(text, purpose).is_err(),
            "{text:?} authenticated"
        );
    }

    let purpose = PURPOSES[usize::from(purpose) % PURPOSES.len()];
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let expires = now + 60_000 + u64::from(ttl);
    let token = keys.sign_at(purpose, session, now, expires);
    let claims = keys
        .verify(&token, purpose)
        .expect("a fresh token verifies");
    assert_eq!(
        (claims.purpose, claims.session, claims.expires),
        (purpose, session, expires)
    );
    for other in PURPOSES.into_iter().filter(|&other| other != purpose) {
        assert_eq!(keys.verify(&token, other), Err(TokenError::WrongPurpose));
    }

    let mut changed = token.clone().into_bytes();
    let at = at % changed.len();
    let new = HEX[usize::from(digit) % HEX.len()];
    if changed[at] != new {
        changed[at] = new;
        let changed = String::from_utf8(changed).unwrap();
        assert!(
            keys.authenticate(&changed, purpose).is_err(),
            "{changed} (one digit of {token})"
        );
    }

    let expired = keys.sign_at(purpose, session, 1, 2);
    assert_eq!(keys.verify(&expired, purpose), Err(TokenError::Expired));
    assert!(keys.authenticate(&expired, purpose).is_ok());

    let foreign =
        Keys::new(b"another app's key (also 32+ bytes)").sign_at(purpose, session, now, expires);
    assert_eq!(keys.verify(&foreign, purpose), Err(TokenError::Forged));
});
