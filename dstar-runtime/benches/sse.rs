//! Encoding one `datastar-patch-elements` event of 1, 20 and 500 list items, three ways:
//!
//! - `dstar`: `PatchElements::write_to` into a reused buffer, as the response code does;
//! - `datastar-sdk`: the official `datastar` crate (0.4.1), from its builder to the `String`
//!   it would send (`DatastarEvent`'s `Display`);
//! - `bare-writer`: the least a correct encoder for this input can do, one pass splitting on
//!   `\n` only, as a floor to compare against.
//!
//! Run with `cargo bench -p dstar-runtime --bench sse`; results are in BENCHMARKS.md.

use std::fmt::Write as _;
use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use dstar_runtime::sse::PatchElements;

fn items(count: usize) -> String {
    let mut html = String::new();
    for n in 0..count {
        if n > 0 {
            html.push('\n');
        }
        write!(
            html,
            r#"<li id="item-{n}" class="row">Item {n} <b>text</b></li>"#
        )
        .expect("writing to a String cannot fail");
    }
    html
}

// Kept out of line so that it is a call, as dstar's encoder is from here: otherwise the
// compiler can merge it into the benchmark loop and the floor measures a different shape.
#[inline(never)]
fn bare_writer(out: &mut Vec<u8>, elements: &str) {
    out.extend_from_slice(b"event: datastar-patch-elements\n");
    for line in elements.split('\n') {
        out.extend_from_slice(b"data: elements ");
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
}

fn encode_patch_elements(c: &mut Criterion) {
    let mut group = c.benchmark_group("patch_elements");
    for (size, count) in [("small", 1), ("medium", 20), ("large", 500)] {
        let html = items(count);
        group.throughput(Throughput::Bytes(html.len() as u64));

        // The three encoders must agree on the bytes before their speed means anything.
        let mut dstar = Vec::new();
        PatchElements::new(&html).write_to(&mut dstar);
        let sdk = datastar::patch_elements::PatchElements::new(html.as_str())
            .into_datastar_event()
            .to_string();
        let mut bare = Vec::new();
        bare_writer(&mut bare, &html);
        assert_eq!(dstar, sdk.as_bytes(), "dstar and the SDK disagree");
        assert_eq!(dstar, bare, "dstar and the bare writer disagree");

        let mut out = Vec::with_capacity(dstar.len());
        group.bench_with_input(BenchmarkId::new("dstar", size), &html, |b, html| {
            b.iter(|| {
                out.clear();
                PatchElements::new(black_box(html)).write_to(&mut out);
                black_box(&out);
            });
        });
        group.bench_with_input(BenchmarkId::new("datastar-sdk", size), &html, |b, html| {
            b.iter(|| {
                let event = datastar::patch_elements::PatchElements::new(black_box(html.as_str()))
                    .into_datastar_event();
                black_box(event.to_string())
            });
        });
        group.bench_with_input(BenchmarkId::new("bare-writer", size), &html, |b, html| {
            b.iter(|| {
                out.clear();
                bare_writer(&mut out, black_box(html));
                black_box(&out);
            });
        });
    }
    group.finish();
}

criterion_group!(benches, encode_patch_elements);
criterion_main!(benches);
