//! `memcached://HOST[:PORT][?options]`: memcached with tooz 9.1.0's key layout, so Python tooz
//! processes and ours share groups, members, capabilities, locks and leaders on one server.
//!
//! * **Locks** are owned per acquire, not per member id: an acquire is an `add` (the meta
//!   protocol's `ms ... ME`) of tooz's lock key holding our member id, as tooz writes it, and
//!   we keep the CAS the server returned. Release and renewal compare that CAS (`md C<cas>`,
//!   `ms C<cas>`): never tooz's get-then-delete, so an expired lock re-taken by anyone —
//!   another process with the same member id included — is never freed or renewed by its old
//!   holder. Python tooz releases by value, so a Python process with *our* member id could
//!   still free our lock (tooz's own race, on its side).
//! * **Fencing tokens are best effort.** Each grant increments a counter beside the lock
//!   (`__TOOZ_RS_FENCE_<name>`) in the same round trip. memcached may evict the counter or
//!   lose it in a restart; a counter created anew starts from this host's clock in
//!   microseconds, which is larger than every earlier token as long as clocks do not step
//!   back and no lock was granted more than a million times a second. Use a backend with a
//!   durable order (Redis with persistence, etcd, ZooKeeper, PostgreSQL) where tokens must
//!   be safe; the driver warns when the server reports evictions.
//! * **Liveness**: the member key `_TOOZ_MEMBER_<id>` lives `membership_timeout`; every
//!   heartbeat re-sets it and renews our locks and leaderships by CAS, in one round trip. A
//!   member key found gone (expired, evicted, a restarted server) is a session that ended:
//!   everything it carried is reported lost. memcached's clock ticks once a second, so an
//!   item may expire a second before its TTL: the timeouts the coordinator works with are the
//!   TTLs less a second, and TTLs must be at least 2 s.
//! * **Names**: any bytes. Keys pymemcache can send go as they are (Python meets us there);
//!   others go base64-encoded (`b` flag, the same binary key on the server); keys too long
//!   for memcached are hashed (see `keys.rs`). A group named `LIST` and locks named
//!   `_TOOZ_GROUP_LEADER_...` are refused: in tooz's layout they are other keys.
//! * **Waiting** polls with jittered back-off (memcached cannot push); watches poll.
//! * The client is our own (`client.rs`): the maintained crates lacked client flags with CAS
//!   on meta commands, `stats`, per-exchange timeouts, or safe reuse after a cut exchange.
//!
//! The options are listed on [`MemcachedOptions`].

mod client;
mod election;
mod groups;
pub(crate) mod keys;
mod locks;
mod options;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;

use crate::backend::{
    Backend, BeatReport, Elections, FencingToken, Groups, Held, LockRequest, Losses, OwnerToken,
    Started,
};
use crate::characteristics::{Characteristic, Characteristics};
use crate::error::{Error, Result};
use crate::ids::{LockName, MemberId};
use client::{Client, Command, Mode, Status};
use keys::Key;
pub use options::MemcachedOptions;

const NAME: &str = "memcached";
/// What tooz writes in a member's key.
const ALIVE: &[u8] = b"It's alive!";
/// pymemcache's client flags: raw bytes, and msgpack.
const RAW: u32 = 1;
const MSGPACK: u32 = 2;
/// How much earlier than its TTL memcached may expire an item (its clock ticks once a second).
const CLOCK_TICK: Duration = Duration::from_secs(1);
/// Every this many heartbeats the server's eviction count is read again.
const EVICTION_CHECK_EVERY: usize = 20;

/// One coordinator's connections to a memcached server.
pub struct MemcachedBackend {
    options: MemcachedOptions,
    member: MemberId,
    client: Client,
    /// The CAS of every lock and leadership we hold, by owner token.
    held: Mutex<HashMap<OwnerToken, Grant>>,
    /// Held by a heartbeat from reading the CAS values it renews until it has stored the new
    /// ones, and by a hand-back from reading its CAS until its delete is answered: a delete
    /// sent with a CAS a renewal had just replaced would leave a released lock held.
    renewing: tokio::sync::Mutex<()>,
    beats: AtomicUsize,
    /// The server's eviction count last seen (`u64::MAX` before the first look).
    evictions: AtomicU64,
}

/// A lock or leadership we hold: its key, TTL and current CAS.
#[derive(Debug, Clone)]
struct Grant {
    key: Key,
    ttl: u32,
    cas: u64,
    /// The server run that issued `cas`.
    epoch: u64,
}

impl fmt::Debug for MemcachedBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemcachedBackend")
            .field("options", &self.options)
            .field("member", &self.member)
            .finish_non_exhaustive()
    }
}

impl MemcachedBackend {
    /// A connection for `member` to the server in `options` (made by `start`).
    pub fn new(options: MemcachedOptions, member: MemberId) -> Self {
        let client = Client::new(
            options.addr.clone(),
            options.timeout,
            options.max_pool_size,
            #[cfg(feature = "memcached-tls")]
            options.tls.clone(),
        );
        Self {
            options,
            member,
            client,
            held: Mutex::new(HashMap::new()),
            renewing: tokio::sync::Mutex::new(()),
            beats: AtomicUsize::new(0),
            evictions: AtomicU64::new(u64::MAX),
        }
    }

    fn held(&self) -> MutexGuard<'_, HashMap<OwnerToken, Grant>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn secs(ttl: Duration) -> u32 {
        // Options are checked to be whole seconds of at most 30 days.
        u32::try_from(ttl.as_secs()).unwrap_or(u32::MAX)
    }

    /// Takes `key` for `owner` (an `add` holding our member id) and, in the same round trip,
    /// the next value of the counter at `fence`: the grant's token, or `None` if taken.
    async fn take(
        &self,
        key: Key,
        fence: &Key,
        ttl: Duration,
        owner: OwnerToken,
    ) -> Result<Option<FencingToken>> {
        let ttl = Self::secs(ttl);
        let commands = [
            Command::set(&key, self.member.as_bytes(), RAW, ttl, Mode::Add),
            Command::increment(fence, fence_floor()),
        ];
        let (replies, epoch) = match self.client.run_with(|_| commands.iter().collect()).await {
            Ok(done) => done,
            Err(e) => {
                // The add may have been applied and its reply lost: a lock held in our name
                // that no handle knows of is given back now rather than left for its TTL.
                self.give_back_in_doubt(&key).await;
                return Err(e);
            }
        };
        let (taken, counted) = (&replies[0], &replies[1]);
        match taken.status {
            Status::NotStored => return Ok(None),
            Status::Done => {}
            _ => return Err(unexpected("an add", taken.status)),
        }
        let cas = taken
            .cas()
            .ok_or_else(|| protocol("an add returned no CAS"))?;
        let Some(token) = counted.counter().filter(|&t| t > 0) else {
            // Taken, but a grant without a token cannot be used: given back at once.
            self.client.run(&[Command::delete(&key, Some(cas))]).await?;
            return Err(protocol("the fencing counter returned no number"));
        };
        self.held().insert(
            owner,
            Grant {
                key,
                ttl,
                cas,
                epoch,
            },
        );
        Ok(Some(FencingToken::new(token)))
    }

    /// Gives back what `owner` holds, if the server still has it as we left it.
    async fn give_back(&self, owner: OwnerToken) -> Result<bool> {
        let _renewals = self.renewing.lock().await;
        let Some(grant) = self.held().remove(&owner) else {
            return Ok(false);
        };
        let delete = Command::delete(&grant.key, Some(grant.cas));
        let (replies, epoch) = self
            .client
            .run_with(|epoch| {
                if epoch == grant.epoch {
                    vec![&delete]
                } else {
                    Vec::new()
                }
            })
            .await?;
        if epoch != grant.epoch {
            // The server restarted since: the lock went with it.
            return Ok(false);
        }
        match replies[0].status {
            Status::Done => Ok(true),
            Status::NotFound | Status::Exists => Ok(false),
            other => Err(unexpected("a delete", other)),
        }
    }

    /// After an add whose outcome is unknown: if the key holds our member id and none of our
    /// grants owns it, it is that add's, and it is deleted by the CAS just read (best effort:
    /// if the server cannot be reached, the lock expires after its TTL).
    async fn give_back_in_doubt(&self, key: &Key) {
        let _renewals = self.renewing.lock().await;
        if self.held().values().any(|g| g.key == *key) {
            return;
        }
        let Ok(replies) = self.client.run(&[Command::get(key)]).await else {
            return;
        };
        let reply = &replies[0];
        if reply.status != Status::Value || reply.value.as_deref() != Some(self.member.as_bytes()) {
            return;
        }
        if let Some(cas) = reply.cas() {
            let _ = self.client.run(&[Command::delete(key, Some(cas))]).await;
        }
    }

    /// Warns when the server's eviction count grew: evicted members, locks and counters are
    /// exactly what a coordination backend must not lose.
    async fn check_evictions(&self) {
        let Ok(stats) = self.client.stats().await else {
            return;
        };
        let Some(evictions) = stats
            .iter()
            .find(|(name, _)| name == "evictions")
            .and_then(|(_, value)| value.parse::<u64>().ok())
        else {
            return;
        };
        let before = self.evictions.swap(evictions, Ordering::Relaxed);
        if evictions > 0 && (before == u64::MAX || evictions > before) {
            tracing::warn!(
                backend = NAME,
                server = %self.options.url,
                evictions,
                "memcached has evicted items: memberships, locks and fencing counters may be \
                 lost early; give it more memory (-m) or use a backend that does not evict"
            );
        }
    }
}

/// Where a fencing counter created anew starts: this host's clock in microseconds, so that a
/// counter lost to an eviction or restart goes on above the tokens it handed out (best effort:
/// see the module docs).
fn fence_floor() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX / 2))
        .max(1)
}

fn protocol(what: &str) -> Error {
    Error::Backend {
        backend: NAME,
        source: what.to_owned().into(),
    }
}

fn unexpected(what: &str, status: Status) -> Error {
    protocol(&format!("{what} was answered with {status:?}"))
}

#[async_trait]
impl Backend for MemcachedBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn start(&self, _losses: Losses) -> Result<Started> {
        let member = keys::member(&self.member);
        let ttl = Self::secs(self.options.membership_timeout);
        let replies = self
            .client
            .run(&[Command::set(&member, ALIVE, RAW, ttl, Mode::Set)])
            .await?;
        if replies[0].status != Status::Done {
            return Err(unexpected("setting the member key", replies[0].status));
        }
        self.check_evictions().await;
        let characteristics = Characteristics::new(&[
            Characteristic::DistributedAcrossThreads,
            Characteristic::DistributedAcrossProcesses,
            Characteristic::DistributedAcrossHosts,
            Characteristic::Causal,
        ]);
        let grants = self.options.lock_timeout.min(self.options.leader_timeout);
        Ok(Started::new(
            self.options.membership_timeout - CLOCK_TICK,
            characteristics,
        )
        .with_grant_timeout(Some(grants - CLOCK_TICK))
        .with_best_effort_fencing())
    }

    async fn heartbeat(&self, held: &Held) -> Result<BeatReport> {
        let _renewals = self.renewing.lock().await;
        let member = keys::member(&self.member);
        let member_ttl = Self::secs(self.options.membership_timeout);
        // Whether the session went on (the member key still there), then the renewals.
        let beat = [
            Command::exists(&member),
            Command::set(&member, ALIVE, RAW, member_ttl, Mode::Set),
        ];
        let owners: Vec<OwnerToken> = held
            .locks
            .iter()
            .map(|(_, owner)| *owner)
            .chain(held.leaderships.iter().map(|(_, owner)| *owner))
            .collect();
        let grants: Vec<Option<Grant>> = {
            let table = self.held();
            owners.iter().map(|o| table.get(o).cloned()).collect()
        };
        let renewals: Vec<Option<(u64, Command)>> = grants
            .iter()
            .map(|grant| {
                grant.as_ref().map(|g| {
                    let renew = Command::set_if(&g.key, self.member.as_bytes(), RAW, g.ttl, g.cas);
                    (g.epoch, renew)
                })
            })
            .collect();
        // Only the CAS values of the server run this connection reached are sent: after a
        // restart they could match a stranger's item.
        let (replies, epoch) = self
            .client
            .run_with(|epoch| {
                let renew = renewals.iter().flatten().filter(|(e, _)| *e == epoch);
                beat.iter()
                    .chain(renew.map(|(_, command)| command))
                    .collect()
            })
            .await?;
        let mut replies = replies.into_iter();
        let session_went_on = replies.next().is_some_and(|r| r.status == Status::Done);
        let mut report = BeatReport {
            session_restarted: !session_went_on,
            ..BeatReport::default()
        };
        replies.next();
        let locks = held.locks.len();
        for (i, (owner, grant)) in owners.iter().zip(&grants).enumerate() {
            let renewed = match grant {
                Some(g) if g.epoch == epoch => replies.next().and_then(|r| match r.status {
                    Status::Done => r.cas(),
                    _ => None,
                }),
                _ => None,
            };
            match renewed {
                Some(cas) => {
                    if let Some(entry) = self.held().get_mut(owner) {
                        entry.cas = cas;
                    }
                }
                None => {
                    self.held().remove(owner);
                    if i < locks {
                        report.lost_locks.push(*owner);
                    } else {
                        report.lost_leaderships.push(*owner);
                    }
                }
            }
        }
        if self.beats.fetch_add(1, Ordering::Relaxed) % EVICTION_CHECK_EVERY
            == EVICTION_CHECK_EVERY - 1
        {
            self.check_evictions().await;
        }
        Ok(report)
    }

    async fn stop(&self) -> Result<()> {
        let member = keys::member(&self.member);
        self.client.run(&[Command::delete(&member, None)]).await?;
        Ok(())
    }

    async fn try_acquire(&self, request: LockRequest<'_>) -> Result<Option<FencingToken>> {
        self.take_lock(request).await
    }

    async fn release(&self, _name: &LockName, owner: OwnerToken) -> Result<bool> {
        self.give_back(owner).await
    }

    fn groups(&self) -> Option<&dyn Groups> {
        Some(self)
    }

    fn elections(&self) -> Option<&dyn Elections> {
        Some(self)
    }
}
