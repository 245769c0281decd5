//! tooz's Redis key layout, and the names that would make two kinds of key collide.
//!
//! tooz 9.1.0 builds `NS_groups`, `NS_group:<g>`, `NS_beats:<m>`, `NS_<lock>_lock` and the
//! election lock `NS_leader_of_<g>_lock` (NS defaults to `_tooz`). We must use the same keys to
//! interoperate, so instead of encoding names we refuse the few that would land on another
//! kind's key (reliability.md §3.2): a lock `group:x` is the group `x_lock`, a lock `beats:m`
//! is the heartbeat of member `m_lock`, a lock `leader_of_g` is group g's election.
//!
//! What tooz has no notion of (fencing counters, leader names, the release channel) lives
//! under `NS:rs:` — tooz's keys always continue the namespace with `_`, so none can be there.

use crate::error::{Error, Result};
use crate::ids::{GroupId, LockName, MemberId, display_name};

/// The field tooz keeps in every group hash so that an empty group still exists.
pub(crate) const CREATED_FIELD: &[u8] = b"__created__";

#[derive(Debug, Clone)]
pub(crate) struct Keys {
    ns: Vec<u8>,
}

fn join(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

impl Keys {
    pub(crate) fn new(namespace: &str) -> Self {
        Self {
            ns: namespace.as_bytes().to_vec(),
        }
    }

    pub(crate) fn groups(&self) -> Vec<u8> {
        join(&[&self.ns, b"_groups"])
    }

    pub(crate) fn group(&self, group: &GroupId) -> Vec<u8> {
        join(&[&self.ns, b"_group:", group.as_bytes()])
    }

    /// The prefix of heartbeat keys; a member's is this plus its id.
    pub(crate) fn beats_prefix(&self) -> Vec<u8> {
        join(&[&self.ns, b"_beats:"])
    }

    pub(crate) fn beat(&self, member: &MemberId) -> Vec<u8> {
        join(&[&self.beats_prefix(), member.as_bytes()])
    }

    pub(crate) fn lock(&self, name: &LockName) -> Vec<u8> {
        join(&[&self.ns, b"_", name.as_bytes(), b"_lock"])
    }

    pub(crate) fn leader_lock(&self, group: &GroupId) -> Vec<u8> {
        join(&[&self.ns, b"_leader_of_", group.as_bytes(), b"_lock"])
    }

    pub(crate) fn fence(&self, name: &LockName) -> Vec<u8> {
        join(&[&self.ns, b":rs:fence:", name.as_bytes()])
    }

    /// Waiters for a lock, in arrival order (a sorted set of owner tokens).
    pub(crate) fn queue(&self, name: &LockName) -> Vec<u8> {
        join(&[&self.ns, b":rs:queue:", name.as_bytes()])
    }

    /// Until when each queued waiter counts as alive (a hash: owner token → server ms).
    pub(crate) fn waiting(&self, name: &LockName) -> Vec<u8> {
        join(&[&self.ns, b":rs:waiting:", name.as_bytes()])
    }

    pub(crate) fn leader_fence(&self, group: &GroupId) -> Vec<u8> {
        join(&[&self.ns, b":rs:leader-fence:", group.as_bytes()])
    }

    pub(crate) fn leader_name(&self, group: &GroupId) -> Vec<u8> {
        join(&[&self.ns, b":rs:leader:", group.as_bytes()])
    }

    /// The channel on which releases and membership changes are announced.
    pub(crate) fn events(&self) -> Vec<u8> {
        join(&[&self.ns, b":rs:events"])
    }

    /// The prefix of every coordinator's own channel, on which it hears the grants handed to
    /// its waiters (the coordinator's id follows).
    pub(crate) fn grants_prefix(&self) -> Vec<u8> {
        join(&[&self.ns, b":rs:grants:"])
    }
}

fn refuse(kind: &'static str, name: &[u8], reason: &str) -> Error {
    Error::InvalidName {
        kind,
        name: display_name(name),
        reason: format!("{reason} in tooz's Redis layout; choose another name"),
    }
}

pub(crate) fn check_lock(name: &LockName) -> Result<()> {
    let bytes = name.as_bytes();
    for (prefix, what) in [
        (
            &b"group:"[..],
            "its key would be the key of a group whose name ends in '_lock'",
        ),
        (
            b"beats:",
            "its key would be the heartbeat key of a member whose id ends in '_lock'",
        ),
        (b"leader_of_", "it would be the election lock of a group"),
    ] {
        if bytes.starts_with(prefix) {
            return Err(refuse("lock", bytes, what));
        }
    }
    Ok(())
}

pub(crate) fn check_group(group: &GroupId) -> Result<()> {
    if group.as_bytes().ends_with(b"_lock") {
        return Err(refuse(
            "group",
            group.as_bytes(),
            "its key would be the key of a lock named 'group:...'",
        ));
    }
    Ok(())
}

pub(crate) fn check_member(member: &MemberId) -> Result<()> {
    let bytes = member.as_bytes();
    if bytes == CREATED_FIELD {
        return Err(refuse(
            "member",
            bytes,
            "it is the marker field of every group hash",
        ));
    }
    if bytes.ends_with(b"_lock") {
        return Err(refuse(
            "member",
            bytes,
            "its heartbeat key would be the key of a lock named 'beats:...'",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_tooz() {
        let k = Keys::new("_tooz");
        assert_eq!(k.groups(), b"_tooz_groups");
        assert_eq!(k.group(&"g1".into()), b"_tooz_group:g1");
        assert_eq!(k.beat(&"member-1".into()), b"_tooz_beats:member-1");
        assert_eq!(k.lock(&"mylock".into()), b"_tooz_mylock_lock");
        assert_eq!(k.leader_lock(&"g".into()), b"_tooz_leader_of_g_lock");
    }

    #[test]
    fn colliding_names_are_refused_on_every_side() {
        assert!(check_lock(&"group:x".into()).is_err());
        assert!(check_group(&"x_lock".into()).is_err());
        assert!(check_lock(&"beats:m".into()).is_err());
        assert!(check_member(&"m_lock".into()).is_err());
        assert!(check_lock(&"leader_of_g".into()).is_err());
        assert!(check_member(&"__created__".into()).is_err());
        check_lock(&"groups".into()).unwrap();
        check_lock(&"my:group:x".into()).unwrap();
        check_group(&"locks".into()).unwrap();
    }

    #[test]
    fn our_keys_never_meet_toozs() {
        // Every tooz key continues the namespace with '_', every one of ours with ':'.
        let k = Keys::new("_tooz");
        for ours in [
            k.fence(&"x".into()),
            k.leader_fence(&"x".into()),
            k.leader_name(&"x".into()),
            k.queue(&"x".into()),
            k.waiting(&"x".into()),
            k.events(),
        ] {
            assert!(ours.starts_with(b"_tooz:rs:"));
        }
        assert_ne!(k.fence(&"a".into()), k.leader_fence(&"a".into()));
    }
}
