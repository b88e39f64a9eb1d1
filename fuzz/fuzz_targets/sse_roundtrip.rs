//! The SSE encoder against the browser-faithful parser of the test kit: whatever text goes into
//! an event, a client reads back exactly one event carrying that text (line endings
//! normalised; single-line fields with CR, LF and NUL as spaces), and a script cannot end its
//! element early.
#![no_main]

use dstar_runtime::sse::{ExecuteScript, PatchElements, PatchSignals};
use dstar_runtime::testing::sse::{SseEvent, parse};
use libfuzzer_sys::fuzz_target;

fn lines(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n")
}

fn single_line(text: &str) -> String {
    text.replace(['\r', '\n', '\0'], " ")
}

fn only_event(write: impl FnOnce(&mut Vec<u8>)) -> SseEvent {
    let mut stream = Vec::new();
    write(&mut stream);
    let mut events = parse(&stream);
    assert_eq!(events.len(), 1, "{events:?}");
    let event = events.remove(0);
    assert!(event.is_dispatched(), "{event:?}");
    event
}

fuzz_target!(|input: (&str, &str, &str, &str, &str)| {
    let (elements, selector, id, json, script) = input;

    let event = only_event(|out| {
        PatchElements::new(elements)
            .selector(selector)
            .id(id)
            .write_to(out)
    });
    assert_eq!(event.event.as_deref(), Some("datastar-patch-elements"));
    assert_eq!(event.id, Some(single_line(id)));
    assert_eq!(event.value("selector"), Some(single_line(selector)));
    let expected = (!elements.is_empty()).then(|| lines(elements));
    assert_eq!(event.value("elements"), expected);

    let event = only_event(|out| PatchSignals::raw(json).write_to(out));
    assert_eq!(event.event.as_deref(), Some("datastar-patch-signals"));
    assert_eq!(event.value("signals"), Some(lines(json)));

    let event = only_event(|out| ExecuteScript::new(script).write_to(out));
    let element = event
        .value("elements")
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(element.ends_with("</script>"), "{element}");
    assert_eq!(element.matches("</script").count(), 1, "{element}");
    assert!(!element.contains("<!--"), "{element}");
});
