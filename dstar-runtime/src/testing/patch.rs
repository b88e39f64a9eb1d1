//! Datastar's element patches applied to a document string.

use super::html::{Element, Tree, snippet};
use super::selector::Selector;
use crate::sse::Mode;

/// Why an element patch could not be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PatchError {
    /// The selector is not one the client understands.
    Selector { selector: String, reason: String },
    /// Nothing in the page matches.
    NoTarget { target: String },
    /// Without a selector, every top-level element needs an id.
    NoId { element: String },
}

/// Applies one `datastar-patch-elements` event to `doc`.
///
/// Without a selector, each top-level element of `elements` is matched by its id: `outer` and
/// `replace` swap the target for it, `inner` swaps the target's content for the element's
/// content, `remove` removes the target, and the insertion modes insert the element relative to
/// the target. With a selector, the whole fragment is used for every match.
pub(crate) fn apply_patch(
    doc: &mut String,
    selector: Option<&str>,
    mode: Mode,
    elements: &str,
) -> Result<(), PatchError> {
    match selector {
        Some(selector) => {
            let parsed = Selector::parse(selector).map_err(|reason| PatchError::Selector {
                selector: selector.to_owned(),
                reason,
            })?;
            let count = Tree::parse(doc).select(&parsed).len();
            if count == 0 {
                return Err(PatchError::NoTarget {
                    target: format!("selector `{selector}`"),
                });
            }
            // Last match first: a change at or after a match's start leaves the earlier
            // matches where they were, so their positions in the list stay valid.
            for nth in (0..count).rev() {
                let tree = Tree::parse(doc);
                let Some(&target) = tree.select(&parsed).get(nth) else {
                    continue;
                };
                let target = tree.elements[target].clone();
                splice(doc, &target, mode, elements, elements);
            }
            Ok(())
        }
        None => {
            let fragment = Tree::parse(elements);
            let tops: Vec<Element> = fragment.top_level().cloned().collect();
            for element in tops {
                let Some(id) = element.attr("id") else {
                    return Err(PatchError::NoId {
                        element: snippet(&elements[element.outer.clone()]),
                    });
                };
                let tree = Tree::parse(doc);
                let target = tree.by_id(id).ok_or_else(|| PatchError::NoTarget {
                    target: format!("id `{id}`"),
                })?;
                let target = tree.elements[target].clone();
                splice(
                    doc,
                    &target,
                    mode,
                    &elements[element.outer.clone()],
                    &elements[element.inner.clone()],
                );
            }
            Ok(())
        }
    }
}

/// Puts `outer` (or, in `inner` mode, `inner`) into `doc` at `target` according to `mode`.
fn splice(doc: &mut String, target: &Element, mode: Mode, outer: &str, inner: &str) {
    match mode {
        Mode::Outer | Mode::Replace => doc.replace_range(target.outer.clone(), outer),
        Mode::Inner => doc.replace_range(target.inner.clone(), inner),
        Mode::Remove => doc.replace_range(target.outer.clone(), ""),
        Mode::Prepend => doc.insert_str(target.inner.start, outer),
        Mode::Append => doc.insert_str(target.inner.end, outer),
        Mode::Before => doc.insert_str(target.outer.start, outer),
        Mode::After => doc.insert_str(target.outer.end, outer),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches_by_id_and_by_selector() {
        let mut doc =
            String::from(r#"<body><ul id="l"><li id="a">a</li></ul><p id="p">x</p></body>"#);
        apply_patch(&mut doc, Some("#l"), Mode::Append, "<li>b</li>").unwrap();
        apply_patch(&mut doc, Some("#l"), Mode::Prepend, "<li>0</li>").unwrap();
        apply_patch(&mut doc, None, Mode::Outer, r#"<li id="a">A</li>"#).unwrap();
        apply_patch(&mut doc, None, Mode::Inner, r#"<p id="p">y</p>"#).unwrap();
        apply_patch(&mut doc, Some("li"), Mode::After, "<hr>").unwrap();
        assert_eq!(
            doc,
            r#"<body><ul id="l"><li>0</li><hr><li id="a">A</li><hr><li>b</li><hr></ul><p id="p">y</p></body>"#
        );
        apply_patch(&mut doc, Some("hr"), Mode::Remove, "").unwrap();
        apply_patch(&mut doc, Some("body"), Mode::Append, "<footer>f</footer>").unwrap();
        assert_eq!(
            doc,
            r#"<body><ul id="l"><li>0</li><li id="a">A</li><li>b</li></ul><p id="p">y</p><footer>f</footer></body>"#
        );
        assert_eq!(
            apply_patch(&mut doc, None, Mode::Outer, "<b>no id</b>"),
            Err(PatchError::NoId {
                element: "<b>no id</b>".to_owned()
            })
        );
        assert!(matches!(
            apply_patch(&mut doc, Some("#nope"), Mode::Inner, "x"),
            Err(PatchError::NoTarget { .. })
        ));
    }
}
