//! `redis://[user:pass@]host[:port][/db][?options]` and `redis:///path/to/redis.sock`:
//! Redis, with tooz 9.1.0's key layout, so Python tooz processes and ours share groups,
//! members, capabilities and locks on one server.
//!
//! * **Locks** take one round trip per acquire, fencing token included (a Lua script: `SET NX
//!   PX`, then the lock's counter); release and renewal compare the owner token.
//! * **Waiters queue** in arrival order (a sorted set per lock beside the lock key, under the
//!   namespace's `:rs:` prefix), and a lock that comes free while someone waits is **handed
//!   straight to the first live waiter**: the release (or the first attempt to find the lock
//!   free after an unannounced release) makes the grant in the same script, with its fencing
//!   token, and tells the waiter's coordinator alone, in one message on that coordinator's
//!   own channel (pub/sub, received as RESP3 push messages on its one multiplexed
//!   connection, so Redis 6 or newer is needed). The
//!   waiter holds the lock as soon as the message arrives, with no further round trip; a
//!   releaser that asks again at once queues behind those already waiting, and no herd wakes.
//!   A waiter renews its place on every look (at least every 100 ms, which also catches
//!   releases nobody announces: an expired holder, Python tooz, a missed message); one that
//!   stopped looking drops out of the queue after 1 s; one that gives up just as the lock is
//!   handed to it passes it on. Python tooz's waiters do not queue: they take the lock when
//!   they find it free, which while ours wait it never is. A waiter that crashes in the last
//!   second of its queue entry may be handed the lock, which then expires after
//!   `lock_timeout` as if it had crashed holding it.
//! * **Heartbeat**: one script per beat refreshes the member's beat key, extends every lock and
//!   leadership still ours, and checks every membership; whatever it finds gone fires its loss
//!   signal. The connection reconnects by itself.
//! * **Elections** use tooz's election lock (`NS_leader_of_<group>_lock`), so Python and Rust
//!   members exclude each other; `leader()` (which tooz's Redis driver lacks) reads the member
//!   we record beside it, and answers [`UNKNOWN_LEADER`] when a Python member leads.
//! * **Names** that would land on another kind of key in tooz's layout are refused (see
//!   `keys.rs`). `members()` prunes members whose beat key expired, in one round trip.
//!
//! # Options (tooz's names and defaults)
//!
//! | option | default | meaning |
//! |---|---|---|
//! | `timeout` | `30` | seconds; the default of the three below |
//! | `membership_timeout` | `timeout` | TTL of a member's beat key |
//! | `lock_timeout` | `timeout` | TTL of a lock or leadership, renewed by heartbeats |
//! | `namespace` | `_tooz` | key prefix |
//! | `db` | `0` (or the URL path) | database number |
//! | `socket_timeout` | `timeout` | bound on each reply |
//! | `socket_connect_timeout` | `timeout` | bound on connecting |
//! | `encoding` | `utf8` | only `utf8` is accepted |
//! | `retry_on_timeout`, `socket_keepalive`, `health_check_interval`, `executor` | — | accepted for tooz URLs; no effect |
//!
//! | `ssl` | `false` (`true` for `rediss://`) | TLS (cargo feature `redis-tls`) |
//! | `ssl_ca_certs` | system roots | PEM file of the CAs to trust |
//! | `ssl_certfile`, `ssl_keyfile` | — | PEM client certificate and key (mutual TLS) |
//!
//! | `sentinel` | — | master name: the URL's host is a Sentinel, the master is asked of it |
//! | `sentinel_fallback` | — | more sentinels, `HOST:PORT`, repeatable |
//! | `sentinel_username`, `sentinel_password` | — | the sentinels' credentials |
//!
//! Not yet supported (an error names it): `sentinel_ssl` (TLS to the sentinels).

mod election;
mod error;
mod groups;
pub(crate) mod keys;
mod locks;
mod options;
mod scripts;
mod sentinel;
mod waiters;

use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ConnectionAddr, IntoConnectionInfo, ProtocolVersion};

use super::shared::Changes;
use crate::backend::FencingToken;
use crate::backend::{
    Backend, BeatReport, ChangeHint, Elections, Groups, Held, LockRequest, Losses, OwnerToken,
    Started, Topic,
};
use crate::characteristics::{Characteristic, Characteristics};
use crate::error::{Error, Result};
use crate::ids::{LockName, MemberId};

use error::handshake_error;
pub(crate) use error::redis_error;
use keys::Keys;
pub use options::RedisOptions;
use options::tcp_addr;
#[cfg(feature = "redis-tls")]
use options::tls_client;
use waiters::Waiters;

const NAME: &str = "redis";
/// How often a waiter looks for releases nobody announces (Python tooz's, a holder that
/// expired), at most; each look also renews its place in the lock's queue.
const UNANNOUNCED_POLL: Duration = Duration::from_millis(100);
/// How long a queued waiter keeps its place without renewing it: a waiter that stopped
/// (crashed, paused) blocks those behind it at most this long.
const QUEUE_ENTRY_LIFE: Duration = Duration::from_millis(1_000);

/// What [`crate::Coordinator::leader`] answers when the election lock is held by a Python tooz
/// member, which records no member id.
pub const UNKNOWN_LEADER: &str = "(a Python tooz member)";

/// One coordinator's connection to a Redis server.
pub struct RedisBackend {
    options: RedisOptions,
    member: MemberId,
    keys: Keys,
    /// The one multiplexed connection to the master (RESP3, so release announcements arrive
    /// on it too); replaced when a failover moves the master.
    conn: RwLock<Option<ConnectionManager>>,
    changes: Arc<Changes>,
    waiters: Arc<Waiters>,
    /// This coordinator's id among the namespace's: grants for its waiters come on the
    /// channel `grants_prefix` + id, which nobody else hears.
    grants_id: String,
}

impl fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBackend")
            .field("options", &self.options)
            .field("member", &self.member)
            .finish_non_exhaustive()
    }
}

impl RedisBackend {
    /// A connection for `member` to the server in `options` (made by `start`).
    pub fn new(options: RedisOptions, member: MemberId) -> Self {
        let keys = Keys::new(&options.namespace);
        Self {
            options,
            member,
            keys,
            conn: RwLock::new(None),
            changes: Arc::new(Changes::default()),
            waiters: Arc::default(),
            grants_id: OwnerToken::generate().to_hex(),
        }
    }

    fn client(&self, addr: ConnectionAddr) -> Result<redis::Client> {
        let info = addr
            .into_connection_info()
            .map_err(redis_error)?
            // RESP3: pub/sub messages share the one connection as push messages.
            .set_redis_settings(
                self.options
                    .settings
                    .clone()
                    .set_protocol(ProtocolVersion::RESP3),
            );
        match &self.options.tls {
            #[cfg(feature = "redis-tls")]
            Some(files) => tls_client(info, files),
            _ => redis::Client::open(info).map_err(redis_error),
        }
    }

    pub(crate) fn conn(&self) -> Result<ConnectionManager> {
        let conn = self.conn.read().unwrap_or_else(|e| e.into_inner());
        conn.clone().ok_or(Error::Stopped)
    }

    /// Where the master is: the URL's address, or what the sentinels say now.
    async fn master_addr(&self) -> Result<ConnectionAddr> {
        let Some(sentinel) = &self.options.sentinel else {
            return Ok(self.options.addr.clone());
        };
        let (host, port) = sentinel.resolve(self.options.connect_timeout).await?;
        Ok(tcp_addr(host, port, self.options.tls.is_some()))
    }

    /// Connects to the master (found anew through the sentinels, if any) and checks that it
    /// is a Redis master; replaces the connection in use.
    async fn connect(&self) -> Result<()> {
        let client = self.client(self.master_addr().await?)?;
        // A grant handed to one of our lock waiters wakes that waiter alone; any other push (a
        // membership or leadership change, a resubscription after a reconnect) wakes those
        // watching groups and elections, who look again for themselves — and after a
        // reconnect, lock waiters too, as grants may have been missed.
        let (changes, waiters) = (Arc::clone(&self.changes), Arc::clone(&self.waiters));
        let on_push = move |push: redis::PushInfo| {
            let message = match (&push.kind, push.data.get(1)) {
                (redis::PushKind::Message, Some(redis::Value::BulkString(message))) => {
                    Some(message.as_slice())
                }
                _ => None,
            };
            if !message.is_some_and(|m| waiters.wake(m)) {
                changes.notify();
                if !matches!(push.kind, redis::PushKind::Message) {
                    waiters.wake_all();
                }
            }
            Ok::<(), std::convert::Infallible>(())
        };
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.options.connect_timeout))
            .set_response_timeout(Some(self.options.socket_timeout))
            .set_number_of_retries(2)
            .set_push_sender(on_push)
            .set_automatic_resubscription();
        let mut conn = client
            .get_connection_manager_with_config(config)
            .await
            .map_err(|e| handshake_error(&self.options.url, e))?;
        let info: String = redis::cmd("INFO")
            .arg("replication")
            .query_async(&mut conn)
            .await
            .map_err(redis_error)?;
        if !info.contains("role:") {
            return Err(Error::Backend {
                backend: NAME,
                source: format!(
                    "{} does not answer INFO like a Redis server",
                    self.options.url
                )
                .into(),
            });
        }
        if !info.contains("role:master") {
            return Err(Error::Backend {
                backend: NAME,
                source: format!("{} reached a replica, not the master", self.options.url).into(),
            });
        }
        let grants = [
            self.keys.grants_prefix(),
            self.grants_id.clone().into_bytes(),
        ]
        .concat();
        conn.subscribe(&[self.keys.events(), grants])
            .await
            .map_err(redis_error)?;
        *self.conn.write().unwrap_or_else(|e| e.into_inner()) = Some(conn);
        // Anything may have changed while we were not listening.
        self.changes.notify();
        Ok(())
    }

    /// After a failed call: with sentinels, look for the (possibly new) master.
    async fn follow_failover(&self, error: &Error) {
        let moved = match error {
            Error::Connection { .. } => true,
            Error::Backend { source, .. } => source.to_string().contains("READONLY"),
            _ => false,
        };
        if self.options.sentinel.is_some() && moved {
            match self.connect().await {
                Ok(()) => {
                    tracing::info!(url = %self.options.url, "reconnected to the master the sentinels name")
                }
                Err(e) => {
                    tracing::warn!(url = %self.options.url, error = %e, "no master reachable through the sentinels yet")
                }
            }
        }
    }

    fn ms(duration: Duration) -> u64 {
        duration.as_millis().max(1) as u64
    }
}

#[async_trait]
impl Backend for RedisBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn start(&self, _losses: Losses) -> Result<Started> {
        keys::check_member(&self.member)?;
        self.connect().await?;
        let mut conn = self.conn()?;
        let beat = self.keys.beat(&self.member);
        let _: () = redis::cmd("PSETEX")
            .arg(beat)
            .arg(Self::ms(self.options.membership_timeout))
            .arg("Not dead!")
            .query_async(&mut conn)
            .await
            .map_err(redis_error)?;
        let characteristics = Characteristics::new(&[
            Characteristic::DistributedAcrossThreads,
            Characteristic::DistributedAcrossProcesses,
            Characteristic::DistributedAcrossHosts,
            Characteristic::Causal,
        ]);
        Ok(
            Started::new(self.options.membership_timeout, characteristics)
                .with_grant_timeout(Some(self.options.lock_timeout))
                .with_queued_lock_waits(),
        )
    }

    async fn heartbeat(&self, held: &Held) -> Result<BeatReport> {
        let mut conn = self.conn()?;
        let mut invocation = scripts::HEARTBEAT.prepare_invoke();
        invocation.key(self.keys.beat(&self.member));
        let mut tokens = Vec::new();
        for (name, owner) in &held.locks {
            invocation.key(self.keys.lock(name));
            tokens.push(owner.to_hex());
        }
        for (group, owner) in &held.leaderships {
            invocation.key(self.keys.leader_lock(group));
            tokens.push(owner.to_hex());
        }
        for (group, _) in &held.memberships {
            invocation.key(self.keys.group(group));
        }
        invocation
            .arg(Self::ms(self.options.membership_timeout))
            .arg(Self::ms(self.options.lock_timeout))
            .arg(self.member.as_bytes())
            .arg(tokens.len());
        for token in &tokens {
            invocation.arg(token);
        }
        let found: Vec<i64> = match invocation.invoke_async(&mut conn).await {
            Ok(found) => found,
            Err(e) => {
                let error = redis_error(e);
                self.follow_failover(&error).await;
                return Err(error);
            }
        };
        let mut found = found.into_iter();
        let mut report = BeatReport {
            session_restarted: found.next() == Some(1),
            ..BeatReport::default()
        };
        for (_, owner) in &held.locks {
            if found.next() != Some(1) {
                report.lost_locks.push(*owner);
            }
        }
        for (_, owner) in &held.leaderships {
            if found.next() != Some(1) {
                report.lost_leaderships.push(*owner);
            }
        }
        for (_, owner) in &held.memberships {
            if found.next() != Some(1) {
                report.lost_memberships.push(*owner);
            }
        }
        Ok(report)
    }

    async fn stop(&self) -> Result<()> {
        // Peers see us gone at once rather than after the beat key's TTL.
        let mut conn = self.conn()?;
        let _: () = redis::cmd("DEL")
            .arg(self.keys.beat(&self.member))
            .query_async(&mut conn)
            .await
            .map_err(redis_error)?;
        Ok(())
    }

    async fn try_acquire(&self, request: LockRequest<'_>) -> Result<Option<FencingToken>> {
        self.take_lock(request).await
    }

    async fn release(&self, name: &LockName, owner: OwnerToken) -> Result<bool> {
        self.release_lock(name, owner).await
    }

    async fn stop_waiting(&self, name: &LockName, owner: OwnerToken) -> Result<()> {
        self.leave_queue(name, owner).await
    }

    fn change_hint(&self, topic: Topic<'_>) -> Option<ChangeHint> {
        Some(match topic {
            Topic::Lock(_, owner) => self.waiters.hint(owner, UNANNOUNCED_POLL),
            Topic::Group(_) | Topic::Leader(_) => self.changes.hint_or_poll(UNANNOUNCED_POLL),
        })
    }

    fn groups(&self) -> Option<&dyn Groups> {
        Some(self)
    }

    fn elections(&self) -> Option<&dyn Elections> {
        Some(self)
    }
}
