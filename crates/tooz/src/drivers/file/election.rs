//! Leader election on files (tooz's file driver has none): the leader holds an exclusive OFD
//! lock on `DIR/.tooz-rs/leaders/<sha1hex(group)>`, whose first 8 bytes count terms (the
//! fencing token) and whose rest names the leader.

use std::fs::File;
use std::os::unix::fs::FileExt;

use async_trait::async_trait;

use super::locks::bump_counter;
use super::ofd::{self, Kind};
use super::paths::{PRIVATE_DIR, open_below, sha1_hex};
use super::{FileBackend, State, guard, io_error};
use crate::backend::FencingToken;
use crate::backend::{Elections, OwnerToken};
use crate::error::Result;
use crate::ids::{GroupId, MemberId};

impl State {
    fn leader_file(&self, group: &GroupId) -> Result<File> {
        let name = sha1_hex(group.as_bytes());
        let components: [&[u8]; 3] = [PRIVATE_DIR.as_bytes(), b"leaders", name.as_bytes()];
        self.with_root(|root| {
            open_below(root, &components).map_err(|e| {
                io_error(
                    format_args!("cannot open the leader file of '{group}'"),
                    e.into(),
                )
            })
        })
    }

    fn try_lead(&self, group: &GroupId, owner: OwnerToken) -> Result<Option<FencingToken>> {
        let mut leaderships = guard(&self.leaderships);
        if leaderships.contains_key(group) {
            // Our own descriptor holds it already: not re-entrant.
            return Ok(None);
        }
        let file = self.leader_file(group)?;
        if !ofd::try_lock(&file, Kind::Exclusive)
            .map_err(|e| io_error("cannot lock leader file", e))?
        {
            return Ok(None);
        }
        let term = bump_counter(&file).and_then(|term| {
            let id = self.member.as_bytes();
            file.write_all_at(id, 8)?;
            file.set_len(8 + id.len() as u64)?;
            Ok(term)
        });
        match term {
            Ok(term) => {
                leaderships.insert(group.clone(), (owner, file));
                Ok(Some(FencingToken::new(term)))
            }
            Err(e) => Err(io_error(
                format_args!("cannot record the leader of '{group}'"),
                e,
            )),
        }
    }

    fn resign(&self, group: &GroupId, owner: OwnerToken) -> Result<bool> {
        let mut leaderships = guard(&self.leaderships);
        match leaderships.get(group) {
            Some((held, _)) if *held == owner => {}
            _ => return Ok(false),
        }
        let (_, file) = leaderships.remove(group).expect("checked above");
        // Forget the name before letting go, so nobody reads us as the leader afterwards.
        let _ = file.set_len(8);
        ofd::unlock(&file).map_err(|e| io_error("cannot unlock leader file", e))?;
        Ok(true)
    }

    fn leader(&self, group: &GroupId) -> Result<Option<MemberId>> {
        if guard(&self.leaderships).contains_key(group) {
            return Ok(Some(self.member.clone()));
        }
        let file = self.leader_file(group)?;
        let held = ofd::locked_elsewhere(&file, Kind::Exclusive)
            .map_err(|e| io_error("cannot probe leader file", e))?;
        if !held {
            return Ok(None);
        }
        let len = file
            .metadata()
            .map_err(|e| io_error("cannot stat leader file", e))?
            .len();
        let mut id = vec![0; len.saturating_sub(8).min(crate::MAX_NAME_LEN as u64) as usize];
        file.read_exact_at(&mut id, 8)
            .map_err(|e| io_error("cannot read leader file", e))?;
        // A new leader between locking and writing its name shows as no name yet.
        Ok((!id.is_empty()).then(|| MemberId::from(id)))
    }
}

#[async_trait]
impl Elections for FileBackend {
    async fn try_lead(&self, group: &GroupId, owner: OwnerToken) -> Result<Option<FencingToken>> {
        let group = group.clone();
        self.blocking(move |s| s.try_lead(&group, owner)).await
    }

    async fn resign(&self, group: &GroupId, owner: OwnerToken) -> Result<bool> {
        let group = group.clone();
        let resigned = self.blocking(move |s| s.resign(&group, owner)).await?;
        if resigned {
            self.state.shared.changes.notify();
        }
        Ok(resigned)
    }

    async fn leader(&self, group: &GroupId) -> Result<Option<MemberId>> {
        let group = group.clone();
        self.blocking(move |s| s.leader(&group)).await
    }
}
