//! Group membership on files, as tooz's file driver lays it out.
//!
//! Every operation runs on a blocking thread, holding `DIR/.driver_lock` as tooz does (shared
//! for reads, so our readers do not queue behind each other; Python's exclusive `lockf`
//! conflicts with both), so nobody reads a member file that is half written.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;

use super::ofd::{self, Kind};
use super::records::{MemberRecord, decode_metadata, encode_metadata};
use super::{FileBackend, State, fresh, guard, io_error};
use crate::backend::Groups;
use crate::capabilities::Capabilities;
use crate::error::{Error, Result};
use crate::ids::{GroupId, MemberId};

/// How long we wait for `.driver_lock` before giving up (tooz holds it for milliseconds).
const DRIVER_LOCK_WAIT: Duration = Duration::from_secs(10);
const MEMBER_SUFFIX: &str = ".raw";
const METADATA: &str = ".metadata";

fn not_created(group: &GroupId) -> Error {
    Error::GroupNotCreated {
        group: group.clone(),
    }
}

fn open_read(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// What one member file says, judged alive or not.
struct Seen {
    record: MemberRecord,
    alive: bool,
    /// The member is certainly gone (our kind of member, its liveness lock released): safe to
    /// delete even under a shared driver lock.
    certainly_dead: bool,
}

impl State {
    fn group_dir(&self, group: &GroupId) -> PathBuf {
        self.dir()
            .join("groups")
            .join(super::paths::sha1_hex(group.as_bytes()))
    }

    fn member_path(&self, group: &GroupId, member: &MemberId) -> PathBuf {
        let name = super::paths::sha1_hex(member.as_bytes()) + MEMBER_SUFFIX;
        self.group_dir(group).join(name)
    }

    /// Runs `work` holding `.driver_lock` (shared or exclusive), as every tooz group operation
    /// does; waits with growing pauses, bounded.
    fn with_driver_lock<T>(&self, kind: Kind, work: impl FnOnce() -> Result<T>) -> Result<T> {
        let mut slot = guard(&self.driver_lock);
        if slot.is_none() {
            let path = self.dir().join(".driver_lock");
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&path)
                .map_err(|e| io_error(format_args!("cannot open {}", path.display()), e))?;
            *slot = Some(file);
        }
        let file = slot.as_ref().expect("opened above");
        let started = Instant::now();
        let mut pause = Duration::from_micros(200);
        while !ofd::try_lock(file, kind).map_err(|e| io_error("cannot lock .driver_lock", e))? {
            if started.elapsed() > DRIVER_LOCK_WAIT {
                return Err(Error::OperationTimedOut {
                    operation: format!("waiting for {}/.driver_lock", self.dir().display()),
                    after: DRIVER_LOCK_WAIT,
                });
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
        let result = work();
        let unlocked = ofd::unlock(file).map_err(|e| io_error("cannot unlock .driver_lock", e));
        result.and_then(|value| unlocked.map(|()| value))
    }

    /// Reads and judges one member file; `Ok(None)` if it vanished meanwhile.
    fn inspect(&self, path: &Path, now: SystemTime) -> Result<Option<Seen>> {
        let mut file = match open_read(path) {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error(format_args!("cannot open {}", path.display()), e)),
        };
        let meta = file
            .metadata()
            .map_err(|e| io_error(format_args!("cannot stat {}", path.display()), e))?;
        let mut bytes = Vec::with_capacity(meta.len().min(64 * 1024 + 512) as usize);
        file.read_to_end(&mut bytes)
            .map_err(|e| io_error(format_args!("cannot read {}", path.display()), e))?;
        let record = MemberRecord::decode(&bytes).map_err(|e| Error::Serialization {
            reason: format!("member file {}: {e}", path.display()),
        })?;
        let recent = meta
            .modified()
            .is_ok_and(|mtime| fresh(mtime, now, self.options.timeout));
        let certainly_dead = record.liveness_lock
            && !ofd::locked_elsewhere(&file, Kind::Exclusive)
                .map_err(|e| io_error(format_args!("cannot probe {}", path.display()), e))?;
        Ok(Some(Seen {
            record,
            alive: recent && !certainly_dead,
            certainly_dead,
        }))
    }

    /// Every member file of a group, judged; unreadable ones are logged and skipped, files of
    /// certainly dead members are removed.
    fn scan(&self, group: &GroupId) -> Result<Vec<(PathBuf, Seen)>> {
        let dir = self.group_dir(group);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Err(not_created(group)),
            Err(e) => return Err(io_error(format_args!("cannot list {}", dir.display()), e)),
        };
        let now = SystemTime::now();
        let mut seen = Vec::new();
        for entry in entries {
            let entry =
                entry.map_err(|e| io_error(format_args!("cannot list {}", dir.display()), e))?;
            let name = entry.file_name();
            if !name.to_string_lossy().ends_with(MEMBER_SUFFIX) {
                continue;
            }
            let path = entry.path();
            match self.inspect(&path, now) {
                Ok(Some(member)) if member.certainly_dead => {
                    tracing::info!(path = %path.display(), member = %member.record.member,
                        "collecting the file of a member that died");
                    let _ = fs::remove_file(&path);
                }
                Ok(Some(member)) => seen.push((path, member)),
                Ok(None) => {}
                Err(e) => tracing::warn!(path = %path.display(), error = %e,
                    "skipping a member file that cannot be read"),
            }
        }
        Ok(seen)
    }

    fn require_group(&self, group: &GroupId) -> Result<PathBuf> {
        let dir = self.group_dir(group);
        if dir.join(METADATA).exists() {
            Ok(dir)
        } else {
            Err(not_created(group))
        }
    }

    fn write_atomically(&self, target: &Path, bytes: &[u8]) -> Result<()> {
        let token = crate::backend::OwnerToken::generate().to_hex();
        let tmp = self
            .dir()
            .join("tmp")
            .join(format!("tmp{}tooz", &token[..8]));
        let written = (|| {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&tmp)?;
            file.write_all(bytes)?;
            fs::rename(&tmp, target)
        })();
        written.map_err(|e| {
            let _ = fs::remove_file(&tmp);
            io_error(format_args!("cannot write {}", target.display()), e)
        })
    }

    fn create_group(&self, group: &GroupId) -> Result<()> {
        self.with_driver_lock(Kind::Exclusive, || {
            let dir = self.group_dir(group);
            if dir.join(METADATA).exists() {
                return Err(Error::GroupAlreadyExist {
                    group: group.clone(),
                });
            }
            fs::create_dir_all(&dir)
                .map_err(|e| io_error(format_args!("cannot create {}", dir.display()), e))?;
            self.write_atomically(&dir.join(METADATA), &encode_metadata(group)?)
        })
    }

    fn delete_group(&self, group: &GroupId) -> Result<()> {
        self.with_driver_lock(Kind::Exclusive, || {
            let dir = self.group_dir(group);
            if !dir.exists() {
                return Err(not_created(group));
            }
            let members = self.scan(group)?;
            if members.iter().any(|(_, m)| m.alive) {
                return Err(Error::GroupNotEmpty {
                    group: group.clone(),
                });
            }
            // Files of members that timed out do not keep a group alive forever (tooz's bug).
            for (path, _) in &members {
                let _ = fs::remove_file(path);
            }
            let _ = fs::remove_file(dir.join(METADATA));
            fs::remove_dir(&dir).map_err(|e| {
                io_error(
                    format_args!(
                        "group directory {} holds files that are not tooz's",
                        dir.display()
                    ),
                    e,
                )
            })
        })
    }

    fn list_groups(&self) -> Result<Vec<GroupId>> {
        let root = self.dir().join("groups");
        let entries = fs::read_dir(&root)
            .map_err(|e| io_error(format_args!("cannot list {}", root.display()), e))?;
        let mut groups = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path().join(METADATA);
            match fs::read(&path) {
                Ok(bytes) => match decode_metadata(&bytes) {
                    Ok(group) => groups.push(group),
                    Err(e) => tracing::warn!(path = %path.display(), error = %e,
                        "skipping a group whose metadata cannot be read"),
                },
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(path = %path.display(), error = %e,
                    "skipping a group whose metadata cannot be read"),
            }
        }
        Ok(groups)
    }

    fn join(&self, group: &GroupId, capabilities: &Capabilities) -> Result<()> {
        self.with_driver_lock(Kind::Exclusive, || {
            self.require_group(group)?;
            let path = self.member_path(group, &self.member);
            match self.inspect(&path, SystemTime::now()) {
                Ok(Some(existing)) if existing.alive => {
                    return Err(Error::MemberAlreadyExist {
                        group: group.clone(),
                        member: self.member.clone(),
                    });
                }
                // A dead member's file must not block its re-join forever (tooz's bug).
                Ok(Some(_)) | Err(_) => {
                    let _ = fs::remove_file(&path);
                }
                Ok(None) => {}
            }
            let record = MemberRecord::new(self.member.clone(), capabilities.clone());
            let file = self.write_member(&path, &record.encode()?)?;
            guard(&self.memberships).insert(group.clone(), file);
            Ok(())
        })
    }

    /// Writes a member file and holds its liveness lock through the descriptor returned.
    fn write_member(&self, path: &Path, bytes: &[u8]) -> Result<File> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(|e| io_error(format_args!("cannot create {}", path.display()), e))?;
        file.write_all(bytes)
            .map_err(|e| io_error(format_args!("cannot write {}", path.display()), e))?;
        if !ofd::try_lock(&file, Kind::Shared)
            .map_err(|e| io_error("cannot lock member file", e))?
        {
            return Err(io_error(
                format_args!("member file {} is locked by someone else", path.display()),
                std::io::Error::from(ErrorKind::WouldBlock),
            ));
        }
        Ok(file)
    }

    fn leave(&self, group: &GroupId) -> Result<()> {
        self.with_driver_lock(Kind::Exclusive, || {
            self.require_group(group)?;
            let path = self.member_path(group, &self.member);
            let removed = fs::remove_file(&path);
            // Unlink first, then drop the liveness lock, so nobody sees a live-looking file
            // whose owner has let go.
            guard(&self.memberships).remove(group);
            match removed {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == ErrorKind::NotFound => Err(Error::MemberNotJoined {
                    group: group.clone(),
                    member: self.member.clone(),
                }),
                Err(e) => Err(io_error(
                    format_args!("cannot remove {}", path.display()),
                    e,
                )),
            }
        })
    }

    fn members(&self, group: &GroupId) -> Result<Vec<(MemberId, Capabilities)>> {
        self.with_driver_lock(Kind::Shared, || {
            let members = self.scan(group)?;
            Ok(members
                .into_iter()
                .filter(|(_, m)| m.alive)
                .map(|(_, m)| (m.record.member, m.record.capabilities))
                .collect())
        })
    }

    fn member_capabilities(&self, group: &GroupId, member: &MemberId) -> Result<Capabilities> {
        self.with_driver_lock(Kind::Shared, || {
            self.require_group(group)?;
            let path = self.member_path(group, member);
            match self.inspect(&path, SystemTime::now())? {
                Some(seen) if seen.alive => Ok(seen.record.capabilities),
                _ => Err(Error::MemberNotJoined {
                    group: group.clone(),
                    member: member.clone(),
                }),
            }
        })
    }

    fn update_capabilities(&self, group: &GroupId, capabilities: &Capabilities) -> Result<()> {
        self.with_driver_lock(Kind::Exclusive, || {
            self.require_group(group)?;
            let path = self.member_path(group, &self.member);
            let not_joined = || Error::MemberNotJoined {
                group: group.clone(),
                member: self.member.clone(),
            };
            let mut files = guard(&self.memberships);
            let Some(file) = files.get_mut(group) else {
                return Err(not_joined());
            };
            let Some(seen) = self.inspect(&path, SystemTime::now())? else {
                return Err(not_joined());
            };
            let record = MemberRecord {
                capabilities: capabilities.clone(),
                ..seen.record
            };
            let bytes = record.encode()?;
            // Rewrite in place through our descriptor: the liveness lock stays with the file.
            file.set_len(0)
                .and_then(|()| std::os::unix::fs::FileExt::write_all_at(file, &bytes, 0))
                .map_err(|e| io_error(format_args!("cannot rewrite {}", path.display()), e))
        })
    }
}

#[async_trait]
impl Groups for FileBackend {
    async fn create_group(&self, group: &GroupId) -> Result<()> {
        let group = group.clone();
        self.blocking(move |s| s.create_group(&group)).await?;
        self.state.shared.changes.notify();
        Ok(())
    }

    async fn delete_group(&self, group: &GroupId) -> Result<()> {
        let group = group.clone();
        self.blocking(move |s| s.delete_group(&group)).await?;
        self.state.shared.changes.notify();
        Ok(())
    }

    async fn list_groups(&self) -> Result<Vec<GroupId>> {
        self.blocking(State::list_groups).await
    }

    async fn join(&self, group: &GroupId, capabilities: &Capabilities) -> Result<()> {
        let (group, capabilities) = (group.clone(), capabilities.clone());
        self.blocking(move |s| s.join(&group, &capabilities))
            .await?;
        self.state.shared.changes.notify();
        Ok(())
    }

    async fn leave(&self, group: &GroupId) -> Result<()> {
        let group = group.clone();
        self.blocking(move |s| s.leave(&group)).await?;
        self.state.shared.changes.notify();
        Ok(())
    }

    async fn members(&self, group: &GroupId) -> Result<Vec<(MemberId, Capabilities)>> {
        let group = group.clone();
        self.blocking(move |s| s.members(&group)).await
    }

    async fn member_capabilities(
        &self,
        group: &GroupId,
        member: &MemberId,
    ) -> Result<Capabilities> {
        let (group, member) = (group.clone(), member.clone());
        self.blocking(move |s| s.member_capabilities(&group, &member))
            .await
    }

    async fn update_capabilities(
        &self,
        group: &GroupId,
        capabilities: &Capabilities,
    ) -> Result<()> {
        let (group, capabilities) = (group.clone(), capabilities.clone());
        self.blocking(move |s| s.update_capabilities(&group, &capabilities))
            .await?;
        self.state.shared.changes.notify();
        Ok(())
    }
}
