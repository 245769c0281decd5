//! The runtime behind every blocking handle of one coordinator, and the three ways a handle
//! uses it: a call blocked on, a bounded wait for a loss signal, a hand-back when dropped.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use crate::error::{Error, Result};

/// One coordinator's tokio runtime, shared (in an `Arc`) by its clones and every handle made
/// from it.
///
/// Its single worker thread runs what must go on between calls — heartbeats, the local lease
/// deadlines that fire loss signals, watches, partitioner rings, hand-backs of dropped async
/// handles — while every call runs on its caller's thread with `block_on`, so callers on many
/// threads do not queue behind one another.
pub(super) struct Runtime {
    /// `None` only while being dropped.
    runtime: Option<tokio::runtime::Runtime>,
}

impl Runtime {
    /// Starts the runtime and its worker thread.
    pub(super) fn start() -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("tooz-blocking")
            .enable_all()
            .build()
            .map_err(|e| Error::Backend {
                backend: "blocking",
                source: format!("cannot start the blocking API's runtime thread: {e}").into(),
            })?;
        Ok(Self {
            runtime: Some(runtime),
        })
    }

    /// Runs `future` to its end on the calling thread; refused inside an async runtime, whose
    /// thread it would stall (and where tokio would panic).
    pub(super) fn block_on<F: Future>(
        &self,
        operation: &'static str,
        future: F,
    ) -> Result<F::Output> {
        refuse_inside_runtime(operation)?;
        let Some(runtime) = &self.runtime else {
            return Err(Error::Stopped);
        };
        // Many calls finish at their first poll (a file lock is a few syscalls): one poll in
        // the runtime's context spares them `block_on`'s setting up, which would cost more
        // than the call. The rest go on in `block_on`, which polls again with a real waker.
        let mut future = std::pin::pin!(future);
        {
            let _context = runtime.enter();
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                return Ok(output);
            }
        }
        Ok(runtime.block_on(future))
    }

    /// [`Self::block_on`] for the usual fallible call.
    pub(super) fn call<T>(
        &self,
        operation: &'static str,
        future: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        self.block_on(operation, future)?
    }

    /// Whether `signal` resolves within `timeout`; `None` inside an async runtime, where we
    /// cannot wait (the caller answers from what it knows without waiting).
    pub(super) fn wait(&self, timeout: Duration, signal: impl Future<Output = ()>) -> Option<bool> {
        if inside_runtime() {
            return None;
        }
        let runtime = self.runtime.as_ref()?;
        // The timer is made inside `block_on`: tokio's timers need the runtime's context.
        Some(runtime.block_on(async move { tokio::time::timeout(timeout, signal).await.is_ok() }))
    }

    /// Hands back the grant of a dropped blocking handle (a lock guard, a leadership).
    ///
    /// Outside a runtime it is handed back before `drop` returns, so that whoever waits for it
    /// can have it at once rather than after a background task got round to it; bounded by
    /// `within`, after which the hand-back goes on in the background. Inside a runtime we may
    /// not block: the async handle is dropped in this coordinator's runtime context instead,
    /// and its own `Drop` hands the grant back on the worker thread.
    pub(super) fn hand_back_dropped<T, F>(
        &self,
        what: &'static str,
        handle: T,
        within: Duration,
        hand_back: impl FnOnce(T) -> F,
    ) where
        F: Future<Output = Result<()>>,
    {
        let Some(runtime) = &self.runtime else {
            return;
        };
        if inside_runtime() {
            let _entered = runtime.enter();
            drop(handle);
            return;
        }
        let outcome =
            runtime.block_on(async move { tokio::time::timeout(within, hand_back(handle)).await });
        match outcome {
            // Already lost, or the coordinator stopped (which handed everything back): there
            // was nothing left to hand back.
            Ok(Ok(()) | Err(Error::LockNotHeld { .. } | Error::Stopped)) => {}
            Ok(Err(e)) => tracing::warn!(
                error = %e,
                "{what} of a dropped handle failed; what it held expires on the backend"
            ),
            Err(_) => tracing::warn!(
                after = ?within,
                "{what} of a dropped handle is slow; it goes on in the background"
            ),
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            // A plain drop blocks until the worker stops, which tokio refuses (with a panic)
            // inside an async context, where the last handle may well be dropped. Nothing
            // left on the worker needs waiting for: a coordinator dropped without `stop`
            // leaves what it held to expire on the backend, as the async one does.
            runtime.shutdown_background();
        }
    }
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("running", &self.runtime.is_some())
            .finish()
    }
}

/// [`Error::BlockingInsideRuntime`] if called inside an async runtime.
///
/// That is any thread with a tokio context: a task, `block_on`, `spawn_blocking` and
/// `Runtime::enter` alike. We cannot tell them apart from here, and blocking in the first
/// two stalls the runtime; an error is better than a stall or tokio's panic.
pub(super) fn refuse_inside_runtime(operation: &'static str) -> Result<()> {
    if inside_runtime() {
        Err(Error::BlockingInsideRuntime { operation })
    } else {
        Ok(())
    }
}

fn inside_runtime() -> bool {
    tokio::runtime::Handle::try_current().is_ok()
}
