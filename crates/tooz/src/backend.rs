//! The backend contract: what a driver must decide, and nothing it need not.
//!
//! A [`Backend`] is one coordinator's connection to one coordination service. Everything that
//! can be written once — waiting for a lock with a timeout, heartbeating, loss signals,
//! watching groups, `join_group_create`, the partitioner — lives in [`crate::Coordinator`],
//! which holds the backend. Optional families ([`Groups`], [`Elections`]) are separate traits
//! reached through accessors, so what a backend supports is answered by the type system rather
//! than a table that can drift; an operation outside them returns [`Error::Unsupported`].
//!
//! # Contract
//!
//! * Every method may be called concurrently from many tasks.
//! * No method waits without bound: a network call carries its own timeout, and the
//!   coordinator also bounds every call with its operation timeout.
//! * A lock, membership or leadership the backend can no longer vouch for is reported lost by
//!   [`Backend::heartbeat`] and is never re-taken silently.
//! * Fencing tokens returned for one lock name (or one group's leadership) strictly increase
//!   across all grants, whichever coordinator receives them.
//!
//! [`Error::Unsupported`]: crate::Error::Unsupported

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;

use crate::capabilities::Capabilities;
use crate::characteristics::Characteristics;
use crate::error::Result;
use crate::ids::{GroupId, LockName, MemberId};

pub use crate::tokens::{FencingToken, LockMode, OwnerToken};

/// A boxed future that resolves when something may have changed (a wake-up hint).
pub type ChangeHint = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// One attempt to take a lock.
#[derive(Debug, Clone, Copy)]
pub struct LockRequest<'a> {
    /// The lock.
    pub name: &'a LockName,
    /// Exclusive or shared.
    pub mode: LockMode,
    /// The grant's token; the backend stores it as the owner.
    pub owner: OwnerToken,
    /// The caller will wait if refused (a later attempt of the same `owner`). A backend that
    /// can queue waiters uses it: it may queue the request and refuse it, waking the owner
    /// through [`Backend::change_hint`] when its turn comes (`redis://`), or hold the call
    /// until the lock is granted (a kernel wait on `file://`, see
    /// [`Backend::lock_waits_block`]). A first attempt (and every `try_acquire`) has it
    /// `false`: it must not queue, and should not be granted ahead of queued waiters.
    pub wait: bool,
}

/// What a coordinator holds, handed to [`Backend::heartbeat`] so that the backend can renew
/// (or check) all of it in as few round trips as it can. Every entry carries the owner token
/// of its grant, and losses are reported by that token: a membership left and joined again
/// while a heartbeat was in flight is a new grant, which the old one's loss never touches.
#[derive(Debug, Default, Clone)]
pub struct Held {
    /// Locks held: name and the grant's owner token.
    pub locks: Vec<(LockName, OwnerToken)>,
    /// Groups this coordinator has joined, with the membership's owner token.
    pub memberships: Vec<(GroupId, OwnerToken)>,
    /// Groups this coordinator leads, with the leadership grant's owner token.
    pub leaderships: Vec<(GroupId, OwnerToken)>,
}

/// What a heartbeat found out.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct BeatReport {
    /// The backend's session had already expired and a new one began: nothing in the
    /// heartbeat's [`Held`] survives (every lock, membership and leadership in it is lost).
    pub session_restarted: bool,
    /// Locks found no longer held by their owner token.
    pub lost_locks: Vec<OwnerToken>,
    /// Memberships (by owner token) found gone from their group.
    pub lost_memberships: Vec<OwnerToken>,
    /// Leaderships (by owner token) found no longer held.
    pub lost_leaderships: Vec<OwnerToken>,
}

/// What a wake-up hint is about.
#[derive(Debug, Clone, Copy)]
pub enum Topic<'a> {
    /// A lock may have been released, for this waiting owner (so that a backend with a queue
    /// can wake only the waiter whose turn it is).
    Lock(&'a LockName, OwnerToken),
    /// A group's membership may have changed.
    Group(&'a GroupId),
    /// A group's leadership may have changed.
    Leader(&'a GroupId),
}

/// One coordinator's connection to a coordination service.
#[async_trait]
pub trait Backend: fmt::Debug + Send + Sync + 'static {
    /// Short name, as in URLs and errors (`"memory"`, `"file"`, `"redis"`).
    fn name(&self) -> &'static str;

    /// The guarantees this backend gives, as tooz declares them.
    fn characteristics(&self) -> Characteristics;

    /// How long the backend keeps a member alive without a heartbeat. The coordinator
    /// heartbeats well within it and treats its memberships as lost locally before it runs
    /// out, counting from when the renewing request was sent.
    fn membership_timeout(&self) -> Duration;

    /// How long a lock or leadership lives on the backend without renewal, counted from when
    /// the request that took or renewed it was sent; `None` if grants do not depend on
    /// heartbeats at all (the kernel or a connection holds them, as on `file://`). The
    /// coordinator reports a grant lost locally before this runs out. Default: the
    /// membership timeout.
    fn grant_timeout(&self) -> Option<Duration> {
        Some(self.membership_timeout())
    }

    /// Connects and establishes this member's session.
    async fn start(&self) -> Result<()>;

    /// Keeps the session alive and renews or checks everything in `held`.
    async fn heartbeat(&self, held: &Held) -> Result<BeatReport>;

    /// Ends the session (the coordinator has already released what it held).
    async fn stop(&self) -> Result<()>;

    /// One non-blocking attempt to take a lock: `Some(token)` if granted, `None` if held
    /// elsewhere (including by another grant of this same coordinator: locks are not
    /// re-entrant).
    async fn try_acquire(&self, request: LockRequest<'_>) -> Result<Option<FencingToken>>;

    /// Releases the grant `owner` of lock `name`; `false` if that grant no longer held it.
    async fn release(&self, name: &LockName, owner: OwnerToken) -> Result<bool>;

    /// Whether a waiting request ([`LockRequest::wait`]) is held until granted, in the kernel
    /// or on the server, rather than answered at once: the coordinator then bounds it by the
    /// caller's deadline instead of the operation timeout, and a caller that gives up leaves
    /// it to finish in the background, handing back what it took.
    fn lock_waits_block(&self) -> bool {
        false
    }

    /// The waiting owner `owner` of lock `name` gives up (its deadline passed, it was
    /// cancelled, or it failed): a backend that queued it takes it off the queue, so that
    /// nobody waits behind it. Best effort; a queued entry must also expire on its own.
    async fn stop_waiting(&self, _name: &LockName, _owner: OwnerToken) -> Result<()> {
        Ok(())
    }

    /// Whether [`LockMode::Shared`] is offered; if not, shared requests get `Unsupported`.
    fn supports_shared_locks(&self) -> bool {
        false
    }

    /// A future that resolves when `topic` may have changed, for backends that can push
    /// (a notification, a watch). Created *before* the check it guards, so nothing is missed.
    /// `None` means the coordinator polls with jittered back-off.
    fn change_hint(&self, _topic: Topic<'_>) -> Option<ChangeHint> {
        None
    }

    /// Group membership, if offered.
    fn groups(&self) -> Option<&dyn Groups> {
        None
    }

    /// Leader election, if offered.
    fn elections(&self) -> Option<&dyn Elections> {
        None
    }
}

/// Group membership.
#[async_trait]
pub trait Groups: Send + Sync {
    /// Creates a group; `GroupAlreadyExist` if it exists.
    async fn create_group(&self, group: &GroupId) -> Result<()>;
    /// Deletes an empty group; `GroupNotCreated`, `GroupNotEmpty`.
    async fn delete_group(&self, group: &GroupId) -> Result<()>;
    /// Every group.
    async fn list_groups(&self) -> Result<Vec<GroupId>>;
    /// Joins this member to a group; `GroupNotCreated`, `MemberAlreadyExist`.
    async fn join(&self, group: &GroupId, capabilities: &Capabilities) -> Result<()>;
    /// Leaves a group; `GroupNotCreated` or `MemberNotJoined`.
    async fn leave(&self, group: &GroupId) -> Result<()>;
    /// The live members with their capabilities, in one call; `GroupNotCreated`. A member
    /// whose stored data cannot be decoded is skipped (and logged), not fatal.
    async fn members(&self, group: &GroupId) -> Result<Vec<(MemberId, Capabilities)>>;
    /// The live members' ids only; backends that can list ids more cheaply than ids with
    /// capabilities (reading less) override this.
    async fn member_ids(&self, group: &GroupId) -> Result<Vec<MemberId>> {
        Ok(self
            .members(group)
            .await?
            .into_iter()
            .map(|(id, _)| id)
            .collect())
    }

    /// One member's capabilities; `GroupNotCreated` or `MemberNotJoined`.
    async fn member_capabilities(&self, group: &GroupId, member: &MemberId)
    -> Result<Capabilities>;
    /// Replaces this member's capabilities; `GroupNotCreated` or `MemberNotJoined`.
    async fn update_capabilities(&self, group: &GroupId, capabilities: &Capabilities)
    -> Result<()>;
}

/// Leader election, one leader per group.
#[async_trait]
pub trait Elections: Send + Sync {
    /// One non-blocking attempt to become the group's leader.
    async fn try_lead(&self, group: &GroupId, owner: OwnerToken) -> Result<Option<FencingToken>>;
    /// Gives up the leadership grant `owner`; `false` if it was no longer held.
    async fn resign(&self, group: &GroupId, owner: OwnerToken) -> Result<bool>;
    /// The current leader, if any.
    async fn leader(&self, group: &GroupId) -> Result<Option<MemberId>>;
}
