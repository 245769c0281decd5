//! Locks on PostgreSQL: session advisory locks on server-assigned keys, and (with
//! `tooz_lock_keys`) Python tooz's two-key lock of the same name.

use md5::{Digest, Md5};

use std::sync::Arc;

use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Statement};

use super::connection::{Live, bounded};
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
        let acquire = &live.prepared.acquire;
        let taken = self
            .on_keys(&live, acquire, key, tooz_keys, "acquiring a lock")
            .await;
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
        let Some((held, live)) = self.take_record(owner).await? else {
            return Ok(());
        };
        let statement = match held.tooz_keys {
            Some(_) => self.statement(&live, &self.sql.undo_with_tooz_keys).await?,
            None => live.prepared.release.clone(),
        };
        self.on_keys(
            &live,
            &statement,
            held.key,
            held.tooz_keys,
            "undoing an acquire",
        )
        .await
        .map(drop)
    }

    /// Takes `owner`'s record off the table, with the live session if the lock was taken on
    /// it (`None` when there is no record, or its session ended: the server freed it then).
    async fn take_record(&self, owner: OwnerToken) -> Result<Option<(HeldLock, Arc<Live>)>> {
        let Some(held) = self.shared.held().remove(&owner) else {
            return Ok(None);
        };
        let live = self.live().await?;
        Ok((live.generation == held.generation).then_some((held, live)))
    }

    /// Runs a lock statement on `key`, and on Python's two keys when they are used.
    async fn on_keys(
        &self,
        live: &Live,
        statement: &Statement,
        key: i64,
        tooz_keys: Option<(i32, i32)>,
        what: &str,
    ) -> Result<Row> {
        match tooz_keys {
            Some((k1, k2)) => {
                let params: [&(dyn ToSql + Sync); 3] = [&key, &k1, &k2];
                bounded(
                    &self.options,
                    what,
                    live.client.query_one(statement, &params),
                )
                .await
            }
            None => {
                let params: [&(dyn ToSql + Sync); 1] = [&key];
                bounded(
                    &self.options,
                    what,
                    live.client.query_one(statement, &params),
                )
                .await
            }
        }
    }

    pub(super) async fn release_lock(&self, name: &LockName, owner: OwnerToken) -> Result<bool> {
        let Some((held, live)) = self.take_record(owner).await? else {
            return Ok(false);
        };
        let release = &live.prepared.release;
        let row = self
            .on_keys(&live, release, held.key, held.tooz_keys, "releasing a lock")
            .await?;
        let released: bool = row.try_get(0)?;
        if !released {
            tracing::warn!(backend = NAME, lock = %name, "a lock we held was not held by our session");
        }
        Ok(released)
    }
}
