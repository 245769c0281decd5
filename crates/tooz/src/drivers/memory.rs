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
//! # Options
//!
//! | option | default | meaning |
//! |---|---|---|
//! | `timeout` | `10` | seconds a session lives without a heartbeat |
//! | `groups` | `true` | offer group membership (`false` emulates a lock-only backend) |
//! | `elections` | `true` | offer leader election |
//! | `shared_locks` | `true` | offer shared locks |
//! | `latency` | `0` | simulated round trip: every call waits half of it before touching the store and half after, as a request and its reply would (for testing timeouts and cancelled calls) |

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;
use url::Url;

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
use crate::options::UrlOptions;

const NAME: &str = "memory";
const OPTIONS: &[&str] = &["timeout", "groups", "elections", "shared_locks", "latency"];
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a queued waiter keeps its place without renewing it (every attempt renews it).
const QUEUE_ENTRY_LIFE: Duration = Duration::from_secs(1);

/// Options of a `memory://` URL.
#[derive(Debug, Clone)]
pub struct MemoryOptions {
    /// The store's name: coordinators with the same name share it.
    pub name: String,
    /// How long a session lives without a heartbeat.
    pub timeout: Duration,
    /// Offer group membership.
    pub groups: bool,
    /// Offer leader election.
    pub elections: bool,
    /// Offer shared locks.
    pub shared_locks: bool,
    /// Simulated round trip of every call.
    pub latency: Duration,
}

impl MemoryOptions {
    /// Reads a `memory://NAME?options` URL.
    pub fn from_url(url: &Url) -> Result<Self> {
        let options = UrlOptions::parse(NAME, url, OPTIONS)?;
        let timeout = options.duration("timeout", DEFAULT_TIMEOUT)?;
        if timeout.is_zero() {
            return Err(options.invalid("timeout", "0", "must be greater than zero"));
        }
        Ok(Self {
            name: format!("{}{}", url.host_str().unwrap_or(""), url.path()),
            timeout,
            groups: options.bool("groups", true)?,
            elections: options.bool("elections", true)?,
            shared_locks: options.bool("shared_locks", true)?,
            latency: options.duration("latency", Duration::ZERO)?,
        })
    }
}

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
            .with_shared_locks(self.options.shared_locks))
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
        if request.mode == LockMode::Shared && !self.options.shared_locks {
            return Err(self.unsupported("shared locks"));
        }
        self.call(|state, session| {
            let session = match self.live_session(session) {
                Ok(s) => s,
                Err(e) => return (Err(e), false),
            };
            let now = Instant::now();
            let queue = state.lock_queues.entry(request.name.clone()).or_default();
            queue.retain(|(_, alive)| *alive > now);
            let first = queue.first().map(|(owner, _)| *owner);
            let holders = state.locks.entry(request.name.clone()).or_default();
            let free = match request.mode {
                LockMode::Exclusive => holders.is_empty(),
                LockMode::Shared => holders.iter().all(|h| h.mode == LockMode::Shared),
            };
            // Waiters are served in arrival order: nobody takes the lock ahead of the first.
            if !free || first.is_some_and(|first| first != request.owner) {
                let queue = state.lock_queues.entry(request.name.clone()).or_default();
                if request.wait {
                    let alive = now + QUEUE_ENTRY_LIFE;
                    match queue.iter_mut().find(|(owner, _)| *owner == request.owner) {
                        Some(entry) => entry.1 = alive,
                        None => queue.push((request.owner, alive)),
                    }
                }
                return (Ok(None), false);
            }
            if let Some(queue) = state.lock_queues.get_mut(request.name) {
                queue.retain(|(owner, _)| *owner != request.owner);
                if queue.is_empty() {
                    state.lock_queues.remove(request.name);
                }
            }
            let holders = state.locks.entry(request.name.clone()).or_default();
            holders.push(LockHolder {
                owner: request.owner,
                session,
                mode: request.mode,
            });
            let token = State::next_fence(&mut state.lock_fences, request.name.clone());
            (Ok(Some(token)), true)
        })
        .await
    }

    async fn stop_waiting(&self, name: &LockName, owner: OwnerToken) -> Result<()> {
        self.call(|state, _| {
            if let Some(queue) = state.lock_queues.get_mut(name) {
                queue.retain(|(o, _)| *o != owner);
                if queue.is_empty() {
                    state.lock_queues.remove(name);
                }
            }
            // The next waiter may be free to go now.
            ((), true)
        })
        .await;
        Ok(())
    }

    async fn release(&self, name: &LockName, owner: OwnerToken) -> Result<bool> {
        Ok(self
            .call(|state, _| {
                let Some(holders) = state.locks.get_mut(name) else {
                    return (false, false);
                };
                let before = holders.len();
                holders.retain(|h| h.owner != owner);
                let released = holders.len() < before;
                if holders.is_empty() {
                    state.locks.remove(name);
                }
                (released, released)
            })
            .await)
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

fn group_not_created(group: &GroupId) -> Error {
    Error::GroupNotCreated {
        group: group.clone(),
    }
}

#[async_trait]
impl Groups for MemoryBackend {
    async fn create_group(&self, group: &GroupId) -> Result<()> {
        self.call(|state, _| {
            if state.groups.contains_key(group) {
                return (
                    Err(Error::GroupAlreadyExist {
                        group: group.clone(),
                    }),
                    false,
                );
            }
            state.groups.insert(group.clone(), BTreeMap::new());
            (Ok(()), true)
        })
        .await
    }

    async fn delete_group(&self, group: &GroupId) -> Result<()> {
        self.call(|state, _| match state.groups.get(group) {
            None => (Err(group_not_created(group)), false),
            Some(members) if !members.is_empty() => (
                Err(Error::GroupNotEmpty {
                    group: group.clone(),
                }),
                false,
            ),
            Some(_) => {
                state.groups.remove(group);
                (Ok(()), true)
            }
        })
        .await
    }

    async fn list_groups(&self) -> Result<Vec<GroupId>> {
        Ok(self
            .call(|state, _| (state.groups.keys().cloned().collect(), false))
            .await)
    }

    async fn join(&self, group: &GroupId, capabilities: &Capabilities) -> Result<()> {
        self.call(|state, session| {
            let session = match self.live_session(session) {
                Ok(s) => s,
                Err(e) => return (Err(e), false),
            };
            let Some(members) = state.groups.get_mut(group) else {
                return (Err(group_not_created(group)), false);
            };
            if members.contains_key(&self.member) {
                let err = Error::MemberAlreadyExist {
                    group: group.clone(),
                    member: self.member.clone(),
                };
                return (Err(err), false);
            }
            let membership = Membership {
                session,
                capabilities: capabilities.clone(),
            };
            members.insert(self.member.clone(), membership);
            (Ok(()), true)
        })
        .await
    }

    async fn leave(&self, group: &GroupId) -> Result<()> {
        self.call(|state, _| {
            let Some(members) = state.groups.get_mut(group) else {
                return (Err(group_not_created(group)), false);
            };
            if members.remove(&self.member).is_none() {
                let err = Error::MemberNotJoined {
                    group: group.clone(),
                    member: self.member.clone(),
                };
                return (Err(err), false);
            }
            (Ok(()), true)
        })
        .await
    }

    async fn members(&self, group: &GroupId) -> Result<Vec<(MemberId, Capabilities)>> {
        self.call(|state, _| match state.groups.get(group) {
            None => (Err(group_not_created(group)), false),
            Some(members) => {
                let list = members
                    .iter()
                    .map(|(id, m)| (id.clone(), m.capabilities.clone()))
                    .collect();
                (Ok(list), false)
            }
        })
        .await
    }

    async fn member_capabilities(
        &self,
        group: &GroupId,
        member: &MemberId,
    ) -> Result<Capabilities> {
        self.call(|state, _| {
            let Some(members) = state.groups.get(group) else {
                return (Err(group_not_created(group)), false);
            };
            let found = members.get(member).map(|m| m.capabilities.clone());
            let result = found.ok_or_else(|| Error::MemberNotJoined {
                group: group.clone(),
                member: member.clone(),
            });
            (result, false)
        })
        .await
    }

    async fn update_capabilities(
        &self,
        group: &GroupId,
        capabilities: &Capabilities,
    ) -> Result<()> {
        self.call(|state, _| {
            let Some(members) = state.groups.get_mut(group) else {
                return (Err(group_not_created(group)), false);
            };
            let Some(membership) = members.get_mut(&self.member) else {
                let err = Error::MemberNotJoined {
                    group: group.clone(),
                    member: self.member.clone(),
                };
                return (Err(err), false);
            };
            membership.capabilities = capabilities.clone();
            (Ok(()), true)
        })
        .await
    }
}

#[async_trait]
impl Elections for MemoryBackend {
    async fn try_lead(&self, group: &GroupId, owner: OwnerToken) -> Result<Option<FencingToken>> {
        self.call(|state, session| {
            let session = match self.live_session(session) {
                Ok(s) => s,
                Err(e) => return (Err(e), false),
            };
            if state.leaders.contains_key(group) {
                return (Ok(None), false);
            }
            let leader = Leader {
                member: self.member.clone(),
                owner,
                session,
            };
            state.leaders.insert(group.clone(), leader);
            let token = State::next_fence(&mut state.leader_fences, group.clone());
            (Ok(Some(token)), true)
        })
        .await
    }

    async fn resign(&self, group: &GroupId, owner: OwnerToken) -> Result<bool> {
        Ok(self
            .call(|state, _| {
                if state.leaders.get(group).is_some_and(|l| l.owner == owner) {
                    state.leaders.remove(group);
                    (true, true)
                } else {
                    (false, false)
                }
            })
            .await)
    }

    async fn leader(&self, group: &GroupId) -> Result<Option<MemberId>> {
        Ok(self
            .call(|state, _| (state.leaders.get(group).map(|l| l.member.clone()), false))
            .await)
    }
}
