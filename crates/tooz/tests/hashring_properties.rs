//! Properties tooz's own rebalance tests only pretend to check (research/tooz.md §4.4: their
//! helper compares a single key), over 10,000 keys: a join moves keys only onto the newcomer,
//! about its fair share of them; a leave moves exactly the leaver's keys; load follows weight.
//!
//! The exact properties are property tests over random node names. The magnitudes are
//! statistics over 40 seeded node sets (deterministic, so they cannot flake): with `32 × w`
//! positions a node's share of the ring has a relative spread of about `1/√(32w)` (18% at
//! weight 1), so single rings stray far from the mean while the mean itself is tight.

use std::collections::HashMap;

use proptest::prelude::*;
use tooz::HashRing;

const KEYS: usize = 10_000;
const SEEDED_SETS: u64 = 40;

fn keys() -> Vec<Vec<u8>> {
    (0..KEYS)
        .map(|i| format!("object-{i}").into_bytes())
        .collect()
}

fn owners(ring: &HashRing<String>, keys: &[Vec<u8>]) -> Vec<String> {
    keys.iter()
        .map(|k| ring.get_node(k).expect("non-empty ring").clone())
        .collect()
}

/// No name may be a repetition of another's root (`a` and `aa` share positions in tooz's
/// algorithm, see the `HashRing` docs): two strings are powers of one root exactly when they
/// commute.
fn roots_differ(names: &[String]) -> bool {
    names.iter().enumerate().all(|(i, a)| {
        names[i + 1..]
            .iter()
            .all(|b| format!("{a}{b}") != format!("{b}{a}"))
    })
}

fn distinct_names(count: usize) -> impl Strategy<Value = Vec<String>> {
    prop::collection::hash_set("[a-z0-9.-]{1,16}", count)
        .prop_map(|s| s.into_iter().collect::<Vec<String>>())
        .prop_filter("names sharing a root share ring positions", |n| {
            roots_differ(n)
        })
}

/// Node names for seeded set `seed`: realistic host-like names.
fn seeded_names(seed: u64, count: usize) -> Vec<String> {
    (0..count)
        .map(|i| format!("worker-{seed}-{i:02}.example"))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn a_join_moves_keys_only_onto_the_newcomer(names in distinct_names(11)) {
        let keys = keys();
        let mut ring = HashRing::new();
        for name in &names[..10] {
            ring.add_node(name.clone(), 1);
        }
        let before = owners(&ring, &keys);
        ring.add_node(names[10].clone(), 1);
        for (old, new) in before.iter().zip(&owners(&ring, &keys)) {
            prop_assert!(old == new || new == &names[10], "{} moved to {}", old, new);
        }
    }

    #[test]
    fn a_leave_moves_exactly_the_leavers_keys(names in distinct_names(10), gone in 0usize..10) {
        let keys = keys();
        let mut ring = HashRing::new();
        for name in &names {
            ring.add_node(name.clone(), 1);
        }
        let before = owners(&ring, &keys);
        ring.remove_node(&names[gone]).unwrap();
        for (old, new) in before.iter().zip(&owners(&ring, &keys)) {
            prop_assert_eq!(old == new, old != &names[gone]);
        }
    }
}

/// Adding an 11th node moves 1/11 of the keys on average (within 10%), and never more than
/// twice that on one ring.
#[test]
fn a_join_moves_about_one_eleventh() {
    let keys = keys();
    let fair = KEYS as f64 / 11.0;
    let mut total = 0.0;
    for seed in 0..SEEDED_SETS {
        let names = seeded_names(seed, 11);
        let mut ring = HashRing::new();
        for name in &names[..10] {
            ring.add_node(name.clone(), 1);
        }
        let before = owners(&ring, &keys);
        ring.add_node(names[10].clone(), 1);
        let moved = before
            .iter()
            .zip(&owners(&ring, &keys))
            .filter(|(old, new)| old != new)
            .count() as f64;
        assert!(
            moved <= 2.0 * fair,
            "seed {seed}: moved {moved} keys, fair share {fair:.0}"
        );
        total += moved;
    }
    let mean = total / SEEDED_SETS as f64;
    assert!(
        (mean - fair).abs() <= fair * 0.10,
        "mean moved {mean:.0}, fair share {fair:.0}"
    );
}

/// Load follows weight: each weight class's mean share is within 10% of its fair share, and
/// no single node strays beyond five spreads (`5/√(32w)`) of its own.
#[test]
fn load_follows_weight() {
    let keys = keys();
    let weights = [1u32, 1, 2, 2, 3, 3, 4, 4];
    let total_weight: u32 = weights.iter().sum();
    let mut share_by_weight: HashMap<u32, f64> = HashMap::new();
    for seed in 0..SEEDED_SETS {
        let names = seeded_names(seed, weights.len());
        let mut ring = HashRing::new();
        for (name, weight) in names.iter().zip(weights) {
            ring.add_node(name.clone(), weight);
        }
        let mut load: HashMap<String, usize> = HashMap::new();
        for owner in owners(&ring, &keys) {
            *load.entry(owner).or_default() += 1;
        }
        for (name, weight) in names.iter().zip(weights) {
            let fair = KEYS as f64 * f64::from(weight) / f64::from(total_weight);
            let got = load.get(name).copied().unwrap_or(0) as f64;
            let spread = 1.0 / (32.0 * f64::from(weight)).sqrt();
            assert!(
                (got - fair).abs() <= fair * 5.0 * spread,
                "seed {seed}: {name} (weight {weight}) got {got} keys, fair share {fair:.0}"
            );
            *share_by_weight.entry(weight).or_default() += got / fair;
        }
    }
    for (weight, sum) in share_by_weight {
        let mean = sum / (2.0 * SEEDED_SETS as f64);
        assert!(
            (mean - 1.0).abs() <= 0.10,
            "weight {weight}: mean share {mean:.3} of fair"
        );
    }
}
