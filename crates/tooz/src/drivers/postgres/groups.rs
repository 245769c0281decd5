//! Groups on PostgreSQL: a row per group, a row per membership with its capabilities
//! (msgpack, as everywhere), live while the member's beat row has not expired by the server's
//! clock.

use async_trait::async_trait;

use super::{NAME, PostgresBackend};
use crate::backend::Groups;
use crate::capabilities::Capabilities;
use crate::drivers::shared;
use crate::error::{Error, Result};
use crate::ids::{GroupId, MemberId};

impl PostgresBackend {
    async fn group_exists(&self, group: &GroupId) -> Result<bool> {
        let row = self
            .one(&self.sql.group_exists, &[&group.as_bytes()])
            .await?;
        Ok(row.try_get(0)?)
    }

    /// The error for a change that touched no row: the group is missing, or `otherwise`.
    async fn missing_group_or(&self, group: &GroupId, otherwise: Error) -> Error {
        shared::missing_group_or(self.group_exists(group).await, group, otherwise)
    }
}

#[async_trait]
impl Groups for PostgresBackend {
    async fn create_group(&self, group: &GroupId) -> Result<()> {
        let row = self
            .one(&self.sql.create_group, &[&group.as_bytes()])
            .await?;
        if row.try_get::<_, i64>(0)? == 0 {
            return Err(Error::GroupAlreadyExist {
                group: group.clone(),
            });
        }
        Ok(())
    }

    async fn delete_group(&self, group: &GroupId) -> Result<()> {
        let row = self
            .one(&self.sql.delete_group, &[&group.as_bytes()])
            .await?;
        let (deleted, live, exists): (i64, i64, bool) =
            (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
        match (deleted, live, exists) {
            (1, _, _) => Ok(()),
            (_, _, false) => Err(Error::GroupNotCreated {
                group: group.clone(),
            }),
            _ => Err(Error::GroupNotEmpty {
                group: group.clone(),
            }),
        }
    }

    async fn list_groups(&self) -> Result<Vec<GroupId>> {
        let rows = self.rows(&self.sql.list_groups, &[]).await?;
        Ok(rows
            .iter()
            .map(|row| GroupId::from(row.get::<_, Vec<u8>>(0)))
            .collect())
    }

    async fn join(&self, group: &GroupId, capabilities: &Capabilities) -> Result<()> {
        let caps = capabilities.encode()?;
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
            [&group.as_bytes(), &self.member.as_bytes(), &caps];
        let row = self.one(&self.sql.join, &params).await?;
        if row.try_get::<_, i64>(0)? == 1 {
            return Ok(());
        }
        let already = Error::MemberAlreadyExist {
            group: group.clone(),
            member: self.member.clone(),
        };
        refusal(&row, group, already)
    }

    async fn leave(&self, group: &GroupId) -> Result<()> {
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] =
            [&group.as_bytes(), &self.member.as_bytes()];
        let row = self.one(&self.sql.leave, &params).await?;
        if row.try_get::<_, i64>(0)? == 1 {
            return Ok(());
        }
        let not_joined = Error::MemberNotJoined {
            group: group.clone(),
            member: self.member.clone(),
        };
        refusal(&row, group, not_joined)
    }

    async fn members(&self, group: &GroupId) -> Result<Vec<(MemberId, Capabilities)>> {
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] =
            [&group.as_bytes(), &self.member.as_bytes()];
        let row = self.one(&self.sql.members, &params).await?;
        let (exists, ids, caps): (bool, Vec<Vec<u8>>, Vec<Vec<u8>>) =
            (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
        if !exists {
            return Err(Error::GroupNotCreated {
                group: group.clone(),
            });
        }
        let mut members = Vec::with_capacity(ids.len());
        for (id, caps) in ids.into_iter().zip(caps) {
            let member = MemberId::from(id);
            members.extend(shared::decoded_member(NAME, group, member, &caps));
        }
        Ok(members)
    }

    async fn member_capabilities(
        &self,
        group: &GroupId,
        member: &MemberId,
    ) -> Result<Capabilities> {
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] =
            [&group.as_bytes(), &member.as_bytes()];
        let rows = self.rows(&self.sql.member_capabilities, &params).await?;
        match rows.first() {
            Some(row) => Capabilities::decode(&row.get::<_, Vec<u8>>(0)),
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
        let caps = capabilities.encode()?;
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
            [&group.as_bytes(), &self.member.as_bytes(), &caps];
        let rows = self.rows(&self.sql.update_capabilities, &params).await?;
        if !rows.is_empty() {
            return Ok(());
        }
        let not_joined = Error::MemberNotJoined {
            group: group.clone(),
            member: self.member.clone(),
        };
        Err(self.missing_group_or(group, not_joined).await)
    }
}

/// Why a join or leave changed nothing, from the group's existence as the same statement saw it
/// (its last column): asked afterwards, a group another member created meanwhile turned "the
/// group did not exist" into "you had already joined" (scripts/torture, 10 processes joining).
fn refusal(row: &tokio_postgres::Row, group: &GroupId, otherwise: Error) -> Result<()> {
    let exists: bool = row.try_get(row.len() - 1)?;
    Err(shared::missing_group_or(Ok(exists), group, otherwise))
}
