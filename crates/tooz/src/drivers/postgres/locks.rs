//! Locks on PostgreSQL: session advisory locks on server-assigned keys, and (with
//! `tooz_lock_keys`) Python tooz's two-key lock of the same name.

use md5::{Digest, Md5};

use super::connection::bounded;
use super::{HeldLock, NAME, PostgresBackend};
use crate::backend::{FencingToken, LockMode, LockRequest, OwnerToken};
use crate::error::{Error, Result};
use crate::ids::LockName;

/// Python tooz's key of a lock name: the first two bytes of its md5, as two int4 keys.
fn tooz_keys(name: &LockName) -> (i32, i32) {
    let digest = Md5::digest(name.as_bytes());
    (i32::from(digest[0]), i32::from(digest[1]))
}

impl PostgresBackend {
    /// The lock's own key, assigned by the server on first use (and remembered).
    async fn key_of(&self, name: &LockName) -> Result<i64> {
        if let Some(key) = self
            .keys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
        {
            return Ok(*key);
        }
        let row = self.one(&self.sql.key_of, &[&name.as_bytes()]).await?;
        let key: i64 = row.try_get(0)?;
        self.keys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.clone(), key);
        Ok(key)
    }

    pub(super) async fn take_lock(&self, request: LockRequest<'_>) -> Result<Option<FencingToken>> {
        if request.mode == LockMode::Shared {
            return Err(Error::Unsupported {
                operation: "shared locks",
                backend: NAME,
            });
        }
        let key = self.key_of(request.name).await?;
        let live = self.live().await?;
        let tooz_keys = self.options.tooz_lock_keys.then(|| tooz_keys(request.name));
        {
            let mut held = self.shared.held();
            // Advisory locks are re-entrant within a session; ours are not.
            if held
                .values()
                .any(|h| h.key == key && h.generation == live.generation)
            {
                return Ok(None);
            }
            // Recorded before the statement leaves, so that a caller who gives up while it is
            // out still hands back what it may have taken.
            held.insert(
                request.owner,
                HeldLock {
                    key,
                    tooz_keys,
                    generation: live.generation,
                },
            );
        }
        let taken = match tooz_keys {
            Some((k1, k2)) => {
                let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] = [&key, &k1, &k2];
                let acquire = live.client.query_one(&live.prepared.acquire, &params);
                bounded(&self.options, "acquiring a lock", acquire).await
            }
            None => {
                let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&key];
                let acquire = live.client.query_one(&live.prepared.acquire, &params);
                bounded(&self.options, "acquiring a lock", acquire).await
            }
        };
        let row = match taken {
            Ok(row) => row,
            Err(e) => {
                // Perhaps taken (a statement cut by our timeout may still run): an unlock sent
                // on the same session runs after it, and undoes it if it did. A dead session
                // settles it by itself.
                let _ = self.undo(request.owner).await;
                return Err(e);
            }
        };
        let (ok, fence): (Option<bool>, Option<i64>) = (row.try_get(0)?, row.try_get(1)?);
        match (ok, fence) {
            (Some(true), Some(fence)) => {
                let token = u64::try_from(fence).map_err(|_| Error::Backend {
                    backend: NAME,
                    source: format!("lock '{}' has a negative fencing counter", request.name)
                        .into(),
                })?;
                Ok(Some(FencingToken::new(token)))
            }
            (Some(true), None) => {
                // Taken, but its row (its key and counter) is gone: a truncated table, a
                // restore. Given back, and the name's key looked up afresh next time.
                self.undo(request.owner).await?;
                self.keys
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(request.name);
                Err(Error::Backend {
                    backend: NAME,
                    source: format!(
                        "the row of lock '{}' in its table is gone; try again",
                        request.name
                    )
                    .into(),
                })
            }
            _ => {
                self.shared.held().remove(&request.owner);
                Ok(None)
            }
        }
    }

    /// Undoes an acquire of `owner` whose outcome is not known: our key is unlocked, and
    /// Python's only if ours was held (the acquire takes both or neither), so that another
    /// grant of ours sharing Python's 16-bit key keeps it.
    async fn undo(&self, owner: OwnerToken) -> Result<()> {
        let Some(held) = self.shared.held().remove(&owner) else {
            return Ok(());
        };
        let live = self.live().await?;
        if live.generation != held.generation {
            return Ok(());
        }
        let undone = match held.tooz_keys {
            Some((k1, k2)) => {
                let statement = self.statement(&live, &self.sql.undo_with_tooz_keys).await?;
                let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] = [&held.key, &k1, &k2];
                bounded(
                    &self.options,
                    "undoing an acquire",
                    live.client.query_one(&statement, &params),
                )
                .await
            }
            None => {
                let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&held.key];
                let release = live.client.query_one(&live.prepared.release, &params);
                bounded(&self.options, "undoing an acquire", release).await
            }
        };
        undone.map(drop)
    }

    pub(super) async fn release_lock(&self, name: &LockName, owner: OwnerToken) -> Result<bool> {
        let Some(held) = self.shared.held().remove(&owner) else {
            return Ok(false);
        };
        let live = self.live().await?;
        if live.generation != held.generation {
            // Its session ended, and the server freed it then.
            return Ok(false);
        }
        let row = match held.tooz_keys {
            Some((k1, k2)) => {
                let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] = [&held.key, &k1, &k2];
                let release = live.client.query_one(&live.prepared.release, &params);
                bounded(&self.options, "releasing a lock", release).await?
            }
            None => {
                let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&held.key];
                let release = live.client.query_one(&live.prepared.release, &params);
                bounded(&self.options, "releasing a lock", release).await?
            }
        };
        let released: bool = row.try_get(0)?;
        if !released {
            tracing::warn!(backend = NAME, lock = %name, "a lock we held was not held by our session");
        }
        Ok(released)
    }
}
