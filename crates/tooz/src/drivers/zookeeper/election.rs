//! Leader election on ZooKeeper, as tooz does it: a kazoo lock on `/tooz/<group>/leader`,
//! taken without waiting; the leader is the first contender (its node holds the member id),
//! and the term's fencing token is that node's czxid.

use async_trait::async_trait;
use zookeeper_client::Error as ZkError;

use super::{NAME, ZookeeperBackend, paths};
use crate::backend::{Elections, FencingToken, OwnerToken};
use crate::error::Result;
use crate::ids::{GroupId, MemberId};

impl ZookeeperBackend {
    /// The node of group `group`'s leader lock.
    fn leader_dir(&self, group: &GroupId) -> String {
        format!("{}/{}", self.group_path(group.as_bytes()), paths::LEADER)
    }
}

#[async_trait]
impl Elections for ZookeeperBackend {
    async fn try_lead(&self, group: &GroupId, owner: OwnerToken) -> Result<Option<FencingToken>> {
        let dir = self.leader_dir(group);
        self.contend(&dir, owner, false, false).await
    }

    async fn resign(&self, group: &GroupId, owner: OwnerToken) -> Result<bool> {
        let dir = self.leader_dir(group);
        self.withdraw(&dir, owner).await
    }

    async fn leader(&self, group: &GroupId) -> Result<Option<MemberId>> {
        let dir = self.leader_dir(group);
        let session = self.session()?;
        let client = &session.client;
        // At most: the first contender found gone between the two reads, twice.
        for _ in 0..3 {
            let (children, stat) = match self
                .call("reading the leader", client.get_children(&dir))
                .await?
            {
                Ok(listed) => listed,
                Err(ZkError::NoNode) => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            self.saw_children(&dir, &stat);
            self.saw_holder(&dir, &children);
            let Some(first) = paths::first_contender(&children) else {
                return Ok(None);
            };
            let path = format!("{dir}/{first}");
            match self
                .call("reading the leader", client.get_data(&path))
                .await?
            {
                Ok((data, _)) if data.is_empty() => {
                    tracing::warn!(backend = NAME, group = %group, "a leader contender without a member id");
                    return Ok(None);
                }
                Ok((data, _)) => return Ok(Some(MemberId::from(data))),
                Err(ZkError::NoNode) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(None)
    }
}
