//! ML-DSA-65 signing and verification speed of the implementation the log uses (`libcrux-ml-dsa`,
//! through [`logkey::LogSigningKey`]) next to the `ml-dsa` crate it replaced, same seed and
//! message (a 140-byte STH body).
//!
//! `cargo bench -p logkey --bench sign` (`BENCH_SIGNATURES`, default 2000, per run; 3 runs,
//! the median shown with min–max). Prints `/proc/loadavg` with the figures: the machine is
//! shared. Outside `cargo bench` (`cargo test --benches`) it does a quick smoke run.

use std::time::Instant;

use ml_dsa::{MlDsa65, Seed, Signer};

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let count: usize =
        std::env::var("BENCH_SIGNATURES").ok().and_then(|v| v.parse().ok()).unwrap_or(if full { 2000 } else { 20 });
    let seed = [7u8; 32];
    let message = br#"{"relay_id":"health.paramant.app","sha3_root":"0000000000000000000000000000000000000000000000000000000000000000","timestamp":1765000000000,"tree_size":123456,"version":1}"#;
    let libcrux = logkey::LogSigningKey::from_seed(&seed);
    let rust_crypto = ml_dsa::SigningKey::<MlDsa65>::from_seed(&Seed::from(seed));
    let vk = libcrux.verifying_key();
    let signature = libcrux.sign(message);

    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("ML-DSA-65, {count} operations per run, 3 runs, median [min–max]; loadavg {}", load.trim());
    let row = |name: &str, op: &mut dyn FnMut()| {
        let mut runs: Vec<f64> = (0..3)
            .map(|_| {
                let start = Instant::now();
                for _ in 0..count {
                    op();
                }
                start.elapsed().as_secs_f64() * 1e3 / count as f64
            })
            .collect();
        runs.sort_by(f64::total_cmp);
        println!("{name:<44} {:>8.3} ms [{:.3}–{:.3}]", runs[1], runs[0], runs[2]);
    };
    row("sign, libcrux-ml-dsa 0.0.11 (used)", &mut || {
        std::hint::black_box(libcrux.sign(std::hint::black_box(message)));
    });
    row("sign, ml-dsa 0.1.2 (cross-check)", &mut || {
        let s: ml_dsa::Signature<MlDsa65> = rust_crypto.sign(std::hint::black_box(message));
        std::hint::black_box(s);
    });
    row("verify, libcrux-ml-dsa 0.0.11 (used)", &mut || {
        vk.verify(std::hint::black_box(message), &signature).expect("valid");
    });
}
