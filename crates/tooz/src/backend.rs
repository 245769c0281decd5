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
//! * Losses are reported by owner token: from [`Backend::heartbeat`] in its [`BeatReport`],
//!   or at once through the [`Losses`] handed to [`Backend::start`].
//!
//! # Writing a backend
//!
//! A driver imports this module and the plain values beneath it (ids, errors, capabilities,
//! characteristics, tokens, URL options), never the coordinator: `tests/layering.rs` holds
//! every module of the crate to that. Every driver is a folder with the same files —
//! `mod.rs` (start, heartbeat, stop), `options.rs` (the options table on the options type),
//! `locks.rs`, `groups.rs`, `election.rs`, and `error.rs` where a client library's errors
//! must be sorted into `Connection` and `Backend` — and the `memory` driver
//! (`src/drivers/memory/`) is the reference to copy: every operation, each in a few lines
//! over one in-process store, with queued waiters and session expiry as a server would have
//! them. Then:
//!
//! 1. **Register it**: one row in the table of `scheme.rs` (schemes, cargo feature, status,
//!    opener), one cargo feature, a row in the URL tables of the crate docs and the README
//!    (`tests/registrations.rs` checks them against the table).
//! 2. **Options** with tooz's names and defaults, parsed by [`crate::options::UrlOptions`]
//!    (unknown options are listed in the error; passwords are redacted everywhere).
//! 3. **Layout**: Python tooz 9.1.0's keys, paths or tables (research/tooz.md §2), so that
//!    Python and Rust share a server; what you add goes under a prefix tooz never reads, and
//!    names are mapped to keys injectively (refuse what cannot be, with `InvalidName`).
//! 4. **Liveness**: say in [`Started`] how long members and grants live without a heartbeat
//!    (what the server settled, if it negotiates); renew in [`Backend::heartbeat`] and report
//!    what is gone; push what you learn between heartbeats through [`Losses`]. The
//!    coordinator's local deadlines run out first; never resume a session the server ended.
//! 5. **Locks**: a fencing token from the server's own order in the same atomic step as the
//!    grant; release and renewal compare the owner token; waiters queued or woken by the
//!    server ([`LockRequest::wait`], [`Backend::change_hint`], [`Backend::stop_waiting`]).
//! 6. **Groups and elections** through [`Groups`] and [`Elections`], one msgpack codec
//!    ([`Capabilities`]), watches pushed where the server can push.
//! 7. **Tests**: the conformance suite (add the URL to `TOOZ_TEST_URLS`; a driver outside
//!    this crate runs it with the `tooz-testkit` crate and [`crate::OpenBackend`]), interop with Python
//!    tooz on the same server, a restart, a partition through the fault proxy
//!    (`tests/support/fault_proxy.rs`), a killed connection, bad input; `scripts/backends`
//!    installs and starts the server on 127.0.0.1; `scripts/bench NAME` prints ours, Python
//!    tooz's and the raw client's figures (DESIGN.md §7 is the full checklist).
//!
//! The smallest backend that works — one exclusive lock table, in process, no groups:
//!
//! ```
//! use std::collections::HashMap;
//! use std::sync::Mutex;
//! use std::time::Duration;
//!
//! use async_trait::async_trait;
//! use tooz::backend::{
//!     Backend, BeatReport, FencingToken, Held, LockRequest, Losses, OwnerToken, Started,
//! };
//! use tooz::{Characteristics, LockName};
//!
//! #[derive(Debug, Default)]
//! struct Tiny {
//!     /// Holder and last token per lock.
//!     locks: Mutex<HashMap<LockName, (Option<OwnerToken>, u64)>>,
//! }
//!
//! #[async_trait]
//! impl Backend for Tiny {
//!     fn name(&self) -> &'static str {
//!         "tiny"
//!     }
//!     async fn start(&self, _losses: Losses) -> tooz::Result<Started> {
//!         // Nothing expires here: grants do not depend on heartbeats.
//!         let started = Started::new(Duration::from_secs(10), Characteristics::new(&[]));
//!         Ok(started.with_grant_timeout(None))
//!     }
//!     async fn heartbeat(&self, _held: &Held) -> tooz::Result<BeatReport> {
//!         Ok(BeatReport::default())
//!     }
//!     async fn stop(&self) -> tooz::Result<()> {
//!         Ok(())
//!     }
//!     async fn try_acquire(&self, request: LockRequest<'_>) -> tooz::Result<Option<FencingToken>> {
//!         let mut locks = self.locks.lock().unwrap();
//!         let (holder, counter) = locks.entry(request.name.clone()).or_default();
//!         if holder.is_some() {
//!             return Ok(None);
//!         }
//!         *holder = Some(request.owner);
//!         *counter += 1;
//!         Ok(Some(FencingToken::new(*counter)))
//!     }
//!     async fn release(&self, name: &LockName, owner: OwnerToken) -> tooz::Result<bool> {
//!         let mut locks = self.locks.lock().unwrap();
//!         match locks.get_mut(name) {
//!             Some((holder, _)) if *holder == Some(owner) => {
//!                 *holder = None;
//!                 Ok(true)
//!             }
//!             _ => Ok(false),
//!         }
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> tooz::Result<()> {
//! let coord = tooz::Coordinator::from_backend(Box::new(Tiny::default()), "me").await?;
//! let guard = coord.lock("l").acquire().await?;
//! assert_eq!(guard.token().get(), 1);
//! assert!(coord.lock("l").try_acquire().await?.is_none(), "not re-entrant");
//! guard.release().await?;
//! // No groups: answered, not panicked.
//! assert!(coord.members("g").await.unwrap_err().is_unsupported());
//! coord.stop().await
//! # }
//! ```
//!
//! [`Error::Unsupported`]: crate::Error::Unsupported
//! [`Capabilities`]: crate::Capabilities

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
    /// The caller will wait if refused (and try again as the same `owner`). A backend that
    /// can queue waiters uses it: it may queue the request and refuse it, waking the owner
    /// through [`Backend::change_hint`] when its turn comes (`redis://`), or hold the call
    /// until the lock is granted (a kernel wait on `file://`, see
    /// [`Started::lock_waits_block`]). `try_acquire` has it `false`: it must not queue.
    /// Either way a request is not granted ahead of queued waiters. A backend may also grant
    /// a queued owner between its attempts (hand the lock over on release, as `redis://`
    /// does) and answer its next attempt with that grant: the coordinator counts such a
    /// grant's lease from the previous attempt's send time, which preceded it.
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

/// What a backend reports once connected: what only the connection settles (ZooKeeper
/// negotiates its session timeout at connect, for one), in one value.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Started {
    /// How long the backend keeps a member alive without a heartbeat. The coordinator
    /// heartbeats well within it and treats its memberships as lost locally before it runs
    /// out, counting from when the renewing request was sent.
    pub membership_timeout: Duration,
    /// How long a lock or leadership lives on the backend without renewal, counted from when
    /// the request that took or renewed it was sent; `None` if grants do not depend on
    /// heartbeats at all (the kernel or a connection holds them, as on `file://`). The
    /// coordinator reports a grant lost locally before this runs out.
    pub grant_timeout: Option<Duration>,
    /// The guarantees this backend gives, as tooz declares them.
    pub characteristics: Characteristics,
    /// Whether [`LockMode::Shared`] is offered; if not, shared requests get `Unsupported`.
    pub shared_locks: bool,
    /// Whether a waiting request ([`LockRequest::wait`]) is held until granted, in the kernel
    /// or on the server, rather than answered at once: the coordinator then bounds it by the
    /// caller's deadline instead of the operation timeout, and a caller that gives up leaves
    /// it to finish in the background, handing back what it took.
    pub lock_waits_block: bool,
    /// Whether lock waiters are served in arrival order (a queue on the server, the kernel's
    /// wait queue), so that a releaser asking again at once queues behind those already
    /// waiting. `false` where waiters poll and race (memcached, like Python tooz's drivers).
    pub lock_waits_queue: bool,
    /// Whether fencing tokens rest on data the backend keeps (a persisted counter, the
    /// server's clock, a consensus log). `false` where the counter can be evicted or lost in
    /// a restart and only a best effort carries the order on (memcached).
    pub durable_fencing: bool,
    /// Whether [`Backend::change_hint`] resolves on every change a waiter waits for, however
    /// it came about — a release, a holder's session expiring, a leader resigning (a
    /// ZooKeeper watch or an etcd watch sees a key or node deleted, whatever deleted it). A
    /// waiter then looks again only when woken (and rarely, as a safeguard), instead of also
    /// polling every half second for what the hint might miss.
    pub complete_hints: bool,
    /// Whether a lock may be granted to a queued owner between its attempts and delivered by
    /// the next one (a hand-off on release, as on `redis://`): the coordinator then counts the
    /// grant's lease from the previous attempt's send. `false` where only the attempt that
    /// answers grants (or its request renews what the grant lives on, as a ZooKeeper session):
    /// the lease counts from that attempt, however long the wait before it.
    pub grants_between_attempts: bool,
}

impl Started {
    /// A session whose members and grants live `timeout` without a heartbeat, with only
    /// exclusive locks answered at once; adjust with the `with_*` methods.
    pub fn new(timeout: Duration, characteristics: Characteristics) -> Self {
        Self {
            membership_timeout: timeout,
            grant_timeout: Some(timeout),
            characteristics,
            shared_locks: false,
            lock_waits_block: false,
            lock_waits_queue: false,
            durable_fencing: true,
            complete_hints: false,
            grants_between_attempts: true,
        }
    }

    /// Grants live this long without renewal (`None`: they do not depend on heartbeats).
    pub fn with_grant_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.grant_timeout = timeout;
        self
    }

    /// Shared locks are offered.
    pub fn with_shared_locks(mut self, offered: bool) -> Self {
        self.shared_locks = offered;
        self
    }

    /// Fencing tokens are a best effort (see [`Started::durable_fencing`]).
    pub fn with_best_effort_fencing(mut self) -> Self {
        self.durable_fencing = false;
        self
    }

    /// Lock waiters are served in arrival order (see [`Started::lock_waits_queue`]).
    pub fn with_queued_lock_waits(mut self) -> Self {
        self.lock_waits_queue = true;
        self
    }

    /// Change hints see every change (see [`Started::complete_hints`]).
    pub fn with_complete_hints(mut self) -> Self {
        self.complete_hints = true;
        self
    }

    /// Locks are granted only by the attempt that answers (see
    /// [`Started::grants_between_attempts`]).
    pub fn with_grants_only_in_attempts(mut self) -> Self {
        self.grants_between_attempts = false;
        self
    }

    /// Waiting lock requests are held until granted (see [`Started::lock_waits_block`]).
    pub fn with_blocking_lock_waits(mut self) -> Self {
        self.lock_waits_block = true;
        self
    }
}

/// What a backend learned is lost, reported the moment it knows (see [`Losses`]).
#[derive(Debug)]
#[non_exhaustive]
pub enum Loss {
    /// The backend's session ended (ZooKeeper's expired, etcd's lease was revoked): every
    /// membership, lock and leadership taken under it is lost.
    SessionEnded,
    /// These grants (by owner token: locks, leaderships, memberships) are lost.
    Grants(Vec<OwnerToken>),
}

/// Where a backend pushes a loss as soon as it learns of it (a session expiry announced by
/// the server, a watch that saw our key deleted), instead of waiting for the next heartbeat.
/// Cheap to clone; reports after the coordinator is gone are ignored.
#[derive(Debug, Clone)]
pub struct Losses(tokio::sync::mpsc::UnboundedSender<Loss>);

impl Losses {
    /// A reporter and the receiving end the coordinator reads.
    pub(crate) fn channel() -> (Self, tokio::sync::mpsc::UnboundedReceiver<Loss>) {
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        (Self(sender), receiver)
    }

    /// Reports that the backend session ended.
    pub fn session_ended(&self) {
        let _ = self.0.send(Loss::SessionEnded);
    }

    /// Reports these grants lost.
    pub fn grants_lost(&self, owners: Vec<OwnerToken>) {
        if !owners.is_empty() {
            let _ = self.0.send(Loss::Grants(owners));
        }
    }
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

    /// Connects and establishes this member's session; says what the connection settled.
    /// `losses` is where to report, at any time, what the backend learns is lost.
    ///
    /// # Errors
    /// `Connection` if the service cannot be reached (or the handshake times out);
    /// `Backend` if what answers is not the service, or refuses us (bad credentials);
    /// `InvalidName` if our member id cannot be stored.
    async fn start(&self, losses: Losses) -> Result<Started>;

    /// Keeps the session alive and renews or checks everything in `held`. A session that
    /// the backend had already ended is reported (and a new one begun), never silently
    /// resumed.
    ///
    /// # Errors
    /// `Connection` when the service does not answer: the coordinator retries, and reports
    /// losses at its local deadlines meanwhile.
    async fn heartbeat(&self, held: &Held) -> Result<BeatReport>;

    /// Ends the session (the coordinator has already released what it held).
    ///
    /// # Errors
    /// `Connection`: what was held then expires on the backend by its own timeout.
    async fn stop(&self) -> Result<()>;

    /// One attempt to take a lock: `Some(token)` if granted, `None` if held elsewhere
    /// (including by another grant of this same coordinator: locks are not re-entrant), or
    /// if waiters queued before this request come first.
    ///
    /// # Errors
    /// `InvalidName` for a name this backend cannot store; `Unsupported` for a shared
    /// request where shared locks are not offered; `Connection` (the outcome is then unknown:
    /// the coordinator hands back a grant it may have been given, by owner token).
    async fn try_acquire(&self, request: LockRequest<'_>) -> Result<Option<FencingToken>>;

    /// Releases the grant `owner` of lock `name`; `false` if that grant no longer held it.
    /// Must never release another owner's grant.
    ///
    /// # Errors
    /// `Connection`: the grant then expires on the backend by its own timeout.
    async fn release(&self, name: &LockName, owner: OwnerToken) -> Result<bool>;

    /// The waiting owner `owner` of lock `name` gives up (its deadline passed, it was
    /// cancelled, or it failed): a backend that queued it takes it off the queue, so that
    /// nobody waits behind it. Best effort; a queued entry must also expire on its own.
    ///
    /// # Errors
    /// `Connection`: the queue entry then expires by itself.
    async fn stop_waiting(&self, _name: &LockName, _owner: OwnerToken) -> Result<()> {
        Ok(())
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
