//! Locks on Redis: tooz's lock key, our fencing counter and waiting queue beside it, each
//! operation one script (see `scripts.rs`).

use super::{NAME, QUEUE_ENTRY_LIFE, RedisBackend, keys, redis_error, scripts};
use crate::backend::{FencingToken, LockMode, LockRequest, OwnerToken};
use crate::error::{Error, Result};
use crate::ids::LockName;

impl RedisBackend {
    pub(super) async fn take_lock(&self, request: LockRequest<'_>) -> Result<Option<FencingToken>> {
        if request.mode == LockMode::Shared {
            return Err(Error::Unsupported {
                operation: "shared locks",
                backend: NAME,
            });
        }
        keys::check_lock(request.name)?;
        let mut conn = self.conn()?;
        let token: u64 = scripts::ACQUIRE
            .key(self.keys.lock(request.name))
            .key(self.keys.fence(request.name))
            .key(self.keys.queue(request.name))
            .key(self.keys.waiting(request.name))
            .arg(request.owner.to_hex())
            .arg(Self::ms(self.options.lock_timeout))
            .arg(if request.wait { "1" } else { "0" })
            .arg(Self::ms(QUEUE_ENTRY_LIFE))
            .invoke_async(&mut conn)
            .await
            .map_err(redis_error)?;
        Ok((token > 0).then(|| FencingToken::new(token)))
    }

    pub(super) async fn release_lock(&self, name: &LockName, owner: OwnerToken) -> Result<bool> {
        let mut conn = self.conn()?;
        let released: i64 = scripts::RELEASE_LOCK
            .key(self.keys.lock(name))
            .key(self.keys.queue(name))
            .key(self.keys.waiting(name))
            .arg(owner.to_hex())
            .arg(self.keys.events())
            .invoke_async(&mut conn)
            .await
            .map_err(redis_error)?;
        Ok(released == 1)
    }

    pub(super) async fn leave_queue(&self, name: &LockName, owner: OwnerToken) -> Result<()> {
        let mut conn = self.conn()?;
        let _: i64 = scripts::LEAVE_QUEUE
            .key(self.keys.lock(name))
            .key(self.keys.queue(name))
            .key(self.keys.waiting(name))
            .arg(owner.to_hex())
            .arg(self.keys.events())
            .invoke_async(&mut conn)
            .await
            .map_err(redis_error)?;
        Ok(())
    }
}
