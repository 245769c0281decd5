//! `scripts/bench ring`: HashRing lookups against Python tooz and against the floor, in one run.
//!
//! Workload (as research/backends.md's tooz_bench.py): a ring of 10 nodes at 32 partitions,
//! md5, and `get_nodes(key)` with one replica over 100,000 pre-built keys `key-N`. The floor is
//! what any lookup must do: one md5 of the key and one binary search over the same sorted
//! positions. Python's figure comes from `benches/python/tooz_bench.py ring` run by the
//! interpreter in `TOOZ_PYTHON`, right after ours.

#[path = "common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::Instant;

use md5::{Digest, Md5};
use tooz::HashRing;

const KEYS: usize = 100_000;
const REPEAT: usize = 7;

/// Lookups per second of the fastest of `REPEAT` passes over the keys.
fn best_rate(mut pass: impl FnMut()) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..REPEAT {
        let start = Instant::now();
        pass();
        best = best.min(start.elapsed().as_secs_f64());
    }
    KEYS as f64 / best
}

fn python_rate() -> Option<f64> {
    common::python_figures(&["ring"])?["ring_get_nodes"]["per_second"].as_f64()
}

fn main() {
    let mut ring: HashRing<String> = HashRing::new();
    for i in 0..10 {
        ring.add_node(format!("node-{i}"), 1);
    }
    let keys: Vec<Vec<u8>> = (0..KEYS).map(|i| format!("key-{i}").into_bytes()).collect();
    let positions: Vec<u128> = ring.positions().map(|(p, _)| p).collect();

    let ours = best_rate(|| {
        for key in &keys {
            black_box(ring.get_nodes(black_box(key), 1, &[] as &[&str]));
        }
    });
    let ours_single = best_rate(|| {
        for key in &keys {
            black_box(ring.get_node(black_box(key)));
        }
    });
    let floor = best_rate(|| {
        for key in &keys {
            let hash = u128::from_be_bytes(Md5::digest(black_box(key)).into());
            black_box(positions.partition_point(|p| *p <= hash));
        }
    });
    let md5_only = best_rate(|| {
        for key in &keys {
            black_box(Md5::digest(black_box(key)));
        }
    });
    let python = python_rate();

    let per_position = size_of::<u128>() + size_of::<u32>();
    println!("HashRing, 10 nodes x 32 partitions (md5), {KEYS} keys, best of {REPEAT}");
    println!("{:<44} {:>14}", "workload", "lookups/s");
    println!("{:<44} {:>14.0}", "ours: get_nodes(key, 1 replica)", ours);
    println!(
        "{:<44} {:>14.0}",
        "ours: get_node(key) (no allocation)", ours_single
    );
    println!("{:<44} {:>14.0}", "floor: md5 + binary search", floor);
    println!("{:<44} {:>14.0}", "md5 alone", md5_only);
    match python {
        Some(py) => {
            println!("{:<44} {:>14.0}", "python tooz 9.1.0: get_nodes(key)", py);
            println!("ratio ours/python: {:.1}x (target >= 10x)", ours / py);
        }
        None => println!("python tooz: not measured (set TOOZ_PYTHON; scripts/bench does)"),
    }
    println!("ratio ours/floor:  {:.2}x (target >= 0.7x)", ours / floor);
    println!(
        "memory: {per_position} bytes per position in the lookup arrays (+ one ordered-map entry \
         kept for updates); this ring: {} positions",
        ring.len()
    );
}
