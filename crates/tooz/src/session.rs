//! The coordinator's side of liveness: local leases that run out before the backend's, the
//! registry of everything held, and the loss signals that fire when any of it is lost.
//!
//! Two kinds of lease run here, both counted on the boot-time clock from when the renewing
//! request was *sent* (so that a slow reply never stretches them):
//!
//! * the **session lease** covers memberships: the backend keeps a member alive for its
//!   membership timeout after the last heartbeat that reached it;
//! * every **lock and leadership has its own lease**, from the send time of the request that
//!   took it (for a lock waiter, of the attempt before it: a backend may hand the lock to a
//!   queued waiter between attempts), extended only by a heartbeat that included that very
//!   grant. A session-wide
//!   deadline would be wrong for grants: a heartbeat sent before a slow acquire returned does
//!   not renew it, yet would have moved the deadline.
//!
//! Each lease is 90% of the backend's timeout, so we call a grant lost before the backend can
//! hand it to anyone else. Losses are matched by the grant's owner token, never by name.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::backend::{BeatReport, Held, Loss, OwnerToken};
use crate::ids::{GroupId, LockName};
use crate::{clock, telemetry};

/// The share of the backend's timeout we trust locally.
const LOCAL_LEASE_PERCENT: u32 = 90;

/// Our local lease for a backend timeout: 90% of it, without overflow for any duration.
pub(crate) fn local_lease(timeout: Duration) -> Duration {
    // Nanosecond-exact, and no multiplication that could overflow.
    let whole = timeout / 100 * LOCAL_LEASE_PERCENT;
    let rest = timeout.saturating_sub(timeout / 100 * 100);
    whole + rest * LOCAL_LEASE_PERCENT / 100
}

/// The loss signal of one grant (lock, leadership or membership), shared with its handle.
#[derive(Debug)]
pub(crate) struct Signal {
    lost: CancellationToken,
    /// Until when (boot-time nanoseconds) the grant's own lease runs; `u64::MAX` when it does
    /// not depend on heartbeats (memberships follow the session lease instead).
    deadline: AtomicU64,
}

impl Signal {
    fn new(deadline: Option<Duration>) -> Arc<Self> {
        Arc::new(Self {
            lost: CancellationToken::new(),
            deadline: AtomicU64::new(deadline.map_or(u64::MAX, nanos)),
        })
    }

    /// Not lost, and its own lease (if any) still runs.
    pub(crate) fn is_live(&self) -> bool {
        !self.lost.is_cancelled() && nanos(clock::now()) < self.deadline.load(Ordering::Acquire)
    }

    pub(crate) fn lost(&self) -> &CancellationToken {
        &self.lost
    }

    fn deadline(&self) -> Option<Duration> {
        match self.deadline.load(Ordering::Acquire) {
            u64::MAX => None,
            n => Some(Duration::from_nanos(n)),
        }
    }

    fn extend(&self, until: Duration) {
        self.deadline.fetch_max(nanos(until), Ordering::AcqRel);
    }
}

fn nanos(boot_time: Duration) -> u64 {
    u64::try_from(boot_time.as_nanos()).unwrap_or(u64::MAX - 1)
}

/// What a registered grant is.
#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Lock(LockName),
    Leadership(GroupId),
    Membership(GroupId),
}

#[derive(Debug)]
struct Entry {
    kind: Kind,
    signal: Arc<Signal>,
}

#[derive(Debug)]
pub(crate) struct Session {
    membership_lease: Duration,
    /// `None`: locks and leaderships do not depend on heartbeats (see
    /// [`crate::backend::Started::grant_timeout`]).
    grant_lease: Option<Duration>,
    state: Mutex<State>,
    /// Wakes the heartbeat task when a deadline moves (a permit is kept if it is busy).
    deadline_moved: Notify,
}

#[derive(Debug)]
struct State {
    /// After stop: nothing more may be registered (a late grant is handed back instead).
    closed: bool,
    /// Until when (boot time) we vouch for the backend session, and so for memberships;
    /// `None` once it ran out, until renewed.
    deadline: Option<Duration>,
    grants: HashMap<OwnerToken, Entry>,
    /// Groups whose membership we gave up locally (the lease ran out, the backend restarted
    /// our session) while the backend may still list us: left on the backend at the next
    /// chance, so that nobody sees a member that believes it is gone.
    dropped: BTreeSet<GroupId>,
    /// The earliest deadline when the heartbeat task last looked (it sleeps until then at
    /// most): a grant due no sooner need not wake it.
    watched: Option<Duration>,
}

/// What a deadline check found.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Expired {
    /// The session lease ran out (every membership is lost).
    pub(crate) session: bool,
    /// Locks and leaderships whose own lease ran out.
    pub(crate) grants: usize,
}

impl Session {
    /// A session whose backend keeps members for `membership_timeout` (and grants for
    /// `grant_timeout`) without a heartbeat, renewed by a request sent at `sent`.
    pub(crate) fn new(
        membership_timeout: Duration,
        grant_timeout: Option<Duration>,
        sent: Duration,
    ) -> Self {
        let membership_lease = local_lease(membership_timeout);
        Self {
            membership_lease,
            grant_lease: grant_timeout.map(local_lease),
            state: Mutex::new(State {
                closed: false,
                deadline: Some(sent.saturating_add(membership_lease)),
                grants: HashMap::new(),
                dropped: BTreeSet::new(),
                watched: None,
            }),
            deadline_moved: Notify::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the session lease still runs.
    pub(crate) fn is_live(&self) -> bool {
        self.state().deadline.is_some_and(|d| clock::now() < d)
    }

    /// The earliest deadline still running: the session's or a grant's. Only the heartbeat
    /// task calls this: the answer is recorded as the deadline it watches (see `register`).
    pub(crate) fn watch_next_deadline(&self) -> Option<Duration> {
        let mut state = self.state();
        let grants = state.grants.values().filter_map(|e| e.signal.deadline());
        let next = grants.chain(state.deadline).min();
        state.watched = next;
        next
    }

    /// Resolves when a deadline may have moved.
    pub(crate) async fn deadline_moved(&self) {
        self.deadline_moved.notified().await;
    }

    /// Fires the signal of everything whose lease ran out by `now`.
    pub(crate) fn expire_due(&self, now: Duration) -> Expired {
        let mut state = self.state();
        let mut expired = Expired::default();
        if state.deadline.is_some_and(|d| d <= now) {
            state.deadline = None;
            expired.session = true;
            let memberships: Vec<OwnerToken> = state
                .grants
                .iter()
                .filter(|(_, e)| matches!(e.kind, Kind::Membership(_)))
                .map(|(owner, _)| *owner)
                .collect();
            for owner in memberships {
                state.lose(owner, true);
            }
        }
        let due: Vec<OwnerToken> = state
            .grants
            .iter()
            .filter(|(_, e)| e.signal.deadline().is_some_and(|d| d <= now))
            .map(|(owner, _)| *owner)
            .collect();
        expired.grants = due.len();
        for owner in due {
            state.lose(owner, false);
        }
        expired
    }

    /// A heartbeat sent at `sent`, carrying `held`, succeeded with `report`.
    pub(crate) fn renewed(&self, sent: Duration, held: &Held, report: &BeatReport) {
        let mut state = self.state();
        let until = sent.saturating_add(self.membership_lease);
        state.deadline = Some(state.deadline.map_or(until, |d| d.max(until)));
        if report.session_restarted {
            // Nothing the heartbeat carried survived; what was taken since belongs to the new
            // session and stands.
            let all = held.locks.iter().map(|(_, o)| *o);
            let all = all.chain(held.leaderships.iter().map(|(_, o)| *o));
            for owner in all.chain(held.memberships.iter().map(|(_, o)| *o)) {
                state.lose(owner, true);
            }
        } else {
            for owner in report.lost_locks.iter().chain(&report.lost_leaderships) {
                state.lose(*owner, false);
            }
            for owner in &report.lost_memberships {
                state.lose(*owner, false);
            }
            if let Some(lease) = self.grant_lease {
                let until = sent.saturating_add(lease);
                let locks = held.locks.iter().map(|(_, owner)| owner);
                let renewed = locks.chain(held.leaderships.iter().map(|(_, owner)| owner));
                for owner in renewed {
                    if let Some(entry) = state.grants.get(owner) {
                        entry.signal.extend(until);
                    }
                }
            }
        }
        drop(state);
        self.deadline_moved.notify_one();
    }

    /// A loss the backend pushed: its session ended (everything is lost, and the session
    /// lease with it until a heartbeat renews it), or these grants are.
    pub(crate) fn lose_pushed(&self, loss: Loss) {
        let mut state = self.state();
        let owners: Vec<OwnerToken> = match loss {
            Loss::SessionEnded => {
                state.deadline = None;
                state.grants.keys().copied().collect()
            }
            Loss::Grants(owners) => owners,
        };
        for owner in owners {
            state.lose(owner, false);
        }
    }

    /// Fires every loss signal and forgets everything held (the coordinator stopped or was
    /// dropped).
    pub(crate) fn lose_everything(&self) {
        let mut state = self.state();
        for (_, entry) in state.grants.drain() {
            entry.signal.lost.cancel();
        }
        state.dropped.clear();
    }

    /// Refuses every later registration and returns what is held, to hand back.
    pub(crate) fn close(&self) -> Held {
        self.state().closed = true;
        self.held()
    }

    /// What to renew or check in the next heartbeat.
    pub(crate) fn held(&self) -> Held {
        let state = self.state();
        let mut held = Held::default();
        for (owner, entry) in &state.grants {
            match &entry.kind {
                Kind::Lock(name) => held.locks.push((name.clone(), *owner)),
                Kind::Leadership(group) => held.leaderships.push((group.clone(), *owner)),
                Kind::Membership(group) => held.memberships.push((group.clone(), *owner)),
            }
        }
        held
    }

    /// Registers a grant taken by a request sent at `sent`; `None` after stop, when the
    /// caller must hand it back instead.
    pub(crate) fn register(
        &self,
        owner: OwnerToken,
        kind: Kind,
        sent: Duration,
    ) -> Option<Arc<Signal>> {
        let mut state = self.state();
        if state.closed {
            return None;
        }
        let deadline = match &kind {
            Kind::Membership(group) => {
                state.dropped.remove(group);
                if state.deadline.is_none_or(|d| d <= clock::now()) {
                    // Joined while our session lease had already run out: the backend may
                    // drop it any moment, so it is lost from the start (and left later).
                    let signal = Signal::new(None);
                    signal.lost.cancel();
                    state.dropped.insert(group.clone());
                    return Some(signal);
                }
                None
            }
            Kind::Lock(_) | Kind::Leadership(_) => {
                self.grant_lease.map(|lease| sent.saturating_add(lease))
            }
        };
        // The heartbeat task wakes by the earliest deadline it saw; only an earlier one (or
        // a membership) needs to tell it, which spares it a wake-up per grant.
        let wake = match (&kind, deadline) {
            (Kind::Membership(_), _) => true,
            (_, Some(d)) => state.watched.is_none_or(|w| d < w),
            (_, None) => false,
        };
        let signal = Signal::new(deadline);
        let entry = Entry {
            kind,
            signal: Arc::clone(&signal),
        };
        state.grants.insert(owner, entry);
        drop(state);
        if wake {
            self.deadline_moved.notify_one();
        }
        Some(signal)
    }

    /// Forgets a grant handed back (released, resigned); its signal is the handle's to fire.
    pub(crate) fn remove(&self, owner: OwnerToken) {
        self.state().grants.remove(&owner);
    }

    /// Forgets this coordinator's membership of `group` (it left), firing its signal.
    pub(crate) fn remove_membership(&self, group: &GroupId) {
        let mut state = self.state();
        state.dropped.remove(group);
        let owners: Vec<OwnerToken> = state
            .grants
            .iter()
            .filter(|(_, e)| matches!(&e.kind, Kind::Membership(g) if g == group))
            .map(|(owner, _)| *owner)
            .collect();
        for owner in owners {
            state.lose(owner, false);
        }
    }

    /// Memberships given up locally that the backend may still list.
    pub(crate) fn dropped(&self) -> Vec<GroupId> {
        self.state().dropped.iter().cloned().collect()
    }

    /// Takes `group` off the dropped list; whether it was on it.
    pub(crate) fn take_dropped(&self, group: &GroupId) -> bool {
        self.state().dropped.remove(group)
    }
}

impl State {
    /// Fires a grant's loss signal and forgets it; a membership given up on our side alone is
    /// remembered for leaving on the backend.
    fn lose(&mut self, owner: OwnerToken, still_listed: bool) {
        let Some(entry) = self.grants.remove(&owner) else {
            return;
        };
        telemetry::lost(match entry.kind {
            Kind::Lock(_) => "lock",
            Kind::Leadership(_) => "leadership",
            Kind::Membership(_) => "membership",
        });
        entry.signal.lost.cancel();
        if let (Kind::Membership(group), true) = (entry.kind, still_listed) {
            self.dropped.insert(group);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(10);

    #[test]
    fn the_lease_is_ninety_percent_for_every_duration() {
        assert_eq!(local_lease(TIMEOUT), Duration::from_secs(9));
        assert_eq!(
            local_lease(Duration::from_millis(2)),
            Duration::from_micros(1800)
        );
        assert!(local_lease(Duration::MAX) < Duration::MAX);
        assert_eq!(local_lease(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn the_lease_runs_on_boot_time_and_ends_before_the_servers() {
        assert!(Session::new(TIMEOUT, Some(TIMEOUT), clock::now()).is_live());
        // A renewal sent 9.5 s ago (or before a suspend of that long): the server still has
        // half a second, but we already stopped vouching at 90%.
        let old = clock::now().saturating_sub(Duration::from_millis(9_500));
        assert!(!Session::new(TIMEOUT, Some(TIMEOUT), old).is_live());
    }

    #[test]
    fn a_grant_runs_from_its_own_request_not_from_an_older_heartbeat() {
        let now = clock::now();
        let session = Session::new(TIMEOUT, Some(TIMEOUT), now);
        // A grant whose request went out 9.5 s ago (a slow acquire): the session was renewed
        // just now, but that renewal did not carry the grant.
        let owner = OwnerToken::generate();
        let sent = now.saturating_sub(Duration::from_millis(9_500));
        let signal = session
            .register(owner, Kind::Lock("l".into()), sent)
            .unwrap();
        assert!(!signal.is_live(), "its own lease ran out");
        assert_eq!(
            session.watch_next_deadline(),
            Some(sent + Duration::from_secs(9))
        );
        let expired = session.expire_due(clock::now());
        assert_eq!(
            expired,
            Expired {
                session: false,
                grants: 1
            }
        );
        assert!(signal.lost().is_cancelled());
    }

    /// Whether the heartbeat task, waiting for a deadline to move, was told.
    async fn told(session: &Session) -> bool {
        tokio::time::timeout(Duration::from_millis(20), session.deadline_moved())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn only_a_grant_due_before_the_watched_deadline_wakes_the_heartbeat() {
        let start = clock::now();
        let session = Session::new(TIMEOUT, Some(TIMEOUT), start);
        let lock = |name: &str| Kind::Lock(name.into());
        session.register(OwnerToken::generate(), lock("a"), start);
        assert!(told(&session).await, "the first deadline");
        // The task looks: it now sleeps towards the earliest deadline, start + 9 s.
        assert_eq!(
            session.watch_next_deadline(),
            Some(start + Duration::from_secs(9))
        );
        session.register(
            OwnerToken::generate(),
            lock("b"),
            start + Duration::from_secs(1),
        );
        assert!(!told(&session).await, "a later deadline needs no wake-up");
        let early = start.saturating_sub(Duration::from_secs(1));
        session.register(OwnerToken::generate(), lock("c"), early);
        assert!(told(&session).await, "an earlier deadline must wake it");
        assert_eq!(
            session.watch_next_deadline(),
            Some(early + Duration::from_secs(9))
        );
        // Without grant leases (the file backend) a lock is never due.
        let unleased = Session::new(TIMEOUT, None, start);
        assert!(
            unleased.watch_next_deadline().is_some(),
            "the session's own"
        );
        unleased.register(OwnerToken::generate(), lock("d"), start);
        assert!(!told(&unleased).await);
        let group = Kind::Membership(GroupId::from("g"));
        unleased.register(OwnerToken::generate(), group, start);
        assert!(told(&unleased).await, "a membership always tells");
    }

    #[test]
    fn only_a_heartbeat_that_carried_the_grant_extends_it() {
        let start = clock::now();
        let session = Session::new(TIMEOUT, Some(TIMEOUT), start);
        let carried = OwnerToken::generate();
        let late = OwnerToken::generate();
        let a = session
            .register(carried, Kind::Lock("a".into()), start)
            .unwrap();
        let held = session.held();
        let b = session
            .register(late, Kind::Lock("b".into()), start)
            .unwrap();
        let beat = start + Duration::from_secs(5);
        session.renewed(beat, &held, &BeatReport::default());
        assert_eq!(a.deadline(), Some(beat + Duration::from_secs(9)));
        assert_eq!(b.deadline(), Some(start + Duration::from_secs(9)));
    }

    #[test]
    fn losses_match_owner_tokens_so_a_rejoin_survives_an_old_report() {
        let session = Session::new(TIMEOUT, Some(TIMEOUT), clock::now());
        let first = OwnerToken::generate();
        let old = session
            .register(first, Kind::Membership("g".into()), clock::now())
            .unwrap();
        let held = session.held();
        session.remove_membership(&"g".into());
        let second = OwnerToken::generate();
        let new = session
            .register(second, Kind::Membership("g".into()), clock::now())
            .unwrap();
        let report = BeatReport {
            lost_memberships: vec![first],
            ..BeatReport::default()
        };
        session.renewed(clock::now(), &held, &report);
        assert!(old.lost().is_cancelled());
        assert!(!new.lost().is_cancelled());
        assert_eq!(session.held().memberships, vec![("g".into(), second)]);
    }

    #[test]
    fn an_expired_session_drops_memberships_for_leaving_later() {
        let long_ago = clock::now().saturating_sub(Duration::from_secs(60));
        let session = Session::new(TIMEOUT, None, long_ago);
        let lock = session
            .register(OwnerToken::generate(), Kind::Lock("l".into()), long_ago)
            .unwrap();
        let membership = session
            .register(
                OwnerToken::generate(),
                Kind::Membership("g".into()),
                long_ago,
            )
            .unwrap();
        let expired = session.expire_due(clock::now());
        assert_eq!(
            expired,
            Expired {
                session: true,
                grants: 0
            }
        );
        assert!(membership.lost().is_cancelled());
        assert!(lock.is_live(), "kernel-held locks outlive the lease");
        assert_eq!(session.dropped(), vec![GroupId::from("g")]);
        assert!(session.take_dropped(&"g".into()));
        assert!(session.dropped().is_empty());
    }

    #[test]
    fn a_restarted_session_loses_what_the_heartbeat_carried_only() {
        let session = Session::new(TIMEOUT, Some(TIMEOUT), clock::now());
        let old = session
            .register(OwnerToken::generate(), Kind::Lock("a".into()), clock::now())
            .unwrap();
        let held = session.held();
        let new = session
            .register(OwnerToken::generate(), Kind::Lock("b".into()), clock::now())
            .unwrap();
        let report = BeatReport {
            session_restarted: true,
            ..BeatReport::default()
        };
        session.renewed(clock::now(), &held, &report);
        assert!(old.lost().is_cancelled());
        assert!(new.is_live());
    }

    #[test]
    fn a_membership_joined_after_the_lease_ran_out_is_lost_at_once() {
        let long_ago = clock::now().saturating_sub(Duration::from_secs(60));
        let session = Session::new(TIMEOUT, Some(TIMEOUT), long_ago);
        session.expire_due(clock::now());
        let membership = session
            .register(
                OwnerToken::generate(),
                Kind::Membership("g".into()),
                clock::now(),
            )
            .unwrap();
        assert!(
            membership.lost().is_cancelled(),
            "no lease would ever fire it"
        );
        assert_eq!(session.dropped(), vec![GroupId::from("g")]);
    }

    #[test]
    fn nothing_registers_after_close() {
        let session = Session::new(TIMEOUT, Some(TIMEOUT), clock::now());
        let owner = OwnerToken::generate();
        assert!(
            session
                .register(owner, Kind::Lock("a".into()), clock::now())
                .is_some()
        );
        let held = session.close();
        assert_eq!(held.locks.len(), 1);
        let late = OwnerToken::generate();
        assert!(
            session
                .register(late, Kind::Lock("b".into()), clock::now())
                .is_none()
        );
    }
}
