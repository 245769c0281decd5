//! Locks on etcd: Python tooz's key, created only if absent, on the session lease; the
//! fencing token is its create revision.

use etcd_client::{Compare, CompareOp, PutOptions, Txn, TxnOp};

use super::{EtcdBackend, NAME, keys, owner_bytes, token};
use crate::backend::{FencingToken, LockMode, LockRequest, OwnerToken};
use crate::error::{Error, Result};
use crate::ids::LockName;

impl EtcdBackend {
    pub(super) async fn take_lock(&self, request: LockRequest<'_>) -> Result<Option<FencingToken>> {
        if request.mode == LockMode::Shared {
            return Err(Error::Unsupported {
                operation: "shared locks",
                backend: NAME,
            });
        }
        let key = keys::lock(request.name.as_bytes());
        let put = PutOptions::new().with_lease(self.lease());
        let txn = Txn::new()
            .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key, owner_bytes(request.owner), Some(put))]);
        let (taken, _, revision) = self.txn("acquiring a lock", txn).await?;
        if taken {
            self.refused_at().remove(&request.owner);
            // The transaction's revision is the one its put created the key at.
            return token(revision).map(Some);
        }
        if request.wait {
            self.refused_at().insert(request.owner, revision);
        }
        Ok(None)
    }

    pub(super) async fn release_lock(&self, name: &LockName, owner: OwnerToken) -> Result<bool> {
        let key = keys::lock(name.as_bytes());
        let txn = Txn::new()
            .when([Compare::value(
                key.clone(),
                CompareOp::Equal,
                owner_bytes(owner),
            )])
            .and_then([TxnOp::delete(key, None)]);
        let (released, _, _) = self.txn("releasing a lock", txn).await?;
        Ok(released)
    }
}
