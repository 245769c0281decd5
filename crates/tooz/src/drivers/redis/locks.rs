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
        // Handed to us by a release since our last attempt: the grant came in its message.
        if let Some(token) = self.waiters.take_grant(request.owner) {
            return Ok(Some(FencingToken::new(token)));
        }
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
            .arg(self.keys.grants_prefix())
            .arg(&self.grants_id)
            .invoke_async(&mut conn)
            .await
            .map_err(redis_error)?;
        // A grant pushed before this reply was made before this attempt ran: it is the
        // token just returned, or it had already expired (a refusal says the lock is not
        // ours). Either way it must not be taken later.
        self.waiters.forget_grant(request.owner);
        Ok((token > 0).then(|| FencingToken::new(token)))
    }

    pub(super) async fn release_lock(&self, name: &LockName, owner: OwnerToken) -> Result<bool> {
        let released = self.on_queue(&scripts::RELEASE_LOCK, name, owner).await?;
        Ok(released == 1)
    }

    pub(super) async fn leave_queue(&self, name: &LockName, owner: OwnerToken) -> Result<()> {
        // A grant that reached us after our waiter gave up is handed on by the script.
        self.waiters.forget_grant(owner);
        self.on_queue(&scripts::LEAVE_QUEUE, name, owner).await?;
        Ok(())
    }

    /// Runs a script that may hand the lock to its next waiter (KEYS: lock, fence, queue,
    /// waiting; ARGV: owner token, grant channel prefix).
    async fn on_queue(
        &self,
        script: &redis::Script,
        name: &LockName,
        owner: OwnerToken,
    ) -> Result<i64> {
        let mut conn = self.conn()?;
        script
            .key(self.keys.lock(name))
            .key(self.keys.fence(name))
            .key(self.keys.queue(name))
            .key(self.keys.waiting(name))
            .arg(owner.to_hex())
            .arg(self.keys.grants_prefix())
            .invoke_async(&mut conn)
            .await
            .map_err(redis_error)
    }
}
