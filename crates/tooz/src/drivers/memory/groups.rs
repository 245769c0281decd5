//! Group membership in the store.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::{Membership, MemoryBackend};
use crate::backend::Groups;
use crate::capabilities::Capabilities;
use crate::error::{Error, Result};
use crate::ids::{GroupId, MemberId};

fn group_not_created(group: &GroupId) -> Error {
    Error::GroupNotCreated {
        group: group.clone(),
    }
}

#[async_trait]
impl Groups for MemoryBackend {
    async fn create_group(&self, group: &GroupId) -> Result<()> {
        self.call(|state, _| {
            if state.groups.contains_key(group) {
                return (
                    Err(Error::GroupAlreadyExist {
                        group: group.clone(),
                    }),
                    false,
                );
            }
            state.groups.insert(group.clone(), BTreeMap::new());
            (Ok(()), true)
        })
        .await
    }

    async fn delete_group(&self, group: &GroupId) -> Result<()> {
        self.call(|state, _| match state.groups.get(group) {
            None => (Err(group_not_created(group)), false),
            Some(members) if !members.is_empty() => (
                Err(Error::GroupNotEmpty {
                    group: group.clone(),
                }),
                false,
            ),
            Some(_) => {
                state.groups.remove(group);
                (Ok(()), true)
            }
        })
        .await
    }

    async fn list_groups(&self) -> Result<Vec<GroupId>> {
        Ok(self
            .call(|state, _| (state.groups.keys().cloned().collect(), false))
            .await)
    }

    async fn join(&self, group: &GroupId, capabilities: &Capabilities) -> Result<()> {
        self.call(|state, session| {
            let session = match self.live_session(session) {
                Ok(s) => s,
                Err(e) => return (Err(e), false),
            };
            let Some(members) = state.groups.get_mut(group) else {
                return (Err(group_not_created(group)), false);
            };
            if members.contains_key(&self.member) {
                let err = Error::MemberAlreadyExist {
                    group: group.clone(),
                    member: self.member.clone(),
                };
                return (Err(err), false);
            }
            let membership = Membership {
                session,
                capabilities: capabilities.clone(),
            };
            members.insert(self.member.clone(), membership);
            (Ok(()), true)
        })
        .await
    }

    async fn leave(&self, group: &GroupId) -> Result<()> {
        self.call(|state, _| {
            let Some(members) = state.groups.get_mut(group) else {
                return (Err(group_not_created(group)), false);
            };
            if members.remove(&self.member).is_none() {
                let err = Error::MemberNotJoined {
                    group: group.clone(),
                    member: self.member.clone(),
                };
                return (Err(err), false);
            }
            (Ok(()), true)
        })
        .await
    }

    async fn members(&self, group: &GroupId) -> Result<Vec<(MemberId, Capabilities)>> {
        self.call(|state, _| match state.groups.get(group) {
            None => (Err(group_not_created(group)), false),
            Some(members) => {
                let list = members
                    .iter()
                    .map(|(id, m)| (id.clone(), m.capabilities.clone()))
                    .collect();
                (Ok(list), false)
            }
        })
        .await
    }

    async fn member_capabilities(
        &self,
        group: &GroupId,
        member: &MemberId,
    ) -> Result<Capabilities> {
        self.call(|state, _| {
            let Some(members) = state.groups.get(group) else {
                return (Err(group_not_created(group)), false);
            };
            let found = members.get(member).map(|m| m.capabilities.clone());
            let result = found.ok_or_else(|| Error::MemberNotJoined {
                group: group.clone(),
                member: member.clone(),
            });
            (result, false)
        })
        .await
    }

    async fn update_capabilities(
        &self,
        group: &GroupId,
        capabilities: &Capabilities,
    ) -> Result<()> {
        self.call(|state, _| {
            let Some(members) = state.groups.get_mut(group) else {
                return (Err(group_not_created(group)), false);
            };
            let Some(membership) = members.get_mut(&self.member) else {
                let err = Error::MemberNotJoined {
                    group: group.clone(),
                    member: self.member.clone(),
                };
                return (Err(err), false);
            };
            membership.capabilities = capabilities.clone();
            (Ok(()), true)
        })
        .await
    }
}
