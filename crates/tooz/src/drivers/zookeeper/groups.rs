//! Groups on ZooKeeper, tooz's layout: a group is a persistent node under the namespace, a
//! member an ephemeral node of its session under it, holding its msgpack capabilities.
//! Listings leave out what tooz keeps there besides: the `locks` node among groups, and a
//! group's persistent `leader` node among its members (Python lists both).

use async_trait::async_trait;
use zookeeper_client::{CreateMode, Error as ZkError, MultiReadResult};

use super::{NAME, READS_PER_REQUEST, ZookeeperBackend, error, paths};
use crate::backend::Groups;
use crate::capabilities::Capabilities;
use crate::drivers::shared;
use crate::error::{Error, Result};
use crate::ids::{GroupId, MemberId};

impl ZookeeperBackend {
    /// Whether `group`'s node is there.
    async fn group_exists(&self, group: &GroupId) -> Result<bool> {
        let path = self.group_path(group.as_bytes());
        let session = self.session()?;
        let found = self
            .call("reading a group", session.client.check_stat(&path))
            .await??;
        Ok(found.is_some())
    }

    /// The error for a change that found no node: the group is missing, or `otherwise`.
    async fn missing_group_or(&self, group: &GroupId, otherwise: Error) -> Error {
        shared::missing_group_or(self.group_exists(group).await, group, otherwise)
    }

    /// Our member node's path in `group`.
    fn our_path(&self, group: &GroupId) -> String {
        let member = paths::member(self.member.as_bytes());
        format!("{}/{member}", self.group_path(group.as_bytes()))
    }

    /// The children of `group`'s node (`GroupNotCreated` if it is missing).
    async fn children(&self, group: &GroupId) -> Result<(String, Vec<String>)> {
        let path = self.group_path(group.as_bytes());
        let session = self.session()?;
        let listed = self
            .call("reading a group", session.client.get_children(&path))
            .await?;
        match listed {
            Ok((children, stat)) => {
                self.saw_children(&path, &stat);
                Ok((path, children))
            }
            Err(ZkError::NoNode) => Err(Error::GroupNotCreated {
                group: group.clone(),
            }),
            Err(e) => Err(e.into()),
        }
    }
}

#[async_trait]
impl Groups for ZookeeperBackend {
    async fn create_group(&self, group: &GroupId) -> Result<()> {
        let path = self.group_path(group.as_bytes());
        let session = self.session()?;
        let options = self.create_options(CreateMode::Persistent);
        for first in [true, false] {
            let created = session.client.create(&path, b"", &options);
            match self.call("creating a group", created).await? {
                Ok(_) => return Ok(()),
                Err(ZkError::NodeExists) => {
                    return Err(Error::GroupAlreadyExist {
                        group: group.clone(),
                    });
                }
                // The namespace node was deleted under us: made again.
                Err(ZkError::NoNode) if first => {
                    self.ensure_path(&session.client, &self.options.base)
                        .await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(error::unexpected(
            "the namespace node vanishes as it is made",
        ))
    }

    async fn delete_group(&self, group: &GroupId) -> Result<()> {
        let path = self.group_path(group.as_bytes());
        let session = self.session()?;
        let client = &session.client;
        let not_empty = || Error::GroupNotEmpty {
            group: group.clone(),
        };
        match self
            .call("deleting a group", client.delete(&path, None))
            .await?
        {
            Ok(()) => return Ok(()),
            Err(ZkError::NoNode) => {
                return Err(Error::GroupNotCreated {
                    group: group.clone(),
                });
            }
            Err(ZkError::NotEmpty) => {}
            Err(e) => return Err(e.into()),
        }
        // Not empty. If all that is left is the leader lock's node with no contender (tooz
        // leaves it behind after any election, so Python can never delete such a group), the
        // two go together, atomically: the transaction fails if anyone contends or joins.
        let (_, children) = self.children(group).await?;
        if children != [paths::LEADER] {
            return Err(not_empty());
        }
        // (Unless `leader` is a Python member of that name: an ephemeral node.)
        let leader = format!("{path}/{}", paths::LEADER);
        let stat = self
            .call("deleting a group", client.check_stat(&leader))
            .await??;
        if stat.is_some_and(|s| s.ephemeral_owner != 0) {
            return Err(not_empty());
        }
        let mut writer = client.new_multi_writer();
        writer.add_delete(&leader, None)?;
        writer.add_delete(&path, None)?;
        match self.bounded("deleting a group", writer.commit()).await? {
            Ok(_) => Ok(()),
            Err(e) => match zookeeper_client::Error::from(e) {
                ZkError::NotEmpty => Err(not_empty()),
                ZkError::NoNode => Err(self.missing_group_or(group, not_empty()).await),
                e => Err(e.into()),
            },
        }
    }

    async fn list_groups(&self) -> Result<Vec<GroupId>> {
        let session = self.session()?;
        let base = &self.options.base;
        let listed = self
            .call("listing groups", session.client.get_children(base))
            .await?;
        let children = match listed {
            Ok((children, _)) => children,
            Err(ZkError::NoNode) => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        Ok(children
            .into_iter()
            .filter(|child| child != paths::LOCKS)
            .map(|child| GroupId::from(paths::decode(&child, paths::LOCKS)))
            .collect())
    }

    async fn join(&self, group: &GroupId, capabilities: &Capabilities) -> Result<()> {
        let path = self.our_path(group);
        let data = capabilities.encode()?;
        let session = self.session()?;
        let options = self.create_options(CreateMode::Ephemeral);
        let sent = tokio::time::Instant::now();
        let created = session.client.create(&path, &data, &options);
        match self.call("joining a group", created).await? {
            Ok(_) => self.answered(&session, sent),
            Err(ZkError::NodeExists) => Err(Error::MemberAlreadyExist {
                group: group.clone(),
                member: self.member.clone(),
            }),
            Err(ZkError::NoNode) => Err(Error::GroupNotCreated {
                group: group.clone(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    async fn leave(&self, group: &GroupId) -> Result<()> {
        let path = self.our_path(group);
        let session = self.session()?;
        match self
            .call("leaving a group", session.client.delete(&path, None))
            .await?
        {
            Ok(()) => Ok(()),
            Err(ZkError::NoNode) => {
                let not_joined = Error::MemberNotJoined {
                    group: group.clone(),
                    member: self.member.clone(),
                };
                Err(self.missing_group_or(group, not_joined).await)
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn members(&self, group: &GroupId) -> Result<Vec<(MemberId, Capabilities)>> {
        let (path, children) = self.children(group).await?;
        let session = self.session()?;
        let mut members = Vec::with_capacity(children.len());
        // Every member's node read in one request per chunk: two round trips for a group.
        for chunk in children.chunks(READS_PER_REQUEST) {
            let mut reader = session.client.new_multi_reader();
            for child in chunk {
                reader.add_get_data(&format!("{path}/{child}"))?;
            }
            let answers = self.call("reading members", reader.commit()).await??;
            if answers.len() != chunk.len() {
                return Err(error::unexpected(
                    "a multi-read answered another number of reads",
                ));
            }
            for (answer, child) in answers.into_iter().zip(chunk) {
                let data = match answer {
                    // Members are ephemeral nodes; the leader lock's node is not.
                    MultiReadResult::Data { data, stat } if stat.ephemeral_owner != 0 => data,
                    MultiReadResult::Data { .. } => continue,
                    // (Left since the list was read.)
                    MultiReadResult::Error {
                        err: ZkError::NoNode,
                    } => continue,
                    // (One member's node we cannot read, another's ACL: skipped, not fatal.)
                    MultiReadResult::Error { err } => {
                        tracing::warn!(backend = NAME, group = %group, node = %child, error = %err, "skipping a member node that cannot be read");
                        continue;
                    }
                    other => return Err(error::unexpected(&format!("{other:?}"))),
                };
                let member = MemberId::from(paths::decode(child, paths::LEADER));
                members.extend(shared::decoded_member(NAME, group, member, &data));
            }
        }
        Ok(members)
    }

    async fn member_ids(&self, group: &GroupId) -> Result<Vec<MemberId>> {
        let (path, mut children) = self.children(group).await?;
        if children.iter().any(|c| c == paths::LEADER) {
            // The leader lock's node (persistent), unless a Python member took that name.
            let session = self.session()?;
            let leader = format!("{path}/{}", paths::LEADER);
            let stat = self
                .call("reading members", session.client.check_stat(&leader))
                .await??;
            if stat.is_none_or(|s| s.ephemeral_owner == 0) {
                children.retain(|c| c != paths::LEADER);
            }
        }
        Ok(children
            .into_iter()
            .map(|c| MemberId::from(paths::decode(&c, paths::LEADER)))
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
        let path = self.group_path(group.as_bytes());
        let name = paths::member(member.as_bytes());
        let session = self.session()?;
        let read = session.client.get_data(&format!("{path}/{name}"));
        match self.call("reading capabilities", read).await? {
            Ok((data, stat)) if stat.ephemeral_owner != 0 => Capabilities::decode(&data),
            Ok(_) | Err(ZkError::NoNode) => Err(self.missing_group_or(group, not_joined()).await),
            Err(e) => Err(e.into()),
        }
    }

    async fn update_capabilities(
        &self,
        group: &GroupId,
        capabilities: &Capabilities,
    ) -> Result<()> {
        let path = self.our_path(group);
        let data = capabilities.encode()?;
        let session = self.session()?;
        let set = session.client.set_data(&path, &data, None);
        match self.call("updating capabilities", set).await? {
            Ok(_) => Ok(()),
            Err(ZkError::NoNode) => {
                let not_joined = Error::MemberNotJoined {
                    group: group.clone(),
                    member: self.member.clone(),
                };
                Err(self.missing_group_or(group, not_joined).await)
            }
            Err(e) => Err(e.into()),
        }
    }
}
