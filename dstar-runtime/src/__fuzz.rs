//! Hooks for the fuzz targets in `fuzz/` (feature `fuzz`): the crate-private functions those
//! targets call directly. **Not public API**: hidden from the docs, no stability promise, and
//! absent unless the `fuzz` feature is on, which only the fuzz crate turns on.

use bytes::Bytes;

use crate::signals::SignalsError;

/// [`route::match_path`](crate::route): the decoded parameters of `path` under `pattern`.
pub fn match_path(pattern: &str, path: &str) -> Option<Vec<(String, String)>> {
    crate::route::match_path(pattern, path).map(|params| {
        params
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect()
    })
}

/// Which of `patterns` the route table serves `path` with (the lookup soft navigation and
/// re-mounting use), by index.
pub fn lookup(patterns: &[&str], path: &str) -> Option<usize> {
    crate::route::best_match(patterns.iter().copied(), path).map(|(index, _)| index)
}

/// `signals::merge_args`: the `x-dstar-args` object merged into raw signals.
pub fn merge_args(raw: &[u8], args: &str) -> Result<Bytes, SignalsError> {
    crate::signals::merge_args(Bytes::copy_from_slice(raw), args)
}
