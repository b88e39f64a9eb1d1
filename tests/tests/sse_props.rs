//! Property tests of the SSE encoder against a browser-faithful parser (`dstar::test::sse`):
//! whatever text goes into an event, a client reads back exactly one event carrying that text,
//! with only its line endings normalised, and nothing the text contains can start a field or an
//! event of its own.

use dstar::sse::{ExecuteScript, PatchElements, PatchSignals};
use dstar::test::sse::{SseEvent, parse};
use proptest::prelude::*;

/// Text built from pieces an encoder must get right: every kind of line break, text that
/// looks like SSE fields, non-ASCII text and arbitrary characters.
fn tricky_text(min_pieces: usize) -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("\r".to_owned()),
        Just("\n".to_owned()),
        Just("\r\n".to_owned()),
        Just("\n\r".to_owned()),
        Just("event: datastar-patch-signals".to_owned()),
        Just("data: signals {}".to_owned()),
        Just("id: 7".to_owned()),
        Just("retry: 1".to_owned()),
        Just(": comment".to_owned()),
        Just("</script>".to_owned()),
        Just("é世🚀\u{2028}\u{85}".to_owned()),
        "[a-z<>=\" /:]{1,8}",
        any::<char>().prop_map(String::from),
    ];
    proptest::collection::vec(piece, min_pieces..24).prop_map(|pieces| pieces.concat())
}

fn normalise_line_breaks(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n")
}

/// What the encoder makes of a single-line field: CR, LF and NUL (which would make a browser
/// drop an event id) become spaces.
fn single_line(text: &str) -> String {
    text.replace(['\r', '\n', '\0'], " ")
}

fn encode(write: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::new();
    write(&mut out);
    out
}

/// Parses `stream` and returns its only block, failing unless there is exactly one and a
/// browser would dispatch it.
fn only_event(stream: &[u8]) -> Result<SseEvent, TestCaseError> {
    let mut blocks = parse(stream);
    prop_assert_eq!(blocks.len(), 1, "blocks: {:?}", blocks);
    let event = blocks.remove(0);
    prop_assert!(event.is_dispatched(), "no data lines: {:?}", event);
    Ok(event)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn elements_arrive_whole(elements in tricky_text(1)) {
        let stream = encode(|out| PatchElements::new(&elements).write_to(out));
        let event = only_event(&stream)?;
        prop_assert_eq!(event.event.as_deref(), Some("datastar-patch-elements"));
        prop_assert_eq!(&event.id, &None);
        prop_assert_eq!(event.retry, None);
        let only_elements = event.data.iter().all(|line| line.starts_with("elements "));
        prop_assert!(only_elements, "{:?}", event.data);
        prop_assert_eq!(event.value("elements"), Some(normalise_line_breaks(&elements)));
    }

    #[test]
    fn signals_arrive_whole(json in tricky_text(0)) {
        let stream = encode(|out| PatchSignals::raw(&json).write_to(out));
        let event = only_event(&stream)?;
        prop_assert_eq!(event.event.as_deref(), Some("datastar-patch-signals"));
        let only_signals = event.data.iter().all(|line| line.starts_with("signals "));
        prop_assert!(only_signals, "{:?}", event.data);
        prop_assert_eq!(event.value("signals"), Some(normalise_line_breaks(&json)));
    }

    #[test]
    fn single_line_fields_keep_one_line(
        selector in tricky_text(0),
        id in tricky_text(0),
        transition in tricky_text(0),
    ) {
        let stream = encode(|out| {
            PatchElements::new("<p id=\"p\">p</p>")
                .selector(&selector)
                .id(&id)
                .view_transition(true)
                .view_transition_selector(&transition)
                .write_to(out)
        });
        let event = only_event(&stream)?;
        prop_assert_eq!(event.event.as_deref(), Some("datastar-patch-elements"));
        prop_assert_eq!(&event.id, &Some(single_line(&id)));
        prop_assert_eq!(event.value("selector"), Some(single_line(&selector)));
        prop_assert_eq!(event.value("viewTransitionSelector"), Some(single_line(&transition)));
        prop_assert_eq!(event.value("elements"), Some("<p id=\"p\">p</p>".to_owned()));
    }

    #[test]
    fn removal_selector_keeps_one_line(selector in tricky_text(0)) {
        let stream = encode(|out| PatchElements::remove(&selector).write_to(out));
        let event = only_event(&stream)?;
        prop_assert_eq!(event.value("selector"), Some(single_line(&selector)));
        prop_assert_eq!(event.value("mode"), Some("remove".to_owned()));
        prop_assert_eq!(event.value("elements"), None);
    }

    #[test]
    fn script_cannot_end_its_element_early(script in tricky_text(0)) {
        let stream = encode(|out| ExecuteScript::new(&script).write_to(out));
        let event = only_event(&stream)?;
        let element = event.value("elements").unwrap_or_default();
        let lower = element.to_ascii_lowercase();
        prop_assert!(lower.ends_with("</script>"), "{}", element);
        prop_assert_eq!(lower.matches("</script").count(), 1, "{}", element);
        prop_assert!(!lower.contains("<!--"), "{}", element);
    }
}
