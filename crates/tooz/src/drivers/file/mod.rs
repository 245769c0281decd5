//! `file:///DIR`: a local directory, shared with Python tooz's file driver.
//!
//! The layout is tooz 9.1.0's (`DIR/groups/<sha1hex(group)>/.metadata`,
//! `<sha1hex(member)>.raw`, lock files at `DIR/<name>`, group changes under `DIR/.driver_lock`),
//! so a Python tooz process and ours can share one directory: each sees the other's members
//! and capabilities, and their locks exclude each other.
//!
//! Beyond tooz:
//! * **Crashes are seen at once.** Our members hold a kernel lock on their member file for as
//!   long as they live; a reader that finds such a file unlocked knows the member is dead,
//!   without waiting for `timeout`. Python members are judged as tooz judges them: alive while
//!   the file's mtime is within `timeout` of now.
//! * **Dead members are collected**, so a crashed member's file no longer blocks its re-join
//!   or `delete_group` forever.
//! * **Fencing tokens** from a counter inside each lock file; **leader election** and
//!   **update_capabilities**, which tooz's file driver lacks (leader files live under
//!   `DIR/.tooz-rs/`, a prefix our lock names may not use).
//! * **Names cannot escape**: see [`paths`](self) — `../x`, absolute names, NUL and
//!   over-long components are refused, and no symlink is followed.
//! * Lock descriptors are close-on-exec; locks are Linux open-file-description locks, which
//!   conflict with Python's `fcntl.lockf` and also exclude two coordinators of one process.
//! * **Waiters wait in the kernel** (`F_OFD_SETLKW`, on a thread kept for the next wait),
//!   woken at the holder's release or death in any process, with no polling; the order among
//!   waiters is the kernel's (Linux queues a waiter behind the one it conflicts with and
//!   wakes them in turn: roughly arrival order, not a strict FIFO; eight processes storming
//!   one lock got within 3% of each other's grants in `scripts/bench contention`). A
//!   releaser that asks again at once does not take the lock back
//!   ahead of waiters (see `locks.rs`). A waiter that gives up (a timeout, a cancelled
//!   future) leaves its thread waiting in the kernel; when that thread is granted the lock
//!   it hands it back at once. Shared-lock waiters poll.
//!
//! Single host only: on NFS, locks and mtimes are not trustworthy (a warning is logged).
//!
//! The options are listed on [`FileOptions`].

mod election;
mod error;
mod groups;
mod locks;
mod ofd;
mod options;
pub(crate) mod paths;
pub(crate) mod records;
mod wait_threads;

use std::collections::HashMap;
use std::fs::{self, File};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use super::shared::{Changes, Registry};
use crate::backend::FencingToken;
use crate::backend::{
    Backend, BeatReport, ChangeHint, Elections, Groups, Held, LockMode, LockRequest, Losses,
    OwnerToken, Started, Topic,
};
use crate::characteristics::{Characteristic, Characteristics};
use crate::error::{Error, Result};
use crate::ids::{GroupId, LockName, MemberId};

pub(crate) use error::io_error;
use locks::LockTable;
pub use options::FileOptions;

const NAME: &str = "file";

/// How often a waiter looks again for a release made by another process (those send no
/// notification; releases in this process wake waiters at once).
const CROSS_PROCESS_POLL: Duration = Duration::from_millis(50);

/// What every coordinator of this process on one directory shares.
#[derive(Debug, Default)]
struct DirShared {
    changes: Changes,
}

static DIRS: Registry<DirShared> = Registry::new();

#[derive(Debug)]
pub(crate) struct State {
    options: FileOptions,
    member: MemberId,
    shared: Arc<DirShared>,
    /// The root directory, opened once; lock paths are resolved relative to it.
    root: Mutex<Option<File>>,
    locks: Mutex<LockTable>,
    /// Our member files, kept open: they carry the liveness lock and take the heartbeat.
    memberships: Mutex<HashMap<GroupId, File>>,
    /// Leader files of the groups we lead.
    leaderships: Mutex<HashMap<GroupId, (OwnerToken, File)>>,
    /// Serializes our use of `DIR/.driver_lock` (one descriptor per coordinator).
    driver_lock: Mutex<Option<File>>,
    id_cache: Mutex<groups::IdCache>,
    /// Kernel waits running (see [`MAX_KERNEL_WAITS`]).
    kernel_waits: AtomicUsize,
}

/// One coordinator's use of a directory.
#[derive(Debug)]
pub struct FileBackend {
    state: Arc<State>,
}

fn guard<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl FileBackend {
    /// A connection for `member` to the directory in `options` (opened by `start`).
    pub fn new(options: FileOptions, member: MemberId) -> Self {
        let key = options.dir.to_string_lossy().into_owned();
        let shared = DIRS.get_or_make(&key, DirShared::default);
        Self {
            state: Arc::new(State {
                options,
                member,
                shared,
                root: Mutex::new(None),
                locks: Mutex::new(LockTable::default()),
                memberships: Mutex::new(HashMap::new()),
                leaderships: Mutex::new(HashMap::new()),
                driver_lock: Mutex::new(None),
                id_cache: Mutex::new(groups::IdCache::default()),
                kernel_waits: AtomicUsize::new(0),
            }),
        }
    }

    /// Runs blocking file-system work off the async threads.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&State) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let state = Arc::clone(&self.state);
        tokio::task::spawn_blocking(move || work(&state))
            .await
            .map_err(|e| Error::Backend {
                backend: NAME,
                source: format!("file-system task failed: {e}").into(),
            })?
    }
}

impl FileBackend {
    /// A kernel wait, woken by the holder's release or death in any process. It runs on a
    /// thread of [`wait_threads`] rather than tokio's blocking pool: a wait can last as long
    /// as the holder lives, and a runtime shutting down waits for its blocking pool, never for
    /// this. If nobody is left to receive the grant, the thread hands it back at once.
    ///
    /// A wait whose caller gave up goes on until the kernel grants it (there is no
    /// cancelling a blocked `fcntl` without a signal handler), holding a thread and three
    /// descriptors; at most [`MAX_KERNEL_WAITS`] run per coordinator, and beyond that a
    /// waiter is refused here and polls, as for a shared lock.
    async fn wait_exclusive(
        &self,
        name: &LockName,
        owner: OwnerToken,
    ) -> Result<Option<FencingToken>> {
        let Some(slot) = WaitSlot::take(&self.state) else {
            return Ok(None);
        };
        let root = self.state.with_root(|root| {
            root.try_clone()
                .map_err(|e| io_error("cannot open the directory", e))
        })?;
        let (send, receive) = tokio::sync::oneshot::channel();
        let (state, name) = (Arc::clone(&self.state), name.clone());
        wait_threads::run(move || {
            let _slot = slot;
            let kit = guard(&state.locks).spare_kit(&name);
            let granted = locks::wait_exclusive(&root, &name, kit);
            let result = match granted {
                // Dropping the description hands the lock back.
                Ok(_) if send.is_closed() => return,
                Ok((waited, token)) => {
                    guard(&state.locks).add_waited(&name, owner, waited);
                    Ok(Some(token))
                }
                Err(e) => Err(e),
            };
            if send.send(result).is_err() {
                let _ = guard(&state.locks).release(&name, owner);
            }
        })
        .map_err(|e| io_error("cannot start a thread to wait for a lock", e))?;
        receive.await.map_err(|_| Error::Backend {
            backend: NAME,
            source: "the thread waiting for a lock ended without an answer".into(),
        })?
    }
}

/// The most kernel waits (threads blocked in `F_OFD_SETLKW`) one coordinator runs at once.
const MAX_KERNEL_WAITS: usize = 64;

/// One of a coordinator's [`MAX_KERNEL_WAITS`], given back when its thread ends.
struct WaitSlot(Arc<State>);

impl WaitSlot {
    fn take(state: &Arc<State>) -> Option<Self> {
        let taken = state
            .kernel_waits
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_KERNEL_WAITS).then_some(n + 1)
            });
        taken.ok().map(|_| Self(Arc::clone(state)))
    }
}

impl Drop for WaitSlot {
    fn drop(&mut self) {
        self.0.kernel_waits.fetch_sub(1, Ordering::AcqRel);
    }
}

impl State {
    fn dir(&self) -> &Path {
        &self.options.dir
    }

    fn with_root<T>(&self, f: impl FnOnce(&File) -> Result<T>) -> Result<T> {
        let root = guard(&self.root);
        match root.as_ref() {
            Some(root) => f(root),
            None => Err(Error::Stopped),
        }
    }
}

/// Creates the layout and checks that the directory is fit for coordination.
fn prepare(dir: &Path) -> Result<File> {
    for sub in [dir.to_path_buf(), dir.join("groups"), dir.join("tmp")] {
        fs::create_dir_all(&sub)
            .map_err(|e| io_error(format_args!("cannot create {}", sub.display()), e))?;
    }
    let meta = fs::metadata(dir)
        .map_err(|e| io_error(format_args!("cannot stat {}", dir.display()), e))?;
    let mode = meta.permissions().mode();
    if mode & 0o002 != 0 && mode & 0o1000 == 0 {
        return Err(Error::InvalidUrl {
            url: format!("file://{}", dir.display()),
            reason: format!(
                "{} is writable by everyone and has no sticky bit: anyone could replace the \
                 files coordination depends on (chmod o-w or +t)",
                dir.display()
            ),
        });
    }
    if let Ok(stat) = nix::sys::statfs::statfs(dir)
        && stat.filesystem_type() == nix::sys::statfs::NFS_SUPER_MAGIC
    {
        tracing::warn!(
            dir = %dir.display(),
            "the coordination directory is on NFS: the file backend is for one host only, \
             and locks and mtimes across NFS clients are not trustworthy"
        );
    }
    File::open(dir).map_err(|e| io_error(format_args!("cannot open {}", dir.display()), e))
}

/// tooz's liveness rule, on file mtimes: alive while the last heartbeat is within `timeout`.
/// A clock stepping back by less than `timeout` does not kill anyone (tooz drops a member whose
/// mtime is in the future at all).
pub(crate) fn fresh(mtime: SystemTime, now: SystemTime, timeout: Duration) -> bool {
    match now.duration_since(mtime) {
        Ok(age) => age <= timeout,
        Err(ahead) => ahead.duration() <= timeout,
    }
}

#[async_trait]
impl Backend for FileBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn start(&self, _losses: Losses) -> Result<Started> {
        let root = self.blocking(|state| prepare(state.dir())).await?;
        *guard(&self.state.root) = Some(root);
        let characteristics = Characteristics::new(&[
            Characteristic::DistributedAcrossThreads,
            Characteristic::DistributedAcrossProcesses,
            Characteristic::NonTimeoutBased,
        ]);
        Ok(Started::new(self.state.options.timeout, characteristics)
            // The kernel holds locks for as long as our descriptor is open.
            .with_grant_timeout(None)
            .with_shared_locks(true)
            .with_blocking_lock_waits()
            .with_queued_lock_waits())
    }

    async fn heartbeat(&self, held: &Held) -> Result<BeatReport> {
        // Inline: two syscalls per group on descriptors we keep open, no path lookups.
        let mut report = BeatReport::default();
        let now = SystemTime::now();
        let files = guard(&self.state.memberships);
        for (group, owner) in &held.memberships {
            let alive = files.get(group).is_some_and(|file| {
                // Touch through our descriptor; a file unlinked meanwhile (someone else left
                // for us, or collected us) has no links left.
                file.set_modified(now).is_ok() && file.metadata().is_ok_and(|m| m.nlink() > 0)
            });
            if !alive {
                report.lost_memberships.push(*owner);
            }
        }
        Ok(report)
    }

    async fn stop(&self) -> Result<()> {
        guard(&self.state.locks).clear();
        guard(&self.state.memberships).clear();
        guard(&self.state.leaderships).clear();
        *guard(&self.state.root) = None;
        self.state.shared.changes.notify();
        Ok(())
    }

    async fn try_acquire(&self, request: LockRequest<'_>) -> Result<Option<FencingToken>> {
        let state = &self.state;
        let now = state.with_root(|root| guard(&state.locks).try_acquire(root, request))?;
        if now.is_none() && request.wait && request.mode == LockMode::Exclusive {
            return self.wait_exclusive(request.name, request.owner).await;
        }
        Ok(now)
    }

    async fn release(&self, name: &LockName, owner: OwnerToken) -> Result<bool> {
        let released = guard(&self.state.locks).release(name, owner)?;
        if released {
            self.state.shared.changes.notify();
        }
        Ok(released)
    }

    fn change_hint(&self, _topic: Topic<'_>) -> Option<ChangeHint> {
        Some(self.state.shared.changes.hint_or_poll(CROSS_PROCESS_POLL))
    }

    fn groups(&self) -> Option<&dyn Groups> {
        Some(self)
    }

    fn elections(&self) -> Option<&dyn Elections> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn liveness_follows_tooz_with_clock_slack() {
        let now = SystemTime::now();
        let t = Duration::from_secs(10);
        assert!(fresh(now - Duration::from_secs(9), now, t));
        assert!(!fresh(now - Duration::from_secs(11), now, t));
        assert!(
            fresh(now + Duration::from_secs(5), now, t),
            "small clock step back"
        );
        assert!(!fresh(now + Duration::from_secs(60), now, t));
    }
}
