//! Data-driven conformance of the SSE wire format, served by the `sdk-conformance` example.
//!
//! A case is a folder `<root>/<get|post>/<name>/` holding `input.json` (the SDK calls to make)
//! and `output.txt` (the event stream expected back). `get` cases send the input as the
//! `datastar` query parameter, `post` cases as the JSON body; both send `Datastar-Request: true`.
//!
//! Two roots are walked:
//!
//! - the official Datastar SDK cases, found through `DSTAR_SDK_CASES`. They are compared as the
//!   official runner compares them, events in order, with one difference that makes ours
//!   stricter. Inside an event the order of the fields and of data lines with different keys
//!   does not count (the runner groups them by key; the official files themselves write
//!   `mode` before `selector` in some cases and after it in others, so no encoder matches them
//!   all byte for byte). The HTML of `elements` lines is compared as text: the runner's current
//!   version sorts attributes before comparing, its earlier one compared the whole text, and the
//!   cases expect the caller's order (`executeScriptWithAllOptions`: `type` before `blocking`),
//!   which a server reading attributes into a sorted map breaks;
//! - our own cases in `tests/cases/sse`, which pin dstar's exact bytes.
// A test that reports what it measured or skipped prints it.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use dstar_tests::TestServer;

struct Case {
    name: String,
    post: bool,
    input: String,
    expected: String,
}

fn load_cases(root: &Path) -> Vec<Case> {
    let mut cases = Vec::new();
    for method in ["get", "post"] {
        let dir = root.join(method);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut folders: Vec<PathBuf> = entries
            .map(|entry| entry.expect("list a case folder").path())
            .filter(|path| path.is_dir())
            .collect();
        folders.sort();
        for folder in folders {
            let read = |file: &str| {
                let path = folder.join(file);
                std::fs::read_to_string(&path)
                    .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()))
            };
            cases.push(Case {
                name: format!(
                    "{method}/{}",
                    folder.file_name().unwrap_or_default().to_string_lossy()
                ),
                post: method == "post",
                input: read("input.json"),
                expected: read("output.txt"),
            });
        }
    }
    cases
}

/// Sends a case's request; the body on success, a description of the failure otherwise.
async fn run(server: &TestServer, case: &Case) -> Result<String, String> {
    let response = if case.post {
        let headers = [
            ("Datastar-Request", "true"),
            ("Content-Type", "application/json"),
        ];
        server.post("/test", &headers, &case.input).await
    } else {
        let path = format!("/test?datastar={}", percent_encode(&case.input));
        server.get(&path, &[("Datastar-Request", "true")]).await
    };
    let body = String::from_utf8_lossy(&response.body).into_owned();
    if response.status != 200 {
        return Err(format!("status {}, body {body:?}", response.status));
    }
    if response.header("content-type") != Some("text/event-stream") {
        return Err(format!(
            "Content-Type {:?}, not text/event-stream",
            response.header("content-type")
        ));
    }
    Ok(body)
}

/// Runs every case and returns how many passed, with a report of each failure.
async fn check_all(cases: &[Case], same: fn(&str, &str) -> bool) -> (usize, Vec<String>) {
    let server = TestServer::start(example_sdk_conformance::app()).await;
    let mut failures = Vec::new();
    for case in cases {
        match run(&server, case).await {
            Ok(actual) if same(&case.expected, &actual) => {}
            Ok(actual) => failures.push(format!(
                "{}: wrong output\n  expected:\n{}  actual:\n{}",
                case.name,
                show(&case.expected),
                show(&actual)
            )),
            Err(err) => failures.push(format!("{}: {err}", case.name)),
        }
    }
    (cases.len() - failures.len(), failures)
}

#[tokio::test]
async fn official_sdk_cases() {
    let Some(root) = std::env::var_os("DSTAR_SDK_CASES") else {
        eprintln!(
            "DSTAR_SDK_CASES is not set: the official Datastar conformance cases were NOT run"
        );
        return;
    };
    let root = PathBuf::from(root);
    let cases = load_cases(&root);
    assert!(
        !cases.is_empty(),
        "DSTAR_SDK_CASES={} holds no get/<case> or post/<case> folders",
        root.display()
    );
    let (passed, failures) = check_all(&cases, same_events).await;
    eprintln!("official cases: {passed}/{} passed", cases.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn own_golden_cases() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("cases/sse");
    let cases = load_cases(&root);
    assert!(
        cases.len() >= 15,
        "only {} cases in {}",
        cases.len(),
        root.display()
    );
    let (passed, failures) = check_all(&cases, |expected, actual| expected == actual).await;
    eprintln!("own cases: {passed}/{} passed", cases.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn comparison_ignores_field_and_key_order_only() {
    let expected = "event: e\nid: 1\ndata: mode append\ndata: elements <a x=\"1\" y='2'>\n\
                    data: elements </a>\n\n";
    let reordered = "event: e\ndata: elements <a x=\"1\" y='2'>\ndata: mode append\nid: 1\n\
                     data: elements </a>\n\n";
    assert!(same_events(expected, reordered));
    let attributes_swapped = "event: e\nid: 1\ndata: mode append\ndata: elements <a y='2' x=\"1\">\n\
                              data: elements </a>\n\n";
    assert!(!same_events(expected, attributes_swapped));

    let lines_swapped = "event: e\nid: 1\ndata: mode append\ndata: elements </a>\n\
                         data: elements <a x=\"1\" y='2'>\n\n";
    assert!(!same_events(expected, lines_swapped));
    let unterminated = expected.trim_end_matches('\n');
    assert!(!same_events(expected, unterminated));
    let split = "event: e\nid: 1\n\ndata: mode append\ndata: elements <a x=\"1\" y='2'>\n\
                 data: elements </a>\n\n";
    assert!(!same_events(expected, split));
}

/// Equality of two event streams up to the reorderings the official runner allows.
fn same_events(expected: &str, actual: &str) -> bool {
    normalise(expected) == normalise(actual)
}

/// Each event as its lines in a canonical order: non-data lines sorted, then the data lines
/// stably sorted by key (so lines sharing a key keep their order). A last event missing its
/// blank line keeps a marker so it cannot pass.
fn normalise(stream: &str) -> Vec<Vec<String>> {
    let mut events = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for line in stream.split('\n') {
        if line.is_empty() {
            if !current.is_empty() {
                events.push(canonical(std::mem::take(&mut current)));
            }
        } else {
            current.push(line);
        }
    }
    if !current.is_empty() {
        let mut event = canonical(current);
        event.push("<unterminated event>".to_owned());
        events.push(event);
    }
    events
}

fn canonical(lines: Vec<&str>) -> Vec<String> {
    let (mut data, mut fields): (Vec<&str>, Vec<&str>) = lines
        .into_iter()
        .partition(|line| line.starts_with("data:"));
    fields.sort_unstable();
    data.sort_by(|a, b| data_key(a).cmp(data_key(b)));
    fields.into_iter().chain(data).map(str::to_owned).collect()
}

/// The Datastar key of a data line: the first word of its value.
fn data_key(line: &str) -> &str {
    let value = line.strip_prefix("data:").unwrap_or(line);
    let value = value.strip_prefix(' ').unwrap_or(value);
    value.split(' ').next().unwrap_or_default()
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            write!(out, "%{byte:02X}").expect("writing to a String cannot fail");
        }
    }
    out
}

/// A stream shown one line per row, quoted so that CRs, trailing spaces and a missing final
/// line break are visible.
fn show(stream: &str) -> String {
    let mut out = String::new();
    for line in stream.split_inclusive('\n') {
        writeln!(out, "    {line:?}").expect("writing to a String cannot fail");
    }
    out
}
