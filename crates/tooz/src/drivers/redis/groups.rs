//! Group membership on Redis, in tooz's layout, each operation one script round trip.

use async_trait::async_trait;
use redis::Value;

use super::keys::{self, CREATED_FIELD};
use super::{NAME, RedisBackend, redis_error, scripts};
use crate::backend::Groups;
use crate::capabilities::Capabilities;
use crate::drivers::shared;
use crate::error::{Error, Result};
use crate::ids::{GroupId, MemberId};

fn not_created(group: &GroupId) -> Error {
    Error::GroupNotCreated {
        group: group.clone(),
    }
}

fn bytes(value: &Value) -> Option<&[u8]> {
    match value {
        Value::BulkString(b) => Some(b),
        _ => None,
    }
}

fn unexpected(what: &str, value: &Value) -> Error {
    Error::Backend {
        backend: "redis",
        source: format!("unexpected reply to {what}: {value:?}").into(),
    }
}

impl RedisBackend {
    fn not_joined(&self, group: &GroupId) -> Error {
        Error::MemberNotJoined {
            group: group.clone(),
            member: self.member.clone(),
        }
    }

    /// The MEMBERS script: `None` if the group is missing, else the reply after its status.
    async fn members_reply(&self, group: &GroupId, with_caps: bool) -> Result<Option<Vec<Value>>> {
        let mut conn = self.conn()?;
        let reply: Vec<Value> = scripts::MEMBERS
            .key(self.keys.group(group))
            .arg(self.keys.beats_prefix())
            .arg(self.member.as_bytes())
            .arg(if with_caps { "all" } else { "ids" })
            .invoke_async(&mut conn)
            .await
            .map_err(redis_error)?;
        let mut reply = reply.into_iter();
        match reply.next() {
            Some(Value::Int(1)) => Ok(Some(reply.collect())),
            Some(Value::Int(0)) => Ok(None),
            other => Err(unexpected(
                "the member listing",
                &other.unwrap_or(Value::Nil),
            )),
        }
    }
}

#[async_trait]
impl Groups for RedisBackend {
    async fn create_group(&self, group: &GroupId) -> Result<()> {
        keys::check_group(group)?;
        let mut conn = self.conn()?;
        let created: i64 = scripts::CREATE_GROUP
            .key(self.keys.group(group))
            .key(self.keys.groups())
            .arg(group.as_bytes())
            .arg(self.keys.events())
            .invoke_async(&mut conn)
            .await
            .map_err(redis_error)?;
        if created == 1 {
            Ok(())
        } else {
            Err(Error::GroupAlreadyExist {
                group: group.clone(),
            })
        }
    }

    async fn delete_group(&self, group: &GroupId) -> Result<()> {
        let mut conn = self.conn()?;
        let outcome: i64 = scripts::DELETE_GROUP
            .key(self.keys.group(group))
            .key(self.keys.groups())
            .arg(self.keys.beats_prefix())
            .arg(group.as_bytes())
            .arg(self.keys.events())
            .invoke_async(&mut conn)
            .await
            .map_err(redis_error)?;
        match outcome {
            1 => Ok(()),
            -3 => Err(Error::GroupNotEmpty {
                group: group.clone(),
            }),
            _ => Err(not_created(group)),
        }
    }

    async fn list_groups(&self) -> Result<Vec<GroupId>> {
        let mut conn = self.conn()?;
        let groups: Vec<Vec<u8>> = redis::cmd("SMEMBERS")
            .arg(self.keys.groups())
            .query_async(&mut conn)
            .await
            .map_err(redis_error)?;
        Ok(groups
            .into_iter()
            .filter(|g| !g.is_empty())
            .map(GroupId::from)
            .collect())
    }

    async fn join(&self, group: &GroupId, capabilities: &Capabilities) -> Result<()> {
        keys::check_group(group)?;
        let mut conn = self.conn()?;
        let joined: i64 = scripts::JOIN
            .key(self.keys.group(group))
            .arg(self.member.as_bytes())
            .arg(capabilities.encode()?)
            .arg(self.keys.events())
            .invoke_async(&mut conn)
            .await
            .map_err(redis_error)?;
        match joined {
            1 => Ok(()),
            0 => Err(Error::MemberAlreadyExist {
                group: group.clone(),
                member: self.member.clone(),
            }),
            _ => Err(not_created(group)),
        }
    }

    async fn leave(&self, group: &GroupId) -> Result<()> {
        let mut conn = self.conn()?;
        let left: i64 = scripts::LEAVE
            .key(self.keys.group(group))
            .arg(self.member.as_bytes())
            .arg(self.keys.events())
            .invoke_async(&mut conn)
            .await
            .map_err(redis_error)?;
        match left {
            1 => Ok(()),
            0 => Err(self.not_joined(group)),
            _ => Err(not_created(group)),
        }
    }

    async fn members(&self, group: &GroupId) -> Result<Vec<(MemberId, Capabilities)>> {
        let reply = self
            .members_reply(group, true)
            .await?
            .ok_or_else(|| not_created(group))?;
        let mut members = Vec::with_capacity(reply.len() / 2);
        for pair in reply.chunks(2) {
            let (Some(id), Some(caps)) =
                (pair.first().and_then(bytes), pair.get(1).and_then(bytes))
            else {
                tracing::warn!(group = %group, "skipping a malformed member entry");
                continue;
            };
            let member = MemberId::from(id);
            members.extend(shared::decoded_member(NAME, group, member, caps));
        }
        Ok(members)
    }

    async fn member_ids(&self, group: &GroupId) -> Result<Vec<MemberId>> {
        let reply = self
            .members_reply(group, false)
            .await?
            .ok_or_else(|| not_created(group))?;
        Ok(reply
            .iter()
            .filter_map(bytes)
            .filter(|id| !id.is_empty() && *id != CREATED_FIELD)
            .map(MemberId::from)
            .collect())
    }

    async fn member_capabilities(
        &self,
        group: &GroupId,
        member: &MemberId,
    ) -> Result<Capabilities> {
        let mut conn = self.conn()?;
        let reply: Vec<Value> = scripts::MEMBER_CAPABILITIES
            .key(self.keys.group(group))
            .arg(member.as_bytes())
            .invoke_async(&mut conn)
            .await
            .map_err(redis_error)?;
        match reply.as_slice() {
            [Value::Int(2), caps] => {
                let caps = bytes(caps).ok_or_else(|| unexpected("HGET", caps))?;
                Capabilities::decode(caps)
            }
            [Value::Int(1)] => Err(Error::MemberNotJoined {
                group: group.clone(),
                member: member.clone(),
            }),
            [Value::Int(0)] => Err(not_created(group)),
            _ => Err(unexpected(
                "the capability lookup",
                &Value::Array(reply.clone()),
            )),
        }
    }

    async fn update_capabilities(
        &self,
        group: &GroupId,
        capabilities: &Capabilities,
    ) -> Result<()> {
        let mut conn = self.conn()?;
        let updated: i64 = scripts::UPDATE_CAPABILITIES
            .key(self.keys.group(group))
            .arg(self.member.as_bytes())
            .arg(capabilities.encode()?)
            .invoke_async(&mut conn)
            .await
            .map_err(redis_error)?;
        match updated {
            1 => Ok(()),
            -2 => Err(self.not_joined(group)),
            _ => Err(not_created(group)),
        }
    }
}
