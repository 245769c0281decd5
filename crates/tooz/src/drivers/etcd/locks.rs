//! Locks on etcd: Python tooz's key, created only if absent, on the session lease; the
//! fencing token is its create revision.

use super::{EtcdBackend, NAME, keys, owner_bytes};
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
        let value = owner_bytes(request.owner);
        let (token, revision) = self
            .put_if_absent("acquiring a lock", request.owner, key, value)
            .await?;
        if token.is_some() {
            self.refused_at().remove(&request.owner);
        } else if request.wait {
            self.refused_at().insert(request.owner, revision);
        }
        Ok(token)
    }

    pub(super) async fn release_lock(&self, name: &LockName, owner: OwnerToken) -> Result<bool> {
        let key = keys::lock(name.as_bytes());
        self.delete_if_ours("releasing a lock", owner, key, owner_bytes(owner))
            .await
    }
}
