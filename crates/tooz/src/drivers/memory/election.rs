//! Leader election in the store.

use async_trait::async_trait;

use super::{Leader, MemoryBackend, State};
use crate::backend::{Elections, FencingToken, OwnerToken};
use crate::error::Result;
use crate::ids::{GroupId, MemberId};

#[async_trait]
impl Elections for MemoryBackend {
    async fn try_lead(&self, group: &GroupId, owner: OwnerToken) -> Result<Option<FencingToken>> {
        self.call(|state, session| {
            let session = match self.live_session(session) {
                Ok(s) => s,
                Err(e) => return (Err(e), false),
            };
            if state.leaders.contains_key(group) {
                return (Ok(None), false);
            }
            let leader = Leader {
                member: self.member.clone(),
                owner,
                session,
            };
            state.leaders.insert(group.clone(), leader);
            let token = State::next_fence(&mut state.leader_fences, group.clone());
            (Ok(Some(token)), true)
        })
        .await
    }

    async fn resign(&self, group: &GroupId, owner: OwnerToken) -> Result<bool> {
        Ok(self
            .call(|state, _| {
                if state.leaders.get(group).is_some_and(|l| l.owner == owner) {
                    state.leaders.remove(group);
                    (true, true)
                } else {
                    (false, false)
                }
            })
            .await)
    }

    async fn leader(&self, group: &GroupId) -> Result<Option<MemberId>> {
        Ok(self
            .call(|state, _| (state.leaders.get(group).map(|l| l.member.clone()), false))
            .await)
    }
}
