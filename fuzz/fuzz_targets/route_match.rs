//! Route matching, where the path is the client's and the patterns the app's:
//! - a path made from a pattern (parameters percent-encoded) matches it back to the same
//!   values;
//! - any path against a realistic table: no panic, and the page it resolves to does not depend
//!   on the table's order (the start-up check refuses tables where it would);
//! - any two patterns the check accepts together resolve every path the same in either order.
#![no_main]

use dstar_runtime::__fuzz::{lookup, match_path};
use dstar_runtime::route::clash;
use libfuzzer_sys::fuzz_target;

const TABLE: &[&str] = &[
    "/",
    "/items",
    "/items/new",
    "/items/{id}",
    "/items/{id}/edit",
    "/files/{*rest}",
    "/{user}/settings",
    "/a/{x}/c",
];

fn encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The same winner, by pattern, for `patterns` in their order and reversed.
fn order_independent(patterns: &[&str], path: &str) {
    let forward = lookup(patterns, path).map(|i| patterns[i]);
    let reversed: Vec<&str> = patterns.iter().rev().copied().collect();
    let backward = lookup(&reversed, path).map(|i| reversed[i]);
    assert_eq!(forward, backward, "{path:?} in {patterns:?}");
    if let Some(pattern) = forward {
        assert!(match_path(pattern, path).is_some());
    }
}

fuzz_target!(|input: (Vec<(u8, &str)>, &str, &str, &str)| {
    let (segments, path, a, b) = input;

    // A pattern and a path built from it.
    let mut pattern = String::new();
    let mut built = String::new();
    let mut expected = Vec::new();
    let last = segments.len().saturating_sub(1);
    for (i, &(kind, text)) in segments.iter().enumerate() {
        match kind % 3 {
            0 => {
                let literal: String = text.chars().filter(char::is_ascii_alphanumeric).collect();
                let literal = if literal.is_empty() {
                    "x".to_owned()
                } else {
                    literal
                };
                pattern.push_str(&format!("/{literal}"));
                built.push_str(&format!("/{literal}"));
            }
            2 if i == last => {
                let parts: Vec<&str> = text.split('/').filter(|s| !s.is_empty()).collect();
                if parts.is_empty() {
                    return;
                }
                pattern.push_str(&format!("/{{*p{i}}}"));
                for part in &parts {
                    built.push_str(&format!("/{}", encode(part)));
                }
                expected.push((format!("p{i}"), parts.join("/")));
            }
            _ => {
                if text.is_empty() {
                    return;
                }
                pattern.push_str(&format!("/{{p{i}}}"));
                built.push_str(&format!("/{}", encode(text)));
                expected.push((format!("p{i}"), text.to_owned()));
            }
        }
    }
    if pattern.is_empty() {
        pattern.push('/');
        built.push('/');
    }
    assert_eq!(
        match_path(&pattern, &built),
        Some(expected),
        "{built} under {pattern}"
    );

    // The client's path against a table, and against two patterns of the fuzzer's.
    order_independent(TABLE, path);
    let _ = match_path(a, path);
    assert_eq!(
        clash(a, b).is_some(),
        clash(b, a).is_some(),
        "{a:?} and {b:?}"
    );
    if clash(a, b).is_none() && a != b {
        order_independent(&[a, b], path);
    }
});
