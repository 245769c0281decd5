//! `mysql://`: MySQL 5.7.5+ or MariaDB 10.0.2+, for teams that run it and no coordination
//! service. Locks, groups, capabilities, watches and leader election, on a connection per
//! coordinator (and one per waiting acquire) and a few InnoDB tables created on first use.
//!
//! * **Locks** are `GET_LOCK` locks on the very names Python tooz's MySQL driver uses, so
//!   Python and Rust processes exclude each other on the same name. A name the server cannot
//!   take as it is — over 64 characters, not UTF-8, empty, or beginning with the marker
//!   `~tooz-sha256:` — is taken as that marker followed by the first 51 hex digits of its
//!   SHA-256: no name used as it is can look like that, so two different names never share a
//!   server lock, except on MySQL, which folds case ('A' and 'a' exclude each other there, as
//!   they do for Python tooz: safe, if surprising; MariaDB keeps them apart). Each grant's fencing token comes from a counter row of the name (in
//!   `<prefix>locks`, keyed by the name's SHA-256), incremented by the statement that takes
//!   the lock: one round trip, strictly increasing, durable.
//! * **Waiting is done by the server**: a waiting acquire that is refused at once waits in
//!   `GET_LOCK(name, seconds)` on a connection of its own, so it is granted the moment the lock
//!   is released, in the order the server queues its waiters (MariaDB and MySQL grant user
//!   locks first come, first served), and keeps that connection until it releases the lock.
//!   A waiter that gives up has its wait cut by `KILL QUERY`.
//! * **A lost connection is a lost lock, reported at once.** The session holds a sentinel lock
//!   that a watcher, on one more connection, waits for: the moment the server ends the session
//!   (`KILL`, a crash, `wait_timeout`) the watcher is granted it and the session's locks are
//!   reported lost. A lock granted to a waiting acquire lives on that acquire's connection,
//!   which heartbeats check; any statement error that ends a connection ends its grants too.
//!   A holder cut off by a partition is bounded on the server: each connection's
//!   `wait_timeout` is `lock_timeout` (rounded up to whole seconds), so the server frees its
//!   locks that long after its last heartbeat, not after TCP's hours, and the local lease (90%
//!   of it) fires `lost()` first. A coordinator thus uses two connections, plus one per
//!   acquire waiting or holding a lock it waited for.
//! * **Groups and elections** are rows, live by the server's clock (`UTC_TIMESTAMP(6)`, never
//!   ours): a member's beat row and a leader's lease row are renewed by heartbeats; expired
//!   members are pruned as they are read. Watches poll (MySQL pushes nothing).
//! * Every name, id and capability travels as a statement parameter; only the table prefix,
//!   checked to be `[a-z_][a-z0-9_]*`, is part of the statements' text.
//!
//! What this backend cannot promise, by the nature of session locks and server time:
//!
//! * A connection the server ends on its side (`KILL`, a crash, a failover to a replica,
//!   which holds no `GET_LOCK` locks) frees its locks there first; we hear of it a network
//!   trip later (the watcher), or at the next heartbeat for a lock a waiting acquire was
//!   granted. Fencing tokens are what protects a resource across such an end.
//! * Memberships and leaderships are timed by the database host's clock: a forward step of
//!   that clock shortens them. Our host's clock is never used.
//! * TLS (`ssl_ca`, `ssl_cert`, `ssl_key`; feature `mysql-tls`) always checks the server's
//!   name: `ssl_check_hostname=false` is refused, as are `ssl_capath` and `ssl_cipher`, and
//!   TLS over a unix socket (the client would not encrypt it). A URL that asks for TLS never
//!   connects in plain text.
//!
//! The options are listed on [`MysqlOptions`].

mod election;
mod error;
mod groups;
mod link;
pub(crate) mod locks;
mod monitor;
mod options;
mod sql;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use mysql_async::prelude::FromValue;
use mysql_async::{Params, Row};
use sha2::{Digest, Sha256};

use super::shared::Changes;
use crate::backend::{
    Backend, BeatReport, ChangeHint, Elections, FencingToken, Groups, Held, LockRequest, Losses,
    OwnerToken, Started, Topic,
};
use crate::characteristics::{Characteristic, Characteristics};
use crate::error::Result;
use crate::ids::{LockName, MemberId};
use link::{Failure, Link, Outcome};
pub use options::MysqlOptions;
use sql::Sql;

const NAME: &str = "mysql";
/// How often a waiter looks again without news (a release we did not make, an expiry).
const UNANNOUNCED_POLL: Duration = Duration::from_millis(500);
/// Idle spare connections kept for the next waiting acquire.
const SPARES_KEPT: usize = 4;

/// A connection that may be holding locks (taken by a waiting acquire), by generation.
type Pinned = Arc<tokio::sync::Mutex<Option<Link>>>;

/// One coordinator's connections to a MySQL or MariaDB server.
pub struct MysqlBackend {
    options: MysqlOptions,
    member: MemberId,
    /// The SHA-256 of our member id, its key in the tables.
    member_key: Vec<u8>,
    sql: Sql,
    /// The coordinator's session; replaced (lazily) when it ends.
    main: tokio::sync::Mutex<Option<Link>>,
    /// Idle connections for waiting acquires.
    spares: Mutex<Vec<Link>>,
    /// Where each waiting owner's wait stands (for `KILL QUERY` when it gives up).
    waiting: Mutex<HashMap<OwnerToken, Wait>>,
    generation: AtomicU64,
    shared: Arc<Shared>,
    schema_ready: AtomicBool,
    /// Whether the server is MariaDB (its lock names may be longer), once connected.
    mariadb: OnceLock<bool>,
    /// `stop` ran: no spare connection is kept, and no lock granted to one is pinned.
    stopped: AtomicBool,
}

/// What the backend shares with the task watching its session.
#[derive(Debug, Default)]
struct Shared {
    /// Connections a waiting acquire was granted a lock on, until they hold nothing.
    pinned: Mutex<HashMap<u64, Pinned>>,
    /// Every lock taken (or being taken), by owner.
    held: Mutex<HashMap<OwnerToken, HeldLock>>,
    /// Connections known to have ended on the server (the watcher saw it).
    ended: Mutex<HashSet<u64>>,
    losses: Mutex<Option<Losses>>,
    lock_changes: Changes,
}

impl Shared {
    fn held(&self) -> MutexGuard<'_, HashMap<OwnerToken, HeldLock>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn pinned(&self) -> MutexGuard<'_, HashMap<u64, Pinned>> {
        self.pinned.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn ended(&self) -> MutexGuard<'_, HashSet<u64>> {
        self.ended.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Connection `generation` ended: the server freed its locks, so every lock taken on it
    /// is lost, and said so now rather than at the next heartbeat.
    fn link_ended(&self, generation: u64) {
        let lost: Vec<OwnerToken> = {
            let mut held = self.held();
            let lost: Vec<OwnerToken> = held
                .iter()
                .filter(|(_, h)| h.generation == generation)
                .map(|(owner, _)| *owner)
                .collect();
            for owner in &lost {
                held.remove(owner);
            }
            lost
        };
        {
            let losses = self.losses.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(losses) = losses.as_ref() {
                losses.grants_lost(lost);
            }
        }
        // Reported first: dropping a pinned connection may close it, which frees its locks
        // on the server at once.
        self.pinned().remove(&generation);
        self.lock_changes.notify();
    }

    /// Whether connection `generation` was seen to end (or counts as ended).
    fn has_ended(&self, generation: u64) -> bool {
        self.ended().contains(&generation)
    }
}

/// Where a waiting owner's wait stands.
#[derive(Debug, Clone, Copy)]
enum Wait {
    /// Waiting on the server, on the connection with this id.
    On(u32),
    /// Its owner gave up before the wait began: it must not begin.
    Abandoned,
}

/// A lock held: the server's name for it and the connection holding it.
#[derive(Debug, Clone)]
struct HeldLock {
    server_name: String,
    generation: u64,
}

impl fmt::Debug for MysqlBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MysqlBackend")
            .field("options", &self.options)
            .field("member", &self.member)
            .finish_non_exhaustive()
    }
}

/// The key of a name in the tables: its SHA-256.
fn key(bytes: &[u8]) -> Vec<u8> {
    Sha256::digest(bytes).to_vec()
}

/// Column `i` of `row`, as `T` (an error, never a panic, when the server sends other data).
fn column<T: FromValue>(row: &Row, i: usize) -> Result<T> {
    match row.get_opt::<T, usize>(i) {
        Some(Ok(value)) => Ok(value),
        Some(Err(e)) => Err(error::unexpected(&format!("column {i}: {e}"))),
        None => Err(error::unexpected(&format!("no column {i}"))),
    }
}

/// Microseconds, as `INTERVAL ? MICROSECOND` takes them.
fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

impl MysqlBackend {
    /// A backend for `member` on the server in `options` (connected by `start`).
    pub fn new(options: MysqlOptions, member: MemberId) -> Self {
        let sql = Sql::new(&options.table_prefix);
        Self {
            member_key: key(member.as_bytes()),
            options,
            member,
            sql,
            main: tokio::sync::Mutex::new(None),
            spares: Mutex::new(Vec::new()),
            waiting: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
            shared: Arc::default(),
            schema_ready: AtomicBool::new(false),
            mariadb: OnceLock::new(),
            stopped: AtomicBool::new(false),
        }
    }

    fn held(&self) -> MutexGuard<'_, HashMap<OwnerToken, HeldLock>> {
        self.shared.held()
    }

    fn pinned(&self) -> MutexGuard<'_, HashMap<u64, Pinned>> {
        self.shared.pinned()
    }

    /// A new connection (the first one of this backend creates the tables if needed).
    async fn open_link(&self) -> Result<Link> {
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        let schema = !self.schema_ready.load(Ordering::Acquire);
        let schema = schema.then_some(self.sql.schema.as_slice());
        let link = Link::open(&self.options, schema, generation).await?;
        self.schema_ready.store(true, Ordering::Release);
        let _ = self.mariadb.set(link.mariadb);
        Ok(link)
    }

    fn link_ended(&self, generation: u64) {
        self.shared.link_ended(generation);
    }

    /// A new session: a connection, with a sentinel lock that a watcher waits on, so that
    /// the moment the server ends the session (`KILL`, a crash, `wait_timeout`) its locks are
    /// reported lost.
    async fn open_main(&self) -> Result<Link> {
        let mut link = self.open_link().await?;
        monitor::watch(&self.options, &self.shared, &mut link).await?;
        Ok(link)
    }

    /// Runs `sql` on the coordinator's session, opening one if there is none.
    async fn on_main(&self, what: &str, sql: &str, params: Params) -> Result<Outcome> {
        let mut main = self.main.lock().await;
        self.on_main_locked(&mut main, what, sql, params).await
    }

    /// [`Self::on_main`] with the session already in hand (for steps that must not be
    /// interleaved with other statements).
    async fn on_main_locked(
        &self,
        main: &mut Option<Link>,
        what: &str,
        sql: &str,
        params: Params,
    ) -> Result<Outcome> {
        let link = self.session(main).await?;
        let generation = link.generation;
        match link
            .run(&self.options, self.options.timeout, what, sql, params)
            .await
        {
            Ok(outcome) => Ok(outcome),
            Err(Failure::Refused(e)) => Err(e),
            // Nothing interrupts the session's statements but a stranger: its state is not
            // known, so it goes, with what it held.
            Err(failure) => {
                // Reported before the connection closes (which frees its locks on the server).
                self.link_ended(generation);
                main.take();
                Err(failure.into_error())
            }
        }
    }

    /// The live session in `main`, opening one if there is none or the watcher saw it end.
    async fn session<'m>(&self, main: &'m mut Option<Link>) -> Result<&'m mut Link> {
        // (Open even after `stop`: a grant handed back as the coordinator stopped still needs
        // a session to be released or resigned on.)
        if let Some(link) = main.as_ref()
            && self.shared.ended().remove(&link.generation)
        {
            // Anything granted on it since the watcher gave it up is reported lost too, before
            // the connection closes (which frees its locks on the server).
            self.link_ended(link.generation);
            main.take();
        }
        match main {
            Some(link) => Ok(link),
            None => Ok(main.insert(self.open_main().await?)),
        }
    }

    /// The rows of `sql` on the session.
    async fn rows(&self, what: &str, sql: &str, params: Params) -> Result<Vec<Row>> {
        Ok(self.on_main(what, sql, params).await?.rows)
    }

    /// The number of rows `sql` changed on the session.
    async fn affected(&self, what: &str, sql: &str, params: Params) -> Result<u64> {
        Ok(self.on_main(what, sql, params).await?.affected)
    }

    /// Our member's beat, anew: rows a lapsed beat of this member id left behind go first.
    async fn start_member(&self) -> Result<()> {
        let ms = micros(self.options.membership_timeout);
        let [clean, beat] = [&self.sql.start_member[0], &self.sql.start_member[1]];
        self.affected(
            "starting the member",
            clean,
            (self.member_key.clone(),).into(),
        )
        .await?;
        self.affected(
            "starting the member",
            beat,
            (self.member_key.clone(), ms).into(),
        )
        .await?;
        Ok(())
    }

    /// Checks every connection holding a lock; one that fails ends with its locks.
    async fn check_pinned(&self) {
        let links: Vec<(u64, Pinned)> = self
            .pinned()
            .iter()
            .map(|(g, l)| (*g, Arc::clone(l)))
            .collect();
        for (generation, link) in links {
            let mut guard = link.lock().await;
            let Some(held) = guard.as_mut() else {
                continue;
            };
            let ping = held
                .run(
                    &self.options,
                    self.options.timeout,
                    "a heartbeat",
                    "DO 0",
                    Params::Empty,
                )
                .await;
            if ping.is_err() {
                self.link_ended(generation);
                guard.take();
            }
        }
    }
}

#[async_trait]
impl Backend for MysqlBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn start(&self, losses: Losses) -> Result<Started> {
        *self.shared.losses.lock().unwrap_or_else(|e| e.into_inner()) = Some(losses);
        self.start_member().await?;
        let characteristics = Characteristics::new(&[
            Characteristic::DistributedAcrossThreads,
            Characteristic::DistributedAcrossProcesses,
            Characteristic::DistributedAcrossHosts,
            Characteristic::NonTimeoutBased,
        ]);
        Ok(
            Started::new(self.options.membership_timeout, characteristics)
                .with_grant_timeout(Some(self.options.lock_timeout))
                .with_blocking_lock_waits()
                .with_queued_lock_waits(),
        )
    }

    async fn heartbeat(&self, held: &Held) -> Result<BeatReport> {
        let mut report = BeatReport::default();
        let beat = (
            micros(self.options.membership_timeout),
            self.member_key.clone(),
        );
        let beats = self
            .affected("a heartbeat", &self.sql.beat, beat.into())
            .await?;
        if beats == 0 {
            // Our beat ran out: peers may have pruned us, so every membership is lost, and our
            // rows are gone before the beat comes back (no ghost member).
            self.start_member().await?;
            report
                .lost_memberships
                .extend(held.memberships.iter().map(|(_, o)| *o));
        } else if !held.memberships.is_empty() {
            // Removed by someone else (another coordinator of our member id, say).
            let rows = self
                .rows(
                    "a heartbeat",
                    &self.sql.joined,
                    (self.member_key.clone(),).into(),
                )
                .await?;
            let mut joined = Vec::with_capacity(rows.len());
            for row in &rows {
                joined.push(column::<Vec<u8>>(row, 0)?);
            }
            for (group, owner) in &held.memberships {
                if !joined.contains(&key(group.as_bytes())) {
                    report.lost_memberships.push(*owner);
                }
            }
        }
        let lease = micros(self.options.lock_timeout);
        for (group, owner) in &held.leaderships {
            let params = (lease, key(group.as_bytes()), owner.to_hex());
            let renewed = self
                .affected("a heartbeat", &self.sql.renew_leader, params.into())
                .await?;
            if renewed == 0 {
                report.lost_leaderships.push(*owner);
            }
        }
        self.check_pinned().await;
        let main = self.main.lock().await.as_ref().map(|l| l.generation);
        let pinned: Vec<u64> = self.pinned().keys().copied().collect();
        let locks = self.held();
        for (_, owner) in &held.locks {
            let alive = locks
                .get(owner)
                .is_some_and(|h| Some(h.generation) == main || pinned.contains(&h.generation));
            if !alive {
                report.lost_locks.push(*owner);
            }
        }
        Ok(report)
    }

    async fn stop(&self) -> Result<()> {
        let result = self
            .affected(
                "stopping",
                &self.sql.stop_member,
                (self.member_key.clone(),).into(),
            )
            .await
            .map(drop);
        self.stopped.store(true, Ordering::Release);
        // Closing the connections frees whatever they still hold on the server.
        let mut links: Vec<Link> = self.main.lock().await.take().into_iter().collect();
        links.extend(
            self.spares
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .drain(..),
        );
        let pinned: Vec<Pinned> = self.pinned().drain().map(|(_, l)| l).collect();
        for link in pinned {
            links.extend(link.lock().await.take());
        }
        for link in links {
            link.close(&self.options).await;
        }
        result
    }

    async fn try_acquire(&self, request: LockRequest<'_>) -> Result<Option<FencingToken>> {
        self.take_lock(request).await
    }

    async fn release(&self, name: &LockName, owner: OwnerToken) -> Result<bool> {
        self.release_lock(name, owner).await
    }

    async fn stop_waiting(&self, _name: &LockName, owner: OwnerToken) -> Result<()> {
        self.cut_wait(owner).await
    }

    fn change_hint(&self, topic: Topic<'_>) -> Option<ChangeHint> {
        match topic {
            Topic::Lock(..) => Some(self.shared.lock_changes.hint_or_poll(UNANNOUNCED_POLL)),
            Topic::Group(_) | Topic::Leader(_) => None,
        }
    }

    fn groups(&self) -> Option<&dyn Groups> {
        Some(self)
    }

    fn elections(&self) -> Option<&dyn Elections> {
        Some(self)
    }
}
