//! Where things live in etcd: Python tooz's keys (groups, members, locks), and under a prefix
//! tooz never reads, what it has no key for (leaders).
//!
//! A group is the key `tooz/groups/<group>/` (no lease, its own bytes as value), a member
//! `tooz/groups/<group>/<member>` (msgpack capabilities, on the member's lease), a lock
//! `/tooz/locks<name>` (on the holder's lease). Python lists groups by cutting the last byte
//! off every key under `tooz/groups/` (members too), and members by everything under a group's
//! key (a group `a/b` too); ours tell them apart: a group key has no lease and ends in `/`, a
//! member key has a lease and no `/` after its group's key (member ids with `/` are refused).

pub(super) const GROUPS: &[u8] = b"tooz/groups/";
const LOCKS: &[u8] = b"/tooz/locks";
const LEADERS: &[u8] = b"tooz-rs/leaders/";
const QUEUES: &[u8] = b"tooz-rs/queue/";

/// `tooz/groups/<group>/`.
pub(crate) fn group(group: &[u8]) -> Vec<u8> {
    [GROUPS, group, b"/"].concat()
}

/// `tooz/groups/<group>/<member>`.
pub(crate) fn member(group: &[u8], member: &[u8]) -> Vec<u8> {
    [GROUPS, group, b"/", member].concat()
}

/// `/tooz/locks<name>`.
pub(crate) fn lock(name: &[u8]) -> Vec<u8> {
    [LOCKS, name].concat()
}

/// `tooz-rs/leaders/<group>` (tooz's etcd driver has no elections).
pub(crate) fn leader(group: &[u8]) -> Vec<u8> {
    [LEADERS, group].concat()
}

/// `tooz-rs/queue/<name in hex>/`: the prefix of lock `name`'s waiters (hex, so that no
/// name's prefix holds another's: `a/` would hold the queue of `a/b`).
pub(crate) fn queue(name: &[u8]) -> Vec<u8> {
    let mut key = QUEUES.to_vec();
    for b in name {
        key.extend_from_slice(format!("{b:02x}").as_bytes());
    }
    key.push(b'/');
    key
}

/// The queue key of waiter `owner` of lock `name`.
pub(crate) fn queued(name: &[u8], owner: u128) -> Vec<u8> {
    [queue(name), format!("{owner:032x}").into_bytes()].concat()
}

/// The group named by a key under [`GROUPS`] that is a group's key (no lease, ends in `/`).
pub(crate) fn group_of_key(key: &[u8], lease: i64) -> Option<&[u8]> {
    let rest = key.strip_prefix(GROUPS)?;
    let name = rest.strip_suffix(b"/")?;
    (lease == 0 && !name.is_empty()).then_some(name)
}

/// The member named by a key under `group`'s key that is a member's key (a lease, no `/`).
pub(crate) fn member_of_key<'k>(group_key: &[u8], key: &'k [u8], lease: i64) -> Option<&'k [u8]> {
    let name = key.strip_prefix(group_key)?;
    (lease != 0 && !name.is_empty() && !name.contains(&b'/')).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_queue_prefix_holds_another_lock_s_queue() {
        assert_eq!(queue(b"a"), b"tooz-rs/queue/61/");
        assert_eq!(
            queued(b"a", 0xab),
            format!("tooz-rs/queue/61/{:032x}", 0xab).into_bytes()
        );
        for (a, b) in [
            (&b"a"[..], &b"a/b"[..]),
            (b"a", b"ab"),
            (b"", b"/"),
            (b"a/", b"a"),
        ] {
            assert!(!queue(b).starts_with(&queue(a)), "{a:?} {b:?}");
            assert!(!queue(a).starts_with(&queue(b)), "{a:?} {b:?}");
        }
    }

    #[test]
    fn python_layout_and_listing_fixed() {
        assert_eq!(group(b"g1"), b"tooz/groups/g1/");
        assert_eq!(member(b"g1", b"m"), b"tooz/groups/g1/m");
        assert_eq!(lock(b"mylock"), b"/tooz/locksmylock");
        assert_eq!(group_of_key(b"tooz/groups/g1/", 0), Some(&b"g1"[..]));
        assert_eq!(group_of_key(b"tooz/groups/g1/m", 7), None);
        assert_eq!(group_of_key(b"tooz/groups/a/b/", 0), Some(&b"a/b"[..]));
        let a = group(b"a");
        assert_eq!(member_of_key(&a, b"tooz/groups/a/m", 7), Some(&b"m"[..]));
        assert_eq!(member_of_key(&a, b"tooz/groups/a/b/", 0), None);
        assert_eq!(member_of_key(&a, b"tooz/groups/a/b/m", 7), None);
        assert_eq!(member_of_key(&a, b"tooz/groups/a/", 0), None);
    }
}
