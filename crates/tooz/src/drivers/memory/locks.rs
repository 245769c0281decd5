//! Locks in the store: holders, fencing counters, and waiters queued in arrival order.

use std::time::Duration;

use tokio::time::Instant;

use super::{LockHolder, MemoryBackend, State};
use crate::backend::{FencingToken, LockMode, LockRequest, OwnerToken};
use crate::error::Result;
use crate::ids::LockName;

/// How long a queued waiter keeps its place without renewing it (every attempt renews it).
const QUEUE_ENTRY_LIFE: Duration = Duration::from_secs(1);

impl MemoryBackend {
    pub(super) async fn take_lock(&self, request: LockRequest<'_>) -> Result<Option<FencingToken>> {
        if request.mode == LockMode::Shared && !self.options.shared_locks {
            return Err(self.unsupported("shared locks"));
        }
        self.call(|state, session| {
            let session = match self.live_session(session) {
                Ok(s) => s,
                Err(e) => return (Err(e), false),
            };
            let now = Instant::now();
            let first = state.lock_queues.get_mut(request.name).and_then(|queue| {
                queue.retain(|(_, alive)| *alive > now);
                queue.first().map(|(owner, _)| *owner)
            });
            let holders = state.locks.get(request.name).map_or(&[][..], Vec::as_slice);
            let free = match request.mode {
                LockMode::Exclusive => holders.is_empty(),
                LockMode::Shared => holders.iter().all(|h| h.mode == LockMode::Shared),
            };
            // Waiters are served in arrival order: nobody takes the lock ahead of the first.
            if !free || first.is_some_and(|first| first != request.owner) {
                if request.wait {
                    let queue = state.lock_queues.entry(request.name.clone()).or_default();
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

    pub(super) async fn leave_queue(&self, name: &LockName, owner: OwnerToken) -> Result<()> {
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

    pub(super) async fn release_lock(&self, name: &LockName, owner: OwnerToken) -> Result<bool> {
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
}
