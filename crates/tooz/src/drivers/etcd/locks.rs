//! Locks on etcd: Python tooz's key, created only if absent, on the session lease; the
//! fencing token is its create revision.

use etcd_client::{
    Compare, CompareOp, GetOptions, PutOptions, SortOrder, SortTarget, Txn, TxnOp, TxnOpResponse,
};

use super::{EtcdBackend, Grant, NAME, Waiting, keys, owner_bytes, token};
use crate::backend::{FencingToken, LockMode, LockRequest, OwnerToken};
use crate::error::{Error, Result};
use crate::ids::LockName;

impl EtcdBackend {
    /// One attempt at lock `request.name`: Python tooz's key, put only if absent and if no
    /// waiter of ours queued before (the fairness Python's waiters, which poll, do not
    /// respect). A waiting request that is refused queues — a key of its own under the lock's
    /// queue prefix, on the session lease, in the same transaction — and watches only the
    /// waiter before it, or the lock key if it is first: a release wakes one waiter.
    pub(super) async fn take_lock(&self, request: LockRequest<'_>) -> Result<Option<FencingToken>> {
        if request.mode == LockMode::Shared {
            return Err(Error::Unsupported {
                operation: "shared locks",
                backend: NAME,
            });
        }
        let (name, owner) = (request.name.as_bytes(), request.owner);
        let key = keys::lock(name);
        let queue = keys::queue(name);
        let value = owner_bytes(owner);
        // At most: our queue key found gone (a new session's lease, deleted by hand), queued
        // again, and refused with our place known or granted.
        for _ in 0..3 {
            let lease = self.fresh_lease().await?;
            let queued = self.waiting().get(&owner).and_then(|w| w.queued.clone());
            // Recorded before the request leaves (see `sweep`).
            let grant = Grant {
                key: key.clone(),
                value: value.clone(),
                missed: 0,
            };
            self.grants().insert(owner, grant);
            let put = TxnOp::put(
                key.clone(),
                value.clone(),
                Some(PutOptions::new().with_lease(lease)),
            );
            let free = Compare::create_revision(key.clone(), CompareOp::Equal, 0);
            let listing = GetOptions::new()
                .with_prefix()
                .with_keys_only()
                .with_sort(SortTarget::Create, SortOrder::Ascend);
            let txn = match &queued {
                // Queued: granted if the lock is free and nobody queued before us.
                Some((mine, revision)) => Txn::new()
                    .when([
                        free,
                        // (Our key still there: with it gone, and no other, the range would be
                        // compared as one absent key, and refused for ever.)
                        Compare::create_revision(mine.clone(), CompareOp::Equal, *revision),
                        Compare::create_revision(queue.clone(), CompareOp::Greater, revision - 1)
                            .with_prefix(),
                    ])
                    .and_then([put, TxnOp::delete(mine.clone(), None)])
                    .or_else([
                        TxnOp::get(key.clone(), None),
                        TxnOp::get(queue.clone(), Some(listing)),
                    ]),
                None => {
                    let first = Txn::new().when([
                        free,
                        Compare::version(queue.clone(), CompareOp::Equal, 0).with_prefix(),
                    ]);
                    let first = first.and_then([put]);
                    if request.wait {
                        // Refused: queued in the same step, and told our place. Recorded
                        // first: a waiter that gives up without the answer deletes it.
                        let mine = keys::queued(name, owner.as_u128());
                        let maybe = Waiting {
                            queued: None,
                            maybe: Some(mine.clone()),
                            watch: key.clone(),
                            since: 0,
                            abandoned: false,
                        };
                        self.waiting().insert(owner, maybe);
                        let enqueue = PutOptions::new().with_lease(lease);
                        first.or_else([
                            TxnOp::put(mine, value.clone(), Some(enqueue)),
                            TxnOp::get(key.clone(), None),
                            TxnOp::get(queue.clone(), Some(listing)),
                        ])
                    } else {
                        first
                    }
                }
            };
            let (granted, answers, revision) = self.txn("acquiring a lock", txn).await?;
            if granted {
                self.waiting().remove(&owner);
                return Ok(Some(token(revision)?));
            }
            self.grants().remove(&owner);
            if !request.wait {
                return Ok(None);
            }
            // Our place: our queue key, and the waiter before it, or the lock if we are first.
            let (mine, position) = match queued {
                Some((mine, position)) => (mine, position),
                None => (keys::queued(name, owner.as_u128()), revision),
            };
            let mut before = None;
            let mut still_queued = false;
            for answer in &answers {
                if let TxnOpResponse::Get(get) = answer {
                    for kv in get.kvs() {
                        if kv.key() == mine.as_slice() {
                            still_queued = kv.create_revision() == position;
                        } else if kv.key() != key.as_slice() && kv.create_revision() < position {
                            before = Some(kv.key().to_vec());
                        }
                    }
                }
            }
            if !still_queued {
                // Our key is gone: queued again, at the back.
                self.waiting().remove(&owner);
                continue;
            }
            let waiting = Waiting {
                queued: Some((mine, position)),
                maybe: None,
                watch: before.unwrap_or_else(|| key.clone()),
                since: revision,
                abandoned: false,
            };
            self.waiting().insert(owner, waiting);
            return Ok(None);
        }
        Ok(None)
    }

    pub(super) async fn release_lock(&self, name: &LockName, owner: OwnerToken) -> Result<bool> {
        let key = keys::lock(name.as_bytes());
        self.delete_if_ours("releasing a lock", owner, key, owner_bytes(owner))
            .await
    }

    /// Takes waiter `owner` off the queue (its key deleted, if it still holds our value). A
    /// failure leaves it marked for the heartbeats to finish: on a lease we keep renewing,
    /// nothing else would.
    pub(super) async fn leave_queue(&self, owner: OwnerToken) -> Result<()> {
        let queued = {
            let mut waiting = self.waiting();
            let Some(entry) = waiting.get_mut(&owner) else {
                return Ok(());
            };
            entry.abandoned = true;
            entry
                .queued
                .clone()
                .map(|(mine, _)| mine)
                .or_else(|| entry.maybe.clone())
        };
        if let Some(mine) = queued {
            let txn = Txn::new()
                .when([Compare::value(
                    mine.clone(),
                    CompareOp::Equal,
                    owner_bytes(owner),
                )])
                .and_then([TxnOp::delete(mine, None)]);
            self.txn("leaving a lock's queue", txn).await?;
        }
        self.waiting().remove(&owner);
        Ok(())
    }

    /// Leaves the queues whose leaving failed, best effort.
    pub(super) async fn leave_abandoned_queues(&self) {
        let abandoned: Vec<OwnerToken> = self
            .waiting()
            .iter()
            .filter(|(_, w)| w.abandoned)
            .map(|(owner, _)| *owner)
            .collect();
        for owner in abandoned {
            if let Err(e) = self.leave_queue(owner).await {
                tracing::debug!(backend = NAME, error = %e, "a queue entry is still to delete");
            }
        }
    }
}
