//! Groups on memcached, as tooz keeps them: a msgpack map per group (`_TOOZ_GROUP_<g>`:
//! member id → `{"capabilities": caps}`, keys as msgpack bin), a msgpack list of every group
//! (`_TOOZ_GROUP_LIST`), changed by CAS loops so that Python and Rust writers never overwrite
//! each other; a member is live while its `_TOOZ_MEMBER_<id>` key exists.

use async_trait::async_trait;
use rmpv::Value;

use super::client::{Command, Mode, Reply, Status};
use super::{MSGPACK, MemcachedBackend, NAME, keys, protocol, unexpected};
use crate::backend::Groups;
use crate::capabilities::{Capabilities, MAX_CAPABILITIES_DEPTH, decode_value_within, map_key_is};
use crate::error::{Error, Result};
use crate::ids::{GroupId, MemberId};

/// A group map may hold many members, each with capabilities of the largest size.
const MAX_GROUP_VALUE: usize = 64 << 20;
const CAPABILITIES: &[u8] = b"capabilities";

/// A group's map as read, with the CAS to write it back.
struct GroupMap {
    entries: Vec<(Value, Value)>,
    cas: u64,
}

impl GroupMap {
    /// The member ids, in entry order (an entry whose key is not an id reads as empty).
    fn member_ids(&self) -> Vec<MemberId> {
        self.entries
            .iter()
            .map(|(k, _)| MemberId::from(id_bytes(k).unwrap_or_default()))
            .collect()
    }

    fn position(&self, member: &MemberId) -> Option<usize> {
        self.entries
            .iter()
            .position(|(k, _)| id_bytes(k) == Some(member.as_bytes()))
    }
}

/// A member id (or group id) as tooz stores it: msgpack bin (or str, from older writers).
fn id_bytes(value: &Value) -> Option<&[u8]> {
    match value {
        Value::Binary(b) => Some(b),
        Value::String(s) => Some(s.as_bytes()),
        _ => None,
    }
}

fn encode(value: &Value) -> Vec<u8> {
    let mut buf = Vec::new();
    rmpv::encode::write_value(&mut buf, value).expect("writing to a Vec cannot fail");
    buf
}

/// A member's entry, as tooz writes it.
fn entry(capabilities: &Capabilities) -> Value {
    Value::Map(vec![(
        Value::Binary(CAPABILITIES.to_vec()),
        capabilities.value().clone(),
    )])
}

/// The capabilities in a member's entry (`None` if the entry is not tooz's shape).
fn capabilities_of(entry: &Value) -> Option<Capabilities> {
    let Value::Map(fields) = entry else {
        return None;
    };
    fields
        .iter()
        .find(|(k, _)| map_key_is(k, "capabilities"))
        .map(|(_, caps)| Capabilities::new(caps.clone()))
}

/// A msgpack value stored by tooz (client flags 2) in `what`.
fn decode_msgpack(reply: &Reply, what: &str) -> Result<Value> {
    if reply.client_flags() != Some(MSGPACK) {
        return Err(protocol(&format!(
            "{what} is not a msgpack value of tooz's (client flags {:?})",
            reply.client_flags()
        )));
    }
    let bytes = reply.value.as_deref().unwrap_or_default();
    decode_value_within(bytes, MAX_GROUP_VALUE, MAX_CAPABILITIES_DEPTH + 2)
        .map_err(|e| protocol(&format!("{what} cannot be decoded: {e}")))
}

impl MemcachedBackend {
    /// The group's map and CAS; `None` if the group does not exist.
    async fn read_group(&self, group: &GroupId) -> Result<Option<GroupMap>> {
        let replies = self
            .client
            .run(&[Command::get(&keys::group(group))])
            .await?;
        let reply = &replies[0];
        match reply.status {
            Status::Miss => Ok(None),
            Status::Value => {
                let what = format!("group '{group}'");
                let cas = reply
                    .cas()
                    .ok_or_else(|| protocol("a get returned no CAS"))?;
                match decode_msgpack(reply, &what)? {
                    Value::Map(entries) => Ok(Some(GroupMap { entries, cas })),
                    // What tooz leaves while deleting a group: it is going away.
                    Value::Nil => Ok(None),
                    other => Err(protocol(&format!("{what} is not a map: {other}"))),
                }
            }
            other => Err(unexpected("reading a group", other)),
        }
    }

    /// The CAS of the group's key if it holds tooz's deletion mark (nil): a deletion that
    /// got as far as marking the group and no further (cut off, or its caller gone).
    async fn deletion_mark(&self, group: &GroupId) -> Result<Option<u64>> {
        let replies = self
            .client
            .run(&[Command::get(&keys::group(group))])
            .await?;
        let reply = &replies[0];
        if reply.status != Status::Value || reply.client_flags() != Some(MSGPACK) {
            return Ok(None);
        }
        let nil = reply.value.as_deref() == Some(&encode(&Value::Nil)[..]);
        Ok(if nil { reply.cas() } else { None })
    }

    /// Finishes a deletion once the group is marked: the key (only if it still holds the
    /// mark `mark`, when given), then the list entry.
    async fn finish_deletion(&self, group: &GroupId, mark: Option<u64>) -> Result<()> {
        let key = keys::group(group);
        self.client.run(&[Command::delete(&key, mark)]).await?;
        let id = group.as_bytes();
        self.update_group_list(|list| {
            let before = list.len();
            list.retain(|g| id_bytes(g) != Some(id));
            list.len() != before
        })
        .await
    }

    /// Writes `map` back if nobody changed it since it was read; false if somebody did.
    async fn write_group(&self, group: &GroupId, map: &GroupMap) -> Result<bool> {
        let value = encode(&Value::Map(map.entries.clone()));
        let command = Command::set_if(&keys::group(group), &value, MSGPACK, 0, map.cas);
        let replies = self.client.run(&[command]).await?;
        match replies[0].status {
            Status::Done => Ok(true),
            Status::Exists | Status::NotFound => Ok(false),
            other => Err(unexpected("writing a group", other)),
        }
    }

    /// Changes the group's map with `change` until the write wins its CAS race (tooz's loop).
    async fn update_group<T>(
        &self,
        group: &GroupId,
        mut change: impl FnMut(&mut GroupMap) -> Result<T>,
    ) -> Result<T> {
        loop {
            let Some(mut map) = self.read_group(group).await? else {
                return Err(Error::GroupNotCreated {
                    group: group.clone(),
                });
            };
            let outcome = change(&mut map)?;
            if self.write_group(group, &map).await? {
                return Ok(outcome);
            }
        }
    }

    /// Which of `members` are live (their member key exists), in one round trip. Our own
    /// member counts as live, as in tooz.
    async fn live(&self, members: &[MemberId]) -> Result<Vec<bool>> {
        let others: Vec<&MemberId> = members.iter().filter(|m| **m != self.member).collect();
        let commands: Vec<Command> = others
            .iter()
            .map(|m| Command::exists(&keys::member(m)))
            .collect();
        let replies = if commands.is_empty() {
            Vec::new()
        } else {
            self.client.run(&commands).await?
        };
        let mut replies = replies.into_iter();
        Ok(members
            .iter()
            .map(|m| *m == self.member || replies.next().is_some_and(|r| r.status == Status::Done))
            .collect())
    }

    /// Changes the list of groups with `change` (true if it changed it) until the write wins.
    async fn update_group_list(
        &self,
        mut change: impl FnMut(&mut Vec<Value>) -> bool,
    ) -> Result<()> {
        let key = keys::group_list();
        loop {
            let replies = self.client.run(&[Command::get(&key)]).await?;
            let reply = &replies[0];
            let command = match reply.status {
                Status::Miss => {
                    let mut list = Vec::new();
                    if !change(&mut list) {
                        return Ok(());
                    }
                    Command::set(&key, &encode(&Value::Array(list)), MSGPACK, 0, Mode::Add)
                }
                Status::Value => {
                    let cas = reply
                        .cas()
                        .ok_or_else(|| protocol("a get returned no CAS"))?;
                    let Value::Array(mut list) = decode_msgpack(reply, "the list of groups")?
                    else {
                        return Err(protocol("the list of groups is not a list"));
                    };
                    if !change(&mut list) {
                        return Ok(());
                    }
                    Command::set_if(&key, &encode(&Value::Array(list)), MSGPACK, 0, cas)
                }
                other => return Err(unexpected("reading the list of groups", other)),
            };
            let replies = self.client.run(&[command]).await?;
            match replies[0].status {
                Status::Done => return Ok(()),
                Status::NotStored | Status::Exists | Status::NotFound => continue,
                other => return Err(unexpected("writing the list of groups", other)),
            }
        }
    }

    /// The members listed in a group, those whose key expired pruned from the map (as tooz's
    /// `get_members` does, a best-effort write); members whose entry is not tooz's shape are
    /// skipped with a warning.
    async fn live_members(&self, group: &GroupId) -> Result<Vec<(MemberId, Capabilities)>> {
        let Some(mut map) = self.read_group(group).await? else {
            return Err(Error::GroupNotCreated {
                group: group.clone(),
            });
        };
        let ids = map.member_ids();
        let live = self.live(&ids).await?;
        let mut members = Vec::with_capacity(ids.len());
        for ((key, entry), (id, live)) in map.entries.iter().zip(ids.iter().zip(&live)) {
            if !live {
                continue;
            }
            match (id_bytes(key), capabilities_of(entry)) {
                (Some(_), Some(caps)) => members.push((id.clone(), caps)),
                _ => tracing::warn!(
                    backend = NAME,
                    group = %group,
                    "skipping a member entry that is not tooz's shape"
                ),
            }
        }
        if live.iter().any(|l| !l) {
            let mut keep = live.iter();
            map.entries.retain(|_| *keep.next().unwrap_or(&true));
            // Best effort: a writer that changed the map meanwhile prunes next time.
            let _ = self.write_group(group, &map).await?;
        }
        Ok(members)
    }
}

#[async_trait]
impl Groups for MemcachedBackend {
    async fn create_group(&self, group: &GroupId) -> Result<()> {
        keys::check_group(group)?;
        let empty = encode(&Value::Map(Vec::new()));
        let command = Command::set(&keys::group(group), &empty, MSGPACK, 0, Mode::Add);
        let replies = self.client.run(&[command]).await?;
        match replies[0].status {
            Status::Done => {}
            Status::NotStored => {
                // A group left half-deleted is no group: it is created over its mark.
                let revived = match self.deletion_mark(group).await? {
                    Some(mark) => {
                        let key = keys::group(group);
                        let revive = Command::set_if(&key, &empty, MSGPACK, 0, mark);
                        self.client.run(&[revive]).await?[0].status == Status::Done
                    }
                    None => false,
                };
                if !revived {
                    return Err(Error::GroupAlreadyExist {
                        group: group.clone(),
                    });
                }
            }
            other => return Err(unexpected("creating a group", other)),
        }
        let id = group.as_bytes();
        self.update_group_list(|list| {
            if list.iter().any(|g| id_bytes(g) == Some(id)) {
                return false;
            }
            list.push(Value::Binary(id.to_vec()));
            true
        })
        .await
    }

    async fn delete_group(&self, group: &GroupId) -> Result<()> {
        keys::check_group(group)?;
        let key = keys::group(group);
        loop {
            let Some(map) = self.read_group(group).await? else {
                if let Some(mark) = self.deletion_mark(group).await? {
                    self.finish_deletion(group, Some(mark)).await?;
                }
                return Err(Error::GroupNotCreated {
                    group: group.clone(),
                });
            };
            let ids = map.member_ids();
            // Members whose key expired do not keep a group alive (they block it forever in
            // tooz).
            if self.live(&ids).await?.into_iter().any(|live| live) {
                return Err(Error::GroupNotEmpty {
                    group: group.clone(),
                });
            }
            // As tooz: mark it gone (nil) by CAS, so a join racing us fails, then delete it.
            let nil = encode(&Value::Nil);
            let command = Command::set_if(&key, &nil, MSGPACK, 0, map.cas);
            let replies = self.client.run(&[command]).await?;
            match replies[0].status {
                Status::Done => break,
                Status::Exists | Status::NotFound => continue,
                other => return Err(unexpected("deleting a group", other)),
            }
        }
        self.finish_deletion(group, None).await
    }

    async fn list_groups(&self) -> Result<Vec<GroupId>> {
        let replies = self
            .client
            .run(&[Command::get(&keys::group_list())])
            .await?;
        let reply = &replies[0];
        match reply.status {
            Status::Miss => Ok(Vec::new()),
            Status::Value => match decode_msgpack(reply, "the list of groups")? {
                Value::Array(list) => Ok(list
                    .iter()
                    .filter_map(id_bytes)
                    .map(GroupId::from)
                    .collect()),
                _ => Err(protocol("the list of groups is not a list")),
            },
            other => Err(unexpected("reading the list of groups", other)),
        }
    }

    async fn join(&self, group: &GroupId, capabilities: &Capabilities) -> Result<()> {
        keys::check_group(group)?;
        let member = &self.member;
        self.update_group(group, |map| {
            if map.position(member).is_some() {
                return Err(Error::MemberAlreadyExist {
                    group: group.clone(),
                    member: member.clone(),
                });
            }
            map.entries.push((
                Value::Binary(member.as_bytes().to_vec()),
                entry(capabilities),
            ));
            Ok(())
        })
        .await
    }

    async fn leave(&self, group: &GroupId) -> Result<()> {
        keys::check_group(group)?;
        let member = &self.member;
        self.update_group(group, |map| {
            let Some(at) = map.position(member) else {
                return Err(Error::MemberNotJoined {
                    group: group.clone(),
                    member: member.clone(),
                });
            };
            map.entries.remove(at);
            Ok(())
        })
        .await
    }

    async fn members(&self, group: &GroupId) -> Result<Vec<(MemberId, Capabilities)>> {
        keys::check_group(group)?;
        self.live_members(group).await
    }

    async fn member_capabilities(
        &self,
        group: &GroupId,
        member: &MemberId,
    ) -> Result<Capabilities> {
        keys::check_group(group)?;
        let Some(map) = self.read_group(group).await? else {
            return Err(Error::GroupNotCreated {
                group: group.clone(),
            });
        };
        let not_joined = || Error::MemberNotJoined {
            group: group.clone(),
            member: member.clone(),
        };
        let at = map.position(member).ok_or_else(not_joined)?;
        capabilities_of(&map.entries[at].1).ok_or_else(|| {
            protocol(&format!(
                "member '{member}' of group '{group}' has an entry that is not tooz's shape"
            ))
        })
    }

    async fn update_capabilities(
        &self,
        group: &GroupId,
        capabilities: &Capabilities,
    ) -> Result<()> {
        keys::check_group(group)?;
        let member = &self.member;
        self.update_group(group, |map| {
            let Some(at) = map.position(member) else {
                return Err(Error::MemberNotJoined {
                    group: group.clone(),
                    member: member.clone(),
                });
            };
            map.entries[at].1 = entry(capabilities);
            Ok(())
        })
        .await
    }
}
