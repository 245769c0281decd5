//! Group membership on files, as tooz's file driver lays it out.
//!
//! Every operation runs on a blocking thread, holding `DIR/.driver_lock` as tooz does (shared
//! for reads, so our readers do not queue behind each other; Python's exclusive `lockf`
//! conflicts with both), so nobody reads a member file that is half written.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use nix::errno::Errno;
use nix::fcntl::{OFlag, openat};
use nix::sys::stat::Mode;

use super::ofd::{self, Kind};
use super::records::{MAX_RECORD_LEN, MemberRecord, decode_metadata, encode_metadata};
use super::{FileBackend, State, fresh, guard, io_error};
use crate::backend::Groups;
use crate::capabilities::Capabilities;
use crate::error::{Error, Result};
use crate::ids::{GroupId, MemberId};

/// How long we wait for `.driver_lock` before giving up (tooz holds it for milliseconds).
const DRIVER_LOCK_WAIT: Duration = Duration::from_secs(10);
const MEMBER_SUFFIX: &str = ".raw";
/// Groups with at least this many member files are read by two threads.
const PARALLEL_SCAN: usize = 64;
const METADATA: &str = ".metadata";

fn not_created(group: &GroupId) -> Error {
    Error::GroupNotCreated {
        group: group.clone(),
    }
}

/// Reads a whole member file in one `read` (the size is known and writers are excluded by the
/// driver lock we hold; anything over the size a valid record can have is refused).
fn read_record(file: &mut File, meta: &fs::Metadata, path: &Path) -> Result<MemberRecord> {
    let len = (meta.len() as usize).min(MAX_RECORD_LEN + 1);
    let mut bytes = vec![0; len];
    let mut filled = 0;
    while filled < len {
        match file.read(&mut bytes[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(io_error(format_args!("cannot read {}", path.display()), e)),
        }
    }
    bytes.truncate(filled);
    MemberRecord::decode(&bytes).map_err(|e| Error::Serialization {
        reason: format!("member file {}: {e}", path.display()),
    })
}

/// Member ids by member-file name and inode. A member file is named after its member's id
/// (`sha1hex(id).raw`) and a new membership is always a new file (a join creates it after the
/// old one is gone), so while the inode stays the same, the id and the file's kind do too:
/// listing ids needs no read of files already seen.
///
/// An inode number can be reused by the next file of the same name, though, and the kind
/// can then differ (a Python member's file has no liveness lock). The cache is good enough to
/// list ids, never to delete: a file is collected only after it is read and judged afresh.
#[derive(Debug, Default)]
pub(crate) struct IdCache {
    entries: HashMap<OsString, (u64, MemberId, bool)>,
}

impl IdCache {
    /// Entries kept before the cache starts over.
    const LIMIT: usize = 100_000;

    fn get(&self, name: &OsStr, inode: u64) -> Option<(MemberId, bool)> {
        match self.entries.get(name) {
            Some((ino, member, lock)) if *ino == inode => Some((member.clone(), *lock)),
            _ => None,
        }
    }

    fn forget(&mut self, name: &OsStr) {
        self.entries.remove(name);
    }

    fn put(&mut self, name: &OsStr, inode: u64, record: &MemberRecord) {
        if self.entries.len() >= Self::LIMIT {
            self.entries.clear();
        }
        let entry = (inode, record.member.clone(), record.liveness_lock);
        self.entries.insert(name.to_owned(), entry);
    }
}

/// Opens a member file of a listed group directory; `None` (logged unless it just vanished)
/// if it cannot be.
fn open_member(dir_fd: &File, path: &Path, name: &OsStr) -> Option<File> {
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    match openat(dir_fd, name, flags, Mode::empty()) {
        Ok(fd) => Some(File::from(fd)),
        Err(Errno::ENOENT) => None,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e,
                "skipping a member file that cannot be opened");
            None
        }
    }
}

fn open_read(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// What one member file says, judged alive or not. `record` is `None` when only the member
/// id was wanted and came from the cache (see [`IdCache`]).
struct Seen {
    member: MemberId,
    record: Option<MemberRecord>,
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
        let file = match open_read(path) {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error(format_args!("cannot open {}", path.display()), e)),
        };
        self.judge(file, path, None, now).map(Some)
    }

    /// Reads and judges an open member file (`path` is for messages). With `ids_only`, a file
    /// whose id and kind are cached is not read at all: liveness needs only its mtime and, for
    /// our kind, its lock.
    fn judge(
        &self,
        mut file: File,
        path: &Path,
        ids_only: Option<&OsStr>,
        now: SystemTime,
    ) -> Result<Seen> {
        let meta = file
            .metadata()
            .map_err(|e| io_error(format_args!("cannot stat {}", path.display()), e))?;
        let cached = ids_only.and_then(|name| guard(&self.id_cache).get(name, meta.ino()));
        let (member, liveness_lock, record) = match cached {
            Some((member, liveness_lock)) => (member, liveness_lock, None),
            None => {
                let record = read_record(&mut file, &meta, path)?;
                if let Some(name) = ids_only {
                    guard(&self.id_cache).put(name, meta.ino(), &record);
                }
                (record.member.clone(), record.liveness_lock, Some(record))
            }
        };
        let recent = meta
            .modified()
            .is_ok_and(|mtime| fresh(mtime, now, self.options.timeout));
        let certainly_dead = liveness_lock
            && !ofd::locked_elsewhere(&file, Kind::Exclusive)
                .map_err(|e| io_error(format_args!("cannot probe {}", path.display()), e))?;
        Ok(Seen {
            member,
            record,
            alive: recent && !certainly_dead,
            certainly_dead,
        })
    }

    /// Every member file of a group, judged; unreadable ones are logged and skipped, files of
    /// certainly dead members are removed. Large groups are read by two threads.
    fn scan(&self, group: &GroupId, ids_only: bool) -> Result<Vec<(PathBuf, Seen)>> {
        let dir = self.group_dir(group);
        let listing = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Err(not_created(group)),
            Err(e) => return Err(io_error(format_args!("cannot list {}", dir.display()), e)),
        };
        let dir_fd = open_read(&dir)
            .map_err(|e| io_error(format_args!("cannot open {}", dir.display()), e))?;
        let mut names = Vec::new();
        for entry in listing {
            let entry =
                entry.map_err(|e| io_error(format_args!("cannot list {}", dir.display()), e))?;
            let name = entry.file_name();
            if name.as_bytes().ends_with(MEMBER_SUFFIX.as_bytes()) {
                names.push(name);
            }
        }
        let now = SystemTime::now();
        let read = |names: &[OsString]| -> Vec<(PathBuf, Seen)> {
            names
                .iter()
                .filter_map(|name| self.read_member(&dir_fd, &dir, name, ids_only, now))
                .collect()
        };
        if names.len() < PARALLEL_SCAN {
            return Ok(read(&names));
        }
        let (first, second) = names.split_at(names.len() / 2);
        Ok(std::thread::scope(|scope| {
            let other = scope.spawn(|| read(second));
            let mut seen = read(first);
            seen.extend(other.join().unwrap_or_default());
            seen
        }))
    }

    /// One entry of a scan: judged, collected if certainly dead, skipped (and logged) if
    /// unreadable.
    fn read_member(
        &self,
        dir_fd: &File,
        dir: &Path,
        name: &OsStr,
        ids_only: bool,
        now: SystemTime,
    ) -> Option<(PathBuf, Seen)> {
        let path = dir.join(name);
        let file = open_member(dir_fd, &path, name)?;
        match self.judge(file, &path, ids_only.then_some(name), now) {
            Ok(member) if member.certainly_dead => self.collect(dir_fd, path, name, now),
            Ok(member) => Some((path, member)),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e,
                    "skipping a member file that cannot be read");
                None
            }
        }
    }

    /// Removes the file of a member judged certainly dead, once its content, read again
    /// without the [`IdCache`], still says so; otherwise returns the new judgement. The
    /// caller holds the driver lock, so no join can replace the file in between.
    fn collect(
        &self,
        dir_fd: &File,
        path: PathBuf,
        name: &OsStr,
        now: SystemTime,
    ) -> Option<(PathBuf, Seen)> {
        guard(&self.id_cache).forget(name);
        let file = open_member(dir_fd, &path, name)?;
        match self.judge(file, &path, None, now) {
            Ok(member) if member.certainly_dead => {
                tracing::info!(path = %path.display(), member = %member.member,
                    "collecting the file of a member that died");
                let _ = fs::remove_file(&path);
                None
            }
            Ok(member) => Some((path, member)),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e,
                    "skipping a member file that cannot be read");
                None
            }
        }
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
            // Every file is read afresh: what is deleted below is judged on its content, not
            // on cached knowledge.
            let members = self.scan(group, false)?;
            if members.iter().any(|(_, m)| m.alive) {
                return Err(Error::GroupNotEmpty {
                    group: group.clone(),
                });
            }
            // Anything we cannot account for (a foreign file, an unreadable member file) stops
            // the delete before anything is removed.
            let known: Vec<&Path> = members.iter().map(|(p, _)| p.as_path()).collect();
            let strangers: Vec<String> = fs::read_dir(&dir)
                .map_err(|e| io_error(format_args!("cannot list {}", dir.display()), e))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|path| {
                    path.file_name() != Some(OsStr::new(METADATA))
                        && !known.contains(&path.as_path())
                })
                .map(|path| path.display().to_string())
                .collect();
            if !strangers.is_empty() {
                return Err(Error::Backend {
                    backend: "file",
                    source: format!(
                        "group '{group}' cannot be deleted: its directory holds files that are \
                         not live tooz members ({}); remove them by hand",
                        strangers.join(", ")
                    )
                    .into(),
                });
            }
            // Files of members that timed out do not keep a group alive forever (tooz's bug).
            for (path, _) in &members {
                let _ = fs::remove_file(path);
            }
            fs::remove_file(dir.join(METADATA))
                .and_then(|()| fs::remove_dir(&dir))
                .map_err(|e| io_error(format_args!("cannot remove {}", dir.display()), e))
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
            if !self.clear_for_join(&path)? {
                return Err(Error::MemberAlreadyExist {
                    group: group.clone(),
                    member: self.member.clone(),
                });
            }
            let record = MemberRecord::new(self.member.clone(), capabilities.clone());
            let file = self.write_member(&path, &record.encode()?)?;
            guard(&self.memberships).insert(group.clone(), file);
            Ok(())
        })
    }

    /// Whether our member file's place is free for a join, removing a dead member's file
    /// (which must not block its re-join forever, tooz's bug). A file we cannot read is
    /// judged by its mtime alone, as tooz judges any member: while recent, it may be a live
    /// member whose record we fail to read (another writer's, or one over our limits), so it
    /// stays and the join is refused.
    fn clear_for_join(&self, path: &Path) -> Result<bool> {
        let now = SystemTime::now();
        let dead = match self.inspect(path, now) {
            Ok(None) => return Ok(true),
            Ok(Some(existing)) => !existing.alive,
            Err(e) => {
                let recent = fs::symlink_metadata(path)
                    .and_then(|m| m.modified())
                    .is_ok_and(|mtime| fresh(mtime, now, self.options.timeout));
                tracing::warn!(path = %path.display(), error = %e, recent,
                    "our member file exists but cannot be read");
                !recent
            }
        };
        if dead {
            let _ = fs::remove_file(path);
        }
        Ok(dead)
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
            let members = self.scan(group, false)?;
            Ok(members
                .into_iter()
                .filter(|(_, m)| m.alive)
                .filter_map(|(_, m)| m.record.map(|r| (r.member, r.capabilities)))
                .collect())
        })
    }

    fn member_ids(&self, group: &GroupId) -> Result<Vec<MemberId>> {
        self.with_driver_lock(Kind::Shared, || {
            let members = self.scan(group, true)?;
            Ok(members
                .into_iter()
                .filter(|(_, m)| m.alive)
                .map(|(_, m)| m.member)
                .collect())
        })
    }

    fn member_capabilities(&self, group: &GroupId, member: &MemberId) -> Result<Capabilities> {
        self.with_driver_lock(Kind::Shared, || {
            self.require_group(group)?;
            let path = self.member_path(group, member);
            match self.inspect(&path, SystemTime::now())? {
                Some(Seen {
                    alive: true,
                    record: Some(record),
                    ..
                }) => Ok(record.capabilities),
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
            let Some(Seen {
                record: Some(current),
                ..
            }) = self.inspect(&path, SystemTime::now())?
            else {
                return Err(not_joined());
            };
            let record = MemberRecord {
                capabilities: capabilities.clone(),
                ..current
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

    async fn member_ids(&self, group: &GroupId) -> Result<Vec<MemberId>> {
        let group = group.clone();
        self.blocking(move |s| s.member_ids(&group)).await
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

#[cfg(test)]
mod tests {
    use super::super::{FileOptions, prepare};
    use super::*;

    /// tooz's own member record for `m`: `{"capabilities": None, "member_id": b"m",
    /// "encoded": False}`, without our liveness-lock key.
    const PYTHON_RECORD: &[u8] = b"\x83\xaccapabilities\xc0\xa9member_id\xc4\x01m\xa7encoded\xc2";

    fn started(name: &str) -> (PathBuf, FileBackend) {
        let dir = std::env::temp_dir().join(format!("tooz-groups-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let options = FileOptions {
            dir: dir.clone(),
            timeout: Duration::from_secs(10),
        };
        let backend = FileBackend::new(options, MemberId::from("reader"));
        *guard(&backend.state.root) = Some(prepare(&dir).unwrap());
        (dir, backend)
    }

    #[test]
    fn a_cached_kind_never_gets_a_live_python_member_collected() {
        let (dir, backend) = started("reused-inode");
        let state = &backend.state;
        let (group, member) = (GroupId::from("g"), MemberId::from("m"));
        state.create_group(&group).unwrap();
        let path = state.member_path(&group, &member);
        fs::write(&path, PYTHON_RECORD).unwrap();
        // What the cache holds when a member of ours with the same id had a file with this
        // inode number before, and the Python member's new file got the number again.
        let inode = fs::metadata(&path).unwrap().ino();
        let ours = MemberRecord::new(member.clone(), Capabilities::none());
        guard(&state.id_cache).put(path.file_name().unwrap(), inode, &ours);

        assert_eq!(state.member_ids(&group).unwrap(), vec![member.clone()]);
        assert!(
            path.exists(),
            "a fresh Python member's file is not collected"
        );
        assert_eq!(
            state.member_ids(&group).unwrap(),
            vec![member.clone()],
            "and the cache no longer misjudges it"
        );
        let err = state.delete_group(&group).unwrap_err();
        assert!(matches!(err, Error::GroupNotEmpty { .. }), "{err}");
        assert!(path.exists());

        // A file of our kind whose liveness lock nobody holds is still collected at once.
        let dead = MemberId::from("dead");
        let dead_path = state.member_path(&group, &dead);
        let record = MemberRecord::new(dead, Capabilities::none());
        fs::write(&dead_path, record.encode().unwrap()).unwrap();
        assert_eq!(state.member_ids(&group).unwrap(), vec![member]);
        assert!(
            !dead_path.exists(),
            "a certainly dead member's file is collected"
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_unreadable_recent_file_in_our_place_refuses_the_join() {
        let (dir, backend) = started("unreadable-join");
        let state = &backend.state;
        let group = GroupId::from("g");
        state.create_group(&group).unwrap();
        let path = state.member_path(&group, &state.member);
        fs::write(&path, b"\xc1 not a record").unwrap();
        let err = state.join(&group, &Capabilities::none()).unwrap_err();
        assert!(matches!(err, Error::MemberAlreadyExist { .. }), "{err}");
        assert_eq!(fs::read(&path).unwrap(), b"\xc1 not a record");
        // Once older than the timeout it is dead by tooz's rule too, and is replaced.
        let old = SystemTime::now() - Duration::from_secs(60);
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(old)
            .unwrap();
        state.join(&group, &Capabilities::none()).unwrap();
        assert_eq!(
            state.member_ids(&group).unwrap(),
            vec![state.member.clone()]
        );
        let _ = fs::remove_dir_all(&dir);
    }
}
