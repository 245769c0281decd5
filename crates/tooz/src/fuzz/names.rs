//! Names into every backend's keys and paths: no two different (kind, name) pairs may share a
//! key, no name may escape its namespace or directory, and a name written in a record (the
//! file backend's) reads back as itself.

use super::*;

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
