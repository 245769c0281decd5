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

/// Whether `c` can be one path component that stays where it is put.
#[cfg(feature = "file")]
fn bad_component(c: &[u8]) -> bool {
    matches!(c, b"" | b"." | b"..") || c.len() > 255 || c.contains(&b'/') || c.contains(&0)
}

#[cfg(feature = "file")]
#[test]
fn file_paths() {
    use crate::drivers::file::paths::{PRIVATE_DIR, lock_components, sha1_hex};
    use crate::drivers::file::records::{MemberRecord, decode_metadata, encode_metadata};
    use crate::{GroupId, LockName};

    let (mut rng, seed) = setup("file");
    let mut tally = Tally::default();
    // One keyspace: paths below the root. Lock files and the driver's own files share it.
    let mut paths = Keyspace::default();
    for _ in 0..cases() {
        let (a, b) = (name(&mut rng), name(&mut rng));
        tally.case(|tally| {
            let lock = LockName::from(a.as_slice());
            if lock.validate().is_ok()
                && let Ok(components) = lock_components(&lock)
            {
                if components.is_empty() || components.iter().copied().any(bad_component) {
                    tally.escape(format!("lock {} as {components:?}", show(&a)));
                }
                // The lock file is the name itself, so different names are different files.
                if components.join(&b'/') != a {
                    tally.collision(format!("lock {} is not its own path", show(&a)));
                }
                // ... and never one of the driver's (case-insensitive file systems included).
                let top = components.first().copied().unwrap_or_default();
                if ["groups", "tmp", ".driver_lock", PRIVATE_DIR]
                    .iter()
                    .any(|t| top.eq_ignore_ascii_case(t.as_bytes()))
                {
                    tally.escape(format!("lock {} is among the driver's files", show(&a)));
                }
                paths.claim(tally, &a, "lock", &[&a[..]]);
            }
            let group = GroupId::from(a.as_slice());
            let member = MemberId::from(b.as_slice());
            if group.validate().is_err() || member.validate().is_err() {
                return;
            }
            let dir = format!("groups/{}", sha1_hex(&a));
            let metadata = format!("{dir}/.metadata");
            let record = format!("{dir}/{}.raw", sha1_hex(&b));
            let leader = format!("{PRIVATE_DIR}/leaders/{}", sha1_hex(&a));
            for (kind, path, names) in [
                ("group", &metadata, &[&a[..]][..]),
                ("member", &record, &[&a[..], &b[..]][..]),
                ("leader", &leader, &[&a[..]][..]),
            ] {
                if path.as_bytes().split(|c| *c == b'/').any(bad_component) {
                    tally.escape(format!("{kind} {} at {path}", show(&a)));
                }
                paths.claim(tally, path.as_bytes(), kind, names);
            }
            // A name that reads back as another is as bad as two names on one file.
            match encode_metadata(&group).and_then(|bytes| decode_metadata(&bytes)) {
                Ok(back) if back == group => {}
                other => tally.collision(format!("group {} read back as {other:?}", show(&a))),
            }
            let written = MemberRecord::new(member, Capabilities::none()).encode();
            match written.and_then(|bytes| MemberRecord::decode(&bytes)) {
                Ok(back) if back.member.as_bytes() == b.as_slice() => {}
                other => tally.collision(format!("member {} read back as {other:?}", show(&b))),
            }
        });
    }
    tally.finish("file", seed);
}

#[cfg(feature = "redis")]
#[test]
fn redis_keys() {
    use crate::drivers::redis::keys::{CREATED_FIELD, Keys, check_group, check_lock, check_member};
    use crate::{GroupId, LockName};

    let (mut rng, seed) = setup("redis");
    let mut tally = Tally::default();
    let keys = Keys::new("_tooz");
    // Two keyspaces: the database's keys, and the fields of a group's hash (member ids and
    // the marker). Pub/sub channels (events, grants) are a namespace of their own in Redis,
    // named by no name, so they are left out.
    let mut space = Keyspace::default();
    let mut fields = Keyspace::default();
    space.claim(&mut tally, &keys.groups(), "group list", &[]);
    fields.claim(&mut tally, CREATED_FIELD, "created marker", &[]);
    for _ in 0..cases() {
        let (a, b) = (name(&mut rng), name(&mut rng));
        tally.case(|tally| {
            // tooz's keys continue the namespace with '_', ours with ':rs:'.
            let mut check = |tally: &mut Tally, key: Vec<u8>, kind: &str, names: &[&[u8]]| {
                let prefix: &[u8] = if kind.starts_with("rs ") {
                    b"_tooz:rs:"
                } else {
                    b"_tooz_"
                };
                if !key.starts_with(prefix) {
                    tally.escape(format!("{kind} {} at {}", show(first(names)), show(&key)));
                }
                space.claim(tally, &key, kind, names);
            };
            let lock = LockName::from(a.as_slice());
            if lock.validate().is_ok() && check_lock(&lock).is_ok() {
                check(tally, keys.lock(&lock), "lock", &[&a[..]]);
                check(tally, keys.fence(&lock), "rs fence", &[&a[..]]);
                check(tally, keys.queue(&lock), "rs queue", &[&a[..]]);
                check(tally, keys.waiting(&lock), "rs waiting", &[&a[..]]);
            }
            let group = GroupId::from(a.as_slice());
            if group.validate().is_ok() {
                // Elections take any valid group: the driver checks only group operations.
                check(tally, keys.leader_lock(&group), "leader lock", &[&a[..]]);
                check(
                    tally,
                    keys.leader_fence(&group),
                    "rs leader fence",
                    &[&a[..]],
                );
                check(tally, keys.leader_name(&group), "rs leader name", &[&a[..]]);
                if check_group(&group).is_ok() {
                    check(tally, keys.group(&group), "group", &[&a[..]]);
                }
            }
            let member = MemberId::from(b.as_slice());
            if member.validate().is_ok() && check_member(&member).is_ok() {
                check(tally, keys.beat(&member), "beat", &[&b[..]]);
                fields.claim(tally, &b, "member", &[&b[..]]);
            }
        });
    }
    tally.finish("redis", seed);
}

/// Standard base64 with padding, decoded: the key the server stores for a `b`-flagged one.
#[cfg(feature = "memcached")]
fn unbase64(text: &[u8]) -> Option<Vec<u8>> {
    let digit = |c: u8| match c {
        b'A'..=b'Z' => Some(u32::from(c - b'A')),
        b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
        b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    if !text.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    for chunk in text.chunks(4) {
        let pad = chunk.iter().rev().take_while(|c| **c == b'=').count();
        if pad > 2 {
            return None;
        }
        let mut n = 0_u32;
        for c in &chunk[..4 - pad] {
            n = (n << 6) | digit(*c)?;
        }
        n <<= 6 * pad as u32;
        out.extend_from_slice(&n.to_be_bytes()[1..4 - pad]);
    }
    Some(out)
}

#[cfg(feature = "memcached")]
#[test]
fn memcached_keys() {
    use crate::drivers::memcached::keys::{self, Key, check_group, check_lock};
    use crate::{GroupId, LockName};

    let (mut rng, seed) = setup("memcached");
    let mut tally = Tally::default();
    // One keyspace: the binary keys the server stores (a base64 wire form is decoded first:
    // the server keys the item by the decoded bytes).
    let mut space = Keyspace::default();
    let mut check = |tally: &mut Tally, key: Key, kind: &str, names: &[&[u8]]| {
        let wire = key.wire();
        if wire.len() > 250 || !wire.iter().all(|b| (0x21..=0x7e).contains(b)) {
            tally.escape(format!(
                "{kind} {}: wire key {}",
                show(first(names)),
                show(wire)
            ));
        }
        let stored = if key.is_base64() {
            unbase64(wire)
        } else {
            Some(wire.to_vec())
        };
        let Some(stored) = stored else {
            tally.escape(format!(
                "{kind} {}: bad base64 {}",
                show(first(names)),
                show(wire)
            ));
            return;
        };
        let hashed = stored.starts_with(b"__TOOZ_RS_LONG_");
        let in_layout = stored.starts_with(b"_TOOZ_") || stored.starts_with(b"__TOOZ_");
        let last = names.last().copied().unwrap_or_default();
        if !in_layout || !(hashed || stored.ends_with(last)) {
            tally.escape(format!(
                "{kind} {} stored as {}",
                show(first(names)),
                show(&stored)
            ));
        }
        space.claim(tally, &stored, kind, names);
    };
    check(&mut tally, keys::group_list(), "group list", &[]);
    for _ in 0..cases() {
        let (a, b) = (name(&mut rng), name(&mut rng));
        tally.case(|tally| {
            let lock = LockName::from(a.as_slice());
            if lock.validate().is_ok() && check_lock(&lock).is_ok() {
                check(tally, keys::lock(&lock), "lock", &[&a[..]]);
                check(tally, keys::fence(&lock), "fence", &[&a[..]]);
            }
            let group = GroupId::from(a.as_slice());
            if group.validate().is_ok() {
                // Elections take any valid group: the driver checks only group operations.
                check(tally, keys::leader_lock(&group), "leader lock", &[&a[..]]);
                check(tally, keys::leader_fence(&group), "leader fence", &[&a[..]]);
                if check_group(&group).is_ok() {
                    check(tally, keys::group(&group), "group", &[&a[..]]);
                }
            }
            let member = MemberId::from(b.as_slice());
            if member.validate().is_ok() {
                check(tally, keys::member(&member), "member", &[&b[..]]);
            }
        });
    }
    tally.finish("memcached", seed);
}

#[cfg(feature = "etcd")]
#[test]
fn etcd_keys() {
    use crate::drivers::etcd::keys;
    use crate::{GroupId, LockName};

    let (mut rng, seed) = setup("etcd");
    let mut tally = Tally::default();
    // One keyspace: etcd's. A group's key is a prefix of its members' keys by design (tooz
    // lists members by prefix); prefixes are checked through group_of_key/member_of_key,
    // exact keys through the keyspace.
    let mut space = Keyspace::default();
    let mut previous = Vec::new();
    let lease = 7;
    for _ in 0..cases() {
        let (a, b) = (name(&mut rng), name(&mut rng));
        let owner = (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64());
        tally.case(|tally| {
            let mut check =
                |tally: &mut Tally, key: &[u8], prefix: &[u8], kind: &str, names: &[&[u8]]| {
                    if !key.starts_with(prefix) {
                        tally.escape(format!("{kind} {} at {}", show(&a), show(key)));
                    }
                    space.claim(tally, key, kind, names);
                };
            if LockName::from(a.as_slice()).validate().is_ok() {
                check(tally, &keys::lock(&a), b"/tooz/locks", "lock", &[&a[..]]);
                let queue = keys::queue(&a);
                check(tally, &queue, b"tooz-rs/queue/", "queue", &[&a[..]]);
                let owner_bytes = owner.to_be_bytes();
                let queued = keys::queued(&a, owner);
                check(
                    tally,
                    &queued,
                    &queue,
                    "queued",
                    &[&a[..], &owner_bytes[..]],
                );
                // Waiters are found by prefix: no lock's queue may hold another's.
                let theirs = keys::queue(&previous);
                if previous != a && (queue.starts_with(&theirs) || theirs.starts_with(&queue)) {
                    tally.collision(format!("queues of {} and {}", show(&a), show(&previous)));
                }
            }
            if GroupId::from(a.as_slice()).validate().is_err() {
                return;
            }
            check(
                tally,
                &keys::leader(&a),
                b"tooz-rs/leaders/",
                "leader",
                &[&a[..]],
            );
            let group = keys::group(&a);
            check(tally, &group, b"tooz/groups/", "group", &[&a[..]]);
            if keys::group_of_key(&group, 0) != Some(&a[..])
                || keys::group_of_key(&group, lease).is_some()
            {
                tally.collision(format!("group {} does not read back", show(&a)));
            }
            // Member ids holding '/' are refused by the driver.
            if MemberId::from(b.as_slice()).validate().is_err() || b.contains(&b'/') {
                return;
            }
            let member = keys::member(&a, &b);
            check(tally, &member, &group, "member", &[&a[..], &b[..]]);
            if keys::member_of_key(&group, &member, lease) != Some(&b[..])
                || keys::member_of_key(&group, &member, 0).is_some()
                || keys::group_of_key(&member, lease).is_some()
            {
                tally.collision(format!(
                    "member {} of {} does not read back",
                    show(&b),
                    show(&a)
                ));
            }
            // Group `x` must not list the members of group `x/y`, whose keys it prefixes.
            for (at, _) in a.iter().enumerate().filter(|(_, c)| **c == b'/') {
                let outer = keys::group(&a[..at]);
                if keys::member_of_key(&outer, &member, lease).is_some() {
                    tally.collision(format!(
                        "member {} of {} listed in {}",
                        show(&b),
                        show(&a),
                        show(&a[..at])
                    ));
                }
            }
        });
        previous = a;
    }
    tally.finish("etcd", seed);
}

#[cfg(feature = "zookeeper")]
#[test]
fn zookeeper_paths() {
    use crate::drivers::zookeeper::paths::{self, LEADER, LOCKS};
    use crate::{GroupId, LockName};

    const BASE: &str = "/tooz";
    let (mut rng, seed) = setup("zookeeper");
    let mut tally = Tally::default();
    // One keyspace: full node paths under the namespace. A node escapes when a name becomes
    // more or less than one node name.
    let mut space = Keyspace::default();
    let one_node = |node: &str| {
        !matches!(node, "" | "." | "..")
            && !node.contains('/')
            && paths::check_path(&format!("/{node}")).is_ok()
    };
    let mut check = |tally: &mut Tally, path: String, kind: &str, names: &[&[u8]]| {
        if let Err(why) = paths::check_path(&path) {
            tally.escape(format!(
                "{kind} {} at {}: {why}",
                show(first(names)),
                show(path.as_bytes())
            ));
        }
        space.claim(tally, path.as_bytes(), kind, names);
    };
    check(&mut tally, format!("{BASE}/{LOCKS}"), "locks root", &[]);
    for _ in 0..cases() {
        let (a, b) = (name(&mut rng), name(&mut rng));
        tally.case(|tally| {
            // (Listings decode what others wrote: any text must decode without panicking.)
            let _ = paths::decode(&String::from_utf8_lossy(&a), LEADER);
            let encode = |tally: &mut Tally, bytes: &[u8], kind: &str, reserved: &str| {
                let node = match kind {
                    "lock" => paths::lock(bytes),
                    "group" => paths::group(bytes),
                    _ => paths::member(bytes),
                };
                if !one_node(&node) {
                    tally.escape(format!("{kind} {} as node {node:?}", show(bytes)));
                }
                if paths::decode(&node, reserved) != bytes {
                    tally.collision(format!("{kind} {} does not read back", show(bytes)));
                }
                node
            };
            if LockName::from(a.as_slice()).validate().is_ok() {
                let lock = encode(tally, &a, "lock", "");
                check(tally, format!("{BASE}/{LOCKS}/{lock}"), "lock", &[&a[..]]);
            }
            if GroupId::from(a.as_slice()).validate().is_err() {
                return;
            }
            let group = encode(tally, &a, "group", LOCKS);
            check(tally, format!("{BASE}/{group}"), "group", &[&a[..]]);
            check(
                tally,
                format!("{BASE}/{group}/{LEADER}"),
                "leader",
                &[&a[..]],
            );
            if MemberId::from(b.as_slice()).validate().is_ok() {
                let member = encode(tally, &b, "member", LEADER);
                check(
                    tally,
                    format!("{BASE}/{group}/{member}"),
                    "member",
                    &[&a[..], &b[..]],
                );
            }
        });
    }
    tally.finish("zookeeper", seed);
}

#[cfg(feature = "mysql")]
#[test]
fn mysql_lock_names() {
    use crate::LockName;
    use crate::drivers::mysql::locks::{NameLimit, server_name};

    const MARKER: &str = "~tooz-sha256:";
    let (mut rng, seed) = setup("mysql");
    let mut tally = Tally::default();
    // One keyspace per server kind: GET_LOCK names. Compared exactly: MySQL also folds case,
    // so names differing only in case share a lock there — documented, and only ever more
    // exclusion, never less. What folding must not do is make a name used as it is meet a
    // hashed one, which is checked on its own.
    let mut spaces = [Keyspace::default(), Keyspace::default()];
    for _ in 0..cases() {
        let a = name(&mut rng);
        tally.case(|tally| {
            let lock = LockName::from(a.as_slice());
            if lock.validate().is_err() {
                return;
            }
            let limits = [NameLimit::Mysql, NameLimit::Mariadb];
            for (limit, space) in limits.into_iter().zip(spaces.iter_mut()) {
                let server = server_name(&lock, limit);
                let fits = match limit {
                    NameLimit::Mysql => {
                        server.chars().count() <= 64 && server.chars().all(|c| c <= '\u{FFFF}')
                    }
                    NameLimit::Mariadb => server.len() <= 192,
                };
                if server.is_empty() || server.contains('\0') || !fits {
                    tally.escape(format!("lock {} as {limit:?} {server:?}", show(&a)));
                }
                let marked = server
                    .get(..MARKER.len())
                    .is_some_and(|start| start.eq_ignore_ascii_case(MARKER));
                if marked == (server.as_bytes() == a.as_slice()) {
                    tally.collision(format!("lock {} as {limit:?} {server:?}", show(&a)));
                }
                space.claim(tally, server.as_bytes(), "lock", &[&a[..]]);
            }
        });
    }
    tally.finish("mysql", seed);
}

/// A small msgpack value; strings and bytes from the hostile name pieces.
fn msgpack(rng: &mut Rng, depth: usize) -> Value {
    match rng.below(if depth == 0 { 7 } else { 9 }) {
        0 => Value::Nil,
        1 => Value::Boolean(rng.chance(2)),
        2 => Value::from(rng.next_u64() as i64),
        // Finite by construction: NaN is not equal to itself.
        3 => Value::F64(f64::from(rng.next_u64() as u32) / 7.0),
        4 => Value::from(String::from_utf8_lossy(&short_name(rng)).into_owned()),
        5 => Value::Binary(short_name(rng)),
        6 => {
            let code = if rng.chance(2) {
                1
            } else {
                rng.next_u64() as i8
            };
            Value::Ext(code, short_name(rng))
        }
        7 => Value::Array((0..rng.below(4)).map(|_| msgpack(rng, depth - 1)).collect()),
        _ => Value::Map(
            (0..rng.below(4))
                .map(|_| (msgpack(rng, 0), msgpack(rng, depth - 1)))
                .collect(),
        ),
    }
}

/// msgpack markers (containers, strings, extensions with their length widths) and bytes that
/// are their own values.
#[rustfmt::skip]
const MARKERS: &[u8] = &[
    0x00, 0x7f, 0x80, 0x81, 0x8f, 0x90, 0x91, 0x9f, 0xa0, 0xa1, 0xbf, 0xc0, 0xc1, 0xc2, 0xc3, 0xc4,
    0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xcb, 0xcc, 0xcd, 0xce, 0xcf, 0xd0, 0xd3, 0xd4, 0xd8, 0xd9,
    0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xff,
];

/// One level of nesting each: a one-element array, a one-entry map (nil key), an array16.
const LEVELS: &[&[u8]] = &[&[0x91], &[0x81, 0xc0], &[0xdc, 0x00, 0x01]];
/// Markers whose 32-bit length, `0xffffffff`, claims far more than any input holds.
const HUGE: &[u8] = &[0xc6, 0xdb, 0xdd, 0xdf, 0xc9];

fn hostile_byte(rng: &mut Rng) -> u8 {
    if rng.chance(2) {
        rng.pick(MARKERS)
    } else {
        rng.next_u64() as u8
    }
}

/// Bytes that may be msgpack: random, nested around the depth limit, oversized, or a valid
/// encoding with bytes flipped, inserted, deleted, cut, or a huge length prefix spliced in.
fn capability_bytes(rng: &mut Rng, value: &Value) -> Vec<u8> {
    match rng.below(16) {
        0..=3 => (0..rng.below(48)).map(|_| hostile_byte(rng)).collect(),
        4 => {
            let depth = if rng.chance(64) {
                rng.below(10_000)
            } else {
                MAX_CAPABILITIES_DEPTH - 3 + rng.below(8)
            };
            let mut bytes = Vec::new();
            for _ in 0..depth {
                bytes.extend_from_slice(rng.pick(LEVELS));
            }
            bytes.push(0xc0);
            bytes
        }
        5 if rng.chance(64) => vec![0xc4; MAX_CAPABILITIES_LEN + 1 + rng.below(3)],
        _ => {
            let mut bytes = Vec::new();
            rmpv::encode::write_value(&mut bytes, value).expect("writing to a Vec cannot fail");
            for _ in 0..=rng.below(3) {
                let at = rng.below(bytes.len() + 1);
                match rng.below(5) {
                    0 if at < bytes.len() => bytes[at] ^= 1_u8 << rng.below(8),
                    1 => bytes.insert(at, hostile_byte(rng)),
                    2 if at < bytes.len() => {
                        bytes.remove(at);
                    }
                    3 => bytes.truncate(at),
                    _ => {
                        let tail = bytes.split_off(at);
                        bytes.extend_from_slice(&[rng.pick(HUGE), 0xff, 0xff, 0xff, 0xff]);
                        bytes.extend_from_slice(&tail);
                    }
                }
            }
            bytes
        }
    }
}

#[test]
fn capabilities_bytes() {
    let (mut rng, seed) = setup("capabilities");
    let mut tally = Tally::default();
    for _ in 0..cases() {
        let value = msgpack(&mut rng, 3);
        let bytes = capability_bytes(&mut rng, &value);
        tally.case(|tally| {
            // What we encode reads back as itself (a value read back as another counts as a
            // collision).
            let caps = Capabilities::new(value);
            match caps
                .encode()
                .and_then(|encoded| Capabilities::decode(&encoded))
            {
                Ok(back) if back == caps => {}
                other => tally.collision(format!("{caps:?} read back as {other:?}")),
            }
            // Whatever anyone stored: a value or an error, and a value can be shown and
            // written again.
            if let Ok(read) = Capabilities::decode(&bytes) {
                let _ = (read.to_json(), format!("{read:?} {read}"));
                if let Ok(again) = read.encode() {
                    let _ = Capabilities::decode(&again);
                }
            }
            #[cfg(feature = "file")]
            {
                use crate::drivers::file::records::{MemberRecord, decode_metadata};
                let _ = MemberRecord::decode(&bytes).map(|r| format!("{r:?}"));
                let _ = decode_metadata(&bytes).map(|g| g.to_string());
            }
        });
    }
    tally.finish("capabilities", seed);
}

/// The canary's prefix: it appears in a generated URL only where a password goes.
const CANARY: &str = "CANARY";
/// The canary as a percent-encoded password shows it, when a URL is echoed undecoded.
const CANARY_ENCODED: &str = "%43%41%4E%41%52%59";

/// Whether `text` shows a canary, plain or percent-encoded (in either case of hex digits).
fn shows_canary(text: &str) -> bool {
    text.contains(CANARY) || text.to_ascii_uppercase().contains(CANARY_ENCODED)
}

#[rustfmt::skip]
const ODD_SCHEMES: &[&str] = &[
    "gopher", "REDIS", "memcache", "zk", "etcd3", "http", "x-y", "1abc", "",
];
/// User names: none ends the authority ('/', '?', '#') or starts the password (':'), so the
/// canary after them is a password by URL syntax in every URL made.
#[rustfmt::skip]
const USERS: &[&str] = &[
    "", "u", "user", "a@b", "é", "%41", "%", " ", "[", "admin", "u=1",
];
/// Around the canary in userinfo; again nothing that ends the authority.
#[rustfmt::skip]
const AROUND: &[&str] = &[
    "", "", "@", ":", "%", "%4", "%zz", " ", "é", "\u{1F600}", "[", "]", ",", "=", "&", ";", "+",
    "!", "$", "'", "*", "\"", "<", ">", "`", "{", "|", "}", "^", "\t", "%40",
];
/// Around the canary in a query value: no '&' or '#', which would make it another option or
/// a fragment rather than the secret option's value.
#[rustfmt::skip]
const AROUND_QUERY: &[&str] = &[
    "", "", " ", "+", "%", "%zz", "é", "=", ":", "@", "/", "?", ";", ",", "%26",
];
/// Hosts: no '?' or '#', which would turn the options after them into something else.
#[rustfmt::skip]
const HOSTS: &[&str] = &[
    "h", "localhost", "127.0.0.1", "[::1]", "[::1", "::1", "ex ample", "h%41", "é", "xn--a", "a@b",
    "h,h2:1", "h,,", "[", "%", "999.1.1.1", "0x7f.1", "H", "h.", ".", "..", "_", "-h", "h:1:2", "",
    "/", "h/x", "<", "^", "|", "\0",
];
#[rustfmt::skip]
const PORTS: &[&str] = &[
    "", "", "", ":0", ":1", ":2181", ":65535", ":65536", ":99999", ":-1", ":abc", ":", ":080",
];
#[rustfmt::skip]
const PATHS: &[&str] = &[
    "", "", "/", "/x", "/0", "/15", "/a/b", "/../..", "/%2e%2e", "//", "/x y", "/%00", "/tooz",
    "/a%2Fb", "/é", "/%ff", "/.", "/tmp/tooz-fuzz",
];
/// Options of every driver (none that reads a file, which a random value would make I/O),
/// and some of none.
#[rustfmt::skip]
const OPTIONS: &[&str] = &[
    "timeout", "membership_timeout", "lock_timeout", "leader_timeout", "namespace", "db",
    "sentinel", "sentinel_fallback", "sentinel_username", "sentinel_ssl", "endpoints", "hosts",
    "host", "port", "dbname", "user", "sslmode", "table_prefix", "tooz_lock_keys", "executor",
    "max_pool_size", "use_ssl", "unix_socket", "ssl", "groups", "elections", "shared_locks",
    "randomize_hosts", "verify_certs", "encoding", "api_version", "handler", "bogus", "", "a b",
    "%zz",
];
#[rustfmt::skip]
const VALUES: &[&str] = &[
    "", "1", "0", "2", "2.5", "10ms", "-1", "1e400", "NaN", "true", "false", "maybe", "h:1",
    "h1:2,h2:3", "[::1]:1", "x", "/x", "%", "%zz", "a b", "prefer", "require", "verify-full",
    "disable", "allow", "é", "99999999999999999999", "tooz_", "UPPER", "%00", "utf8", "m",
    "3153600001",
];
/// Options whose value is a secret (by the crate's rule: the name holds password, passwd,
/// secret or token), known to some driver or to none.
#[rustfmt::skip]
const SECRET_OPTIONS: &[&str] = &[
    "password", "sentinel_password", "ssl_key_password", "keyfile_password", "passwd", "secret",
    "token", "api_token", "PASSWORD",
];
const FRAGMENTS: &[&str] = &["#", "#f", "#a@b", "#?x"];

/// The canary as a password or secret value: as it is between hostile characters, or wholly
/// percent-encoded (then the literal appears only if something decodes it and shows it).
fn secret(rng: &mut Rng, around: &[&str]) -> String {
    let canary = format!("{CANARY}{}", rng.next_u64() % 1_000_000_000);
    if rng.chance(4) {
        canary.bytes().map(|b| format!("%{b:02X}")).collect()
    } else {
        format!("{}{canary}{}", rng.pick(around), rng.pick(around))
    }
}

fn hostile_url(rng: &mut Rng) -> String {
    let scheme = if rng.chance(16) {
        rng.pick(ODD_SCHEMES)
    } else {
        let registration = rng.pick(REGISTRATIONS);
        rng.pick(registration.schemes)
    };
    let mut url = format!("{scheme}://");
    if !rng.chance(4) {
        url.push_str(rng.pick(USERS));
        url.push(':');
        url.push_str(&secret(rng, AROUND));
        url.push('@');
    }
    for i in 0..1 + usize::from(rng.chance(4)) * rng.below(3) {
        if i > 0 {
            url.push(',');
        }
        if rng.chance(32) {
            url.push_str(&"a".repeat(rng.below(300)));
        } else {
            url.push_str(rng.pick(HOSTS));
        }
        url.push_str(rng.pick(PORTS));
    }
    url.push_str(rng.pick(PATHS));
    for i in 0..rng.below(5) {
        url.push(if i == 0 { '?' } else { '&' });
        if rng.chance(3) {
            url.push_str(rng.pick(SECRET_OPTIONS));
            url.push('=');
            url.push_str(&secret(rng, AROUND_QUERY));
        } else {
            url.push_str(rng.pick(OPTIONS));
            if !rng.chance(8) {
                url.push('=');
                url.push_str(rng.pick(VALUES));
            }
        }
    }
    if rng.chance(8) {
        url.push_str(rng.pick(FRAGMENTS));
    }
    url
}

/// An error's Display, Debug and every source's Display.
fn error_texts(error: &Error) -> Vec<(&'static str, String)> {
    let mut texts = vec![
        ("error", error.to_string()),
        ("error Debug", format!("{error:?}")),
    ];
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        texts.push(("error source", inner.to_string()));
        source = inner.source();
    }
    texts
}

/// The options a scheme's driver reads from `url`, shown (`None`: no driver built for it).
fn options_shown(url: &Url) -> Option<crate::Result<String>> {
    Some(match url.scheme() {
        "memory" => MemoryOptions::from_url(url).map(|o| format!("{o:?}")),
        #[cfg(feature = "file")]
        "file" => crate::drivers::file::FileOptions::from_url(url).map(|o| format!("{o:?}")),
        #[cfg(feature = "redis")]
        "redis" | "rediss" => {
            crate::drivers::redis::RedisOptions::from_url(url).map(|o| format!("{o:?}"))
        }
        #[cfg(feature = "memcached")]
        "memcached" => {
            crate::drivers::memcached::MemcachedOptions::from_url(url).map(|o| format!("{o:?}"))
        }
        #[cfg(feature = "etcd")]
        "etcd3+http" | "etcd3+https" | "etcd" => {
            crate::drivers::etcd::EtcdOptions::from_url(url).map(|o| format!("{o:?}"))
        }
        #[cfg(feature = "zookeeper")]
        "zookeeper" | "kazoo" => {
            crate::drivers::zookeeper::ZookeeperOptions::from_url(url).map(|o| format!("{o:?}"))
        }
        #[cfg(feature = "postgres")]
        "postgresql" | "postgres" => {
            crate::drivers::postgres::PostgresOptions::from_url(url).map(|o| format!("{o:?}"))
        }
        #[cfg(feature = "mysql")]
        "mysql" => crate::drivers::mysql::MysqlOptions::from_url(url).map(|o| format!("{o:?}")),
        _ => return None,
    })
}

/// Everything a URL can be shown through without a server: the redaction itself, the
/// backend `open` builds (it only reads options: no connection is made before `start`) or
/// its error, a builder's Debug, the driver's options; and for `memory://`, where nothing is
/// remote, a whole connect and stop (`runtime` given), for the log lines they write.
fn check_url(tally: &mut Tally, url: &str, runtime: Option<&tokio::runtime::Runtime>) {
    let mut shown = vec![("redacted", redact_str(url))];
    match crate::scheme::open(url, &MemberId::from("m")) {
        Ok(backend) => shown.push(("backend Debug", format!("{backend:?}"))),
        Err(e) => shown.extend(error_texts(&e)),
    }
    shown.push((
        "builder Debug",
        format!("{:?}", Coordinator::builder(url, "m")),
    ));
    if let Ok(parsed) = Url::parse(&split_host_list(url)) {
        match options_shown(&parsed) {
            Some(Ok(options)) => shown.push(("options Debug", options)),
            Some(Err(e)) => shown.extend(error_texts(&e)),
            None => {}
        }
        // (A `latency` would make the connect sleep; no option pool holds it, but be sure.)
        if let Some(runtime) = runtime
            && parsed.scheme() == "memory"
            && MemoryOptions::from_url(&parsed).is_ok_and(|o| o.latency.is_zero())
        {
            let connect = async {
                let coordinator = Coordinator::builder(url, "m")
                    .operation_timeout(Duration::from_secs(5))
                    .connect()
                    .await?;
                let debug = format!("{coordinator:?}");
                coordinator.stop().await?;
                Ok::<_, Error>(debug)
            };
            // (The timer is made inside the runtime: outside, there is none to make it on.)
            let outcome = runtime
                .block_on(async { tokio::time::timeout(Duration::from_secs(10), connect).await });
            match outcome {
                Ok(Ok(debug)) => shown.push(("coordinator Debug", debug)),
                Ok(Err(e)) => shown.extend(error_texts(&e)),
                Err(_) => tally.note(format!("connecting to {url:?} timed out (not counted)")),
            }
        }
    }
    for (what, text) in shown {
        if shows_canary(&text) {
            tally.leak(format!("{what} of {url:?}: {text}"));
        }
    }
}

/// Everything the log subscriber wrote.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn urls_never_show_a_password() {
    let (mut rng, seed) = setup("urls");
    let mut tally = Tally::default();
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(FmtSpan::CLOSE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime");
    tracing::subscriber::with_default(subscriber, || {
        for _ in 0..cases() {
            let url = hostile_url(&mut rng);
            // Connecting costs far more than reading a URL: one case in 32 is plenty.
            let runtime = rng.chance(32).then_some(&runtime);
            tally.case(|tally| check_url(tally, &url, runtime));
        }
    });
    drop(runtime);
    let logged = captured.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for line in String::from_utf8_lossy(&logged).lines() {
        if shows_canary(line) {
            tally.leak(format!("log line: {line}"));
        }
    }
    tally.finish("urls", seed);
}
