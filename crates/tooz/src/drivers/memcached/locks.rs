//! Locks on memcached: tooz's lock key, owned per acquire by the CAS of our `add`.

use super::{MemcachedBackend, NAME, keys};
use crate::backend::{FencingToken, LockMode, LockRequest};
use crate::error::{Error, Result};

impl MemcachedBackend {
    pub(super) async fn take_lock(&self, request: LockRequest<'_>) -> Result<Option<FencingToken>> {
        if request.mode == LockMode::Shared {
            return Err(Error::Unsupported {
                operation: "shared locks",
                backend: NAME,
            });
        }
        keys::check_lock(request.name)?;
        let key = keys::lock(request.name);
        let fence = keys::fence(request.name);
        self.take(key, &fence, self.options.lock_timeout, request.owner)
            .await
    }
}
