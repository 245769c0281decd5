//! Groups on MySQL: a row per group, a row per membership with its capabilities (msgpack, as
//! everywhere), live while the member's beat row has not expired by the server's clock.

use async_trait::async_trait;

use super::{MysqlBackend, NAME, column, error, key};
use crate::backend::Groups;
use crate::capabilities::Capabilities;
use crate::drivers::shared;
use crate::error::{Error, Result};
use crate::ids::{GroupId, MemberId};

impl MysqlBackend {
    async fn group_exists(&self, group: &GroupId) -> Result<bool> {
        let rows = self
            .rows(
                "reading a group",
                &self.sql.group_exists,
                (key(group.as_bytes()),).into(),
            )
            .await?;
        Ok(!rows.is_empty())
    }

    /// The error for a change that touched no row: the group is missing, or `otherwise`.
    async fn missing_group_or(&self, group: &GroupId, otherwise: Error) -> Error {
        shared::missing_group_or(self.group_exists(group).await, group, otherwise)
    }
}

#[async_trait]
impl Groups for MysqlBackend {
    async fn create_group(&self, group: &GroupId) -> Result<()> {
        let params = (key(group.as_bytes()), group.as_bytes().to_vec());
        let made = self
            .affected("creating a group", &self.sql.create_group, params.into())
            .await?;
        if made == 0 {
            return Err(Error::GroupAlreadyExist {
                group: group.clone(),
            });
        }
        Ok(())
    }

    async fn delete_group(&self, group: &GroupId) -> Result<()> {
        let id = key(group.as_bytes());
        let [delete, clean] = [&self.sql.delete_group[0], &self.sql.delete_group[1]];
        let deleted = self
            .affected("deleting a group", delete, (id.clone(), id.clone()).into())
            .await?;
        if deleted == 1 {
            // The rows of members whose beat ran out go with it.
            self.affected("deleting a group", clean, (id,).into())
                .await?;
            return Ok(());
        }
        let not_empty = Error::GroupNotEmpty {
            group: group.clone(),
        };
        Err(self.missing_group_or(group, not_empty).await)
    }

    async fn list_groups(&self) -> Result<Vec<GroupId>> {
        let rows = self
            .rows(
                "listing groups",
                &self.sql.list_groups,
                mysql_async::Params::Empty,
            )
            .await?;
        rows.iter()
            .map(|row| column::<Vec<u8>>(row, 0).map(GroupId::from))
            .collect()
    }

    async fn join(&self, group: &GroupId, capabilities: &Capabilities) -> Result<()> {
        let id = key(group.as_bytes());
        let params = (
            id.clone(),
            self.member_key.clone(),
            self.member.as_bytes().to_vec(),
            capabilities.encode()?,
            id,
        );
        let joined = self
            .affected("joining a group", &self.sql.join, params.into())
            .await?;
        if joined == 1 {
            return Ok(());
        }
        // Refused because the group was missing or because we are in it. Whether the group
        // exists now is not enough to tell: created meanwhile by another member, it turned "the
        // group did not exist" into "you had already joined" (scripts/torture, 10 processes
        // joining one group). Without our row, it was the group.
        let params = (
            key(group.as_bytes()),
            key(group.as_bytes()),
            self.member_key.clone(),
        );
        let rows = self
            .rows("joining a group", &self.sql.join_refused, params.into())
            .await?;
        let row = rows
            .first()
            .ok_or_else(|| error::unexpected("no row from EXISTS"))?;
        let (group_exists, joined): (i64, i64) = (column(row, 0)?, column(row, 1)?);
        if group_exists == 1 && joined == 1 {
            return Err(Error::MemberAlreadyExist {
                group: group.clone(),
                member: self.member.clone(),
            });
        }
        Err(Error::GroupNotCreated {
            group: group.clone(),
        })
    }

    async fn leave(&self, group: &GroupId) -> Result<()> {
        let params = (key(group.as_bytes()), self.member_key.clone());
        let left = self
            .affected("leaving a group", &self.sql.leave, params.into())
            .await?;
        if left == 1 {
            return Ok(());
        }
        let not_joined = Error::MemberNotJoined {
            group: group.clone(),
            member: self.member.clone(),
        };
        Err(self.missing_group_or(group, not_joined).await)
    }

    async fn members(&self, group: &GroupId) -> Result<Vec<(MemberId, Capabilities)>> {
        let id = key(group.as_bytes());
        let prune = (id.clone(), self.member_key.clone());
        self.affected("listing members", &self.sql.prune, prune.into())
            .await?;
        let params = (id, self.member_key.clone());
        let rows = self
            .rows("listing members", &self.sql.members, params.into())
            .await?;
        if rows.is_empty() && !self.group_exists(group).await? {
            return Err(Error::GroupNotCreated {
                group: group.clone(),
            });
        }
        let mut members = Vec::with_capacity(rows.len());
        for row in &rows {
            let member = MemberId::from(column::<Vec<u8>>(row, 0)?);
            let caps: Vec<u8> = column(row, 1)?;
            members.extend(shared::decoded_member(NAME, group, member, &caps));
        }
        Ok(members)
    }

    async fn member_capabilities(
        &self,
        group: &GroupId,
        member: &MemberId,
    ) -> Result<Capabilities> {
        let params = (key(group.as_bytes()), key(member.as_bytes()));
        let rows = self
            .rows(
                "reading capabilities",
                &self.sql.member_capabilities,
                params.into(),
            )
            .await?;
        match rows.first() {
            Some(row) => Capabilities::decode(&column::<Vec<u8>>(row, 0)?),
            None => {
                let not_joined = Error::MemberNotJoined {
                    group: group.clone(),
                    member: member.clone(),
                };
                Err(self.missing_group_or(group, not_joined).await)
            }
        }
    }

    async fn update_capabilities(
        &self,
        group: &GroupId,
        capabilities: &Capabilities,
    ) -> Result<()> {
        let params = (
            capabilities.encode()?,
            key(group.as_bytes()),
            self.member_key.clone(),
        );
        // Found rather than changed: the same capabilities again change nothing, yet succeed.
        self.affected(
            "updating capabilities",
            &self.sql.update_capabilities,
            params.into(),
        )
        .await?;
        let member = (key(group.as_bytes()), self.member_key.clone());
        let found = self
            .rows(
                "updating capabilities",
                &self.sql.member_capabilities,
                member.into(),
            )
            .await?;
        if !found.is_empty() {
            return Ok(());
        }
        let not_joined = Error::MemberNotJoined {
            group: group.clone(),
            member: self.member.clone(),
        };
        Err(self.missing_group_or(group, not_joined).await)
    }
}
