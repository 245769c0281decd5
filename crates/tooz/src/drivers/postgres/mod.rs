//! `postgresql://` and `postgres://`: PostgreSQL, for teams that run it and no coordination
//! service. Locks, groups, capabilities, watches and leader election, on one dedicated
//! session per coordinator and a few tables created on first use.
//!
//! * **Locks** are session advisory locks, so a dropped session frees them on the server and
//!   fires `lost()` here at once. Their key is not a hash of the name: each name gets its
//!   own 64-bit key from a row of `<prefix>locks` (assigned by the server, never shared, so
//!   unrelated names never block each other — tooz folds names into 16-bit keys, where they
//!   do). The same row holds the lock's fencing counter, incremented by the statement that
//!   takes the lock: one round trip per acquire, strictly increasing tokens, durable. With
//!   `tooz_lock_keys=true` a lock also takes Python tooz's two-key lock of the name
//!   (md5-derived), so that Python and Rust processes exclude each other.
//! * **A cut-off holder is bounded on the server**: the session sets `idle_session_timeout`
//!   (and `tcp_user_timeout`) to `lock_timeout`, so a holder behind a partition loses its
//!   session and locks that long after its last heartbeat, not after TCP's hours; the local
//!   lease (90% of it) fires `lost()` first. Heartbeats keep a live session busy.
//! * **Waiters** try again when a release is announced (`NOTIFY`) and at least every
//!   half-second (Python tooz announces nothing); they are not queued, so a releaser that asks
//!   again at once may win.
//! * **Groups and elections** are rows, live by the server's clock (`now()`, never ours):
//!   a member's beat row and a leader's lease row are renewed by heartbeats; expired members
//!   are pruned as they are read; watches are woken by `NOTIFY`.
//! * Every name, id and capability travels as a statement parameter; only the table prefix,
//!   checked to be `[a-z_][a-z0-9_]*`, is part of the statements' text.
//! * Behind a transaction-mode pooler (PgBouncer's `pool_mode = transaction`), statements of
//!   one client run on many server sessions and advisory locks would leak between clients:
//!   a heartbeat that finds its statements served by another server process than the
//!   session's first fails with an error saying so. This is a heuristic: between two
//!   heartbeats, or behind a pooler that happens to keep one server session, it sees nothing.
//!   Connect to PostgreSQL directly or through a session-mode pool.
//!
//! What this backend cannot promise, by the nature of session locks and server time:
//!
//! * A session the server ends on its side (`pg_terminate_backend`, a crash, a failover to a
//!   replica, which holds no advisory locks) frees its locks there first; we hear of it a
//!   network trip later, or, after a crash, when the connection fails. The local lease bounds
//!   only the case where heartbeats stop reaching the server. Fencing tokens are what protects
//!   a resource across such an end.
//! * Memberships and leaderships are timed by the database host's clock: a forward step of
//!   that clock shortens them (by as much as it steps). Our host's clock is never used.
//! * `sslmode=prefer` accepts a server that declines TLS, as libpq does; a network attacker
//!   can make it do so. Use `require` or `verify-*` where that matters.
//!
//! The options are listed on [`PostgresOptions`].

mod connection;
mod election;
mod error;
mod groups;
mod locks;
mod options;
mod sql;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use tokio_postgres::Statement;

use super::shared::Changes;
use crate::backend::{
    Backend, BeatReport, ChangeHint, Elections, FencingToken, Groups, Held, LockRequest, Losses,
    OwnerToken, Started, Topic,
};
use crate::characteristics::{Characteristic, Characteristics};
use crate::error::{Error, Result};
use crate::ids::{LockName, MemberId};
use connection::{Live, bounded};
pub use options::PostgresOptions;
use sql::Sql;

const NAME: &str = "postgres";
/// How often a waiter looks again without an announcement (a Python tooz release).
const UNANNOUNCED_POLL: Duration = Duration::from_millis(500);

/// One coordinator's session with a PostgreSQL server.
pub struct PostgresBackend {
    options: PostgresOptions,
    member: MemberId,
    sql: Sql,
    shared: Arc<Shared>,
    /// The current session; replaced (lazily) when it ends.
    live: tokio::sync::Mutex<Option<Arc<Live>>>,
    generation: AtomicU64,
    /// The server-assigned key of every lock name used.
    keys: Mutex<HashMap<LockName, i64>>,
    /// Statements prepared on the current session, by their text.
    statements: Mutex<(u64, HashMap<String, Statement>)>,
}

/// What the session's reader task shares with the backend.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    lock_changes: Changes,
    group_changes: Changes,
    /// Every lock taken (or being taken) by owner: its key, Python's keys, its session.
    held: Mutex<HashMap<OwnerToken, HeldLock>>,
    losses: Mutex<Option<Losses>>,
    schema_ready: AtomicBool,
}

#[derive(Debug, Clone, Copy)]
struct HeldLock {
    key: i64,
    tooz_keys: Option<(i32, i32)>,
    generation: u64,
}

impl Shared {
    fn held(&self) -> MutexGuard<'_, HashMap<OwnerToken, HeldLock>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn schema_ready(&self) -> bool {
        self.schema_ready.load(Ordering::Acquire)
    }

    fn mark_schema_ready(&self) {
        self.schema_ready.store(true, Ordering::Release);
    }

    /// Session `generation` ended: the server freed its advisory locks, so every lock taken
    /// on it is lost, and said so now rather than at the next heartbeat.
    fn session_ended(&self, generation: u64) {
        let lost: Vec<OwnerToken> = {
            let mut held = self.held();
            let lost = held
                .iter()
                .filter(|(_, h)| h.generation == generation)
                .map(|(owner, _)| *owner)
                .collect::<Vec<_>>();
            for owner in &lost {
                held.remove(owner);
            }
            lost
        };
        let losses = self.losses.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(losses) = losses.as_ref() {
            losses.grants_lost(lost);
        }
        self.lock_changes.notify();
        self.group_changes.notify();
    }
}

impl fmt::Debug for PostgresBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresBackend")
            .field("options", &self.options)
            .field("member", &self.member)
            .finish_non_exhaustive()
    }
}

impl PostgresBackend {
    /// A backend for `member` on the server in `options` (connected by `start`).
    pub fn new(options: PostgresOptions, member: MemberId) -> Self {
        let sql = Sql::new(&options.table_prefix);
        Self {
            options,
            member,
            sql,
            shared: Arc::default(),
            live: tokio::sync::Mutex::new(None),
            generation: AtomicU64::new(0),
            keys: Mutex::new(HashMap::new()),
            statements: Mutex::new((0, HashMap::new())),
        }
    }

    /// The live session, opening a new one if there is none or it ended.
    async fn live(&self) -> Result<Arc<Live>> {
        let mut live = self.live.lock().await;
        if let Some(session) = live.as_ref()
            && !session.client.is_closed()
        {
            return Ok(Arc::clone(session));
        }
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        let session = connection::open(
            &self.options,
            &self.member,
            &self.sql,
            &self.shared,
            generation,
        )
        .await?;
        let session = Arc::new(session);
        *live = Some(Arc::clone(&session));
        Ok(session)
    }

    /// `sql` prepared on `live` (once per session).
    async fn statement(&self, live: &Live, sql: &str) -> Result<Statement> {
        {
            let cache = self.statements.lock().unwrap_or_else(|e| e.into_inner());
            if cache.0 == live.generation
                && let Some(statement) = cache.1.get(sql)
            {
                return Ok(statement.clone());
            }
        }
        let statement = bounded(&self.options, "preparing", live.client.prepare(sql)).await?;
        let mut cache = self.statements.lock().unwrap_or_else(|e| e.into_inner());
        if cache.0 != live.generation {
            *cache = (live.generation, HashMap::new());
        }
        cache.1.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    /// Runs `sql` with `params` and returns its one row.
    async fn one(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<tokio_postgres::Row> {
        let live = self.live().await?;
        let statement = self.statement(&live, sql).await?;
        bounded(
            &self.options,
            "a statement",
            live.client.query_one(&statement, params),
        )
        .await
    }

    /// Runs `sql` with `params` and returns its rows.
    async fn rows(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>> {
        let live = self.live().await?;
        let statement = self.statement(&live, sql).await?;
        bounded(
            &self.options,
            "a statement",
            live.client.query(&statement, params),
        )
        .await
    }

    fn ms(duration: Duration) -> f64 {
        duration.as_secs_f64() * 1000.0
    }

    /// Our member's beat, anew: rows a lapsed beat of this member id left behind go first.
    async fn start_member(&self) -> Result<i64> {
        let ms = Self::ms(self.options.membership_timeout);
        let row = self
            .one(&self.sql.start_member, &[&self.member.as_bytes(), &ms])
            .await?;
        Ok(row.try_get(0)?)
    }
}

#[async_trait]
impl Backend for PostgresBackend {
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
                .with_grant_timeout(Some(self.options.lock_timeout)),
        )
    }

    async fn heartbeat(&self, held: &Held) -> Result<BeatReport> {
        let live = self.live().await?;
        let owners: Vec<String> = held.leaderships.iter().map(|(_, o)| o.to_hex()).collect();
        let groups: Vec<&[u8]> = held.memberships.iter().map(|(g, _)| g.as_bytes()).collect();
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 5] = [
            &self.member.as_bytes(),
            &Self::ms(self.options.membership_timeout),
            &Self::ms(self.options.lock_timeout),
            &owners,
            &groups,
        ];
        let beat = live.client.query_one(&live.prepared.heartbeat, &params);
        let row = bounded(&self.options, "a heartbeat", beat).await?;
        let (beats, renewed, pid): (i64, Vec<String>, i32) =
            (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
        let listed: Vec<Vec<u8>> = row.try_get(3)?;
        if pid != live.pid {
            return Err(Error::Backend {
                backend: NAME,
                source: format!(
                    "{} served this session's statements from two server processes ({} and \
                     {pid}): a transaction-mode pooler is in between, and advisory locks would \
                     leak between its clients; connect to PostgreSQL directly or through a \
                     session-mode pool",
                    self.options.url, live.pid
                )
                .into(),
            });
        }
        let mut report = BeatReport::default();
        if beats == 0 {
            // Our beat ran out: peers may have pruned us, so every membership is lost, and our
            // rows are gone before the beat comes back (no ghost member).
            self.start_member().await?;
            report
                .lost_memberships
                .extend(held.memberships.iter().map(|(_, o)| *o));
        } else {
            // Removed by someone else (another coordinator of our member id, say).
            for (group, owner) in &held.memberships {
                if !listed.iter().any(|g| g.as_slice() == group.as_bytes()) {
                    report.lost_memberships.push(*owner);
                }
            }
        }
        for (_, owner) in &held.leaderships {
            if !renewed.contains(&owner.to_hex()) {
                report.lost_leaderships.push(*owner);
            }
        }
        let locks = self.shared.held();
        for (_, owner) in &held.locks {
            if locks
                .get(owner)
                .is_none_or(|h| h.generation != live.generation)
            {
                report.lost_locks.push(*owner);
            }
        }
        Ok(report)
    }

    async fn stop(&self) -> Result<()> {
        let result = self
            .rows(&self.sql.stop_member, &[&self.member.as_bytes()])
            .await
            .map(drop);
        // Ending the session frees whatever it still holds on the server.
        self.live.lock().await.take();
        result
    }

    async fn try_acquire(&self, request: LockRequest<'_>) -> Result<Option<FencingToken>> {
        self.take_lock(request).await
    }

    async fn release(&self, name: &LockName, owner: OwnerToken) -> Result<bool> {
        self.release_lock(name, owner).await
    }

    fn change_hint(&self, topic: Topic<'_>) -> Option<ChangeHint> {
        Some(match topic {
            Topic::Lock(..) => self.shared.lock_changes.hint_or_poll(UNANNOUNCED_POLL),
            Topic::Group(_) | Topic::Leader(_) => self.shared.group_changes.hint(),
        })
    }

    fn groups(&self) -> Option<&dyn Groups> {
        Some(self)
    }

    fn elections(&self) -> Option<&dyn Elections> {
        Some(self)
    }
}
