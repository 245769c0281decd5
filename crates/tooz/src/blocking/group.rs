//! Blocking group handles: [`Membership`], [`GroupWatch`] and [`Partitioner`].

use std::sync::Arc;
use std::time::Duration;

use super::runtime::Runtime;
use crate::error::{Error, Result};
use crate::{GroupEvent, GroupId, HashRing, MemberId, PartitionKey};

/// Being a member of a group, returned by
/// [`Coordinator::join_group`](super::Coordinator::join_group). Unlike a lock guard, dropping
/// it does not leave the group (tooz's memberships last until `leave_group` or `stop`).
#[derive(Debug)]
pub struct Membership {
    membership: crate::Membership,
    runtime: Arc<Runtime>,
}

impl Membership {
    pub(super) fn new(membership: crate::Membership, runtime: Arc<Runtime>) -> Self {
        Self {
            membership,
            runtime,
        }
    }

    /// The group joined.
    pub fn group(&self) -> &GroupId {
        self.membership.group()
    }

    /// Whether we are still a member, as far as we can know without asking the backend.
    pub fn is_active(&self) -> bool {
        self.membership.is_active()
    }

    /// Waits at most `timeout` for the membership to end (timed out, removed by someone else,
    /// left, or the coordinator stopped); true if it did, at once if it already had. Inside an
    /// async runtime it cannot wait, and answers `!is_active()` at once.
    pub fn wait_lost(&self, timeout: Duration) -> bool {
        if !self.is_active() {
            return true;
        }
        self.runtime
            .wait(timeout, self.membership.lost())
            .unwrap_or_else(|| !self.is_active())
    }

    /// Leaves the group. A membership already lost is not left again:
    /// [`Error::MemberNotJoined`], and a newer membership of the same group stays untouched.
    pub fn leave(self) -> Result<()> {
        let Self {
            membership,
            runtime,
        } = self;
        runtime.call("leave", membership.leave())
    }
}

/// An iterator over a group's [`GroupEvent`]s, made by
/// [`Coordinator::watch`](super::Coordinator::watch). The group is polled on the coordinator's
/// runtime thread, so events gather between calls; polling stops when this is dropped.
///
/// [`Iterator::next`] blocks until the next event, and returns `None` once the coordinator
/// has stopped. A failed poll yields an `Err` item and watching goes on; so does a call inside
/// an async runtime, which yields
/// [`Error::BlockingInsideRuntime`] (every time: do not loop on it there).
#[derive(Debug)]
pub struct GroupWatch {
    watch: crate::GroupWatch,
    runtime: Arc<Runtime>,
}

impl GroupWatch {
    pub(super) fn new(watch: crate::GroupWatch, runtime: Arc<Runtime>) -> Self {
        Self { watch, runtime }
    }

    /// The next event if one comes within `timeout`: `Ok(None)` if none did,
    /// [`Error::Stopped`] once the coordinator has stopped, and the poll's error if one
    /// failed. An event that arrives just too late is not lost: the next call returns it.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<GroupEvent>> {
        let watch = &mut self.watch;
        let next = async move { tokio::time::timeout(timeout, watch.next()).await };
        match self.runtime.block_on("recv_timeout", next)? {
            Err(_elapsed) => Ok(None),
            Ok(Some(event)) => event.map(Some),
            Ok(None) => Err(Error::Stopped),
        }
    }
}

impl Iterator for GroupWatch {
    type Item = Result<GroupEvent>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.runtime.block_on("next", self.watch.next()) {
            Ok(event) => event,
            Err(e) => Some(Err(e)),
        }
    }
}

/// A member of a partitioned group, made by
/// [`Coordinator::join_partitioned_group`](super::Coordinator::join_partitioned_group): answers
/// which members own an object, with a ring that follows joins and leaves on the coordinator's
/// runtime thread, without the caller doing anything. Dropping it stops following the group
/// but does not leave it; [`Partitioner::leave`] does both.
#[derive(Debug)]
pub struct Partitioner {
    partitioner: crate::Partitioner,
    runtime: Arc<Runtime>,
}

impl Partitioner {
    pub(super) fn new(partitioner: crate::Partitioner, runtime: Arc<Runtime>) -> Self {
        Self {
            partitioner,
            runtime,
        }
    }

    /// The group.
    pub fn group(&self) -> &GroupId {
        self.partitioner.group()
    }

    /// A copy of the current ring.
    pub fn ring(&self) -> HashRing<MemberId> {
        self.partitioner.ring()
    }

    /// Up to `replicas` members owning `object`, primary first, skipping `ignore` (tooz
    /// `members_for_object`).
    pub fn members_for(
        &self,
        object: &(impl PartitionKey + ?Sized),
        replicas: usize,
        ignore: &[MemberId],
    ) -> Vec<MemberId> {
        self.partitioner.members_for(object, replicas, ignore)
    }

    /// Whether `member` is among the `replicas` owners of `object`.
    pub fn belongs_to_member(
        &self,
        object: &(impl PartitionKey + ?Sized),
        member: &MemberId,
        replicas: usize,
    ) -> bool {
        self.partitioner.belongs_to_member(object, member, replicas)
    }

    /// Whether this member is the owner of `object` (one replica).
    pub fn belongs_to_self(&self, object: &(impl PartitionKey + ?Sized)) -> bool {
        self.partitioner.belongs_to_self(object)
    }

    /// Brings the ring up to date now instead of at the next watch poll.
    pub fn refresh(&self) -> Result<()> {
        self.runtime.call("refresh", self.partitioner.refresh())
    }

    /// Stops following the group and leaves it (tooz `leave_partitioned_group`). Inside an
    /// async runtime: [`Error::BlockingInsideRuntime`], having stopped following but not
    /// left.
    pub fn leave(self) -> Result<()> {
        let Self {
            partitioner,
            runtime,
        } = self;
        runtime.call("leave", partitioner.leave())
    }
}
