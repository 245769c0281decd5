//! [`Coordinator`]: the one handle users hold.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::backend::FencingToken;
use crate::backend::{Backend, Losses, OwnerToken, Topic};
use crate::capabilities::Capabilities;
use crate::characteristics::{Characteristic, Characteristics};
use crate::election::Leadership;
use crate::error::{Error, Result};
use crate::ids::{GroupId, LockName, MemberId};
use crate::lock::Lock;
use crate::membership::Membership;
use crate::options::redact_str;
use crate::run_to_end::{RunToEnd, boxed};
use crate::scheme;
use crate::session::{Kind, Session, local_lease};
use crate::telemetry::Meters;
use crate::watch::GroupWatch;
use crate::{clock, heartbeat, wait};

mod inner;

use inner::log_failure;
pub(crate) use inner::{Config, Inner, bounded};

/// The default bound on every single backend call.
pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(30);

/// The default polling period of [`Coordinator::watch`] on backends that cannot push changes.
pub const DEFAULT_WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// A member's connection to a coordination backend: groups, locks, elections.
///
/// Cheap to clone (an `Arc` inside); clones share one session and one heartbeat. Created by
/// [`Coordinator::connect`] or [`Coordinator::builder`], ended by [`Coordinator::stop`], which
/// leaves joined groups and releases what is held. A coordinator dropped without `stop` stops
/// heartbeating, and what it held expires on the backend after its timeout.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> tooz::Result<()> {
/// let coord = tooz::Coordinator::connect("memory://doc-example", "worker-1").await?;
/// coord.join_group_create("workers", serde_json::json!({"weight": 1})).await?;
/// assert!(coord.members("workers").await?.contains(&"worker-1".into()));
///
/// let guard = coord.lock("db-migration").acquire().await?;
/// println!("holding with fencing token {}", guard.token());
/// guard.release().await?;
/// coord.stop().await
/// # }
/// ```
#[derive(Clone)]
pub struct Coordinator {
    pub(crate) inner: Arc<Inner>,
}

/// How a coordinator heartbeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HeartbeatMode {
    /// Every third of the backend's membership timeout.
    Auto,
    /// At a fixed interval.
    Every(Duration),
    /// Only when [`Coordinator::heartbeat`] is called (tooz's `start(start_heart=False)`).
    Manual,
}

/// Opens the backend for one member: how a [`CoordinatorBuilder`] reaches a driver built
/// outside the URL table (see [`Coordinator::builder_with_backend`]).
pub type OpenBackend = Arc<dyn Fn(&MemberId) -> Result<Box<dyn Backend>> + Send + Sync>;

/// Where a builder gets its backend.
#[derive(Clone)]
enum Source {
    Url(String),
    Custom(OpenBackend),
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // The URL may carry a password.
            Self::Url(url) => f.debug_tuple("Url").field(&redact_str(url)).finish(),
            Self::Custom(_) => f.write_str("Custom"),
        }
    }
}

/// Configures and connects a [`Coordinator`].
#[derive(Debug, Clone)]
pub struct CoordinatorBuilder {
    source: Source,
    member: MemberId,
    heartbeat: HeartbeatMode,
    operation_timeout: Duration,
    watch_interval: Duration,
    required: Vec<Characteristic>,
}

impl CoordinatorBuilder {
    /// Heartbeat at this interval instead of a third of the backend's membership timeout.
    pub fn heartbeat_interval(mut self, interval: Duration) -> Self {
        // A zero interval would spin; at least 10 ms. Any length is fine otherwise (timers
        // saturate).
        self.heartbeat = HeartbeatMode::Every(interval.max(Duration::from_millis(10)));
        self
    }

    /// Do not heartbeat in the background: the caller calls [`Coordinator::heartbeat`] (as
    /// tooz's `start(start_heart=False)`). Loss signals still fire when the lease runs out.
    pub fn manual_heartbeat(mut self) -> Self {
        self.heartbeat = HeartbeatMode::Manual;
        self
    }

    /// Bound every single backend call by this duration (default 30 s); a call that takes
    /// longer fails with [`Error::OperationTimedOut`].
    pub fn operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = timeout;
        self
    }

    /// How often [`Coordinator::watch`] polls on backends that cannot push changes (1 s).
    pub fn watch_interval(mut self, interval: Duration) -> Self {
        self.watch_interval = interval;
        self
    }

    /// Refuse a backend that does not declare all of these (tooz's `characteristics=`).
    pub fn require(mut self, characteristics: &[Characteristic]) -> Self {
        self.required.extend_from_slice(characteristics);
        self
    }

    /// Connects, starts the session and the heartbeat task.
    pub async fn connect(self) -> Result<Coordinator> {
        self.member.validate()?;
        let backend = match &self.source {
            Source::Url(url) => scheme::open(url, &self.member)?,
            Source::Custom(open) => open(&self.member)?,
        };
        let member = self.member.clone();
        let span = tracing::debug_span!("tooz.connect", backend = backend.name(), member = %member);
        Coordinator::start(backend, member, self)
            .instrument(span)
            .await
    }
}

/// What a backend offers beyond locks, as seen through a coordinator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Supported {
    /// Group membership.
    pub groups: bool,
    /// Leader election.
    pub elections: bool,
    /// Shared (reader) locks.
    pub shared_locks: bool,
    /// Locks and leaderships end when heartbeats stop (lease-based backends); `false` where
    /// the kernel or a connection holds them regardless (`file://`).
    pub lease_bound_locks: bool,
    /// A lock waiter waits in the kernel or on the server (`file://`), where it cannot be
    /// withdrawn: one that gives up (a timeout, a cancelled future) still takes its turn when
    /// the lock comes free, and hands the lock straight back. Elsewhere a waiter that gives up
    /// leaves the line at once.
    pub blocking_lock_waits: bool,
    /// Lock waiters are woken by the release and served in order (arrival order, or on
    /// `file://` the kernel's), and a releaser that asks again at once queues behind them
    /// (memory, file, redis, mysql, etcd, zookeeper); elsewhere (postgresql, memcached)
    /// waiters try again with back-off and race.
    pub queued_lock_waits: bool,
    /// Fencing tokens rest on data the backend keeps; `false` on memcached, whose counters
    /// can be evicted or lost in a restart (see its driver's docs): a best effort there.
    pub durable_fencing: bool,
}

impl Coordinator {
    /// Connects `member` to the backend named by `url` with default settings.
    pub async fn connect(url: &str, member: impl Into<MemberId>) -> Result<Self> {
        Self::builder(url, member).connect().await
    }

    /// A builder for settings beyond the URL.
    pub fn builder(url: &str, member: impl Into<MemberId>) -> CoordinatorBuilder {
        Self::builder_from(Source::Url(url.to_owned()), member.into())
    }

    /// A builder over a backend built outside the URL table (a custom driver): `open` is
    /// called once per [`CoordinatorBuilder::connect`], with the member id.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> tooz::Result<()> {
    /// use std::sync::Arc;
    /// use tooz::drivers::memory::{MemoryBackend, MemoryOptions};
    ///
    /// let open: tooz::OpenBackend = Arc::new(|member| {
    ///     let options = MemoryOptions::from_url(&"memory://custom".parse().unwrap())?;
    ///     Ok(Box::new(MemoryBackend::new(options, member.clone())))
    /// });
    /// let coord = tooz::Coordinator::builder_with_backend(open, "worker-1")
    ///     .manual_heartbeat()
    ///     .connect()
    ///     .await?;
    /// assert_eq!(coord.backend_name(), "memory");
    /// coord.stop().await
    /// # }
    /// ```
    pub fn builder_with_backend(
        open: OpenBackend,
        member: impl Into<MemberId>,
    ) -> CoordinatorBuilder {
        Self::builder_from(Source::Custom(open), member.into())
    }

    fn builder_from(source: Source, member: MemberId) -> CoordinatorBuilder {
        CoordinatorBuilder {
            source,
            member,
            heartbeat: HeartbeatMode::Auto,
            operation_timeout: DEFAULT_OPERATION_TIMEOUT,
            watch_interval: DEFAULT_WATCH_INTERVAL,
            required: Vec::new(),
        }
    }

    /// Starts a coordinator over a backend built outside the URL table (a custom driver).
    pub async fn from_backend(
        backend: Box<dyn Backend>,
        member: impl Into<MemberId>,
    ) -> Result<Self> {
        let member = member.into();
        member.validate()?;
        let builder = Self::builder("", member.clone());
        Self::start(backend, member, builder).await
    }

    async fn start(
        backend: Box<dyn Backend>,
        member: MemberId,
        builder: CoordinatorBuilder,
    ) -> Result<Self> {
        let sent = clock::now();
        let config = Config {
            operation_timeout: builder.operation_timeout,
            watch_interval: builder.watch_interval,
        };
        let (losses, pushed) = Losses::channel();
        let started = bounded(
            "connecting",
            config.operation_timeout,
            backend.start(losses),
        )
        .await?;
        let missing = started.characteristics.missing(&builder.required);
        if !missing.is_empty() {
            log_failure("stop", backend.stop().await);
            return Err(Error::CharacteristicsNotMet {
                backend: backend.name(),
                missing,
            });
        }
        let timeout = started.membership_timeout;
        tracing::debug!(
            membership_timeout = ?timeout,
            grant_timeout = ?started.grant_timeout,
            "connected"
        );
        let session = Arc::new(Session::new(timeout, started.grant_timeout, sent));
        // Often enough to renew both memberships and grants well within their timeouts.
        let shortest = started.grant_timeout.map_or(timeout, |g| g.min(timeout));
        let interval = match builder.heartbeat {
            HeartbeatMode::Auto => Some((shortest / 3).max(Duration::from_millis(10))),
            HeartbeatMode::Every(interval) => Some(interval),
            HeartbeatMode::Manual => None,
        };
        let backend_name = backend.name();
        let inner = Arc::new(Inner {
            backend,
            started,
            member,
            session: Arc::clone(&session),
            config,
            stopped: AtomicBool::new(false),
            stop_heartbeat: CancellationToken::new(),
            membership_ops: Arc::default(),
            meters: Meters::new(backend_name),
        });
        let beats: Arc<dyn heartbeat::Beats> = Arc::clone(&inner) as _;
        tokio::spawn(heartbeat::run(
            Arc::downgrade(&beats),
            session,
            inner.stop_heartbeat.clone(),
            interval,
            pushed,
        ));
        Ok(Self { inner })
    }

    /// This coordinator's member id.
    pub fn member_id(&self) -> &MemberId {
        &self.inner.member
    }

    /// The backend's short name (`memory`, `file`, ...).
    pub fn backend_name(&self) -> &'static str {
        self.inner.backend.name()
    }

    /// The guarantees the backend declares.
    pub fn characteristics(&self) -> Characteristics {
        self.inner.started.characteristics.clone()
    }

    /// What the backend offers beyond exclusive locks.
    pub fn supported(&self) -> Supported {
        let backend = &self.inner.backend;
        Supported {
            groups: backend.groups().is_some(),
            elections: backend.elections().is_some(),
            shared_locks: self.inner.started.shared_locks,
            lease_bound_locks: self.inner.started.grant_timeout.is_some(),
            blocking_lock_waits: self.inner.started.lock_waits_block,
            queued_lock_waits: self.inner.started.lock_waits_queue,
            durable_fencing: self.inner.started.durable_fencing,
        }
    }

    /// How long the backend keeps this member alive without a heartbeat.
    pub fn membership_timeout(&self) -> Duration {
        self.inner.started.membership_timeout
    }

    /// The least time between a loss signal firing here and the backend's own expiry of what
    /// was lost (a tenth of the backend's timeout): what is left to stop work done under a
    /// lost grant before someone else can be granted it. `tooz lock` kills its command within
    /// half of it.
    pub fn expiry_margin(&self) -> Duration {
        let started = &self.inner.started;
        let margin = |timeout: Duration| timeout.saturating_sub(local_lease(timeout));
        let members = margin(started.membership_timeout);
        started
            .grant_timeout
            .map_or(members, |grants| members.min(margin(grants)))
    }

    /// True until [`Coordinator::stop`].
    pub fn is_started(&self) -> bool {
        !self.inner.stopped.load(Ordering::Acquire)
    }

    /// Whether the session with the backend is known to be alive: the last heartbeat was
    /// recent enough that the backend cannot have expired it yet.
    pub fn is_live(&self) -> bool {
        self.is_started() && self.inner.session.is_live()
    }

    /// Heartbeats now: renews the session and everything held, and reports what was found
    /// lost. Background heartbeats call the same thing; call it yourself only with
    /// [`CoordinatorBuilder::manual_heartbeat`].
    pub async fn heartbeat(&self) -> Result<()> {
        self.inner.beat().await.map(|_| ())
    }

    /// Leaves every joined group, resigns leaderships, releases locks and ends the session.
    /// Every loss signal fires. A second call returns [`Error::Stopped`].
    pub async fn stop(&self) -> Result<()> {
        if self.inner.stopped.swap(true, Ordering::AcqRel) {
            return Err(Error::Stopped);
        }
        self.inner.stop_heartbeat.cancel();
        // From here on a grant that arrives late is handed back by whoever took it.
        let held = self.inner.session.close();
        let inner = &self.inner;
        for (group, owner) in &held.leaderships {
            inner.resign_quietly(group, *owner).await;
        }
        for (name, owner) in &held.locks {
            inner.release_quietly(name, *owner).await;
        }
        let dropped = inner.session.dropped();
        let memberships = held.memberships.iter().map(|(group, _)| group);
        for group in memberships.chain(&dropped) {
            inner.leave_quietly(group).await;
        }
        inner.session.lose_everything();
        let timeout = inner.hand_back_timeout();
        bounded("stopping", timeout, inner.backend.stop()).await
    }

    // ----- groups -----

    /// Creates a group; [`Error::GroupAlreadyExist`] if it exists.
    pub async fn create_group(&self, group: impl Into<GroupId>) -> Result<()> {
        let group = checked(group.into())?;
        let groups = self.inner.groups("create_group")?;
        self.inner
            .call("create group", groups.create_group(&group))
            .await
    }

    /// Deletes an empty group; [`Error::GroupNotCreated`], [`Error::GroupNotEmpty`].
    pub async fn delete_group(&self, group: impl Into<GroupId>) -> Result<()> {
        let group = checked(group.into())?;
        let groups = self.inner.groups("delete_group")?;
        self.inner
            .call("delete group", groups.delete_group(&group))
            .await
    }

    /// Every group (tooz `get_groups`).
    pub async fn groups(&self) -> Result<Vec<GroupId>> {
        let groups = self.inner.groups("get_groups")?;
        self.inner.call("list groups", groups.list_groups()).await
    }

    /// Joins a group with capabilities (use `Capabilities::none()` for none);
    /// [`Error::GroupNotCreated`], [`Error::MemberAlreadyExist`].
    #[tracing::instrument(
        name = "tooz.join",
        level = "debug",
        skip_all,
        fields(backend = self.backend_name(), group = tracing::field::Empty)
    )]
    pub async fn join_group(
        &self,
        group: impl Into<GroupId>,
        capabilities: impl Into<Capabilities>,
    ) -> Result<Membership> {
        let group = checked(group.into())?;
        tracing::Span::current().record("group", tracing::field::display(&group));
        let capabilities = capabilities.into();
        capabilities.encode()?;
        self.inner.groups("join_group")?;
        if !self.inner.session.is_live() {
            // The session lease ran out (a partition that healed, a suspend): renew it, or
            // learn that the backend began a new session, before joining under it.
            self.inner.beat().await?;
        }
        let inner = Arc::clone(&self.inner);
        let joined = group.clone();
        let join = async move {
            let ops = Arc::clone(&inner.membership_ops).lock_owned().await;
            let groups = inner.groups("join_group")?;
            if inner.session.dropped().contains(&joined) {
                // Our own membership, given up here when the lease ran out, may still be
                // listed on the backend: it is a stale entry, not another member.
                inner.leave_if_listed(&joined).await?;
                inner.session.take_dropped(&joined);
            }
            let sent = clock::now();
            groups.join(&joined, &capabilities).await?;
            Ok((ops, sent))
        };
        let inner = Arc::clone(&self.inner);
        let joined = group.clone();
        let undo = move |(ops, _)| {
            boxed(async move {
                inner.leave_quietly(&joined).await;
                drop(ops);
            })
        };
        let call = RunToEnd::new(join, undo);
        let (ops, sent) = self.inner.call("join group", call).await?;
        let owner = OwnerToken::generate();
        let kind = Kind::Membership(group.clone());
        let Some(signal) = self.inner.session.register(owner, kind, sent) else {
            let inner = Arc::clone(&self.inner);
            tokio::spawn(async move {
                inner.leave_quietly(&group).await;
                drop(ops);
            });
            return Err(Error::Stopped);
        };
        drop(ops);
        Ok(Membership::new(self.clone(), group, signal))
    }

    /// Joins a group, creating it first if needed (tooz `join_group_create`).
    pub async fn join_group_create(
        &self,
        group: impl Into<GroupId>,
        capabilities: impl Into<Capabilities>,
    ) -> Result<Membership> {
        let group = checked(group.into())?;
        let capabilities = capabilities.into();
        // Another member may delete the group between our create and our join; a few rounds
        // settle any such race without looping forever as tooz does.
        let mut last = None;
        for _ in 0..8 {
            match self.join_group(group.clone(), capabilities.clone()).await {
                Err(Error::GroupNotCreated { .. }) => {}
                other => return other,
            }
            match self.create_group(group.clone()).await {
                Ok(()) | Err(Error::GroupAlreadyExist { .. }) => {}
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(Error::GroupNotCreated { group }))
    }

    /// Leaves a group; [`Error::GroupNotCreated`] or [`Error::MemberNotJoined`].
    #[tracing::instrument(
        name = "tooz.leave",
        level = "debug",
        skip_all,
        fields(backend = self.backend_name(), group = tracing::field::Empty)
    )]
    pub async fn leave_group(&self, group: impl Into<GroupId>) -> Result<()> {
        let group = checked(group.into())?;
        tracing::Span::current().record("group", tracing::field::display(&group));
        let groups = self.inner.groups("leave_group")?;
        let _ops = self.inner.membership_ops.lock().await;
        let result = self.inner.call("leave group", groups.leave(&group)).await;
        if matches!(result, Ok(()) | Err(Error::MemberNotJoined { .. })) {
            self.inner.session.remove_membership(&group);
        }
        result
    }

    /// The live members of a group (tooz `get_members`).
    pub async fn members(&self, group: impl Into<GroupId>) -> Result<BTreeSet<MemberId>> {
        let group = checked(group.into())?;
        let groups = self.inner.groups("get_members")?;
        let ids = self
            .inner
            .call("list members", groups.member_ids(&group))
            .await?;
        Ok(ids.into_iter().collect())
    }

    /// The live members of a group with their capabilities, in one backend call.
    pub async fn members_with_capabilities(
        &self,
        group: impl Into<GroupId>,
    ) -> Result<BTreeMap<MemberId, Capabilities>> {
        let group = checked(group.into())?;
        let groups = self.inner.groups("get_members")?;
        let list = self
            .inner
            .call("list members", groups.members(&group))
            .await?;
        Ok(list.into_iter().collect())
    }

    /// One member's capabilities; [`Error::GroupNotCreated`] or [`Error::MemberNotJoined`].
    pub async fn member_capabilities(
        &self,
        group: impl Into<GroupId>,
        member: impl Into<MemberId>,
    ) -> Result<Capabilities> {
        let group = checked(group.into())?;
        let member = member.into();
        member.validate()?;
        let groups = self.inner.groups("get_member_capabilities")?;
        let call = groups.member_capabilities(&group, &member);
        self.inner.call("read member capabilities", call).await
    }

    /// Replaces this member's capabilities in a group.
    pub async fn update_capabilities(
        &self,
        group: impl Into<GroupId>,
        capabilities: impl Into<Capabilities>,
    ) -> Result<()> {
        let group = checked(group.into())?;
        let capabilities = capabilities.into();
        capabilities.encode()?;
        let groups = self.inner.groups("update_capabilities")?;
        let call = groups.update_capabilities(&group, &capabilities);
        self.inner.call("update capabilities", call).await
    }

    /// A stream of joins, leaves and leader changes in a group, starting from now (members
    /// already present are not reported). [`Error::GroupNotCreated`] if it does not exist.
    pub async fn watch(&self, group: impl Into<GroupId>) -> Result<GroupWatch> {
        let group = checked(group.into())?;
        self.inner.groups("watch")?;
        GroupWatch::start(self.clone(), group).await
    }

    // ----- locks -----

    /// A lock by name; nothing is taken until [`Lock::acquire`] (or a variant) is called.
    pub fn lock(&self, name: impl Into<LockName>) -> Lock {
        Lock::new(self.clone(), name.into())
    }

    // ----- elections -----

    /// Campaigns for the leadership of a group and resolves once elected. Leadership is not
    /// re-entrant: a second campaign of the same coordinator waits like anyone else.
    pub async fn campaign(&self, group: impl Into<GroupId>) -> Result<Leadership> {
        self.campaign_until(group.into(), None)
            .await?
            .ok_or_else(unreachable_timeout)
    }

    /// One attempt to become leader; `None` if someone else leads.
    pub async fn try_campaign(&self, group: impl Into<GroupId>) -> Result<Option<Leadership>> {
        self.campaign_until(group.into(), Some(Instant::now()))
            .await
    }

    /// Campaigns for at most `wait`; [`Error::OperationTimedOut`] if not elected by then.
    pub async fn campaign_timeout(
        &self,
        group: impl Into<GroupId>,
        wait: Duration,
    ) -> Result<Leadership> {
        let group = group.into();
        let operation = format!("campaign for the leadership of group '{group}'");
        self.campaign_until(group, Instant::now().checked_add(wait))
            .await?
            .ok_or(Error::OperationTimedOut {
                operation,
                after: wait,
            })
    }

    #[tracing::instrument(
        name = "tooz.campaign",
        level = "debug",
        skip_all,
        fields(backend = self.backend_name(), group = %group, token = tracing::field::Empty)
    )]
    async fn campaign_until(
        &self,
        group: GroupId,
        deadline: Option<Instant>,
    ) -> Result<Option<Leadership>> {
        let group = checked(group)?;
        self.inner.elections("campaign")?;
        let owner = OwnerToken::generate();
        let inner = &self.inner;
        let attempt = |_waiting| {
            let sent = clock::now();
            let (inner_, group_) = (Arc::clone(inner), group.clone());
            let call = RunToEnd::handing_back(
                try_lead(Arc::clone(inner), group.clone(), owner),
                move || {
                    let (inner, group) = (Arc::clone(&inner_), group_.clone());
                    boxed(async move { inner.resign_quietly(&group, owner).await })
                },
            );
            let call = inner.call("campaign", call);
            async move { Ok(call.await?.map(|token| (token, sent))) }
        };
        let topic = Topic::Leader(&group);
        let (backend, stopped) = (&*inner.backend, inner.stopped_token());
        let complete = inner.started.complete_hints;
        let taken = wait::retry(backend, &stopped, topic, deadline, complete, attempt).await?;
        let Some((token, sent)) = taken else {
            return Ok(None);
        };
        tracing::Span::current().record("token", token.get());
        tracing::debug!("elected");
        let kind = Kind::Leadership(group.clone());
        let Some(signal) = inner.session.register(owner, kind, sent) else {
            let inner = Arc::clone(inner);
            tokio::spawn(async move { inner.resign_quietly(&group, owner).await });
            return Err(Error::Stopped);
        };
        Ok(Some(Leadership::new(
            self.clone(),
            group,
            owner,
            token,
            signal,
        )))
    }

    /// The current leader of a group, if any.
    pub async fn leader(&self, group: impl Into<GroupId>) -> Result<Option<MemberId>> {
        let group = checked(group.into())?;
        let elections = self.inner.elections("get_leader")?;
        self.inner
            .call("read leader", elections.leader(&group))
            .await
    }
}

async fn try_lead(
    inner: Arc<Inner>,
    group: GroupId,
    owner: OwnerToken,
) -> Result<Option<FencingToken>> {
    inner.elections("campaign")?.try_lead(&group, owner).await
}

fn unreachable_timeout() -> Error {
    // `campaign_until(.., None)` only returns `None` if the wait loop gave up, which it never
    // does without a deadline; keep a real error rather than a panic all the same.
    Error::OperationTimedOut {
        operation: "campaign".to_owned(),
        after: Duration::ZERO,
    }
}

fn checked(group: GroupId) -> Result<GroupId> {
    group.validate()?;
    Ok(group)
}

impl fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Coordinator")
            .field("member", &self.inner.member)
            .field("backend", &self.inner.backend)
            .field("started", &self.is_started())
            .finish_non_exhaustive()
    }
}
