//! Leader election on MySQL: a lease row per group, taken when free or expired, renewed by
//! heartbeats, its term counter the fencing token.

use async_trait::async_trait;

use super::{MysqlBackend, column, key, micros};
use crate::backend::{Elections, FencingToken, OwnerToken};
use crate::error::Result;
use crate::ids::{GroupId, MemberId};

#[async_trait]
impl Elections for MysqlBackend {
    async fn try_lead(&self, group: &GroupId, owner: OwnerToken) -> Result<Option<FencingToken>> {
        let id = key(group.as_bytes());
        let params = (
            id.clone(),
            self.member.as_bytes().to_vec(),
            owner.to_hex(),
            micros(self.options.lock_timeout),
        );
        // Changed rows: 1 inserted, 2 taken over; 0 when a live leader kept it.
        let taken = self
            .affected("running for leader", &self.sql.try_lead, params.into())
            .await?;
        if taken == 0 {
            return Ok(None);
        }
        let rows = self
            .rows(
                "running for leader",
                &self.sql.led,
                (id, owner.to_hex()).into(),
            )
            .await?;
        match rows.first() {
            Some(row) => Ok(Some(FencingToken::new(column::<u64>(row, 0)?))),
            // Taken over again already (our lease cannot have run out this fast, but a
            // stranger may have edited the row).
            None => Ok(None),
        }
    }

    async fn resign(&self, group: &GroupId, owner: OwnerToken) -> Result<bool> {
        let params = (key(group.as_bytes()), owner.to_hex());
        let resigned = self
            .affected("resigning", &self.sql.resign, params.into())
            .await?;
        Ok(resigned == 1)
    }

    async fn leader(&self, group: &GroupId) -> Result<Option<MemberId>> {
        let rows = self
            .rows(
                "reading the leader",
                &self.sql.leader,
                (key(group.as_bytes()),).into(),
            )
            .await?;
        rows.first()
            .map(|row| column::<Vec<u8>>(row, 0).map(MemberId::from))
            .transpose()
    }
}
