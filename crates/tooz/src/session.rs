//! The coordinator's side of liveness: a local lease that runs out before the backend's, the
//! registry of everything held, and the loss signals that fire when any of it is lost.
//!
//! Every lock guard, membership and leadership owns a child of the current session
//! generation's token. Losing the session (the local deadline passes, or the backend reports
//! that its session restarted) cancels the generation, firing every signal at once, and starts
//! a new one for what is taken afterwards.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;

use crate::clock;
use tokio_util::sync::CancellationToken;

use crate::backend::{BeatReport, Held, OwnerToken};
use crate::ids::{GroupId, LockName};

/// The share of the backend's timeout we trust locally: we call ourselves dead at 90% of it,
/// measured from when the renewing request was *sent*, so we give up before the server does.
const LOCAL_LEASE_NUMERATOR: u32 = 9;
const LOCAL_LEASE_DENOMINATOR: u32 = 10;

#[derive(Debug)]
pub(crate) struct Session {
    local_lease: Duration,
    /// Locks and leaderships do not depend on the lease (see
    /// [`crate::backend::Backend::locks_outlive_heartbeats`]).
    grants_outlive_lease: bool,
    state: Mutex<State>,
    /// Wakes the heartbeat task when the deadline moves (a permit is kept if it is busy).
    deadline_moved: Notify,
}

#[derive(Debug)]
struct State {
    /// Until when (boot time, see [`crate::clock`]) we vouch for the backend session; `None`
    /// once it is lost, until renewed.
    deadline: Option<Duration>,
    generation: CancellationToken,
    locks: HashMap<OwnerToken, (LockName, CancellationToken)>,
    memberships: HashMap<GroupId, CancellationToken>,
    leaderships: HashMap<OwnerToken, (GroupId, CancellationToken)>,
}

impl Session {
    /// A session whose backend keeps it for `timeout` without a heartbeat, renewed by a
    /// request sent at `started`.
    pub(crate) fn new(timeout: Duration, started: Duration, grants_outlive_lease: bool) -> Self {
        let local_lease = timeout * LOCAL_LEASE_NUMERATOR / LOCAL_LEASE_DENOMINATOR;
        Self {
            local_lease,
            grants_outlive_lease,
            state: Mutex::new(State {
                deadline: Some(started + local_lease),
                generation: CancellationToken::new(),
                locks: HashMap::new(),
                memberships: HashMap::new(),
                leaderships: HashMap::new(),
            }),
            deadline_moved: Notify::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the local lease still runs.
    pub(crate) fn is_live(&self) -> bool {
        self.state().deadline.is_some_and(|d| clock::now() < d)
    }

    /// When the local lease runs out, if it still runs.
    pub(crate) fn deadline(&self) -> Option<Duration> {
        self.state().deadline
    }

    /// Resolves when the deadline may have moved.
    pub(crate) async fn deadline_moved(&self) {
        self.deadline_moved.notified().await;
    }

    /// A heartbeat sent at `sent` succeeded.
    pub(crate) fn renewed(&self, sent: Duration, report: &BeatReport) {
        if report.session_restarted {
            self.lose_everything();
        }
        let mut state = self.state();
        let deadline = sent + self.local_lease;
        state.deadline = Some(state.deadline.map_or(deadline, |d| d.max(deadline)));
        for owner in &report.lost_locks {
            if let Some((_, token)) = state.locks.remove(owner) {
                token.cancel();
            }
        }
        for group in &report.lost_memberships {
            if let Some(token) = state.memberships.remove(group) {
                token.cancel();
            }
        }
        let lost_leaderships: Vec<OwnerToken> = state
            .leaderships
            .iter()
            .filter(|(_, (group, _))| report.lost_leaderships.contains(group))
            .map(|(owner, _)| *owner)
            .collect();
        for owner in lost_leaderships {
            if let Some((_, token)) = state.leaderships.remove(&owner) {
                token.cancel();
            }
        }
        drop(state);
        self.deadline_moved.notify_one();
    }

    /// Fires every loss signal and forgets everything held; later grants start a new
    /// generation. Called when the lease runs out, when the backend restarted our session,
    /// and on stop.
    pub(crate) fn lose_everything(&self) {
        let mut state = self.state();
        state.deadline = state.deadline.filter(|d| clock::now() < *d);
        let old = std::mem::replace(&mut state.generation, CancellationToken::new());
        state.locks.clear();
        state.memberships.clear();
        state.leaderships.clear();
        drop(state);
        old.cancel();
    }

    /// The local lease ran out unrenewed: everything that depends on it is lost.
    pub(crate) fn expire(&self) {
        let mut state = self.state();
        state.deadline = None;
        if self.grants_outlive_lease {
            for (_, token) in state.memberships.drain() {
                token.cancel();
            }
        } else {
            drop(state);
            self.lose_everything();
        }
    }

    /// Whether a lock or leadership held now still stands as far as the lease is concerned.
    pub(crate) fn grants_live(&self) -> bool {
        self.grants_outlive_lease || self.is_live()
    }

    /// What to renew or check in the next heartbeat.
    pub(crate) fn held(&self) -> Held {
        let state = self.state();
        Held {
            locks: state
                .locks
                .iter()
                .map(|(owner, (name, _))| (name.clone(), *owner))
                .collect(),
            memberships: state.memberships.keys().cloned().collect(),
            leaderships: state
                .leaderships
                .iter()
                .map(|(owner, (group, _))| (group.clone(), *owner))
                .collect(),
        }
    }

    pub(crate) fn add_lock(&self, owner: OwnerToken, name: LockName) -> CancellationToken {
        let mut state = self.state();
        let token = state.generation.child_token();
        state.locks.insert(owner, (name, token.clone()));
        token
    }

    pub(crate) fn remove_lock(&self, owner: OwnerToken) {
        self.state().locks.remove(&owner);
    }

    pub(crate) fn add_leadership(&self, owner: OwnerToken, group: GroupId) -> CancellationToken {
        let mut state = self.state();
        let token = state.generation.child_token();
        state.leaderships.insert(owner, (group, token.clone()));
        token
    }

    pub(crate) fn remove_leadership(&self, owner: OwnerToken) {
        self.state().leaderships.remove(&owner);
    }

    pub(crate) fn add_membership(&self, group: GroupId) -> CancellationToken {
        let mut state = self.state();
        let token = state.generation.child_token();
        if let Some(old) = state.memberships.insert(group, token.clone()) {
            old.cancel();
        }
        token
    }

    pub(crate) fn remove_membership(&self, group: &GroupId) {
        if let Some(token) = self.state().memberships.remove(group) {
            token.cancel();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lease_runs_on_boot_time_and_ends_before_the_servers() {
        let timeout = Duration::from_secs(10);
        assert!(Session::new(timeout, clock::now(), false).is_live());
        // A renewal sent 9.5 s ago (or before a suspend of that long): the server still has
        // half a second, but we already stopped vouching at 90%.
        let old = clock::now().saturating_sub(Duration::from_millis(9_500));
        assert!(!Session::new(timeout, old, false).is_live());
    }

    #[test]
    fn expiry_keeps_kernel_held_grants_but_not_memberships() {
        let session = Session::new(Duration::from_secs(10), clock::now(), true);
        let lock = session.add_lock(OwnerToken::generate(), "l".into());
        let membership = session.add_membership("g".into());
        session.expire();
        assert!(membership.is_cancelled());
        assert!(!lock.is_cancelled());
        assert!(session.grants_live());
        session.lose_everything();
        assert!(lock.is_cancelled());
    }
}
