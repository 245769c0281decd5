//! `zookeeper://` (also `kazoo://`): Apache ZooKeeper (3.5 or newer), the other consensus
//! service coordination users run. Python tooz's kazoo layout, so a Python tooz process and
//! ours see the same groups, members and capabilities, exclude each other on locks, and name
//! the same leader.
//!
//! * **Liveness is the ZooKeeper session.** Members, lock contenders and leader contenders
//!   are ephemeral nodes of the coordinator's session; heartbeats read them all back in one
//!   request per 256 (which also keeps the session busy), and their local lease is the negotiated
//!   session timeout counted from a heartbeat's send — the server expires a session no sooner
//!   than that after it last heard from us — so a cut-off coordinator reports its grants lost
//!   before ZooKeeper can give them to another. The moment the client learns that ZooKeeper
//!   expired the session, everything on it is reported lost, and the next heartbeat begins a
//!   new session (never resuming the old one).
//! * **Locks are kazoo's recipe** (`/tooz/locks/<name>/<hex>__lock__<sequence>`), so Python's
//!   locks and ours exclude each other: the contender with the lowest sequence holds the lock,
//!   and a waiter keeps its node — its place in the queue — and watches only its predecessor:
//!   waiters are served in arrival order and one release wakes one waiter. The fencing token
//!   is the contender node's `czxid`: ZooKeeper's transaction id, which grows with every write
//!   and which a later holder's node always has larger (it was created after the earlier
//!   holder's, or it would have come first).
//! * **Shared locks** are kazoo's read-write recipe: a reader's node is `<hex>__rlock__<seq>`
//!   and waits only for the exclusive contenders before it; an exclusive contender waits for
//!   every contender before it (so a waiting writer is not overtaken by later readers). A
//!   reader's token is its node's czxid too: never below the last exclusive grant's. Python
//!   tooz has no shared locks, and its exclusive lock (kazoo's `Lock`) ignores readers: a
//!   shared lock of ours does not keep a Python holder out.
//! * **Elections** are kazoo locks on `/tooz/<group>/leader`, as in tooz: Python's
//!   `get_leader` and ours name the same member.
//! * **Watches** are ZooKeeper watches: on a group's children, on a leader lock's holder, on
//!   a waiter's predecessor; a waiter looks again when woken (and, as a safeguard, every
//!   half minute), never on a short poll.
//! * **Listings** hide tooz's bookkeeping, which Python's show (`leader` listed as a member,
//!   `locks` as a group), without changing what Python sees; names that are not exactly one
//!   node name are written in hex (see the `paths` module), so they do not interoperate.
//!
//! What this cannot promise: a ZooKeeper whose data is wiped (or restored from an older
//! snapshot) forgets every node and restarts its zxids, so exclusion and token order do not
//! carry across that (as on etcd); a session timeout the server lowers when the client
//! reconnects is not seen (the client library keeps the first); and lock nodes inherit
//! kazoo's ordering, which breaks when a lock node's sequence passes 2^31 (about 10^9
//! acquisitions of one name).
//!
//! The options are listed on [`ZookeeperOptions`].

mod election;
mod error;
mod groups;
mod locks;
mod options;
pub(crate) mod paths;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use zookeeper_client::{
    Acl, Acls, AuthId, Client, CreateMode, CreateOptions, Error as ZkError, MultiReadResult,
    Permission, SessionState,
};

use super::shared;
use crate::backend::{
    Backend, BeatReport, ChangeHint, Elections, FencingToken, Groups, Held, LockRequest, Losses,
    OwnerToken, Started, Topic,
};
use crate::characteristics::{Characteristic, Characteristics};
use crate::error::{Error, Result};
use crate::ids::{LockName, MemberId};
pub use options::ZookeeperOptions;

const NAME: &str = "zookeeper";
/// Reads per heartbeat request (each answer is small; this keeps one under ZooKeeper's 1 MB
/// packet limit with room to spare).
const READS_PER_REQUEST: usize = 256;

/// One coordinator's session with a ZooKeeper ensemble.
pub struct ZookeeperBackend {
    options: ZookeeperOptions,
    member: MemberId,
    /// The ACL of every node we create: tooz's digest ACL with a user, else open to all.
    acl: Vec<Acl>,
    /// The session; `None` before `start`, after `stop`, and once a session ended until the
    /// next heartbeat begins another.
    session: Arc<RwLock<Option<Session>>>,
    /// Serializes beginning a session.
    connecting: tokio::sync::Mutex<()>,
    /// The current session's id, for the task that reports an expiry: a session we replaced
    /// or closed ourselves is not reported.
    current: Arc<AtomicI64>,
    losses: std::sync::OnceLock<Losses>,
    /// Every lock and leader contender node we created (or may have: its creation's answer
    /// lost), by grant.
    contenders: Arc<Mutex<HashMap<OwnerToken, Contender>>>,
    /// The child version (and creation) last read of each watched node: a watch set later
    /// resolves at once if the children changed since.
    seen_children: Mutex<HashMap<String, (i64, i32)>>,
    /// The first contender last seen under each lock node (its holder): a leader watch waits
    /// for that node to go, rather than for any change (every refused try adds and removes a
    /// contender).
    holders: Mutex<HashMap<String, String>>,
    /// When the last request that grants or renews something (a heartbeat, a lock or leader
    /// attempt, a join) and that ZooKeeper answered was sent: every local lease counts from
    /// such a send, so the session is kept at least a timeout past the latest.
    renewed: Arc<Mutex<tokio::time::Instant>>,
    /// `start` ran.
    started: AtomicBool,
    /// `stop` ran: no new session is begun any more.
    stopped: AtomicBool,
}

/// A connected session: the client and the session's id (the owner of our ephemeral nodes).
#[derive(Clone)]
struct Session {
    client: Client,
    id: i64,
    /// The session timeout ZooKeeper settled.
    timeout: Duration,
}

/// A contender node of ours under a lock node (a lock's, or a group's leader lock).
#[derive(Debug, Clone)]
struct Contender {
    /// The lock node's path.
    dir: String,
    /// The contender's node name; `None` while its creation is in doubt (found again by the
    /// owner's prefix).
    node: Option<String>,
    /// Its czxid: the grant's fencing token.
    czxid: i64,
    /// The contender it waits behind, if any.
    predecessor: Option<String>,
    /// The session it belongs to (it is gone with it).
    session: i64,
    /// Its withdrawal began (and may have failed): heartbeats finish it.
    abandoned: bool,
    /// The withdrawal under way, by claim number: heartbeats leave it alone (two deletes
    /// racing would let the heartbeat's win, and a release then hear that its node was
    /// already gone), and only that claim's end may remove or free this entry.
    withdrawing: Option<u64>,
}

impl fmt::Debug for ZookeeperBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZookeeperBackend")
            .field("options", &self.options)
            .field("member", &self.member)
            .field("session", &self.current.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl ZookeeperBackend {
    /// A backend for `member` on the ensemble in `options` (connected by `start`).
    pub fn new(options: ZookeeperOptions, member: MemberId) -> Self {
        let acl = match &options.user {
            Some((user, password)) => vec![Acl::new(
                Permission::ALL,
                AuthId::new("digest", &digest_id(user, password)),
            )],
            None => Vec::new(),
        };
        Self {
            options,
            member,
            acl,
            session: Arc::new(RwLock::new(None)),
            connecting: tokio::sync::Mutex::new(()),
            current: Arc::new(AtomicI64::new(0)),
            losses: std::sync::OnceLock::new(),
            contenders: Arc::default(),
            seen_children: Mutex::new(HashMap::new()),
            holders: Mutex::new(HashMap::new()),
            renewed: Arc::new(Mutex::new(tokio::time::Instant::now())),
            started: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
        }
    }

    /// The current session (a cheap clone).
    fn session(&self) -> Result<Session> {
        let session = self.session.read().unwrap_or_else(|e| e.into_inner());
        match &*session {
            Some(session) => Ok(session.clone()),
            None if self.stopped.load(Ordering::Acquire) => Err(Error::Stopped),
            None if self.started.load(Ordering::Acquire) => {
                Err(Error::SessionLost { backend: NAME })
            }
            None => Err(Error::Backend {
                backend: NAME,
                source: "not started".into(),
            }),
        }
    }

    /// Runs `step`, bounded by the `timeout` option: past it, `Connection`.
    async fn bounded<T>(&self, what: &str, step: impl Future<Output = T>) -> Result<T> {
        let bound = self.options.timeout;
        tokio::time::timeout(bound, step)
            .await
            .map_err(|_| shared::timed_out(NAME, &self.options.url, what, bound))
    }

    /// Runs one request, bounded: ZooKeeper's own answer inside (the caller matches the ones
    /// it expects, like `NoNode`), `Connection` outside if none came in time.
    async fn call<T>(
        &self,
        what: &str,
        request: impl Future<Output = std::result::Result<T, ZkError>>,
    ) -> Result<std::result::Result<T, ZkError>> {
        self.bounded(what, request).await
    }

    /// The options to create a node of `mode` with our ACL.
    fn create_options(&self, mode: CreateMode) -> CreateOptions<'_> {
        let acls = if self.acl.is_empty() {
            Acls::anyone_all()
        } else {
            Acls::new(&self.acl)
        };
        mode.with_acls(acls)
    }

    /// Makes `path` and its missing ancestors (persistent, our ACL).
    async fn ensure_path(&self, client: &Client, path: &str) -> Result<()> {
        let options = self.create_options(CreateMode::Persistent);
        self.call("creating a node", client.mkdir(path, &options))
            .await??;
        Ok(())
    }

    /// Connects a new session (the namespace node made if missing), and watches it for
    /// expiry.
    async fn connect(&self) -> Result<Session> {
        let options = &self.options;
        let mut connector = Client::connector()
            .with_session_timeout(options.timeout)
            .with_fail_eagerly();
        if let Some((user, password)) = &options.user {
            connector = connector.with_auth("digest", format!("{user}:{password}").as_bytes());
        }
        #[cfg(feature = "zookeeper-tls")]
        if let Some(tls) = &options.tls {
            let mut config = zookeeper_client::TlsOptions::new()
                .with_pem_ca(&tls.ca)
                .map_err(|e| tls_error("ca", e))?;
            if let Some((cert, key)) = &tls.identity {
                config = config
                    .with_pem_identity(cert, key)
                    .map_err(|e| tls_error("certfile", e))?;
            }
            connector = connector.with_tls(config);
        }
        let connecting = async {
            #[cfg(feature = "zookeeper-tls")]
            if options.tls.is_some() {
                return connector.secure_connect(&options.hosts).await;
            }
            connector.connect(&options.hosts).await
        };
        let mut client = self.call("connecting", connecting).await??;
        let chroot = &options.chroot;
        self.ensure_path(&client, &format!("{chroot}{}", options.base))
            .await?;
        if !chroot.is_empty() {
            client = client
                .chroot(chroot.clone())
                .map_err(|_| error::unexpected("the chroot was refused"))?;
        }
        let id = client.session_id().0;
        let timeout = client.session_timeout();
        self.current.store(id, Ordering::Release);
        *self.renewed() = tokio::time::Instant::now();
        self.report_expiry(&client, id);
        self.end_when_unrenewed(id, timeout);
        Ok(Session {
            client,
            id,
            timeout,
        })
    }

    /// Reports every grant lost the moment the client hears that ZooKeeper expired session
    /// `id` (or the session otherwise ends while it is still the current one).
    fn report_expiry(&self, client: &Client, id: i64) {
        let Some(losses) = self.losses.get().cloned() else {
            return;
        };
        let mut states = client.state_watcher();
        let current = Arc::clone(&self.current);
        tokio::spawn(async move {
            let mut state = states.peek_state();
            while !state.is_terminated() {
                state = states.changed().await;
            }
            if current.load(Ordering::Acquire) == id {
                tracing::warn!(backend = NAME, session = id, %state, "the ZooKeeper session ended");
                losses.session_ended();
            }
        });
    }

    /// Ends session `id` once no heartbeat has renewed it for `timeout`, as ZooKeeper would
    /// if it had not heard from us: the client's own pings keep a session alive while the
    /// process lives, but members and grants here live by heartbeats, on every backend — a
    /// coordinator whose heartbeats stopped has reported them lost, so they must be freed for
    /// others. (The next heartbeat, if any, begins a new session.)
    fn end_when_unrenewed(&self, id: i64, timeout: Duration) {
        let slot = Arc::downgrade(&self.session);
        let renewed = Arc::clone(&self.renewed);
        let current = Arc::clone(&self.current);
        let losses = self.losses.get().cloned();
        tokio::spawn(async move {
            loop {
                let last = *renewed.lock().unwrap_or_else(|e| e.into_inner());
                tokio::time::sleep_until(last + timeout).await;
                let Some(slot) = slot.upgrade() else {
                    return;
                };
                let mut slot = slot.write().unwrap_or_else(|e| e.into_inner());
                if slot.as_ref().is_none_or(|s| s.id != id) {
                    return;
                }
                let last = *renewed.lock().unwrap_or_else(|e| e.into_inner());
                if last.elapsed() >= timeout {
                    // Reported before the close can free anything: an attempt still in flight
                    // on it sees the session is no longer current and hands back no grant.
                    current.store(0, Ordering::Release);
                    if let Some(losses) = &losses {
                        losses.session_ended();
                    }
                    tracing::warn!(
                        backend = NAME,
                        session = id,
                        "no heartbeat renewed the ZooKeeper session in time: closed"
                    );
                    // The client closes the session as its last handle goes.
                    let ended = slot.take();
                    drop(slot);
                    drop(ended);
                    return;
                }
            }
        });
    }

    fn renewed(&self) -> MutexGuard<'_, tokio::time::Instant> {
        self.renewed.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes that a request of session `session` sent at `sent` was answered (see `renewed`).
    /// `SessionLost` if the session is no longer the current one: what it granted must not be
    /// handed out (its end was reported, or is being).
    fn answered(&self, session: &Session, sent: tokio::time::Instant) -> Result<()> {
        if self.current.load(Ordering::Acquire) != session.id {
            return Err(Error::SessionLost { backend: NAME });
        }
        let mut renewed = self.renewed();
        *renewed = (*renewed).max(sent);
        Ok(())
    }

    /// Whether `session` is over: ZooKeeper said so, or no server has answered a heartbeat
    /// for longer than its timeout. (A server restarted empty refuses the old session's
    /// reconnections without ever saying that it expired; and by then every grant on it was
    /// reported lost locally.)
    fn is_over(&self, session: Option<&Session>) -> bool {
        let Some(session) = session else {
            return true;
        };
        let state = session.client.state();
        state.is_terminated()
            || (state == SessionState::Disconnected && self.renewed().elapsed() > session.timeout)
    }

    /// For a heartbeat: the current session, a new one begun first if the last is over
    /// (`true`: it was, and nothing held on it survives). Only heartbeats begin sessions, so
    /// that each new one is reported once, by the heartbeat that began it; other calls on an
    /// ended session fail with `SessionLost`.
    async fn live_session(&self) -> Result<(Session, bool)> {
        let _one = self.connecting.lock().await;
        let current = self
            .session
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(current) = current.as_ref().filter(|s| !self.is_over(Some(s))) {
            return Ok((current.clone(), false));
        }
        if self.stopped.load(Ordering::Acquire) || !self.started.load(Ordering::Acquire) {
            return Err(self.session().err().unwrap_or(Error::Stopped));
        }
        // (Dropped first: the old client, if it can still reach a server, closes its session.)
        drop(current);
        self.current.store(0, Ordering::Release);
        *self.session.write().unwrap_or_else(|e| e.into_inner()) = None;
        // Every contender was an ephemeral node of the old session: gone with it. (A waiter
        // asking again gets a new place in the queue.) Forgotten before the new session is
        // published, so that nothing recorded on the new one is.
        self.contenders().clear();
        let session = self.connect().await?;
        *self.session.write().unwrap_or_else(|e| e.into_inner()) = Some(session.clone());
        Ok((session, true))
    }

    fn contenders(&self) -> MutexGuard<'_, HashMap<OwnerToken, Contender>> {
        self.contenders.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The path of group `group`'s node.
    fn group_path(&self, group: &[u8]) -> String {
        format!("{}/{}", self.options.base, paths::group(group))
    }

    /// Notes the children version of `path` as read now.
    fn saw_children(&self, path: &str, stat: &zookeeper_client::Stat) {
        let mut seen = self.seen_children.lock().unwrap_or_else(|e| e.into_inner());
        seen.insert(path.to_owned(), (stat.czxid, stat.cversion));
    }

    /// Notes the holder among `children` of lock node `dir` (a leader lock's: only leader
    /// watches use it, and a lock name per request must not grow the map for ever).
    fn saw_holder(&self, dir: &str, children: &[String]) {
        if !dir.ends_with(&format!("/{}", paths::LEADER)) {
            return;
        }
        let mut holders = self.holders.lock().unwrap_or_else(|e| e.into_inner());
        match paths::first_contender(children) {
            Some(first) => holders.insert(dir.to_owned(), first.to_owned()),
            None => holders.remove(dir),
        };
    }

    /// A hint that resolves when the children of `path` change: at once if they changed
    /// since they were last read (the check this hint guards reads them after it was made),
    /// else on ZooKeeper's watch; on the node's creation if it is missing.
    fn children_hint(&self, path: String) -> ChangeHint {
        let session = self.session().ok();
        let seen = {
            let seen = self.seen_children.lock().unwrap_or_else(|e| e.into_inner());
            seen.get(&path).copied()
        };
        Box::pin(async move {
            let Some(session) = session else {
                return;
            };
            let watched = session.client.get_and_watch_children(&path).await;
            let watcher = match watched {
                Ok((_, stat, watcher)) if seen == Some((stat.czxid, stat.cversion)) => watcher,
                Ok(_) => return,
                Err(ZkError::NoNode) => match session.client.check_and_watch_stat(&path).await {
                    Ok((None, watcher)) => watcher,
                    _ => return,
                },
                Err(_) => return pause().await,
            };
            // (Not holding the client while waiting: a stopped coordinator's session closes,
            // and that wakes the watch.)
            drop(session);
            watcher.changed().await;
        })
    }

    /// A hint that resolves when node `path` is gone (at once if it already is); for a
    /// waiter (`Err(owner)`), the node it waits behind, as its last attempt — made after
    /// this hint, before it is polled — found it.
    fn gone_hint(&self, path: std::result::Result<String, OwnerToken>) -> ChangeHint {
        let session = self.session().ok();
        let contenders = Arc::clone(&self.contenders);
        Box::pin(async move {
            let Some(session) = session else {
                return;
            };
            let path = match path {
                Ok(path) => path,
                Err(owner) => {
                    let predecessor = {
                        let contenders = contenders.lock().unwrap_or_else(|e| e.into_inner());
                        contenders
                            .get(&owner)
                            .and_then(|c| Some(format!("{}/{}", c.dir, c.predecessor.as_ref()?)))
                    };
                    match predecessor {
                        Some(path) => path,
                        // (No queued contender: nothing to watch; look again soon.)
                        None => return pause().await,
                    }
                }
            };
            let watcher = match session.client.check_and_watch_stat(&path).await {
                Ok((Some(_), watcher)) => watcher,
                Ok((None, _)) => return,
                Err(_) => return pause().await,
            };
            drop(session);
            watcher.changed().await;
        })
    }
}

/// A TLS file the client refused (read and checked when the URL was: unlikely).
#[cfg(feature = "zookeeper-tls")]
fn tls_error(option: &str, e: ZkError) -> Error {
    Error::InvalidOption {
        backend: NAME,
        option: option.to_owned(),
        value: String::new(),
        reason: e.to_string(),
    }
}

/// A short pause before looking again, where a watch could not be set.
async fn pause() {
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// ZooKeeper's digest identity of `user`: `user:base64(sha1("user:password"))`.
fn digest_id(user: &str, password: &str) -> String {
    use sha1::{Digest, Sha1};
    let digest = Sha1::digest(format!("{user}:{password}").as_bytes());
    format!("{user}:{}", base64(&digest))
}

/// Standard base64 with padding (only a digest is ever encoded: no crate for that).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A fencing token from a czxid (ZooKeeper's zxids are positive).
fn token(czxid: i64) -> Result<FencingToken> {
    u64::try_from(czxid)
        .ok()
        .filter(|z| *z > 0)
        .map(FencingToken::new)
        .ok_or_else(|| error::unexpected(&format!("czxid {czxid}")))
}

#[async_trait]
impl Backend for ZookeeperBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn start(&self, losses: Losses) -> Result<Started> {
        let _ = self.losses.set(losses);
        let _one = self.connecting.lock().await;
        let session = self.connect().await?;
        let timeout = session.client.session_timeout();
        *self.session.write().unwrap_or_else(|e| e.into_inner()) = Some(session);
        self.started.store(true, Ordering::Release);
        let characteristics = Characteristics::new(&[
            Characteristic::NonTimeoutBased,
            Characteristic::DistributedAcrossThreads,
            Characteristic::DistributedAcrossProcesses,
            Characteristic::DistributedAcrossHosts,
            Characteristic::Sequential,
        ]);
        // Members and grants are ephemeral nodes: they live as long as the session, which
        // ZooKeeper keeps for the negotiated timeout after it last heard from us.
        // Every wake-up is a ZooKeeper watch, which fires however the node went (released,
        // its session expired, deleted by hand).
        Ok(Started::new(timeout, characteristics)
            .with_shared_locks(true)
            .with_queued_lock_waits()
            .with_complete_hints()
            // (A waiter's node is granted when its predecessor goes, between attempts; but it
            // lives on the session, which the answering attempt's request proves alive.)
            .with_grants_only_in_attempts())
    }

    async fn heartbeat(&self, held: &Held) -> Result<BeatReport> {
        let mut report = BeatReport::default();
        let sent = tokio::time::Instant::now();
        let (session, restarted) = self.live_session().await?;
        if restarted {
            report.session_restarted = true;
            return Ok(report);
        }
        let mut reads: Vec<(OwnerToken, Option<String>, Kind)> = Vec::new();
        {
            let contenders = self.contenders();
            let node_of = |owner: &OwnerToken| {
                let contender = contenders.get(owner)?;
                Some(format!("{}/{}", contender.dir, contender.node.as_ref()?))
            };
            for (_, owner) in &held.locks {
                reads.push((*owner, node_of(owner), Kind::Lock));
            }
            for (_, owner) in &held.leaderships {
                reads.push((*owner, node_of(owner), Kind::Leadership));
            }
        }
        let member = paths::member(self.member.as_bytes());
        for (group, owner) in &held.memberships {
            let path = format!("{}/{member}", self.group_path(group.as_bytes()));
            reads.push((*owner, Some(path), Kind::Membership));
        }
        let client = &session.client;
        let lost = |report: &mut BeatReport, owner: OwnerToken, kind: Kind| match kind {
            Kind::Lock => report.lost_locks.push(owner),
            Kind::Membership => report.lost_memberships.push(owner),
            Kind::Leadership => report.lost_leaderships.push(owner),
        };
        let mut known = Vec::new();
        for (owner, path, kind) in reads {
            match path {
                Some(path) => known.push((owner, path, kind)),
                None => lost(&mut report, owner, kind),
            }
        }
        if known.is_empty() {
            // Nothing to read back: one request all the same, to prove the session alive.
            self.call("a heartbeat", client.check_stat(&self.options.base))
                .await??;
        }
        for chunk in known.chunks(READS_PER_REQUEST) {
            let mut reader = client.new_multi_reader();
            for (_, path, _) in chunk {
                reader.add_get_data(path)?;
            }
            let answers = self.call("a heartbeat", reader.commit()).await??;
            if answers.len() != chunk.len() {
                return Err(error::unexpected(
                    "a multi-read answered another number of reads",
                ));
            }
            for (answer, (owner, _, kind)) in answers.into_iter().zip(chunk) {
                match answer {
                    MultiReadResult::Data { stat, .. } if stat.ephemeral_owner == session.id => {}
                    // Gone, another session's, or unreadable to us (another ACL): not ours.
                    MultiReadResult::Data { .. } | MultiReadResult::Error { .. } => {
                        lost(&mut report, *owner, *kind);
                    }
                    other => return Err(error::unexpected(&format!("{other:?}"))),
                }
            }
        }
        // Contenders whose withdrawal failed (their hand-back never reached ZooKeeper) are
        // withdrawn now: on a session our heartbeats keep alive, nothing else would.
        self.withdraw_abandoned().await;
        self.answered(&session, sent)?;
        Ok(report)
    }

    async fn stop(&self) -> Result<()> {
        self.stopped.store(true, Ordering::Release);
        // (After any session being begun: it is published first, then closed here.)
        let _one = self.connecting.lock().await;
        self.current.store(0, Ordering::Release);
        let session = self
            .session
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(session) = session {
            // The client closes the session when its last handle goes: every ephemeral node
            // of ours (members, contenders) is deleted at once instead of at its timeout.
            let mut states = session.client.state_watcher();
            drop(session);
            let closed = async {
                while !states.peek_state().is_terminated() {
                    states.changed().await;
                }
            };
            if tokio::time::timeout(self.options.timeout, closed)
                .await
                .is_err()
            {
                return Err(Error::Connection {
                    backend: NAME,
                    source: "closing the session: no answer in time (it expires by itself)".into(),
                });
            }
        }
        Ok(())
    }

    async fn try_acquire(&self, request: LockRequest<'_>) -> Result<Option<FencingToken>> {
        self.take_lock(request).await
    }

    async fn release(&self, name: &LockName, owner: OwnerToken) -> Result<bool> {
        let dir = self.lock_dir(name);
        self.withdraw(&dir, owner).await
    }

    async fn stop_waiting(&self, name: &LockName, owner: OwnerToken) -> Result<()> {
        let dir = self.lock_dir(name);
        self.withdraw(&dir, owner).await.map(|_| ())
    }

    fn change_hint(&self, topic: Topic<'_>) -> Option<ChangeHint> {
        Some(match topic {
            Topic::Lock(_, owner) => self.gone_hint(Err(owner)),
            Topic::Group(group) => self.children_hint(self.group_path(group.as_bytes())),
            Topic::Leader(group) => {
                let dir = format!("{}/{}", self.group_path(group.as_bytes()), paths::LEADER);
                let holder = {
                    let holders = self.holders.lock().unwrap_or_else(|e| e.into_inner());
                    holders.get(&dir).cloned()
                };
                match holder {
                    // The leadership changes when its holder's node goes.
                    Some(holder) => self.gone_hint(Ok(format!("{dir}/{holder}"))),
                    None => self.children_hint(dir),
                }
            }
        })
    }

    fn groups(&self) -> Option<&dyn Groups> {
        Some(self)
    }

    fn elections(&self) -> Option<&dyn Elections> {
        Some(self)
    }
}

/// What a heartbeat's read checks.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Lock,
    Membership,
    Leadership,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_ids_are_zookeeper_s() {
        // As kazoo's make_digest_acl_credential("super", "secret") gives.
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(
            digest_id("super", "secret"),
            "super:lK75jTNcA+U9vtVEw5vB51mj/w4="
        );
    }
}
