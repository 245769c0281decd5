//! `etcd3+http://` (also `etcd://`): etcd v3, the coordination service for when one host is
//! not enough. Python tooz's key layout (through etcd's JSON gateway there, gRPC here), so a
//! Python tooz process and ours see the same groups, members and capabilities, and exclude
//! each other on locks.
//!
//! * **One session lease per coordinator**, as Go's `concurrency.Session`: members, locks and
//!   leaderships all live on it, heartbeats keep it alive (three times per TTL), and when etcd
//!   says it expired, everything on it is reported lost (never quietly re-taken) and a new
//!   lease starts by itself. A put does not renew the lease it rides on, so a lock or
//!   leadership is taken only on a lease renewed within the last third of its TTL (renewed
//!   first if need be), and its local lease is half the TTL: its key always outlives its
//!   holder's belief. Keys of grants the coordinator no longer holds — lost after a gap in
//!   heartbeats while etcd kept the lease (as over its own restart), or whose hand-back
//!   failed — are deleted by the next heartbeats, never left on a lease we keep renewing.
//! * **Locks** are Python tooz's keys, `/tooz/locks<name>`, created only if absent (so Python's
//!   locks and ours exclude each other), released by a transaction comparing our value. The
//!   fencing token is the key's create revision: etcd's revision counter, strictly increasing
//!   for every write, so tokens grow across holders and names alike.
//! * **Waiters queue**: a waiting acquire that is refused puts a key of its own under
//!   `tooz-rs/queue/<name in hex>/` (on the session lease, in the same transaction), and an
//!   acquire is granted only if no waiter of ours queued before it (compared on the keys'
//!   create revisions in the granting transaction): waiters are served in arrival order, and
//!   a releaser or a try asking again at once queues behind them. Each waiter watches only the
//!   one before it, the first watches the lock key (from the revision its attempt was answered
//!   at, so a release is seen within a network trip): one release wakes one waiter. Python
//!   tooz's waiters poll and know nothing of the queue: they can still take a lock between
//!   our waiters (and ours exclude them all the same). A waiter cut off from etcd keeps its
//!   place until its lease expires: those behind it wait up to that long (a queue's price,
//!   as on ZooKeeper). Groups and leaders are watched too: every wake-up is pushed by etcd's
//!   watch API.
//! * **Groups** are tooz's keys; ours list them without Python's bugs (members listed as
//!   groups, group `a/b` listed as a member of `a`) without changing what Python sees, and a
//!   member id may not hold `/` (its key would be another group's); a group's key has no
//!   lease (a key on a lease ending in `/` is a Python member whose id does, not a group). **Leaders** live under
//!   `tooz-rs/leaders/`, a prefix tooz never reads (its etcd driver has no elections).
//!
//! The options are listed on [`EtcdOptions`].

mod election;
mod error;
mod groups;
pub(crate) mod keys;
mod locks;
mod options;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, LeaseKeepAliveStream, LeaseKeeper, PutOptions,
    ResponseHeader, Txn, TxnOp, TxnOpResponse, WatchFilterType, WatchOptions,
};

use super::shared;
use crate::backend::{
    Backend, BeatReport, ChangeHint, Elections, FencingToken, Groups, Held, LockRequest, Losses,
    OwnerToken, Started, Topic,
};
use crate::characteristics::{Characteristic, Characteristics};
use crate::error::{Error, Result};
use crate::ids::{LockName, MemberId};
pub use options::EtcdOptions;

const NAME: &str = "etcd";

/// One coordinator's session with an etcd cluster.
pub struct EtcdBackend {
    options: EtcdOptions,
    member: MemberId,
    client: OnceLock<Client>,
    session: tokio::sync::Mutex<Option<Session>>,
    /// The session lease's id (0 before the first).
    lease: AtomicI64,
    /// The highest revision any answer carried: a watch from just past it misses nothing a
    /// check made afterwards could not see.
    seen: AtomicI64,
    /// Each waiting owner's place: its queue key, what its watch waits on, and from which
    /// revision (the one its last attempt was refused at: a watch from an older revision is
    /// served by etcd's catch-up loop, every 100 ms; one from the present at once).
    waiting: Arc<Mutex<HashMap<OwnerToken, Waiting>>>,
    /// Every lock and leader key we may have put (recorded before the request leaves), until
    /// it is known gone: a grant the coordinator no longer holds (lost, or a hand-back that
    /// failed) has its key deleted by the next heartbeats, never left on a lease we renew.
    grants: Mutex<HashMap<OwnerToken, Grant>>,
    /// `stop` ran: no new session is begun any more.
    stopped: std::sync::atomic::AtomicBool,
}

/// A key we may hold for a grant: the key, our value in it, and in how many heartbeats in a
/// row the coordinator's list lacked the grant.
#[derive(Debug, Clone)]
struct Grant {
    key: Vec<u8>,
    value: Vec<u8>,
    missed: u8,
}

/// A waiting owner's place in a lock's queue.
#[derive(Debug, Clone)]
struct Waiting {
    /// Its queue key and that key's create revision (its place).
    queued: Option<(Vec<u8>, i64)>,
    /// A queue key a transaction may have put (recorded before it leaves: its answer may be
    /// lost), deleted if the waiter gives up before it knows its place.
    maybe: Option<Vec<u8>>,
    /// The key whose deletion it waits for: the waiter before it, or the lock if first.
    watch: Vec<u8>,
    /// The revision its last attempt was answered at.
    since: i64,
    /// Its leaving began (and may have failed): heartbeats finish it.
    abandoned: bool,
}

/// The session lease and its keep-alive stream.
struct Session {
    lease: i64,
    ttl: Duration,
    keeper: LeaseKeeper,
    stream: LeaseKeepAliveStream,
    /// When the last renewal etcd answered was sent.
    renewed: tokio::time::Instant,
    /// A renewal was sent and its answer not read (its caller was cancelled): the next read
    /// would take that answer for its own, so the stream is replaced first.
    dirty: bool,
}

impl fmt::Debug for EtcdBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdBackend")
            .field("options", &self.options)
            .field("member", &self.member)
            .field("lease", &self.lease.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// An owner token as a key's value (16 bytes, as Python's uuid4 values).
fn owner_bytes(owner: OwnerToken) -> Vec<u8> {
    owner.as_u128().to_be_bytes().to_vec()
}

impl EtcdBackend {
    /// A backend for `member` on the cluster in `options` (connected by `start`).
    pub fn new(options: EtcdOptions, member: MemberId) -> Self {
        Self {
            options,
            member,
            client: OnceLock::new(),
            session: tokio::sync::Mutex::new(None),
            lease: AtomicI64::new(0),
            seen: AtomicI64::new(0),
            waiting: Arc::default(),
            grants: Mutex::new(HashMap::new()),
            stopped: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The client (a cheap handle; etcd-client's calls take `&mut`).
    fn client(&self) -> Result<Client> {
        self.client.get().cloned().ok_or(Error::Backend {
            backend: NAME,
            source: "not started".into(),
        })
    }

    fn lease(&self) -> i64 {
        self.lease.load(Ordering::Acquire)
    }

    /// Notes the revision an answer carried.
    fn saw(&self, header: Option<&ResponseHeader>) -> i64 {
        let revision = header.map_or(0, ResponseHeader::revision);
        self.seen.fetch_max(revision, Ordering::AcqRel);
        revision
    }

    /// Bounds a request by the `timeout` option.
    async fn bounded<T>(
        &self,
        what: &str,
        request: impl Future<Output = std::result::Result<T, etcd_client::Error>>,
    ) -> Result<T> {
        let options = &self.options;
        shared::bounded(NAME, &options.url, options.timeout, what, request).await
    }

    /// Runs `txn`: whether its comparisons held, its responses, and its revision.
    async fn txn(&self, what: &str, txn: Txn) -> Result<(bool, Vec<TxnOpResponse>, i64)> {
        let mut client = self.client()?;
        let response = self.bounded(what, client.txn(txn)).await?;
        let revision = self.saw(response.header());
        // etcd-client unwraps each operation's answer: a malformed one (a proxy's, a broken
        // server's) would panic in the caller. Caught here, it is an error like any other.
        let answers =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| response.op_responses()))
                .map_err(|_| {
                    error::unexpected("a transaction answer without its operations' results")
                })?;
        Ok((response.succeeded(), answers, revision))
    }

    /// A new session lease, kept alive by heartbeats.
    async fn new_session(&self) -> Result<(Session, Duration)> {
        let sent = tokio::time::Instant::now();
        let mut client = self.client()?;
        let ttl = self.options.lease_ttl.as_secs().max(2);
        let ttl = i64::try_from(ttl).unwrap_or(i64::MAX);
        let granted = self
            .bounded("granting a lease", client.lease_grant(ttl, None))
            .await?;
        self.saw(granted.header());
        let (keeper, stream) = self
            .bounded(
                "keeping a lease alive",
                client.lease_keep_alive(granted.id()),
            )
            .await?;
        self.lease.store(granted.id(), Ordering::Release);
        // (Clamped: a zero would make heartbeats spin, a huge one overflow deadlines.)
        let ttl = u64::try_from(granted.ttl())
            .unwrap_or(0)
            .clamp(1, 365 * 24 * 3600);
        let ttl = Duration::from_secs(ttl);
        Ok((
            Session {
                lease: granted.id(),
                ttl,
                keeper,
                stream,
                renewed: sent,
                dirty: false,
            },
            ttl,
        ))
    }

    /// Renews the session lease once: its TTL left, 0 or less if etcd says it expired. A
    /// keep-alive stream that failed (etcd closes it on an expired lease, and with a dead
    /// connection) is replaced after asking etcd what became of the lease.
    async fn renew(&self, session: &mut Session) -> Result<i64> {
        if !session.dirty
            && let Ok(Some(ttl)) = self.keep_alive(session).await
        {
            return Ok(ttl);
        }
        let mut client = self.client()?;
        let asked = client.lease_time_to_live(session.lease, None);
        let left = self.bounded("renewing the session lease", asked).await?;
        self.saw(left.header());
        if left.ttl() <= 0 {
            return Ok(left.ttl());
        }
        let (keeper, stream) = self
            .bounded(
                "keeping a lease alive",
                client.lease_keep_alive(session.lease),
            )
            .await?;
        session.keeper = keeper;
        session.stream = stream;
        self.keep_alive(session)
            .await?
            .ok_or_else(|| Error::Connection {
                backend: NAME,
                source: "the lease keep-alive stream ended".into(),
            })
    }

    /// One keep-alive on the session's stream: the TTL etcd answered, `None` if the stream
    /// ended. The stream is dirty from the send until the answer is read (see `dirty`).
    async fn keep_alive(&self, session: &mut Session) -> Result<Option<i64>> {
        session.dirty = true;
        let renew = async {
            session.keeper.keep_alive().await?;
            session.stream.message().await
        };
        let answer = self.bounded("renewing the session lease", renew).await?;
        Ok(answer.map(|answer| {
            session.dirty = false;
            self.saw(answer.header());
            answer.ttl()
        }))
    }

    fn grants(&self) -> MutexGuard<'_, HashMap<OwnerToken, Grant>> {
        self.grants.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The session lease, renewed first if its last renewal was sent more than a third of
    /// its TTL ago (heartbeats missed, or manual ones): a key put now lives until that
    /// renewal plus the TTL — a put does not renew its lease — which must outlast the
    /// grant's local lease (half the TTL, counted from now).
    async fn fresh_lease(&self) -> Result<i64> {
        let mut guard = self.session.lock().await;
        let Some(session) = guard.as_mut() else {
            return Err(Error::SessionLost { backend: NAME });
        };
        if session.renewed.elapsed() > session.ttl / 3 {
            let sent = tokio::time::Instant::now();
            if self.renew(session).await? <= 0 {
                return Err(Error::SessionLost { backend: NAME });
            }
            session.renewed = sent;
        }
        Ok(session.lease)
    }

    /// Puts `value` at `key` on the session lease if the key is absent (a lock, a
    /// leadership): the grant's token if it was put, and the revision it was answered at.
    /// Recorded before the request leaves.
    pub(super) async fn put_if_absent(
        &self,
        what: &str,
        owner: OwnerToken,
        key: Vec<u8>,
        value: Vec<u8>,
    ) -> Result<(Option<FencingToken>, i64)> {
        let lease = self.fresh_lease().await?;
        let grant = Grant {
            key: key.clone(),
            value: value.clone(),
            missed: 0,
        };
        self.grants().insert(owner, grant);
        let put = PutOptions::new().with_lease(lease);
        let txn = Txn::new()
            .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key, value, Some(put))]);
        let (put, _, revision) = self.txn(what, txn).await?;
        if put {
            // The transaction's revision is the one its put created the key at.
            return Ok((Some(token(revision)?), revision));
        }
        self.grants().remove(&owner);
        Ok((None, revision))
    }

    /// Deletes `key` if it still holds our `value` (a release, a resignation): whether it
    /// did. The grant is forgotten once the answer is known.
    pub(super) async fn delete_if_ours(
        &self,
        what: &str,
        owner: OwnerToken,
        key: Vec<u8>,
        value: Vec<u8>,
    ) -> Result<bool> {
        let txn = Txn::new()
            .when([Compare::value(key.clone(), CompareOp::Equal, value)])
            .and_then([TxnOp::delete(key, None)]);
        let (deleted, _, _) = self.txn(what, txn).await?;
        self.grants().remove(&owner);
        Ok(deleted)
    }

    /// Deletes the keys of grants the coordinator has not held for two heartbeats in a row
    /// (a grant registered after one heartbeat's list was taken is in the next one's).
    async fn sweep(&self, held: &Held) -> Result<()> {
        let stale: Vec<(OwnerToken, Grant)> = {
            let mut grants = self.grants();
            let holds = |owner: &OwnerToken| {
                held.locks.iter().any(|(_, o)| o == owner)
                    || held.leaderships.iter().any(|(_, o)| o == owner)
            };
            for (owner, grant) in grants.iter_mut() {
                grant.missed = if holds(owner) {
                    0
                } else {
                    grant.missed.saturating_add(1)
                };
            }
            grants
                .iter()
                .filter(|(_, g)| g.missed >= 2)
                .map(|(o, g)| (*o, g.clone()))
                .collect()
        };
        for (owner, grant) in stale {
            self.delete_if_ours(
                "deleting a key no grant holds",
                owner,
                grant.key,
                grant.value,
            )
            .await?;
        }
        Ok(())
    }

    fn waiting(&self) -> MutexGuard<'_, HashMap<OwnerToken, Waiting>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A wake-up hint: the first event on `key` (a prefix if `prefix`; deletions only if
    /// `deletions`) after the last revision seen when it was made — or, for a lock's waiter
    /// (`waiter`), the deletion of what it waits behind (the waiter before it, or the lock)
    /// after the revision its last attempt was refused at, both known when the hint is first
    /// polled (after that attempt). A watch that cannot start or is cut wakes the caller too,
    /// a little later (it then looks again).
    fn watch_hint(
        &self,
        key: Vec<u8>,
        prefix: bool,
        deletions: bool,
        waiter: Option<OwnerToken>,
    ) -> ChangeHint {
        let client = self.client.get().cloned();
        let seen = self.seen.load(Ordering::Acquire);
        let waiting = Arc::clone(&self.waiting);
        Box::pin(async move {
            let Some(mut client) = client else {
                return;
            };
            let place = waiter.and_then(|owner| {
                let waiting = waiting.lock().unwrap_or_else(|e| e.into_inner());
                waiting.get(&owner).map(|w| (w.watch.clone(), w.since))
            });
            if let Some((behind, since)) = place {
                waiter_hint(&mut client, behind, since).await;
                return;
            }
            let from = seen + 1;
            let mut options = WatchOptions::new().with_start_revision(from);
            if prefix {
                options = options.with_prefix();
            }
            if deletions {
                options = options.with_filters([WatchFilterType::NoPut]);
            }
            if let Ok(mut stream) = client.watch(key, Some(options)).await {
                loop {
                    match stream.message().await {
                        Ok(Some(answer)) if answer.events().is_empty() && !answer.canceled() => {}
                        Ok(Some(_)) => return,
                        _ => break,
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        })
    }
}

/// A lock waiter's wake-up: the deletion of `behind` (the waiter before it, or the lock), which
/// stood there when its attempt was refused at revision `since`. The watch starts at the
/// current revision, and a read after it is in place covers what happened since `since`.
/// A watch from `since` would be simpler, but etcd serves a watch that starts in the past from
/// its history, in a sweep every 100 ms, not as the event happens: every hand-off between
/// processes took 100 ms (scripts/torture: 14 grants/s for two processes ping-ponging).
async fn waiter_hint(client: &mut Client, behind: Vec<u8>, since: i64) {
    let options = WatchOptions::new().with_filters([WatchFilterType::NoPut]);
    if let Ok(mut stream) = client.watch(behind.clone(), Some(options)).await {
        let mut checked = false;
        loop {
            match stream.message().await {
                Ok(Some(answer)) if answer.events().is_empty() && !answer.canceled() => {
                    if !checked {
                        checked = true;
                        // Was it deleted (and perhaps put again) after `since`, before the
                        // watch began?
                        match client.get(behind.clone(), None).await {
                            Ok(now) => match now.kvs().first() {
                                Some(kv) if kv.create_revision() <= since => {}
                                _ => return,
                            },
                            Err(_) => break,
                        }
                    }
                }
                Ok(Some(_)) => return,
                _ => break,
            }
        }
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
}

#[async_trait]
impl Backend for EtcdBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn start(&self, _losses: Losses) -> Result<Started> {
        if self.member.as_bytes().contains(&b'/') {
            return Err(Error::InvalidName {
                kind: "member",
                name: crate::ids::display_name(self.member.as_bytes()),
                reason: "on etcd a member id may not hold '/': its key would be another \
                         group's (tooz's layout)"
                    .into(),
            });
        }
        if self.client.get().is_none() {
            let mut connect = ConnectOptions::new()
                .with_connect_timeout(self.options.timeout)
                .with_keep_alive(Duration::from_secs(1), self.options.timeout)
                .with_keep_alive_while_idle(true)
                // (An auth token dies with an etcd restart, or its TTL: a new one is fetched.)
                .with_auto_token_refresh(true);
            if let Some((user, password)) = &self.options.user {
                connect = connect.with_user(user.clone(), password.clone());
            }
            #[cfg(feature = "etcd-tls")]
            if let Some(tls) = &self.options.tls {
                use etcd_client::{Certificate, Identity, TlsOptions};
                let mut config = TlsOptions::new().ca_certificate(Certificate::from_pem(&tls.ca));
                if let Some((cert, key)) = &tls.identity {
                    config = config.identity(Identity::from_pem(cert, key));
                }
                connect = connect.with_tls(config);
            }
            let endpoints = self.options.endpoints.clone();
            let client = self
                .bounded("connecting", Client::connect(endpoints, Some(connect)))
                .await?;
            let _ = self.client.set(client);
        }
        let (session, ttl) = self.new_session().await?;
        *self.session.lock().await = Some(session);
        let characteristics = Characteristics::new(&[
            Characteristic::DistributedAcrossThreads,
            Characteristic::DistributedAcrossProcesses,
            Characteristic::DistributedAcrossHosts,
            Characteristic::Linearizable,
            Characteristic::Serializable,
        ]);
        // Grants live on the session lease, which a put does not renew: their local lease is
        // half the TTL (see `fresh_lease`), so that a key always outlives its holder's belief.
        // Every wake-up is an etcd watch, which sees a key deleted however it went (released,
        // its lease expired or was revoked).
        Ok(Started::new(ttl, characteristics)
            .with_grant_timeout(Some(ttl / 2))
            .with_complete_hints()
            .with_queued_lock_waits()
            // (A lock key is put by the attempt that answers, on a freshly renewed lease.)
            .with_grants_only_in_attempts())
    }

    async fn heartbeat(&self, held: &Held) -> Result<BeatReport> {
        let mut report = BeatReport::default();
        {
            let mut guard = self.session.lock().await;
            let sent = tokio::time::Instant::now();
            let ttl = match guard.as_mut() {
                Some(session) => {
                    let ttl = self.renew(session).await?;
                    session.renewed = sent;
                    ttl
                }
                None => 0,
            };
            if ttl <= 0 {
                if self.stopped.load(Ordering::Acquire) {
                    return Err(Error::Stopped);
                }
                // Expired on etcd: everything on it is gone. A new session, reported.
                let (session, _) = self.new_session().await?;
                *guard = Some(session);
                report.session_restarted = true;
                return Ok(report);
            }
        }
        // Keys of grants the coordinator gave up (lost after a gap in heartbeats while etcd
        // kept the lease, as over its own restart; or a hand-back that failed) go now.
        self.sweep(held).await?;
        self.leave_abandoned_queues().await;
        // Everything else we hold, checked in one transaction: a key deleted by someone else
        // (Python's `break_`, an operator) is a loss too.
        let lease = self.lease();
        let mut reads = Vec::new();
        let mut expect = Vec::new();
        for (name, owner) in &held.locks {
            reads.push(TxnOp::get(keys::lock(name.as_bytes()), None));
            expect.push((*owner, Some(owner_bytes(*owner)), Kind::Lock));
        }
        for (group, owner) in &held.memberships {
            reads.push(TxnOp::get(
                keys::member(group.as_bytes(), self.member.as_bytes()),
                None,
            ));
            expect.push((*owner, None, Kind::Membership));
        }
        for (group, owner) in &held.leaderships {
            reads.push(TxnOp::get(keys::leader(group.as_bytes()), None));
            expect.push((*owner, Some(self.leader_value(*owner)), Kind::Leadership));
        }
        // etcd takes at most 128 operations in a transaction.
        let mut answers = Vec::with_capacity(reads.len());
        let mut reads = reads.into_iter().peekable();
        while reads.peek().is_some() {
            let chunk: Vec<TxnOp> = reads.by_ref().take(128).collect();
            let asked = chunk.len();
            let (_, got, _) = self.txn("a heartbeat", Txn::new().and_then(chunk)).await?;
            if got.len() != asked {
                return Err(error::unexpected(
                    "a transaction answered another number of reads",
                ));
            }
            answers.extend(got);
        }
        for (answer, (owner, value, kind)) in answers.iter().zip(expect) {
            let kv = match answer {
                TxnOpResponse::Get(get) => get.kvs().first(),
                _ => None,
            };
            let ours = kv.is_some_and(|kv| {
                kv.lease() == lease && value.as_ref().is_none_or(|v| kv.value() == v.as_slice())
            });
            if !ours {
                match kind {
                    Kind::Lock => report.lost_locks.push(owner),
                    Kind::Membership => report.lost_memberships.push(owner),
                    Kind::Leadership => report.lost_leaderships.push(owner),
                }
            }
        }
        Ok(report)
    }

    async fn stop(&self) -> Result<()> {
        self.stopped.store(true, Ordering::Release);
        let session = self.session.lock().await.take();
        if let Some(session) = session {
            // Revoking the lease deletes every key on it at once (members, locks, leaders),
            // instead of leaving them for the TTL.
            let mut client = self.client()?;
            self.bounded("revoking the lease", client.lease_revoke(session.lease))
                .await?;
        }
        Ok(())
    }

    async fn try_acquire(&self, request: LockRequest<'_>) -> Result<Option<FencingToken>> {
        self.take_lock(request).await
    }

    async fn release(&self, name: &LockName, owner: OwnerToken) -> Result<bool> {
        self.release_lock(name, owner).await
    }

    async fn stop_waiting(&self, _name: &LockName, owner: OwnerToken) -> Result<()> {
        self.leave_queue(owner).await
    }

    fn change_hint(&self, topic: Topic<'_>) -> Option<ChangeHint> {
        Some(match topic {
            Topic::Lock(name, owner) => {
                self.watch_hint(keys::lock(name.as_bytes()), false, true, Some(owner))
            }
            Topic::Group(group) => {
                self.watch_hint(keys::group(group.as_bytes()), true, false, None)
            }
            Topic::Leader(group) => {
                self.watch_hint(keys::leader(group.as_bytes()), false, false, None)
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

/// A fencing token from a revision (etcd's revisions start at 1).
fn token(revision: i64) -> Result<FencingToken> {
    u64::try_from(revision)
        .ok()
        .filter(|r| *r > 0)
        .map(FencingToken::new)
        .ok_or_else(|| error::unexpected(&format!("revision {revision}")))
}
