//! Leader election on Redis: tooz's election lock, a term counter, and the leader's name.

use async_trait::async_trait;

use super::{RedisBackend, UNKNOWN_LEADER, redis_error, scripts};
use crate::backend::FencingToken;
use crate::backend::{Elections, OwnerToken};
use crate::error::Result;
use crate::ids::{GroupId, MemberId};

#[async_trait]
impl Elections for RedisBackend {
    async fn try_lead(&self, group: &GroupId, owner: OwnerToken) -> Result<Option<FencingToken>> {
        let mut conn = self.conn()?;
        let term: u64 = scripts::LEAD
            .key(self.keys.leader_lock(group))
            .key(self.keys.leader_fence(group))
            .key(self.keys.leader_name(group))
            .arg(owner.to_hex())
            .arg(Self::ms(self.options.lock_timeout))
            .arg(self.member.as_bytes())
            .invoke_async(&mut conn)
            .await
            .map_err(redis_error)?;
        Ok((term > 0).then(|| FencingToken::new(term)))
    }

    async fn resign(&self, group: &GroupId, owner: OwnerToken) -> Result<bool> {
        let mut conn = self.conn()?;
        let resigned: i64 = scripts::RESIGN
            .key(self.keys.leader_lock(group))
            .key(self.keys.leader_name(group))
            .arg(owner.to_hex())
            .arg(self.keys.events())
            .invoke_async(&mut conn)
            .await
            .map_err(redis_error)?;
        Ok(resigned == 1)
    }

    async fn leader(&self, group: &GroupId) -> Result<Option<MemberId>> {
        let mut conn = self.conn()?;
        let leader: Option<Vec<u8>> = scripts::LEADER
            .key(self.keys.leader_lock(group))
            .key(self.keys.leader_name(group))
            .invoke_async(&mut conn)
            .await
            .map_err(redis_error)?;
        Ok(leader.map(|id| {
            if id.is_empty() {
                MemberId::from(UNKNOWN_LEADER)
            } else {
                MemberId::from(id)
            }
        }))
    }
}
