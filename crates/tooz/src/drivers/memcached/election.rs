//! Leader election on memcached: tooz's leader lock of the group (its value is the leader's
//! member id, which is also what `leader()` reads, for Python leaders too).

use async_trait::async_trait;

use super::client::{Command, Status};
use super::{MemcachedBackend, keys, unexpected};
use crate::backend::{Elections, FencingToken, OwnerToken};
use crate::error::Result;
use crate::ids::{GroupId, MemberId};

#[async_trait]
impl Elections for MemcachedBackend {
    async fn try_lead(&self, group: &GroupId, owner: OwnerToken) -> Result<Option<FencingToken>> {
        let key = keys::leader_lock(group);
        let fence = keys::leader_fence(group);
        self.take(key, &fence, self.options.leader_timeout, owner)
            .await
    }

    async fn resign(&self, _group: &GroupId, owner: OwnerToken) -> Result<bool> {
        self.give_back(owner).await
    }

    async fn leader(&self, group: &GroupId) -> Result<Option<MemberId>> {
        let replies = self
            .client
            .run(&[Command::get(&keys::leader_lock(group))])
            .await?;
        let reply = &replies[0];
        match reply.status {
            Status::Miss => Ok(None),
            Status::Value => {
                let value = reply.value.clone().unwrap_or_default();
                // A leader lock with no member id in it leads nobody we can name.
                Ok((!value.is_empty()).then(|| MemberId::from(value)))
            }
            other => Err(unexpected("reading the leader lock", other)),
        }
    }
}
