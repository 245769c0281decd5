//! The blocking [`Coordinator`] and its builder.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::runtime::{Runtime, refuse_inside_runtime};
use super::{GroupWatch, Leadership, Lock, Membership, Partitioner};
use crate::backend::Backend;
use crate::error::Result;
use crate::{
    Capabilities, Characteristic, Characteristics, GroupId, LockName, MemberId, OpenBackend,
    Supported,
};

/// A member's connection to a coordination backend, for code without an async runtime: the
/// methods of [`crate::Coordinator`], blocking until done.
///
/// Cheap to clone; clones share one session, one heartbeat and one runtime thread (see the
/// [module docs](super)). Every blocking method returns
/// [`Error::BlockingInsideRuntime`](crate::Error::BlockingInsideRuntime) when called inside an
/// async runtime; use [`Coordinator::async_coordinator`] there. As with the async API, a
/// coordinator dropped without [`Coordinator::stop`] stops heartbeating (its runtime thread
/// ends with its last handle), and what it held expires on the backend after its timeout.
#[derive(Debug, Clone)]
pub struct Coordinator {
    // Declared before `runtime`, so dropped while the runtime still runs.
    coord: crate::Coordinator,
    runtime: Arc<Runtime>,
}

/// Configures and connects a blocking [`Coordinator`]: [`crate::CoordinatorBuilder`] with a
/// blocking [`CoordinatorBuilder::connect`].
#[derive(Debug, Clone)]
pub struct CoordinatorBuilder {
    builder: crate::CoordinatorBuilder,
}

impl CoordinatorBuilder {
    /// Heartbeat at this interval instead of a third of the backend's membership timeout.
    pub fn heartbeat_interval(self, interval: Duration) -> Self {
        Self {
            builder: self.builder.heartbeat_interval(interval),
        }
    }

    /// Do not heartbeat in the background: the caller calls [`Coordinator::heartbeat`] (as
    /// tooz's `start(start_heart=False)`). Loss signals still fire when the lease runs out.
    pub fn manual_heartbeat(self) -> Self {
        Self {
            builder: self.builder.manual_heartbeat(),
        }
    }

    /// Bound every single backend call by this duration (default 30 s); a call that takes
    /// longer fails with [`Error::OperationTimedOut`](crate::Error::OperationTimedOut).
    pub fn operation_timeout(self, timeout: Duration) -> Self {
        Self {
            builder: self.builder.operation_timeout(timeout),
        }
    }

    /// How often [`Coordinator::watch`] polls on backends that cannot push changes (1 s).
    pub fn watch_interval(self, interval: Duration) -> Self {
        Self {
            builder: self.builder.watch_interval(interval),
        }
    }

    /// Refuse a backend that does not declare all of these (tooz's `characteristics=`).
    pub fn require(self, characteristics: &[Characteristic]) -> Self {
        Self {
            builder: self.builder.require(characteristics),
        }
    }

    /// Starts the coordinator's runtime thread, then connects and starts the session and the
    /// heartbeat on it.
    pub fn connect(self) -> Result<Coordinator> {
        Coordinator::start("connect", self.builder.connect())
    }
}

impl Coordinator {
    /// Connects `member` to the backend named by `url` with default settings.
    pub fn connect(url: &str, member: impl Into<MemberId>) -> Result<Self> {
        Self::builder(url, member).connect()
    }

    /// A builder for settings beyond the URL.
    pub fn builder(url: &str, member: impl Into<MemberId>) -> CoordinatorBuilder {
        CoordinatorBuilder {
            builder: crate::Coordinator::builder(url, member),
        }
    }

    /// A builder over a backend built outside the URL table (a custom driver): `open` is
    /// called once per [`CoordinatorBuilder::connect`], with the member id.
    pub fn builder_with_backend(
        open: OpenBackend,
        member: impl Into<MemberId>,
    ) -> CoordinatorBuilder {
        CoordinatorBuilder {
            builder: crate::Coordinator::builder_with_backend(open, member),
        }
    }

    /// Starts a coordinator over a backend built outside the URL table (a custom driver).
    pub fn from_backend(backend: Box<dyn Backend>, member: impl Into<MemberId>) -> Result<Self> {
        Self::start(
            "from_backend",
            crate::Coordinator::from_backend(backend, member),
        )
    }

    /// The runtime first, so that the heartbeat task the connect spawns lands on it.
    fn start(
        operation: &'static str,
        connect: impl Future<Output = Result<crate::Coordinator>>,
    ) -> Result<Self> {
        // Before starting a thread we would only shut down again.
        refuse_inside_runtime(operation)?;
        let runtime = Arc::new(Runtime::start()?);
        let coord = runtime.call(operation, connect)?;
        Ok(Self { coord, runtime })
    }

    /// The async coordinator underneath, for code that has a runtime after all (or for what
    /// has no blocking form, such as [`crate::LockGuard::lost`]). It shares this session.
    ///
    /// Its heartbeat runs on this coordinator's runtime thread, which ends with the last
    /// blocking handle: keep one alive for as long as the async coordinator is used.
    pub fn async_coordinator(&self) -> &crate::Coordinator {
        &self.coord
    }

    /// This coordinator's member id.
    pub fn member_id(&self) -> &MemberId {
        self.coord.member_id()
    }

    /// The backend's short name (`memory`, `file`, ...).
    pub fn backend_name(&self) -> &'static str {
        self.coord.backend_name()
    }

    /// The guarantees the backend declares.
    pub fn characteristics(&self) -> Characteristics {
        self.coord.characteristics()
    }

    /// What the backend offers beyond exclusive locks.
    pub fn supported(&self) -> Supported {
        self.coord.supported()
    }

    /// How long the backend keeps this member alive without a heartbeat.
    pub fn membership_timeout(&self) -> Duration {
        self.coord.membership_timeout()
    }

    /// The least time between a loss signal firing here and the backend's own expiry of what
    /// was lost (see [`crate::Coordinator::expiry_margin`]).
    pub fn expiry_margin(&self) -> Duration {
        self.coord.expiry_margin()
    }

    /// True until [`Coordinator::stop`] (through any clone).
    pub fn is_started(&self) -> bool {
        self.coord.is_started()
    }

    /// Whether the session with the backend is known to be alive: the last heartbeat was
    /// recent enough that the backend cannot have expired it yet.
    pub fn is_live(&self) -> bool {
        self.coord.is_live()
    }

    /// Heartbeats now: renews the session and everything held. Background heartbeats call the
    /// same thing; call it yourself only with [`CoordinatorBuilder::manual_heartbeat`].
    pub fn heartbeat(&self) -> Result<()> {
        self.runtime.call("heartbeat", self.coord.heartbeat())
    }

    /// Leaves every joined group, resigns leaderships, releases locks and ends the session,
    /// for every clone. Every loss signal fires. A second call returns
    /// [`Error::Stopped`](crate::Error::Stopped).
    pub fn stop(&self) -> Result<()> {
        self.runtime.call("stop", self.coord.stop())
    }

    // ----- groups -----

    /// Creates a group; [`Error::GroupAlreadyExist`](crate::Error::GroupAlreadyExist) if it
    /// exists.
    pub fn create_group(&self, group: impl Into<GroupId>) -> Result<()> {
        self.runtime
            .call("create_group", self.coord.create_group(group))
    }

    /// Deletes an empty group.
    pub fn delete_group(&self, group: impl Into<GroupId>) -> Result<()> {
        self.runtime
            .call("delete_group", self.coord.delete_group(group))
    }

    /// Every group (tooz `get_groups`).
    pub fn groups(&self) -> Result<Vec<GroupId>> {
        self.runtime.call("groups", self.coord.groups())
    }

    /// Joins a group with capabilities (use [`Capabilities::none()`] for none).
    pub fn join_group(
        &self,
        group: impl Into<GroupId>,
        capabilities: impl Into<Capabilities>,
    ) -> Result<Membership> {
        let membership = self
            .runtime
            .call("join_group", self.coord.join_group(group, capabilities))?;
        Ok(Membership::new(membership, Arc::clone(&self.runtime)))
    }

    /// Joins a group, creating it first if needed (tooz `join_group_create`).
    pub fn join_group_create(
        &self,
        group: impl Into<GroupId>,
        capabilities: impl Into<Capabilities>,
    ) -> Result<Membership> {
        let join = self.coord.join_group_create(group, capabilities);
        let membership = self.runtime.call("join_group_create", join)?;
        Ok(Membership::new(membership, Arc::clone(&self.runtime)))
    }

    /// Leaves a group.
    pub fn leave_group(&self, group: impl Into<GroupId>) -> Result<()> {
        self.runtime
            .call("leave_group", self.coord.leave_group(group))
    }

    /// The live members of a group (tooz `get_members`).
    pub fn members(&self, group: impl Into<GroupId>) -> Result<BTreeSet<MemberId>> {
        self.runtime.call("members", self.coord.members(group))
    }

    /// The live members of a group with their capabilities, in one backend call.
    pub fn members_with_capabilities(
        &self,
        group: impl Into<GroupId>,
    ) -> Result<BTreeMap<MemberId, Capabilities>> {
        let call = self.coord.members_with_capabilities(group);
        self.runtime.call("members_with_capabilities", call)
    }

    /// One member's capabilities.
    pub fn member_capabilities(
        &self,
        group: impl Into<GroupId>,
        member: impl Into<MemberId>,
    ) -> Result<Capabilities> {
        let call = self.coord.member_capabilities(group, member);
        self.runtime.call("member_capabilities", call)
    }

    /// Replaces this member's capabilities in a group.
    pub fn update_capabilities(
        &self,
        group: impl Into<GroupId>,
        capabilities: impl Into<Capabilities>,
    ) -> Result<()> {
        let call = self.coord.update_capabilities(group, capabilities);
        self.runtime.call("update_capabilities", call)
    }

    /// An iterator over joins, leaves and leader changes in a group, starting from now
    /// (members already present are not reported). The group is polled on the runtime
    /// thread, so events gather while the caller does something else.
    pub fn watch(&self, group: impl Into<GroupId>) -> Result<GroupWatch> {
        let watch = self.runtime.call("watch", self.coord.watch(group))?;
        Ok(GroupWatch::new(watch, Arc::clone(&self.runtime)))
    }

    /// Joins (creating if needed) `group` with capabilities `{"weight": weight}` and returns a
    /// [`Partitioner`] whose ring, with `partitions` positions per unit of weight, follows the
    /// membership on the runtime thread (see [`crate::Coordinator::join_partitioned_group`]).
    pub fn join_partitioned_group(
        &self,
        group: impl Into<GroupId>,
        weight: u32,
        partitions: u32,
    ) -> Result<Partitioner> {
        let join = self.coord.join_partitioned_group(group, weight, partitions);
        let partitioner = self.runtime.call("join_partitioned_group", join)?;
        Ok(Partitioner::new(partitioner, Arc::clone(&self.runtime)))
    }

    // ----- locks -----

    /// A lock by name; nothing is taken until [`Lock::acquire`] (or a variant) is called.
    pub fn lock(&self, name: impl Into<LockName>) -> Lock {
        Lock::new(
            self.coord.lock(name),
            self.hand_back_timeout(),
            Arc::clone(&self.runtime),
        )
    }

    // ----- elections -----

    /// Campaigns for the leadership of a group and returns once elected. Leadership is not
    /// re-entrant: a second campaign of the same coordinator waits like anyone else.
    pub fn campaign(&self, group: impl Into<GroupId>) -> Result<Leadership> {
        let leadership = self.runtime.call("campaign", self.coord.campaign(group))?;
        Ok(self.leadership(leadership))
    }

    /// One attempt to become leader; `None` if someone else leads.
    pub fn try_campaign(&self, group: impl Into<GroupId>) -> Result<Option<Leadership>> {
        let leadership = self
            .runtime
            .call("try_campaign", self.coord.try_campaign(group))?;
        Ok(leadership.map(|l| self.leadership(l)))
    }

    /// Campaigns for at most `wait`;
    /// [`Error::OperationTimedOut`](crate::Error::OperationTimedOut) if not elected by then.
    pub fn campaign_timeout(
        &self,
        group: impl Into<GroupId>,
        wait: Duration,
    ) -> Result<Leadership> {
        let campaign = self.coord.campaign_timeout(group, wait);
        let leadership = self.runtime.call("campaign_timeout", campaign)?;
        Ok(self.leadership(leadership))
    }

    /// The current leader of a group, if any.
    pub fn leader(&self, group: impl Into<GroupId>) -> Result<Option<MemberId>> {
        self.runtime.call("leader", self.coord.leader(group))
    }

    fn leadership(&self, leadership: crate::Leadership) -> Leadership {
        Leadership::new(
            leadership,
            self.hand_back_timeout(),
            Arc::clone(&self.runtime),
        )
    }

    /// How long a dropped guard or leadership may block its thread handing itself back: what
    /// is not handed back by then expires on the backend within the membership timeout anyway.
    fn hand_back_timeout(&self) -> Duration {
        self.coord.inner.hand_back_timeout()
    }
}
