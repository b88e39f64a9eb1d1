//! Signals, as a request carries them (a body, `x-dstar-args`, `?datastar=`): reading and
//! parsing never panic, every refusal has a status the `signals` module documents, and what is
//! accepted is a UTF-8 JSON object, exactly the one `serde_json` reads.
#![no_main]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use axum::body::Body;
use dstar_runtime::signals::{parse, read_raw};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

/// A handler's typed signals: nested, optional, numeric and boolean fields.
#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct Typed {
    count: i64,
    label: String,
    tags: Vec<String>,
    inner: Option<Inner>,
}

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct Inner {
    on: bool,
    ratio: f64,
    small: u8,
}

/// Runs a future that has nothing to wait for (a body already in memory) to its end.
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("reading an in-memory body waited"),
    }
}

/// Accepted signals: the object `serde_json` reads, or refused with 400 when they are not one;
/// typed, refused with 400 or 422.
fn check_accepted(raw: &[u8]) {
    assert!(
        std::str::from_utf8(raw).is_ok(),
        "accepted signals that are not UTF-8"
    );
    let value = serde_json::from_slice::<Value>(raw);
    match parse::<Map<String, Value>>(raw) {
        Ok(map) => assert_eq!(value.as_ref().ok(), Some(&Value::Object(map))),
        Err(err) => {
            assert_eq!(err.status().as_u16(), 400, "{err}");
            assert!(
                !matches!(value, Ok(Value::Object(_))),
                "refused an object: {err}"
            );
        }
    }
    match parse::<Typed>(raw) {
        Ok(_) => assert!(matches!(value, Ok(Value::Object(_)))),
        Err(err) => assert!(matches!(err.status().as_u16(), 400 | 422), "{err}"),
    }
}

fuzz_target!(|input: (&[u8], &str, &str)| {
    let (body, args, query) = input;

    let request = http::Request::post("/")
        .body(Body::from(body.to_vec()))
        .unwrap();
    match ready(read_raw(request)) {
        Ok(raw) => {
            check_accepted(&raw);
            match dstar_runtime::__fuzz::merge_args(&raw, args) {
                // No args: the signals as they came (parsed later, by the handler's type).
                Ok(merged) if args.is_empty() => assert_eq!(merged, raw),
                Ok(merged) => {
                    let merged: Map<String, Value> =
                        serde_json::from_slice(&merged).expect("merged signals are an object");
                    let args: Map<String, Value> =
                        serde_json::from_str(args).expect("accepted args are an object");
                    for (key, value) in &args {
                        assert_eq!(merged.get(key), Some(value), "args win over signals");
                    }
                }
                Err(err) => assert!(matches!(err.status().as_u16(), 400 | 422), "{err}"),
            }
        }
        Err(err) => {
            assert_eq!(err.status().as_u16(), 400, "{err}");
            assert!(
                std::str::from_utf8(body).is_err(),
                "refused a UTF-8 body: {err}"
            );
        }
    }

    if let Ok(request) = http::Request::get(format!("/?{query}")).body(Body::empty()) {
        match ready(read_raw(request)) {
            Ok(raw) => check_accepted(&raw),
            Err(err) => {
                assert_eq!(err.status().as_u16(), 400, "{err}");
                assert!(err.message().contains("UTF-8"), "{err}");
            }
        }
    }
});
