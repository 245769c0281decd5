//! Hand-rolled fuzzing (issue 17, item 6): names into every backend's keys and paths, hostile
//! URLs with a canary password, and untrusted capability bytes. Inside the crate so that it
//! reaches the drivers' private name-to-key functions.
//!
//! `TOOZ_FUZZ_CASES` sets the cases per test (default 20 000, a few seconds in debug),
//! `TOOZ_FUZZ_SEED` the seed (decimal or `0x` hex). Each test prints one line,
//! `fuzz <subject>: <N> cases, <C> collisions, <E> escapes, <L> leaks, <P> panics`, which the
//! torture script sums, and fails if any count but the cases is not 0, naming the seed.

// Without any backend feature only the URL and capability tests remain.
#![cfg_attr(
    not(any(
        feature = "file",
        feature = "redis",
        feature = "memcached",
        feature = "etcd",
        feature = "zookeeper",
        feature = "mysql"
    )),
    allow(dead_code)
)]

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmpv::Value;
use tracing_subscriber::fmt::format::FmtSpan;
use url::Url;

use crate::drivers::memory::MemoryOptions;
use crate::options::{redact_str, split_host_list};
use crate::{Capabilities, Coordinator, Error, MAX_CAPABILITIES_DEPTH, MAX_CAPABILITIES_LEN};
use crate::{MAX_NAME_LEN, MemberId, REGISTRATIONS};

fn env_u64(name: &str, default: u64) -> u64 {
    let Ok(raw) = std::env::var(name) else {
        return default;
    };
    let raw = raw.trim();
    let parsed = match raw.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => raw.parse().ok(),
    };
    parsed.unwrap_or(default)
}

fn cases() -> u64 {
    env_u64("TOOZ_FUZZ_CASES", 20_000)
}

/// splitmix64: a few lines, and the same stream for a seed on every platform and toolchain.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    fn chance(&mut self, one_in: u64) -> bool {
        self.next_u64().is_multiple_of(one_in)
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// The test's stream and the seed to print. Each subject draws its own stream (FNV-1a of its
/// name, not `DefaultHasher`, whose output may change between toolchains), so adding a test
/// or a draw to one never changes another's cases.
fn setup(subject: &str) -> (Rng, u64) {
    let seed = env_u64("TOOZ_FUZZ_SEED", 0x7002_F022_0017_0006);
    let salt = subject.bytes().fold(0xCBF2_9CE4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3)
    });
    (Rng(seed ^ salt), seed)
}

/// The canary's prefix: it appears in a generated URL only where a password goes (and so
/// is masked in the examples a failing tally shows).
const CANARY: &str = "CANARY";

/// What one test found; the first few findings are kept for the failure message.
#[derive(Default)]
struct Tally {
    cases: u64,
    collisions: u64,
    escapes: u64,
    leaks: u64,
    panics: u64,
    examples: Vec<String>,
}

impl Tally {
    fn note(&mut self, what: String) {
        if self.examples.len() < 8 {
            // The failure message must not itself trip a grep for the canary.
            self.examples.push(what.replace(CANARY, "[canary]"));
        }
    }

    fn collision(&mut self, what: String) {
        self.collisions += 1;
        self.note(format!("collision: {what}"));
    }

    fn escape(&mut self, what: String) {
        self.escapes += 1;
        self.note(format!("escape: {what}"));
    }

    fn leak(&mut self, what: String) {
        self.leaks += 1;
        self.note(format!("leak: {what}"));
    }

    /// Runs one case; a panic is counted and the loop goes on, so one run shows them all.
    fn case(&mut self, body: impl FnOnce(&mut Self)) {
        let index = self.cases;
        self.cases += 1;
        if catch_unwind(AssertUnwindSafe(|| body(&mut *self))).is_err() {
            self.panics += 1;
            self.note(format!("panic in case {index} (its message is on stderr)"));
        }
    }

    fn finish(self, subject: &str, seed: u64) {
        println!(
            "fuzz {subject}: {} cases, {} collisions, {} escapes, {} leaks, {} panics",
            self.cases, self.collisions, self.escapes, self.leaks, self.panics
        );
        let bad = self.collisions + self.escapes + self.leaks + self.panics;
        assert_eq!(
            bad,
            0,
            "fuzz {subject} with TOOZ_FUZZ_SEED={seed:#x}:\n  {}",
            self.examples.join("\n  ")
        );
    }
}

fn fingerprint(value: &impl Hash) -> u64 {
    let mut hasher = DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

/// A name for messages: lossy, escaped, cut.
fn show(bytes: &[u8]) -> String {
    let text = format!("{:?}", String::from_utf8_lossy(bytes));
    if text.chars().count() <= 120 {
        return text;
    }
    format!(
        "{}… ({} bytes)",
        text.chars().take(120).collect::<String>(),
        bytes.len()
    )
}

/// The first of a kind's names (none for the fixed keys).
#[cfg(any(feature = "redis", feature = "memcached", feature = "zookeeper"))]
fn first<'a>(names: &[&'a [u8]]) -> &'a [u8] {
    names.first().copied().unwrap_or_default()
}

/// Keys stop being recorded past this many per keyspace (they are still looked up), so that a
/// long run stays within memory.
const TRACKED: usize = 1 << 21;

/// Every key one keyspace has seen in the run, with who made it. Fingerprints rather than
/// bytes, so a million cases of kilobyte names fit in memory: a false alarm between 64-bit
/// fingerprints is about a one-in-a-million event over a long run, and each alarm names the
/// key so that it can be checked by hand.
#[derive(Default)]
struct Keyspace(HashMap<u64, u64>);

impl Keyspace {
    /// Records that the `kind` of thing named `names` lives at `key`: a collision if another
    /// kind, or other names, got there first.
    fn claim(&mut self, tally: &mut Tally, key: &[u8], kind: &str, names: &[&[u8]]) {
        let owner = fingerprint(&(kind, names));
        let full = self.0.len() >= TRACKED;
        match self.0.entry(fingerprint(&key)) {
            Entry::Occupied(taken) => {
                if *taken.get() != owner {
                    let names: Vec<String> = names.iter().copied().map(show).collect();
                    tally.collision(format!(
                        "{kind} {} is at {}, where something else already is",
                        names.join(" / "),
                        show(key)
                    ));
                }
            }
            Entry::Vacant(slot) => {
                if !full {
                    slot.insert(owner);
                }
            }
        }
    }
}

/// Pieces drawn most often: short names made of them meet each other all the time, which is
/// what finds two names sharing a key.
#[rustfmt::skip]
const CORE: &[&[u8]] = &[
    b"a", b"b", b"/", b".", b"..", b"_", b":", b"~tooz-hex:", b"%", b"\xff",
];

/// Pieces that mean something to some backend's layout or to a parser.
#[rustfmt::skip]
const HOSTILE: &[&[u8]] = &[
    b"A", b"\\", b"%2F", b"%2e", b"~", b"-", b" ", b"\0", b"\n", b"\r", b"\x7f", b"\x80",
    "é".as_bytes(), "É".as_bytes(), "\u{FFFF}".as_bytes(), "\u{E000}".as_bytes(),
    "\u{1F600}".as_bytes(), b"=", b"@", b",", b"leader", b"locks", b"__lock__", b"__rlock__",
    b"0000000001", b"6c", b"61", b"2e", b"2f", b"~tooz-hex", b"_lock", b"group:", b"beats:",
    b"leader_of_", b"__created__", b"groups", b"LIST", b"_TOOZ_GROUP_LEADER_", b"_TOOZ_", b"LOCK_",
    b"RS_FENCE_", b"tmp", b"GROUPS", b".driver_lock", b".tooz-rs", b"leaders", b".metadata",
    b".raw", b"~tooz-sha256:", b"~TOOZ-SHA256:", b"tooz/groups/", b"/tooz/locks", b"tooz-rs/",
];

fn piece(rng: &mut Rng) -> &'static [u8] {
    if rng.chance(3) {
        rng.pick(HOSTILE)
    } else {
        rng.pick(CORE)
    }
}

fn short_name(rng: &mut Rng) -> Vec<u8> {
    let mut name = Vec::new();
    for _ in 0..rng.below(7) {
        name.extend_from_slice(piece(rng));
    }
    name
}

/// A name as hostile as it gets: mostly 0 to 6 pieces (empty included: refused, still a
/// case), sometimes one piece repeated to around [`MAX_NAME_LEN`] (where limits, hashing and
/// truncation kick in), sometimes random bytes of any length up to just past it.
fn name(rng: &mut Rng) -> Vec<u8> {
    match rng.below(16) {
        0 => (0..rng.below(MAX_NAME_LEN + 2))
            .map(|_| rng.next_u64() as u8)
            .collect(),
        1 | 2 => {
            let unit = piece(rng);
            let times = rng.below(MAX_NAME_LEN + 2) / unit.len() + 1;
            let mut name = unit.repeat(times);
            for _ in 0..rng.below(3) {
                name.extend_from_slice(piece(rng));
            }
            name
        }
        _ => short_name(rng),
    }
}

mod capabilities;
mod names;
mod urls;
