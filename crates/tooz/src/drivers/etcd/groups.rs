//! Groups on etcd: tooz's keys, a member key on the member's session lease holding its
//! msgpack capabilities. Changes are transactions, so each is all or nothing.

use async_trait::async_trait;
use etcd_client::{
    Compare, CompareOp, GetOptions, KeyValue, PutOptions, Txn, TxnOp, TxnOpResponse,
};

use super::{EtcdBackend, NAME, keys};
use crate::backend::Groups;
use crate::capabilities::Capabilities;
use crate::drivers::shared;
use crate::error::{Error, Result};
use crate::ids::{GroupId, MemberId};

impl EtcdBackend {
    /// Every key under `group`'s key (the group's own included), and the revision read at.
    async fn group_keys(&self, group: &GroupId, keys_only: bool) -> Result<(Vec<KeyValue>, i64)> {
        let mut client = self.client()?;
        let mut options = GetOptions::new().with_prefix();
        if keys_only {
            options = options.with_keys_only();
        }
        let mut answer = self
            .bounded(
                "reading a group",
                client.get(keys::group(group.as_bytes()), Some(options)),
            )
            .await?;
        let revision = self.saw(answer.header());
        Ok((answer.take_kvs(), revision))
    }

    /// Whether the group's key is there (and is a group's: no lease; a key on a lease that
    /// ends in `/` is a Python member whose id does).
    async fn group_exists(&self, group: &GroupId) -> Result<bool> {
        let mut client = self.client()?;
        let options = GetOptions::new().with_keys_only();
        let answer = self
            .bounded(
                "reading a group",
                client.get(keys::group(group.as_bytes()), Some(options)),
            )
            .await?;
        self.saw(answer.header());
        Ok(answer.kvs().iter().any(|kv| kv.lease() == 0))
    }

    /// The error for a change refused: the group is missing, or `otherwise`.
    async fn missing_group_or(&self, group: &GroupId, otherwise: Error) -> Error {
        shared::missing_group_or(self.group_exists(group).await, group, otherwise)
    }

    /// Runs `change` on our member key if the group exists (and `condition` holds); on a refusal,
    /// reads the group in the same transaction, so that the error says why as of that revision:
    /// read afterwards, a group created meanwhile by another member turned "the group did not
    /// exist" into "you had already joined" (scripts/torture, 10 processes joining one group).
    async fn change_member(
        &self,
        what: &str,
        group: &GroupId,
        condition: Compare,
        change: TxnOp,
        otherwise: Error,
    ) -> Result<()> {
        let group_key = keys::group(group.as_bytes());
        let txn = Txn::new()
            .when([
                Compare::version(group_key.clone(), CompareOp::Greater, 0),
                Compare::lease(group_key.clone(), CompareOp::Equal, 0),
                condition,
            ])
            .and_then([change])
            .or_else([TxnOp::get(
                group_key,
                Some(GetOptions::new().with_keys_only()),
            )]);
        let (done, answers, _) = self.txn(what, txn).await?;
        if done {
            return Ok(());
        }
        let group_exists = answers.iter().any(|answer| {
            matches!(answer, TxnOpResponse::Get(get) if get.kvs().iter().any(|kv| kv.lease() == 0))
        });
        Err(if group_exists {
            otherwise
        } else {
            Error::GroupNotCreated {
                group: group.clone(),
            }
        })
    }

    fn our_key(&self, group: &GroupId) -> Vec<u8> {
        keys::member(group.as_bytes(), self.member.as_bytes())
    }

    /// Puts our member key for `group` if the group exists and (`fresh`) we are not in it yet,
    /// or (not `fresh`) we are, on our lease.
    async fn put_member(
        &self,
        group: &GroupId,
        caps: &Capabilities,
        fresh: bool,
        otherwise: Error,
    ) -> Result<()> {
        let ours = self.our_key(group);
        // (A member id is the member: another coordinator of ours may have joined for it.)
        let membership = if fresh {
            Compare::version(ours.clone(), CompareOp::Equal, 0)
        } else {
            Compare::version(ours.clone(), CompareOp::Greater, 0)
        };
        let put = PutOptions::new().with_lease(self.lease());
        let change = TxnOp::put(ours, caps.encode()?, Some(put));
        self.change_member("joining a group", group, membership, change, otherwise)
            .await
    }
}

#[async_trait]
impl Groups for EtcdBackend {
    async fn create_group(&self, group: &GroupId) -> Result<()> {
        let key = keys::group(group.as_bytes());
        // Its own bytes as the value, as tooz writes it; no lease: groups outlive members.
        let txn = Txn::new()
            .when([Compare::version(key.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key.clone(), key, None)]);
        let (made, _, _) = self.txn("creating a group", txn).await?;
        if made {
            Ok(())
        } else {
            Err(Error::GroupAlreadyExist {
                group: group.clone(),
            })
        }
    }

    async fn delete_group(&self, group: &GroupId) -> Result<()> {
        let group_key = keys::group(group.as_bytes());
        let (kvs, revision) = self.group_keys(group, true).await?;
        if !kvs
            .iter()
            .any(|kv| kv.key() == group_key.as_slice() && kv.lease() == 0)
        {
            return Err(Error::GroupNotCreated {
                group: group.clone(),
            });
        }
        if kvs
            .iter()
            .any(|kv| keys::member_of_key(&group_key, kv.key(), kv.lease()).is_some())
        {
            return Err(Error::GroupNotEmpty {
                group: group.clone(),
            });
        }
        // Deleted only if nothing under it was created since we looked (a member joining
        // now; a sub-group `a/b` under `a` is left alone and does not block it).
        let txn = Txn::new()
            .when([
                Compare::version(group_key.clone(), CompareOp::Greater, 0),
                Compare::lease(group_key.clone(), CompareOp::Equal, 0),
                Compare::create_revision(group_key.clone(), CompareOp::Less, revision + 1)
                    .with_prefix(),
            ])
            .and_then([TxnOp::delete(group_key, None)]);
        let (deleted, _, _) = self.txn("deleting a group", txn).await?;
        if deleted {
            return Ok(());
        }
        let busy = Error::GroupNotEmpty {
            group: group.clone(),
        };
        Err(self.missing_group_or(group, busy).await)
    }

    async fn list_groups(&self) -> Result<Vec<GroupId>> {
        let mut client = self.client()?;
        let options = GetOptions::new().with_prefix().with_keys_only();
        let answer = self
            .bounded("listing groups", client.get(keys::GROUPS, Some(options)))
            .await?;
        self.saw(answer.header());
        Ok(answer
            .kvs()
            .iter()
            .filter_map(|kv| keys::group_of_key(kv.key(), kv.lease()))
            .map(|name| GroupId::from(name.to_vec()))
            .collect())
    }

    async fn join(&self, group: &GroupId, capabilities: &Capabilities) -> Result<()> {
        let already = Error::MemberAlreadyExist {
            group: group.clone(),
            member: self.member.clone(),
        };
        self.put_member(group, capabilities, true, already).await
    }

    async fn leave(&self, group: &GroupId) -> Result<()> {
        let ours = self.our_key(group);
        // (As tooz does, whichever coordinator of this member id joined; and whether or not
        // the group's own key is still there, so that no key of ours outlives the leave.)
        let txn = Txn::new()
            .when([Compare::version(ours.clone(), CompareOp::Greater, 0)])
            .and_then([TxnOp::delete(ours, None)]);
        let (left, _, _) = self.txn("leaving a group", txn).await?;
        if left {
            return Ok(());
        }
        let not_joined = Error::MemberNotJoined {
            group: group.clone(),
            member: self.member.clone(),
        };
        Err(self.missing_group_or(group, not_joined).await)
    }

    async fn members(&self, group: &GroupId) -> Result<Vec<(MemberId, Capabilities)>> {
        let group_key = keys::group(group.as_bytes());
        let (kvs, _) = self.group_keys(group, false).await?;
        if !kvs
            .iter()
            .any(|kv| kv.key() == group_key.as_slice() && kv.lease() == 0)
        {
            return Err(Error::GroupNotCreated {
                group: group.clone(),
            });
        }
        let mut members = Vec::new();
        for kv in &kvs {
            let Some(id) = keys::member_of_key(&group_key, kv.key(), kv.lease()) else {
                continue;
            };
            let member = MemberId::from(id.to_vec());
            members.extend(shared::decoded_member(NAME, group, member, kv.value()));
        }
        Ok(members)
    }

    async fn member_ids(&self, group: &GroupId) -> Result<Vec<MemberId>> {
        let group_key = keys::group(group.as_bytes());
        let (kvs, _) = self.group_keys(group, true).await?;
        if !kvs
            .iter()
            .any(|kv| kv.key() == group_key.as_slice() && kv.lease() == 0)
        {
            return Err(Error::GroupNotCreated {
                group: group.clone(),
            });
        }
        Ok(kvs
            .iter()
            .filter_map(|kv| keys::member_of_key(&group_key, kv.key(), kv.lease()))
            .map(|id| MemberId::from(id.to_vec()))
            .collect())
    }

    async fn member_capabilities(
        &self,
        group: &GroupId,
        member: &MemberId,
    ) -> Result<Capabilities> {
        let not_joined = || Error::MemberNotJoined {
            group: group.clone(),
            member: member.clone(),
        };
        if member.as_bytes().contains(&b'/') {
            // No member id holds '/' here: its key would be a member of another group.
            return Err(self.missing_group_or(group, not_joined()).await);
        }
        let mut client = self.client()?;
        let key = keys::member(group.as_bytes(), member.as_bytes());
        let answer = self
            .bounded("reading capabilities", client.get(key, None))
            .await?;
        self.saw(answer.header());
        match answer.kvs().first().filter(|kv| kv.lease() != 0) {
            Some(kv) => Capabilities::decode(kv.value()),
            None => Err(self.missing_group_or(group, not_joined()).await),
        }
    }

    async fn update_capabilities(
        &self,
        group: &GroupId,
        capabilities: &Capabilities,
    ) -> Result<()> {
        let not_joined = Error::MemberNotJoined {
            group: group.clone(),
            member: self.member.clone(),
        };
        self.put_member(group, capabilities, false, not_joined)
            .await
    }
}
