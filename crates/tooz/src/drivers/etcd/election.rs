//! Leader election on etcd: a key per group under `tooz-rs/leaders/`, created only if absent,
//! on the session lease; its value is the grant's owner token and the leader's member id, its
//! create revision the term's fencing token.

use async_trait::async_trait;

use super::{EtcdBackend, NAME, keys, owner_bytes};
use crate::backend::{Elections, FencingToken, OwnerToken};
use crate::error::Result;
use crate::ids::{GroupId, MemberId};

/// Owner token bytes at the front of a leader key's value.
const OWNER_LEN: usize = 16;

impl EtcdBackend {
    /// The value of our leader key for grant `owner`.
    pub(super) fn leader_value(&self, owner: OwnerToken) -> Vec<u8> {
        [owner_bytes(owner).as_slice(), self.member.as_bytes()].concat()
    }
}

#[async_trait]
impl Elections for EtcdBackend {
    async fn try_lead(&self, group: &GroupId, owner: OwnerToken) -> Result<Option<FencingToken>> {
        let key = keys::leader(group.as_bytes());
        let value = self.leader_value(owner);
        let (token, _) = self
            .put_if_absent("running for leader", owner, key, value)
            .await?;
        Ok(token)
    }

    async fn resign(&self, group: &GroupId, owner: OwnerToken) -> Result<bool> {
        let key = keys::leader(group.as_bytes());
        self.delete_if_ours("resigning", owner, key, self.leader_value(owner))
            .await
    }

    async fn leader(&self, group: &GroupId) -> Result<Option<MemberId>> {
        let mut client = self.client()?;
        let key = keys::leader(group.as_bytes());
        let answer = self
            .bounded("reading the leader", client.get(key, None))
            .await?;
        self.saw(answer.header());
        Ok(answer.kvs().first().and_then(|kv| {
            let member = kv.value().get(OWNER_LEN..).filter(|m| !m.is_empty());
            if member.is_none() {
                tracing::warn!(backend = NAME, group = %group, "a leader key without a member id");
            }
            member.map(|m| MemberId::from(m.to_vec()))
        }))
    }
}
