//! Compile-time behaviour of dstar's macros: what compiles, and the exact error for each
//! mistake (`tests/ui/<macro>/{pass,fail}/`, one mistake per file). Regenerate the expected
//! `.stderr` files with `TRYBUILD=overwrite` and review every change.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("ui/page/pass/*.rs");
    cases.compile_fail("ui/page/fail/*.rs");
    cases.compile_fail("ui/templates/fail/*.rs");
    cases.compile_fail("ui/router/fail/*.rs");
}
