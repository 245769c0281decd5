//! Backend calls that take something (a lock, a leadership, a membership) must not be cut off
//! halfway: a caller that stops waiting (a `select!`, a timeout, a dropped task) may do so
//! after the request reached the backend, and the grant would then be held with no handle to
//! renew or hand it back. [`RunToEnd`] finishes such a call in the background when it is
//! dropped early, and hands back whatever it turns out to have taken.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::error::{Error, Result};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Hands back what a call took.
pub(crate) type Undo<T> = Box<dyn FnOnce(T) -> BoxFuture<()> + Send + 'static>;

/// A taking call that completes even if dropped, handing back its grant if nobody is there
/// to receive it.
pub(crate) struct RunToEnd<T: Send + 'static> {
    call: Option<BoxFuture<Result<T>>>,
    undo: Option<Undo<T>>,
    /// Undoes after a failure that may have happened after the backend applied the request
    /// (the reply was lost): only where undoing a grant we never got is harmless.
    undo_on_doubt: Option<Box<dyn FnOnce() -> BoxFuture<()> + Send + 'static>>,
}

impl<T: Send + 'static> RunToEnd<T> {
    pub(crate) fn new(
        call: impl Future<Output = Result<T>> + Send + 'static,
        undo: impl FnOnce(T) -> BoxFuture<()> + Send + 'static,
    ) -> Self {
        Self {
            call: Some(Box::pin(call)),
            undo: Some(Box::new(undo)),
            undo_on_doubt: None,
        }
    }

    /// Also runs `undo` when the call fails in a way that leaves its outcome unknown (a
    /// connection error or timeout): right for compare-on-owner hand-backs, which do nothing
    /// to a grant that is not ours.
    pub(crate) fn undo_on_doubt(
        mut self,
        undo: impl FnOnce() -> BoxFuture<()> + Send + 'static,
    ) -> Self {
        self.undo_on_doubt = Some(Box::new(undo));
        self
    }
}

impl<G: Send + 'static> RunToEnd<Option<G>> {
    /// A call that may grant something (`Some`), handed back by `hand_back` if nobody is there
    /// to receive it — and also when its outcome is in doubt, as a hand-back by owner token
    /// does nothing to a grant that is not ours.
    pub(crate) fn handing_back<H>(
        call: impl Future<Output = Result<Option<G>>> + Send + 'static,
        hand_back: H,
    ) -> Self
    where
        H: Fn() -> BoxFuture<()> + Clone + Send + 'static,
    {
        let if_granted = hand_back.clone();
        Self::new(call, move |granted: Option<G>| {
            boxed(async move {
                if granted.is_some() {
                    if_granted().await;
                }
            })
        })
        .undo_on_doubt(hand_back)
    }
}

/// Boxes a hand-back future.
pub(crate) fn boxed(future: impl Future<Output = ()> + Send + 'static) -> BoxFuture<()> {
    Box::pin(future)
}

fn in_doubt(error: &Error) -> bool {
    matches!(
        error,
        Error::Connection { .. } | Error::OperationTimedOut { .. }
    )
}

impl<T: Send + 'static> Future for RunToEnd<T> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        let Some(call) = self.call.as_mut() else {
            return Poll::Pending;
        };
        let result = std::task::ready!(call.as_mut().poll(cx));
        self.call = None;
        if let Err(e) = &result
            && in_doubt(e)
            && let Some(undo) = self.undo_on_doubt.take()
        {
            spawn(undo());
        }
        Poll::Ready(result)
    }
}

impl<T: Send + 'static> Drop for RunToEnd<T> {
    fn drop(&mut self) {
        let (Some(call), Some(undo)) = (self.call.take(), self.undo.take()) else {
            return;
        };
        let undo_on_doubt = self.undo_on_doubt.take();
        spawn(async move {
            match call.await {
                Ok(taken) => undo(taken).await,
                Err(e) if in_doubt(&e) => {
                    if let Some(undo) = undo_on_doubt {
                        undo().await;
                    }
                }
                Err(_) => {}
            }
        });
    }
}

fn spawn(future: impl Future<Output = ()> + Send + 'static) {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            runtime.spawn(future);
        }
        // Dropped outside any runtime (the runtime is shutting down): nothing can run the
        // call further; what it may have taken expires on the backend by its own timeout.
        Err(_) => tracing::warn!(
            "a cancelled backend call could not be finished: no runtime; what it took expires on the backend"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    #[tokio::test(flavor = "current_thread")]
    async fn a_dropped_call_still_finishes_and_hands_back_its_grant() {
        let undone = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&undone);
        let call = RunToEnd::new(
            async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok(7u32)
            },
            move |taken| {
                boxed(async move {
                    assert_eq!(taken, 7);
                    flag.store(true, Ordering::SeqCst);
                })
            },
        );
        let cut = tokio::time::timeout(Duration::from_millis(1), call).await;
        assert!(cut.is_err(), "the caller gave up first");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(undone.load(Ordering::SeqCst));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_completed_call_is_not_undone() {
        let undone = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&undone);
        let call = RunToEnd::new(async { Ok(1u8) }, move |_| {
            boxed(async move { flag.store(true, Ordering::SeqCst) })
        });
        assert_eq!(call.await.unwrap(), 1);
        tokio::task::yield_now().await;
        assert!(!undone.load(Ordering::SeqCst));
    }
}
