//! Leader election on PostgreSQL: a lease row per group, taken when free or expired, renewed by
//! heartbeats, its term counter the fencing token.

use async_trait::async_trait;

use super::{NAME, PostgresBackend};
use crate::backend::{Elections, FencingToken, OwnerToken};
use crate::error::{Error, Result};
use crate::ids::{GroupId, MemberId};

#[async_trait]
impl Elections for PostgresBackend {
    async fn try_lead(&self, group: &GroupId, owner: OwnerToken) -> Result<Option<FencingToken>> {
        let ms = Self::ms(self.options.lock_timeout);
        let row = self
            .one(
                &self.sql.try_lead,
                &[
                    &group.as_bytes(),
                    &self.member.as_bytes(),
                    &owner.to_hex(),
                    &ms,
                ],
            )
            .await?;
        let fence: Option<i64> = row.try_get(0)?;
        fence
            .map(|f| {
                u64::try_from(f)
                    .map(FencingToken::new)
                    .map_err(|_| Error::Backend {
                        backend: NAME,
                        source: format!("group '{group}' has a negative leadership term").into(),
                    })
            })
            .transpose()
    }

    async fn resign(&self, group: &GroupId, owner: OwnerToken) -> Result<bool> {
        let row = self
            .one(&self.sql.resign, &[&group.as_bytes(), &owner.to_hex()])
            .await?;
        Ok(row.try_get::<_, i64>(0)? == 1)
    }

    async fn leader(&self, group: &GroupId) -> Result<Option<MemberId>> {
        let rows = self.rows(&self.sql.leader, &[&group.as_bytes()]).await?;
        Ok(rows
            .first()
            .map(|row| MemberId::from(row.get::<_, Vec<u8>>(0))))
    }
}
