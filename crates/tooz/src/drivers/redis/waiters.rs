//! Lock waiters of this connection, by owner token, so that a release reaches only the waiter
//! whose turn it is: the release script hands the lock to the first live waiter in the lock's
//! queue and publishes `g:<owner>:<fencing token>` on that waiter's coordinator's own channel;
//! the push that brings it here keeps the grant for that one waiter and wakes it, and nobody
//! else. Its next attempt takes the grant
//! from here, without a round trip.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;

use crate::backend::{ChangeHint, OwnerToken};

#[derive(Debug, Default)]
pub(crate) struct Waiters {
    by_owner: Mutex<HashMap<Vec<u8>, Arc<Notify>>>,
    /// Grants pushed to waiters registered here, by owner, not yet taken.
    grants: Mutex<HashMap<Vec<u8>, u64>>,
}

impl Waiters {
    fn map(&self) -> MutexGuard<'_, HashMap<Vec<u8>, Arc<Notify>>> {
        self.by_owner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn grants(&self) -> MutexGuard<'_, HashMap<Vec<u8>, u64>> {
        self.grants.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The fencing token of a grant handed to `owner` and pushed here, if any (taken once).
    pub(crate) fn take_grant(&self, owner: OwnerToken) -> Option<u64> {
        self.grants().remove(owner.to_hex().as_bytes())
    }

    /// Drops a pushed grant the waiter will not take (it gave up; the server hands it on).
    pub(crate) fn forget_grant(&self, owner: OwnerToken) {
        self.take_grant(owner);
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

    /// A pushed message: a grant (`g:<owner>:<token>`) is kept for the waiter it names, if it
    /// waits here, and wakes it; `false` if the message is not a grant. One for an owner not
    /// waiting here (it gave up, or is between two looks) is not kept: a waiter that looks
    /// again finds the grant on the server, and one that gave up hands it on from there.
    pub(crate) fn wake(&self, message: &[u8]) -> bool {
        let Some(grant) = message.strip_prefix(b"g:") else {
            return false;
        };
        let Some(colon) = grant.iter().rposition(|&b| b == b':') else {
            return true;
        };
        let (owner, token) = (&grant[..colon], &grant[colon + 1..]);
        let token = std::str::from_utf8(token)
            .ok()
            .and_then(|t| t.parse::<u64>().ok())
            .filter(|&t| t > 0);
        let map = self.map();
        if let (Some(notify), Some(token)) = (map.get(owner), token) {
            self.grants().insert(owner.to_vec(), token);
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

    fn grant(owner: OwnerToken, token: u64) -> Vec<u8> {
        format!("g:{}:{token}", owner.to_hex()).into_bytes()
    }

    #[tokio::test(flavor = "current_thread")]
    async fn only_the_named_waiter_wakes_and_an_early_grant_is_kept() {
        let waiters = Arc::new(Waiters::default());
        let (a, b) = (OwnerToken::generate(), OwnerToken::generate());
        let hint_a = waiters.hint(a, Duration::from_secs(60));
        let hint_b = waiters.hint(b, Duration::from_secs(60));
        // Pushed before anyone awaits: kept.
        assert!(waiters.wake(&grant(a, 42)));
        tokio::time::timeout(Duration::from_secs(1), hint_a)
            .await
            .expect("the named waiter wakes");
        let still_waiting = tokio::time::timeout(Duration::from_millis(50), hint_b).await;
        assert!(still_waiting.is_err(), "the other waiter sleeps on");
        assert!(waiters.map().is_empty(), "dropped hints unregister");
        assert_eq!(waiters.take_grant(a), Some(42));
        assert_eq!(waiters.take_grant(a), None, "a grant is taken once");
        assert_eq!(waiters.take_grant(b), None);
        assert!(!waiters.wake(b"_tooz_lock"));
    }

    #[test]
    fn grants_for_owners_not_waiting_here_or_malformed_are_not_kept() {
        let waiters = Arc::new(Waiters::default());
        let (here, elsewhere) = (OwnerToken::generate(), OwnerToken::generate());
        let _hint = waiters.hint(here, Duration::from_secs(60));
        assert!(waiters.wake(&grant(elsewhere, 7)));
        assert_eq!(waiters.take_grant(elsewhere), None);
        for bad in [
            format!("g:{}", here.to_hex()),
            format!("g:{}:", here.to_hex()),
            format!("g:{}:0", here.to_hex()),
            format!("g:{}:-1", here.to_hex()),
            format!("g:{}:99999999999999999999999", here.to_hex()),
        ] {
            assert!(waiters.wake(bad.as_bytes()), "{bad}");
            assert_eq!(waiters.take_grant(here), None, "{bad}");
        }
        waiters.wake(&grant(here, 9));
        waiters.forget_grant(here);
        assert_eq!(waiters.take_grant(here), None, "a forgotten grant is gone");
    }
}
