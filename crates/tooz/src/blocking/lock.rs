//! Blocking locks: [`Lock`] and [`LockGuard`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::runtime::{Runtime, refuse_inside_runtime};
use crate::error::Result;
use crate::{FencingToken, LockName};

/// A named lock of a blocking [`Coordinator`](super::Coordinator); cheap, and takes nothing
/// until asked.
#[derive(Debug, Clone)]
pub struct Lock {
    lock: crate::Lock,
    /// How long a dropped guard may block handing the lock back.
    hand_back: Duration,
    runtime: Arc<Runtime>,
}

impl Lock {
    pub(super) fn new(lock: crate::Lock, hand_back: Duration, runtime: Arc<Runtime>) -> Self {
        Self {
            lock,
            hand_back,
            runtime,
        }
    }

    /// The same lock taken shared: any number of shared holders, no exclusive one. Backends
    /// without shared locks return [`Error::Unsupported`](crate::Error::Unsupported) on acquire.
    pub fn shared(self) -> Self {
        let Self {
            lock,
            hand_back,
            runtime,
        } = self;
        Self {
            lock: lock.shared(),
            hand_back,
            runtime,
        }
    }

    /// The lock's name.
    pub fn name(&self) -> &LockName {
        self.lock.name()
    }

    /// Waits as long as it takes to acquire the lock.
    pub fn acquire(&self) -> Result<LockGuard> {
        let guard = self.runtime.call("acquire", self.lock.acquire())?;
        Ok(self.guard(guard))
    }

    /// One attempt: `None` at once if the lock is held elsewhere, or if others are waiting for
    /// it on a backend that serves waiters in arrival order (memory, file, redis).
    pub fn try_acquire(&self) -> Result<Option<LockGuard>> {
        let guard = self.runtime.call("try_acquire", self.lock.try_acquire())?;
        Ok(guard.map(|g| self.guard(g)))
    }

    /// Waits at most `wait`; [`Error::OperationTimedOut`](crate::Error::OperationTimedOut) if the lock is still held elsewhere.
    pub fn acquire_timeout(&self, wait: Duration) -> Result<LockGuard> {
        let acquire = self.lock.acquire_timeout(wait);
        let guard = self.runtime.call("acquire_timeout", acquire)?;
        Ok(self.guard(guard))
    }

    fn guard(&self, guard: crate::LockGuard) -> LockGuard {
        LockGuard {
            token: guard.token(),
            guard: Some(guard),
            hand_back: self.hand_back,
            runtime: Arc::clone(&self.runtime),
        }
    }
}

/// A held lock. Dropping it releases the lock before `drop` returns (inside an async runtime,
/// in the background); call [`LockGuard::release`] to know that it was released.
pub struct LockGuard {
    token: FencingToken,
    /// `None` once released or dropped. Handed back in `Drop`, before `runtime` goes.
    guard: Option<crate::LockGuard>,
    hand_back: Duration,
    runtime: Arc<Runtime>,
}

impl LockGuard {
    /// The lock's name.
    pub fn name(&self) -> &LockName {
        // The async guard is only taken by `release` and `drop`, which consume `self`.
        self.guard
            .as_ref()
            .map(crate::LockGuard::name)
            .expect("a guard that is still ours")
    }

    /// This grant's fencing token: strictly increasing across the lock's holders, so that a
    /// resource told the token can refuse a holder that has since lost the lock.
    pub fn token(&self) -> FencingToken {
        self.token
    }

    /// Whether the lock is still held as far as we can know without asking the backend:
    /// false once lost, released, or once the local lease has run out unrenewed.
    pub fn is_held(&self) -> bool {
        self.guard.as_ref().is_some_and(crate::LockGuard::is_held)
    }

    /// Waits at most `timeout` for the lock to be lost (the backend session expired, the lock
    /// was taken from us, the coordinator stopped); true if it was, at once if it already was.
    ///
    /// A worker can do its work in slices and call this between them with a zero or short
    /// timeout, instead of watching a future. Inside an async runtime it cannot wait, and
    /// answers `!is_held()` at once.
    pub fn wait_lost(&self, timeout: Duration) -> bool {
        let Some(guard) = &self.guard else {
            return true;
        };
        if !guard.is_held() {
            return true;
        }
        self.runtime
            .wait(timeout, guard.lost())
            .unwrap_or_else(|| !guard.is_held())
    }

    /// Releases the lock. [`Error::LockNotHeld`](crate::Error::LockNotHeld) if it had been lost meanwhile (the backend is
    /// still asked to release it, in case it was only our lease that ran out). Inside an async
    /// runtime: [`Error::BlockingInsideRuntime`](crate::Error::BlockingInsideRuntime), and the lock is released in the background
    /// as if the guard had been dropped.
    pub fn release(mut self) -> Result<()> {
        refuse_inside_runtime("release")?;
        let guard = self.guard.take().expect("a guard that is still ours");
        self.runtime.call("release", guard.release())
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if let Some(guard) = self.guard.take() {
            let release = crate::LockGuard::release;
            self.runtime
                .hand_back_dropped("release", guard, self.hand_back, release);
        }
    }
}

impl fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard")
            .field("name", &self.guard.as_ref().map(crate::LockGuard::name))
            .field("token", &self.token)
            .field("held", &self.is_held())
            .finish()
    }
}
