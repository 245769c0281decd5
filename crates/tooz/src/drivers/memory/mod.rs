//! `memory://NAME`: an in-process backend that supports everything.
//!
//! It is the reference implementation the conformance suite is first written against, and a
//! real backend for tests and single-process programs. Coordinators connected to the same
//! `NAME` in one process share one store; the store lives while any of them does.
//!
//! Liveness is a lease, as on a server: each coordinator has a session that expires
//! `timeout` after its last heartbeat, taking its memberships, locks and leadership with it.
//! Lock waiters queue in arrival order, as on a server that can queue them: a released lock
//! goes to the first waiter, never back to a releaser that asks again at once.
//!
//! The options are listed on [`MemoryOptions`].

mod election;
mod groups;
mod locks;
mod options;

pub use options::MemoryOptions;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::shared::{Changes, Registry};
use crate::backend::FencingToken;
use crate::backend::{
    Backend, BeatReport, ChangeHint, Elections, Groups, Held, LockMode, LockRequest, Losses,
    OwnerToken, Started, Topic,
};
use crate::capabilities::Capabilities;
use crate::characteristics::{Characteristic, Characteristics};
use crate::error::{Error, Result};
use crate::ids::{GroupId, LockName, MemberId};

const NAME: &str = "memory";

type SessionId = u64;

#[derive(Debug)]
struct Store {
    state: Mutex<State>,
    /// Bumped on every change, so waiters wake at once instead of polling.
    changes: Changes,
}

#[derive(Debug, Default)]
struct State {
    next_session: SessionId,
    sessions: HashMap<SessionId, Instant>,
    groups: BTreeMap<GroupId, BTreeMap<MemberId, Membership>>,
    locks: HashMap<LockName, Vec<LockHolder>>,
    lock_fences: HashMap<LockName, u64>,
    /// Waiters per lock in arrival order, each alive until its instant (renewed by every
    /// attempt), as a server-side queue keeps them.
    lock_queues: HashMap<LockName, Vec<(OwnerToken, Instant)>>,
    leaders: HashMap<GroupId, Leader>,
    leader_fences: HashMap<GroupId, u64>,
}

#[derive(Debug)]
struct Membership {
    session: SessionId,
    capabilities: Capabilities,
}

#[derive(Debug)]
struct LockHolder {
    owner: OwnerToken,
    session: SessionId,
    mode: LockMode,
}

#[derive(Debug)]
struct Leader {
    member: MemberId,
    owner: OwnerToken,
    session: SessionId,
}

impl State {
    /// Drops every session whose lease ran out, with everything it held. Returns whether
    /// anything changed.
    fn collect_expired(&mut self, now: Instant) -> bool {
        let before = self.sessions.len();
        self.sessions.retain(|_, expires| *expires > now);
        if self.sessions.len() == before {
            return false;
        }
        let alive = |s: &SessionId| self.sessions.contains_key(s);
        for members in self.groups.values_mut() {
            members.retain(|_, m| alive(&m.session));
        }
        for holders in self.locks.values_mut() {
            holders.retain(|h| alive(&h.session));
        }
        self.locks.retain(|_, holders| !holders.is_empty());
        self.leaders.retain(|_, l| alive(&l.session));
        true
    }

    fn next_fence<K: Eq + std::hash::Hash>(fences: &mut HashMap<K, u64>, key: K) -> FencingToken {
        let counter = fences.entry(key).or_insert(0);
        *counter += 1;
        FencingToken::new(*counter)
    }
}

static STORES: Registry<Store> = Registry::new();

/// One coordinator's connection to an in-process store.
#[derive(Debug)]
pub struct MemoryBackend {
    options: MemoryOptions,
    store: Arc<Store>,
    member: MemberId,
    session: Mutex<Option<SessionId>>,
}

impl MemoryBackend {
    /// A connection for `member` to the store named in `options`.
    pub fn new(options: MemoryOptions, member: MemberId) -> Self {
        let store = STORES.get_or_make(&options.name, || Store {
            state: Mutex::new(State::default()),
            changes: Changes::default(),
        });
        Self {
            options,
            store,
            member,
            session: Mutex::new(None),
        }
    }

    /// Runs `f` on the state after collecting expired sessions; wakes waiters if anything
    /// changed (`f` reports its own changes through its `bool`).
    fn with_state<T>(&self, f: impl FnOnce(&mut State, Option<SessionId>) -> (T, bool)) -> T {
        let session = *lock(&self.session);
        let mut state = lock(&self.store.state);
        let expired = state.collect_expired(Instant::now());
        let live = session.filter(|s| state.sessions.contains_key(s));
        let (out, changed) = f(&mut state, live);
        drop(state);
        if expired || changed {
            self.store.changes.notify();
        }
        out
    }

    /// [`Self::with_state`] from an async call, with the simulated latency (if any) on both
    /// sides, as a request and its reply would have.
    async fn call<T>(&self, f: impl FnOnce(&mut State, Option<SessionId>) -> (T, bool)) -> T {
        if !self.options.latency.is_zero() {
            tokio::time::sleep(self.options.latency / 2).await;
        }
        let out = self.with_state(f);
        if !self.options.latency.is_zero() {
            tokio::time::sleep(self.options.latency / 2).await;
        }
        out
    }

    fn live_session(&self, session: Option<SessionId>) -> Result<SessionId> {
        session.ok_or(Error::SessionLost { backend: NAME })
    }

    fn unsupported(&self, operation: &'static str) -> Error {
        Error::Unsupported {
            operation,
            backend: NAME,
        }
    }
}

/// When a session renewed now expires; saturating, so that no timeout can overflow.
fn expiry(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .unwrap_or_else(|| now + Duration::from_secs(86_400 * 365 * 30))
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave the maps half-updated in a way that matters
    // more than refusing every later call would.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[async_trait]
impl Backend for MemoryBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn start(&self, _losses: Losses) -> Result<Started> {
        let timeout = self.options.timeout;
        let id = self
            .call(|state, _| {
                state.next_session += 1;
                let id = state.next_session;
                state.sessions.insert(id, expiry(timeout));
                (id, false)
            })
            .await;
        *lock(&self.session) = Some(id);
        let characteristics = Characteristics::new(&[
            Characteristic::DistributedAcrossThreads,
            Characteristic::Linearizable,
            Characteristic::SameViewAcrossClients,
        ]);
        Ok(Started::new(self.options.timeout, characteristics)
            .with_shared_locks(self.options.shared_locks)
            .with_queued_lock_waits())
    }

    async fn heartbeat(&self, held: &Held) -> Result<BeatReport> {
        let timeout = self.options.timeout;
        let (report, new_session) = self
            .call(|state, session| {
                let mut report = BeatReport::default();
                let Some(session) = session else {
                    // The lease ran out: begin a new session; nothing held survives.
                    state.next_session += 1;
                    let id = state.next_session;
                    state.sessions.insert(id, expiry(timeout));
                    report.session_restarted = true;
                    return ((report, Some(id)), false);
                };
                state.sessions.insert(session, expiry(timeout));
                for (name, owner) in &held.locks {
                    let holds = state
                        .locks
                        .get(name)
                        .is_some_and(|hs| hs.iter().any(|h| h.owner == *owner));
                    if !holds {
                        report.lost_locks.push(*owner);
                    }
                }
                for (group, owner) in &held.memberships {
                    let member = state.groups.get(group).and_then(|m| m.get(&self.member));
                    if member.is_none_or(|m| m.session != session) {
                        report.lost_memberships.push(*owner);
                    }
                }
                for (group, owner) in &held.leaderships {
                    if state.leaders.get(group).is_none_or(|l| l.owner != *owner) {
                        report.lost_leaderships.push(*owner);
                    }
                }
                ((report, None), false)
            })
            .await;
        if let Some(id) = new_session {
            *lock(&self.session) = Some(id);
        }
        Ok(report)
    }

    async fn stop(&self) -> Result<()> {
        let session = lock(&self.session).take();
        self.call(|state, _| {
            let Some(session) = session else {
                return ((), false);
            };
            // Ending the lease now is what a server does on a clean disconnect.
            state.sessions.insert(session, Instant::now());
            ((), true)
        })
        .await;
        Ok(())
    }

    async fn try_acquire(&self, request: LockRequest<'_>) -> Result<Option<FencingToken>> {
        self.take_lock(request).await
    }

    async fn stop_waiting(&self, name: &LockName, owner: OwnerToken) -> Result<()> {
        self.leave_queue(name, owner).await
    }

    async fn release(&self, name: &LockName, owner: OwnerToken) -> Result<bool> {
        self.release_lock(name, owner).await
    }

    fn change_hint(&self, _topic: Topic<'_>) -> Option<ChangeHint> {
        Some(self.store.changes.hint())
    }

    fn groups(&self) -> Option<&dyn Groups> {
        self.options.groups.then_some(self)
    }

    fn elections(&self) -> Option<&dyn Elections> {
        self.options.elections.then_some(self)
    }
}
