//! The runtime's modules import one way: wire ← base ← model ← transports ← assembly (and the
//! test kit on top). This test reads every `crate::` and `super::` path in `dstar-runtime/src`
//! (`use` lines and paths written inline alike), prints the module dependency listing, and
//! fails on an import from a lower layer to a higher one, or a cycle outside the model layer.
//!
//! `cargo test -p dstar-tests --test layers -- --nocapture` prints the listing.
#![allow(clippy::print_stdout)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each module's layer, lowest first. A submodule not listed belongs to its parent.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "wire",
        &[
            "sse", "compress", "response", "signals", "token", "cookie", "protocol", "security",
        ],
    ),
    ("base", &["route", "template", "error", "flash", "metrics"]),
    (
        "model",
        &[
            "app",
            "page",
            "pubsub",
            "serve",
            "session::handle",
            "session::outcomes",
            "session::queue",
            "session::page",
        ],
    ),
    (
        "transports",
        &[
            "document",
            "stateless",
            "nav",
            "dev",
            "session",
            "session::endpoints",
            "session::stream",
            "session::task",
            "session::tokens",
        ],
    ),
    ("assembly", &["router"]),
    ("testing", &["testing"]),
];

fn layer_of(module: &str) -> Option<(usize, &'static str)> {
    LAYERS
        .iter()
        .enumerate()
        .find(|(_, (_, modules))| modules.contains(&module))
        .map(|(rank, (name, _))| (rank, *name))
}

/// The listed module a path (`session::task::Session`, `sse::frame`) lands in: its longest
/// listed prefix.
fn module_of(path: &str) -> Option<String> {
    let segments: Vec<&str> = path.split("::").collect();
    (1..=segments.len())
        .rev()
        .map(|n| segments[..n].join("::"))
        .find(|candidate| layer_of(candidate).is_some())
}

fn runtime_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../dstar-runtime/src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("the runtime's sources") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a source file: `session/task.rs` → `session::task`, `sse/mod.rs` → `sse`.
fn file_module(file: &Path) -> String {
    let relative = file.strip_prefix(runtime_src()).expect("under src");
    let mut parts: Vec<String> = relative
        .iter()
        .map(|part| part.to_string_lossy().trim_end_matches(".rs").to_owned())
        .collect();
    if parts.last().is_some_and(|last| last == "mod") {
        parts.pop();
    }
    parts.join("::")
}

/// Every path after `crate::` or `super::` in `source`, with `super` resolved against
/// `module`. Grouped imports (`crate::{a, b::c}`) count each member.
fn referenced_paths(source: &str, module: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (keyword, base) in [("crate::", String::new()), ("super::", parent(module))] {
        for (at, _) in source.match_indices(keyword) {
            let before = source[..at].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let rest = &source[at + keyword.len()..];
            for path in expand(rest) {
                let full = if base.is_empty() {
                    path
                } else {
                    format!("{base}::{path}")
                };
                found.push(full);
            }
        }
    }
    found
}

fn parent(module: &str) -> String {
    module
        .rsplit_once("::")
        .map_or(String::new(), |(parent, _)| parent.to_owned())
}

/// The path at the start of `rest` (`session::handle::X`), or each member of a group.
fn expand(rest: &str) -> Vec<String> {
    if let Some(group) = rest.strip_prefix('{') {
        let end = group.find('}').unwrap_or(group.len());
        return group[..end]
            .split(',')
            .map(|member| path_prefix(member.trim()))
            .filter(|path| !path.is_empty())
            .collect();
    }
    vec![path_prefix(rest)]
}

fn path_prefix(text: &str) -> String {
    let end = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(text.len());
    text[..end].trim_end_matches(':').to_owned()
}

/// The module dependency graph: module → the modules it names.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(&runtime_src(), &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let file_module = file_module(&file);
        if file_module == "lib" {
            continue;
        }
        let module = module_of(&file_module)
            .unwrap_or_else(|| panic!("`{file_module}` is in no layer: add it to LAYERS"));
        let source = std::fs::read_to_string(&file).expect("a source file");
        let targets = graph.entry(module.clone()).or_default();
        for path in referenced_paths(&source, &file_module) {
            if let Some(target) = module_of(&path)
                && target != module
            {
                targets.insert(target);
            }
        }
    }
    graph
}

#[test]
fn imports_point_down() {
    let graph = graph();
    let mut upward = Vec::new();
    println!("module dependencies (layer: module -> imports):");
    for (module, targets) in &graph {
        let (rank, layer) = layer_of(module).expect("listed");
        let names: Vec<&str> = targets.iter().map(String::as_str).collect();
        println!("  {layer:>10}: {module} -> {}", names.join(", "));
        for target in targets {
            let (target_rank, target_layer) = layer_of(target).expect("listed");
            if target_rank > rank {
                upward.push(format!(
                    "{module} ({layer}) imports {target} ({target_layer})"
                ));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports from a lower layer to a higher one:\n  {}",
        upward.join("\n  ")
    );
}

#[test]
fn cycles_stay_inside_the_model_layer() {
    let graph = graph();
    let mut outside = Vec::new();
    for (module, targets) in &graph {
        for target in targets {
            let back = graph
                .get(target)
                .is_some_and(|t| reaches(&graph, t, module));
            if back {
                let (_, a) = layer_of(module).expect("listed");
                let (_, b) = layer_of(target).expect("listed");
                if (a, b) != ("model", "model") {
                    outside.push(format!("{module} -> {target} -> ... -> {module}"));
                }
            }
        }
    }
    assert!(
        outside.is_empty(),
        "cycles outside the model layer:\n  {}",
        outside.join("\n  ")
    );
}

fn reaches(graph: &BTreeMap<String, BTreeSet<String>>, from: &BTreeSet<String>, to: &str) -> bool {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<&String> = from.iter().collect();
    while let Some(next) = stack.pop() {
        if next == to {
            return true;
        }
        if seen.insert(next.clone())
            && let Some(more) = graph.get(next)
        {
            stack.extend(more);
        }
    }
    false
}

#[test]
fn the_reader_sees_inline_and_grouped_paths() {
    let source = "use crate::{page::Ctx, route::Route};\nfn f() { crate::error::log(); super::queue::End::Close; }";
    let mut paths = referenced_paths(source, "session::task");
    paths.sort();
    assert_eq!(
        paths,
        [
            "error::log",
            "page::Ctx",
            "route::Route",
            "session::queue::End::Close"
        ]
    );
    assert_eq!(
        module_of("session::queue::End::Close").as_deref(),
        Some("session::queue")
    );
    assert_eq!(module_of("sse::frame").as_deref(), Some("sse"));
    assert_eq!(
        module_of("session::SessionHandle").as_deref(),
        Some("session")
    );
}
