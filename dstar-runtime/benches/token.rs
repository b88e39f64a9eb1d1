//! Verifying event (CSRF) tokens when many distinct tokens are in use: a cycle of N tokens,
//! each verified in turn, for N below, at and well above the verified-token cache's size
//! (4,096). A hit costs a map lookup and a comparison; a miss costs an HMAC. The figure to watch
//! is how the cost grows past the cache's size: gradually, never all at once.
//!
//! Run with `cargo bench -p dstar-runtime --bench token`; results are in BENCHMARKS.md.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use dstar_runtime::token::{Keys, Purpose};

fn verify(c: &mut Criterion) {
    let mut group = c.benchmark_group("verify, N distinct tokens in turn");
    for n in [1usize, 4_096, 4_097, 6_144, 8_192, 16_384, 65_536] {
        let keys = Keys::new(b"dstar token benchmark secret");
        let tokens: Vec<String> = (0..n as u128)
            .map(|session| keys.sign(Purpose::Csrf, session, Duration::from_secs(3_600)))
            .collect();
        group.bench_with_input(BenchmarkId::from_parameter(n), &tokens, |b, tokens| {
            let mut next = 0;
            b.iter(|| {
                let token = &tokens[next];
                next = (next + 1) % tokens.len();
                black_box(keys.verify(black_box(token), Purpose::Csrf)).expect("valid")
            });
        });
    }
    group.finish();
}

criterion_group!(benches, verify);
criterion_main!(benches);
