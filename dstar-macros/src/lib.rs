//! Procedural macros for dstar. Use them through the `dstar` crate.
