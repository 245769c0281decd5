//! Locks with fencing tokens and loss signals.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use tracing::Instrument;

use crate::backend::{FencingToken, LockMode, LockRequest, OwnerToken, Topic};
use crate::coordinator::{Coordinator, Inner};
use crate::error::{Error, Result};
use crate::ids::LockName;
use crate::run_to_end::{RunToEnd, boxed};
use crate::session::{Kind, Signal};
use crate::{clock, wait};

/// On a backend whose waits block (a kernel wait), a single attempt that took longer than this
/// counts as contended.
const BLOCKED_AFTER: Duration = Duration::from_millis(1);

/// A named lock of a coordinator; cheap, and takes nothing until asked.
#[derive(Debug, Clone)]
pub struct Lock {
    coord: Coordinator,
    name: LockName,
    mode: LockMode,
}

impl Lock {
    pub(crate) fn new(coord: Coordinator, name: LockName) -> Self {
        Self {
            coord,
            name,
            mode: LockMode::Exclusive,
        }
    }

    /// The same lock taken shared: any number of shared holders, no exclusive one. Backends
    /// without shared locks return [`Error::Unsupported`] on acquire.
    pub fn shared(mut self) -> Self {
        self.mode = LockMode::Shared;
        self
    }

    /// The lock's name.
    pub fn name(&self) -> &LockName {
        &self.name
    }

    /// Waits as long as it takes to acquire the lock.
    pub async fn acquire(&self) -> Result<LockGuard> {
        let guard = self.acquire_until(None).await?;
        guard.ok_or_else(|| Error::LockNotHeld {
            lock: self.name.clone(),
        })
    }

    /// One attempt: `None` at once if the lock is held elsewhere, or if others are waiting for
    /// it on a backend that serves waiters in arrival order (memory, file, redis).
    pub async fn try_acquire(&self) -> Result<Option<LockGuard>> {
        self.acquire_until(Some(Instant::now())).await
    }

    /// Waits at most `wait`; [`Error::OperationTimedOut`] if the lock is still held elsewhere.
    pub async fn acquire_timeout(&self, wait: Duration) -> Result<LockGuard> {
        // A wait too long to represent is a wait without end.
        let guard = self.acquire_until(Instant::now().checked_add(wait)).await?;
        guard.ok_or_else(|| Error::OperationTimedOut {
            operation: format!("acquiring lock '{}'", self.name),
            after: wait,
        })
    }

    async fn acquire_until(&self, deadline: Option<Instant>) -> Result<Option<LockGuard>> {
        let span = tracing::debug_span!(
            "tooz.acquire",
            backend = self.coord.backend_name(),
            lock = %self.name,
            mode = ?self.mode,
            token = tracing::field::Empty,
            waited_us = tracing::field::Empty,
            attempts = tracing::field::Empty,
        );
        if span.is_disabled() {
            // Nobody listens: no wrapper around the hot path.
            self.take(deadline).await
        } else {
            self.take(deadline).instrument(span).await
        }
    }

    async fn take(&self, deadline: Option<Instant>) -> Result<Option<LockGuard>> {
        self.name.validate()?;
        let started = self.coord.inner.meters.timed().then(Instant::now);
        let mut attempts = 0_u32;
        let inner = &self.coord.inner;
        if self.mode == LockMode::Shared && !inner.started.shared_locks {
            return Err(Error::Unsupported {
                operation: "shared locks",
                backend: inner.backend.name(),
            });
        }
        let owner = OwnerToken::generate();
        let mut queue = LeaveQueue {
            inner: Arc::clone(inner),
            name: self.name.clone(),
            owner,
            queued: AtomicBool::new(false),
        };
        let blocks = inner.started.lock_waits_block;
        let mut previous_sent = None;
        let attempt = |wait: bool| {
            // The grant's lease counts from the previous attempt's send time when there was
            // one, on a backend that may grant a queued waiter between its attempts (a
            // hand-off) and deliver the grant on the next, which leaves after the grant was
            // made: the previous attempt was refused, so it left before the grant. Elsewhere
            // it counts from this attempt (a wait woken by a watch may have been long).
            let now = clock::now();
            let previous = previous_sent.replace(now);
            let sent = match previous {
                Some(previous) if inner.started.grants_between_attempts => previous,
                _ => now,
            };
            attempts += 1;
            if wait {
                queue.queued.store(true, Ordering::Relaxed);
            }
            let (name, mode) = (self.name.clone(), self.mode);
            let take = try_acquire(Arc::clone(inner), name.clone(), mode, owner, wait);
            // A caller gone before the attempt ends: what it took is handed back, and a waiting
            // attempt that queued is taken off the queue once it has queued (the caller's own
            // leaving may run before the attempt reaches the backend; a queue entry that lives
            // as long as the session, as ZooKeeper's, would otherwise outlive everyone).
            let (inner_, name_) = (Arc::clone(inner), name.clone());
            let call = RunToEnd::new(take, move |taken: Option<FencingToken>| {
                boxed(async move {
                    if taken.is_some() {
                        inner_.release_quietly(&name_, owner).await;
                    } else if wait {
                        inner_.stop_waiting_quietly(&name_, owner).await;
                    }
                })
            });
            let inner_ = Arc::clone(inner);
            let call = call.undo_on_doubt(move || {
                boxed(async move {
                    inner_.release_quietly(&name, owner).await;
                    if wait {
                        inner_.stop_waiting_quietly(&name, owner).await;
                    }
                })
            });
            async move {
                let taken = if wait && blocks {
                    // A kernel or server-side wait: bounded by the caller's deadline (in
                    // `wait::retry`), not by the operation timeout.
                    inner.check_started()?;
                    call.await?
                } else {
                    inner.call("acquire lock", call).await?
                };
                Ok(taken.map(|token| (token, sent)))
            }
        };
        let topic = Topic::Lock(&self.name, owner);
        let (backend, stopped) = (&*inner.backend, inner.stopped_token());
        let complete = inner.started.complete_hints;
        let taken = wait::retry(backend, &stopped, topic, deadline, complete, attempt).await;
        let Ok(Some((token, sent))) = taken else {
            // Off the queue before answering, so that the caller's next attempt does not
            // find its own old place ahead of it.
            queue.leave().await;
            return taken.map(|_| None);
        };
        // Granted: the backend took us off its queue in the same step.
        queue.queued.store(false, Ordering::Relaxed);
        if let Some(started) = started {
            let waited = started.elapsed();
            let contended = attempts > 1 || (blocks && waited > BLOCKED_AFTER);
            inner.meters.lock_acquired(waited, contended);
            let span = tracing::Span::current();
            span.record("token", token.get());
            span.record("waited_us", waited.as_micros() as u64);
            span.record("attempts", attempts);
            tracing::debug!(contended, "lock acquired");
        }
        let kind = Kind::Lock(self.name.clone());
        let Some(signal) = inner.session.register(owner, kind, sent) else {
            // The coordinator stopped while we were being granted the lock; handed back in a
            // task of its own, so that a caller giving up now cannot cut it short.
            let (inner, name) = (Arc::clone(inner), self.name.clone());
            tokio::spawn(async move { inner.release_quietly(&name, owner).await });
            return Err(Error::Stopped);
        };
        let hold = tracing::debug_span!(
            "tooz.hold",
            backend = inner.backend.name(),
            lock = %self.name,
            token = token.get(),
        );
        let grant = Grant::new(self.coord.clone(), owner, token, signal, hold, true);
        Ok(Some(LockGuard {
            name: self.name.clone(),
            grant,
        }))
    }
}

async fn try_acquire(
    inner: Arc<Inner>,
    name: LockName,
    mode: LockMode,
    owner: OwnerToken,
    wait: bool,
) -> Result<Option<FencingToken>> {
    let request = LockRequest {
        name: &name,
        mode,
        owner,
        wait,
    };
    inner.backend.try_acquire(request).await
}

/// A waiter the backend may have queued: if its wait ends without the lock (deadline,
/// cancellation, error), it is taken off the queue, so that nobody waits behind it until its
/// queue entry expires.
struct LeaveQueue {
    inner: Arc<Inner>,
    name: LockName,
    owner: OwnerToken,
    queued: AtomicBool,
}

impl LeaveQueue {
    async fn leave(&mut self) {
        if self.queued.load(Ordering::Relaxed) {
            self.inner
                .stop_waiting_quietly(&self.name, self.owner)
                .await;
            // Only now: a caller cancelled during the leave still leaves through `drop`.
            self.queued.store(false, Ordering::Relaxed);
        }
    }
}

impl Drop for LeaveQueue {
    fn drop(&mut self) {
        // Only a cancelled wait gets here still queued.
        if !self.queued.load(Ordering::Relaxed) {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (inner, name, owner) = (Arc::clone(&self.inner), self.name.clone(), self.owner);
            runtime.spawn(async move { inner.stop_waiting_quietly(&name, owner).await });
        }
    }
}

/// What a lock guard and a leadership share: the grant's token, its loss signal, and a
/// best-effort hand-back when dropped.
pub(crate) struct Grant {
    pub(crate) coord: Coordinator,
    pub(crate) owner: OwnerToken,
    pub(crate) token: FencingToken,
    pub(crate) signal: Arc<Signal>,
    runtime: Option<tokio::runtime::Handle>,
    finished: bool,
    /// Open from the grant to its hand-back: a subscriber sees how long it was held.
    hold: tracing::Span,
    /// When it was granted, if anything records timings.
    granted: Option<Instant>,
    /// A lock (whose hold time is a metric), not a leadership.
    is_lock: bool,
}

impl Grant {
    pub(crate) fn new(
        coord: Coordinator,
        owner: OwnerToken,
        token: FencingToken,
        signal: Arc<Signal>,
        hold: tracing::Span,
        is_lock: bool,
    ) -> Self {
        Self {
            granted: coord.inner.meters.timed().then(Instant::now),
            coord,
            owner,
            token,
            signal,
            runtime: tokio::runtime::Handle::try_current().ok(),
            finished: false,
            hold,
            is_lock,
        }
    }

    /// The grant is being handed back (released, resigned, dropped): the hold ends.
    fn ended(&self, how: &'static str) {
        let Some(granted) = self.granted else {
            return;
        };
        let held = granted.elapsed();
        if self.is_lock {
            self.coord.inner.meters.lock_held(held);
        }
        let lost = !self.is_held();
        tracing::debug!(parent: &self.hold, held_us = held.as_micros() as u64, lost, "{how}");
    }

    pub(crate) fn is_held(&self) -> bool {
        self.signal.is_live() && self.coord.is_started()
    }

    pub(crate) fn lost(&self) -> impl Future<Output = ()> + Send + 'static {
        self.signal.lost().clone().cancelled_owned()
    }

    /// Marks the grant handed back: the loss signal fires (it is no longer held) and drop
    /// does nothing more. Returns whether it was still held locally until now.
    pub(crate) fn finish(&mut self) -> bool {
        self.ended("handed back");
        let was_held = self.is_held();
        self.finished = true;
        self.signal.lost().cancel();
        was_held
    }

    /// The outcome of a hand-back: `Ok` only if we still held the grant until now and the
    /// backend confirms it was ours; `LockNotHeld` naming `name` otherwise.
    pub(crate) fn handed_back(was_held: bool, confirmed: bool, name: LockName) -> Result<()> {
        if was_held && confirmed {
            Ok(())
        } else {
            Err(Error::LockNotHeld { lock: name })
        }
    }

    /// Spawns `hand_back` on the runtime the grant was made on, unless it was finished. Even
    /// after `stop()` began: its snapshot of what to hand back may have missed this grant.
    pub(crate) fn drop_with<F>(&mut self, hand_back: impl FnOnce(Arc<Inner>, OwnerToken) -> F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        if self.finished {
            return;
        }
        self.ended("dropped: handing back in the background");
        self.finished = true;
        self.signal.lost().cancel();
        if let Some(runtime) = &self.runtime {
            runtime.spawn(hand_back(Arc::clone(&self.coord.inner), self.owner));
        }
    }

    /// Runs a hand-back to its end, even if the caller stops waiting for it, and even after
    /// `stop()` began (whose snapshot may have missed this grant); then reports `Stopped` if
    /// the coordinator was stopped.
    pub(crate) async fn hand_back<F>(&self, operation: &str, call: F) -> Result<bool>
    where
        F: Future<Output = Result<bool>> + Send + 'static,
    {
        let inner = &self.coord.inner;
        let call = RunToEnd::new(call, |_| boxed(async {}));
        let result =
            crate::coordinator::bounded(operation, inner.config.operation_timeout, call).await;
        inner.check_started()?;
        result
    }
}

/// A held lock. Dropping it releases the lock in the background (best effort); call
/// [`LockGuard::release`] to know that it was released.
pub struct LockGuard {
    name: LockName,
    grant: Grant,
}

impl LockGuard {
    /// The lock's name.
    pub fn name(&self) -> &LockName {
        &self.name
    }

    /// This grant's fencing token.
    pub fn token(&self) -> FencingToken {
        self.grant.token
    }

    /// Whether the lock is still held as far as we can know without asking the backend:
    /// false once lost, released, or once the local lease has run out unrenewed.
    pub fn is_held(&self) -> bool {
        self.grant.is_held()
    }

    /// Resolves when this guard no longer holds the lock: lost (the backend session expired,
    /// the lock was taken from us, the coordinator stopped) or released.
    pub fn lost(&self) -> impl Future<Output = ()> + Send + 'static {
        self.grant.lost()
    }

    /// Releases the lock. [`Error::LockNotHeld`] if it had been lost meanwhile (the backend is
    /// still asked to release it, in case it was only our lease that ran out).
    pub async fn release(mut self) -> Result<()> {
        let was_held = self.grant.finish();
        let owner = self.grant.owner;
        let inner = Arc::clone(&self.grant.coord.inner);
        inner.session.remove(owner);
        let name = self.name.clone();
        let call = async move { inner.backend.release(&name, owner).await };
        let released = self.grant.hand_back("release lock", call).await?;
        Grant::handed_back(was_held, released, self.name.clone())
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        self.grant.coord.inner.session.remove(self.grant.owner);
        let name = self.name.clone();
        self.grant.drop_with(|inner, owner| async move {
            inner.release_quietly(&name, owner).await;
        });
    }
}

impl fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard")
            .field("name", &self.name)
            .field("token", &self.grant.token)
            .field("held", &self.is_held())
            .finish()
    }
}
