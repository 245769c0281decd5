//! Lock waiters of this connection, by owner token, so that a release wakes only the waiter
//! whose turn it is: the release script publishes `w:<token>` of the first live waiter in the
//! lock's queue, and the push that brings it here wakes that one waiter and nobody else.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;

use crate::backend::{ChangeHint, OwnerToken};

#[derive(Debug, Default)]
pub(crate) struct Waiters {
    by_owner: Mutex<HashMap<Vec<u8>, Arc<Notify>>>,
}

impl Waiters {
    fn map(&self) -> MutexGuard<'_, HashMap<Vec<u8>, Arc<Notify>>> {
        self.by_owner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A hint that resolves when `owner`'s turn is announced, or after `poll` at the latest (a
    /// holder that expired or a Python tooz process announces nothing). Registered now, before
    /// the attempt it guards, so that an announcement in between is kept.
    pub(crate) fn hint(self: &Arc<Self>, owner: OwnerToken, poll: Duration) -> ChangeHint {
        let key = owner.to_hex().into_bytes();
        let notify = Arc::new(Notify::new());
        self.map().insert(key.clone(), Arc::clone(&notify));
        let registration = Registration {
            waiters: Arc::clone(self),
            key,
            notify: Arc::clone(&notify),
        };
        Box::pin(async move {
            let _registered = registration;
            tokio::select! {
                () = notify.notified() => {}
                () = tokio::time::sleep(poll) => {}
            }
        })
    }

    /// A pushed message: wakes the waiter it names; `false` if it names no waiter (not a
    /// wake-up message).
    pub(crate) fn wake(&self, message: &[u8]) -> bool {
        let Some(owner) = message.strip_prefix(b"w:") else {
            return false;
        };
        if let Some(notify) = self.map().get(owner) {
            notify.notify_one();
        }
        true
    }

    /// After a reconnect: announcements may have been missed, so everyone looks again.
    pub(crate) fn wake_all(&self) {
        for notify in self.map().values() {
            notify.notify_one();
        }
    }
}

/// Unregisters a waiter when its hint is dropped, polled or not.
struct Registration {
    waiters: Arc<Waiters>,
    key: Vec<u8>,
    notify: Arc<Notify>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut map = self.waiters.map();
        if map
            .get(&self.key)
            .is_some_and(|n| Arc::ptr_eq(n, &self.notify))
        {
            map.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn only_the_named_waiter_wakes_and_an_early_wake_is_kept() {
        let waiters = Arc::new(Waiters::default());
        let (a, b) = (OwnerToken::generate(), OwnerToken::generate());
        let hint_a = waiters.hint(a, Duration::from_secs(60));
        let hint_b = waiters.hint(b, Duration::from_secs(60));
        // Announced before anyone awaits: kept.
        assert!(waiters.wake(format!("w:{}", a.to_hex()).as_bytes()));
        tokio::time::timeout(Duration::from_secs(1), hint_a)
            .await
            .expect("the named waiter wakes");
        let still_waiting = tokio::time::timeout(Duration::from_millis(50), hint_b).await;
        assert!(still_waiting.is_err(), "the other waiter sleeps on");
        assert!(waiters.map().is_empty(), "dropped hints unregister");
        assert!(!waiters.wake(b"_tooz_lock"));
    }
}
