//! One coordinator's lock files: descriptors kept open for speed, OFD locks, and the fencing
//! counter each lock file carries.
//!
//! The counter is the file's first 8 bytes (little-endian), read and written with
//! pread/pwrite only while the exclusive lock is held. Python tooz opens lock files in append
//! mode and never writes them, and no other lock name maps to this file, so nothing else can
//! touch the counter. It is not fsync'ed: tokens stay increasing across process crashes, not
//! across an operating-system crash.
//!
//! These calls run inline on the async task: on an open descriptor they are non-blocking
//! syscalls of a microsecond or two, far cheaper than a hop to a blocking thread.
//!
//! **Waiting** is the kernel's: a waiter blocks in `F_OFD_SETLKW` on a description of its own
//! (on a thread of its own) and is woken by the kernel at the holder's release or death, in
//! whatever process — no polling. While it waits it holds a shared lock on the lock's
//! *waiting marker* (`.tooz-rs/waiting/<sha1hex(name)>`), and marks the lock file itself as
//! contended (the byte after the counter). A first attempt on a lock marked so probes the
//! marker and, if anyone waits, does not take the lock ahead of them — neither exclusively nor
//! shared — so a releaser asking again at once queues behind the waiters. Python tooz's
//! waiters poll and hold no marker. A waiter's two descriptions (the lock file's and the
//! marker's) are kept after its grant is released, for this coordinator's next wait on the
//! same lock: a wait then opens nothing.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};

use super::ofd::{self, Kind};
use super::paths::{self, PRIVATE_DIR, sha1_hex};
use crate::backend::FencingToken;
use crate::backend::{LockMode, LockRequest, OwnerToken};
use crate::error::{Error, Result};
use crate::ids::LockName;

/// Descriptors of locks we do not hold are kept open (for a cheap retry) only while the table
/// has at most this many entries; beyond it, a lock's descriptor is closed as soon as it is
/// not held, whether released or never acquired, so probing many locks held elsewhere keeps
/// a flat number of descriptors.
const MAX_IDLE: usize = 256;

/// Spare [`WaitKit`]s kept per lock: one per wait this coordinator runs at once on it, up to
/// this many.
const MAX_SPARE_KITS: usize = 2;
/// Spare kits kept by one coordinator over all its locks (two descriptors each): beyond this, a
/// released waited grant's descriptions are closed, so that waiting on many locks keeps the
/// descriptor count within [`MAX_IDLE`]'s bound plus this.
const MAX_SPARE_KITS_TOTAL: usize = 32;

#[derive(Debug)]
struct Slot {
    file: File,
    /// The waiting marker, opened once the lock file is marked contended; probed before every
    /// first attempt from then on (a lock nobody ever waited for costs one `pread` more).
    marker: Option<File>,
    holders: Vec<(OwnerToken, LockMode)>,
    /// Descriptions of finished kernel waits, for the next.
    spare_kits: Vec<WaitKit>,
}

/// A kernel waiter's own descriptions: of the lock file (where it waits, and then holds the
/// grant) and of the waiting marker (its shared lock shows that someone waits).
#[derive(Debug)]
pub(crate) struct WaitKit {
    file: File,
    marker: File,
}

/// A grant won by a kernel wait: the lock file's description holds it. The marker's comes
/// along, unlocked, to be kept for the next wait (`None` if it could not be unlocked, and so
/// was closed).
#[derive(Debug)]
pub(crate) struct Waited {
    file: File,
    marker: Option<File>,
}

#[derive(Debug, Default)]
pub(crate) struct LockTable {
    slots: HashMap<LockName, Slot>,
    /// Grants won by a kernel wait, each on a description of its own.
    waited: HashMap<OwnerToken, (LockName, Waited)>,
    /// Spare kits in all slots (at most [`MAX_SPARE_KITS_TOTAL`]).
    spares: usize,
}

/// Opens (creating) the waiting marker of lock `name`.
pub(crate) fn open_marker(root: &File, name: &LockName) -> Result<File> {
    let hashed = sha1_hex(name.as_bytes());
    let components: [&[u8]; 3] = [PRIVATE_DIR.as_bytes(), b"waiting", hashed.as_bytes()];
    paths::open_below(root, &components).map_err(|e| {
        let e = match e {
            paths::OpenError::Io(e) => e,
            other => std::io::Error::other(format!("{other:?}")),
        };
        io_error(name, "cannot open the waiting marker of the", e)
    })
}

/// Where a kernel waiter marks a lock file as contended: the byte after the fencing counter.
/// Holders write only the counter, and Python tooz never writes lock files. Once set, every
/// coordinator's first attempts on that lock look for waiters (through the marker) before
/// taking it, whether or not they ever waited themselves.
const CONTENDED_AT: u64 = 8;

/// Whether a waiter has ever marked this lock file as contended.
fn marked_contended(file: &File) -> std::io::Result<bool> {
    let mut byte = [0u8; 1];
    match file.read_at(&mut byte, CONTENDED_AT) {
        Ok(1) => Ok(byte[0] == 1),
        Ok(_) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Waits in the kernel for exclusive lock `name`, on descriptions of its own (`kit`, a spare
/// from an earlier wait, or new ones): blocks the calling thread until granted. Returns the
/// grant and its token. On failure the descriptions are closed, which drops their locks.
pub(crate) fn wait_exclusive(
    root: &File,
    name: &LockName,
    kit: Option<WaitKit>,
) -> Result<(Waited, FencingToken)> {
    let WaitKit { file, marker } = match kit {
        Some(kit) => kit,
        None => WaitKit {
            marker: open_marker(root, name)?,
            file: paths::open_lock(root, name)?,
        },
    };
    // Shared: waiters do not exclude each other, only show that someone waits. Nothing ever
    // locks a marker exclusively, so this is never refused (were it, the wait would only go
    // unseen by releasers: a question of fairness, not of exclusion).
    ofd::try_lock(&marker, Kind::Shared)
        .map_err(|e| io_error(name, "cannot mark a waiter on", e))?;
    file.write_all_at(&[1], CONTENDED_AT)
        .map_err(|e| io_error(name, "cannot mark as contended the", e))?;
    ofd::lock_wait(&file, Kind::Exclusive).map_err(|e| io_error(name, "cannot wait for", e))?;
    // No longer waiting. Should the unlock fail, closing the description drops the lock.
    let marker = ofd::unlock(&marker).is_ok().then_some(marker);
    match bump_counter(&file) {
        Ok(token) => Ok((Waited { file, marker }, FencingToken::new(token))),
        Err(e) => Err(io_error(name, "cannot update the fencing counter of", e)),
    }
}

fn io_error(name: &LockName, what: &str, e: std::io::Error) -> Error {
    super::io_error(format_args!("{what} lock file for '{name}'"), e)
}

pub(crate) fn read_counter(file: &File) -> std::io::Result<u64> {
    let mut buf = [0u8; 8];
    match file.read_exact_at(&mut buf, 0) {
        Ok(()) => Ok(u64::from_le_bytes(buf)),
        // A new (or foreign, shorter) file: no grant yet.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(0),
        Err(e) => Err(e),
    }
}

/// Increments the counter; only while holding the exclusive lock.
pub(crate) fn bump_counter(file: &File) -> std::io::Result<u64> {
    let next = read_counter(file)?
        .checked_add(1)
        .ok_or_else(|| std::io::Error::other("fencing counter exhausted"))?;
    file.write_all_at(&next.to_le_bytes(), 0)?;
    Ok(next)
}

impl LockTable {
    pub(crate) fn try_acquire(
        &mut self,
        root: &File,
        request: LockRequest<'_>,
    ) -> Result<Option<FencingToken>> {
        let name = request.name;
        let granted = self.try_grant(root, request);
        if !matches!(granted, Ok(Some(_))) {
            self.close_if_idle(name);
        }
        granted
    }

    fn try_grant(&mut self, root: &File, request: LockRequest<'_>) -> Result<Option<FencingToken>> {
        let name = request.name;
        let slot = match self.slots.get_mut(name) {
            Some(slot) => slot,
            None => {
                let file = paths::open_lock(root, name)?;
                self.slots.entry(name.clone()).or_insert(Slot {
                    file,
                    marker: None,
                    holders: Vec::new(),
                    spare_kits: Vec::new(),
                })
            }
        };
        if slot.marker.is_none()
            && marked_contended(&slot.file).map_err(|e| io_error(name, "cannot read", e))?
        {
            slot.marker = Some(open_marker(root, name)?);
        }
        if let Some(marker) = &slot.marker
            && ofd::locked_elsewhere(marker, Kind::Exclusive)
                .map_err(|e| io_error(name, "cannot probe the waiting marker of", e))?
        {
            // Writers wait for it: neither a writer nor a reader takes it ahead of them.
            return Ok(None);
        }
        if !slot.holders.is_empty() {
            // Our own descriptor already holds it: exclusive grants exclude everything, and
            // shared ones ride on the read lock already taken.
            let all_shared = slot.holders.iter().all(|(_, m)| *m == LockMode::Shared);
            if request.mode == LockMode::Exclusive || !all_shared {
                return Ok(None);
            }
            let token = read_counter(&slot.file).map_err(|e| io_error(name, "cannot read", e))?;
            slot.holders.push((request.owner, LockMode::Shared));
            return Ok(Some(FencingToken::new(token)));
        }
        let kind = match request.mode {
            LockMode::Exclusive => Kind::Exclusive,
            LockMode::Shared => Kind::Shared,
        };
        if !ofd::try_lock(&slot.file, kind).map_err(|e| io_error(name, "cannot lock", e))? {
            return Ok(None);
        }
        let token = match request.mode {
            LockMode::Exclusive => bump_counter(&slot.file),
            // Readers run together, so they cannot count; they carry the epoch of the last
            // exclusive grant.
            LockMode::Shared => read_counter(&slot.file),
        };
        match token {
            Ok(token) => {
                slot.holders.push((request.owner, request.mode));
                Ok(Some(FencingToken::new(token)))
            }
            Err(e) => {
                let _ = ofd::unlock(&slot.file);
                Err(io_error(name, "cannot update the fencing counter of", e))
            }
        }
    }

    /// Records a grant won by [`wait_exclusive`].
    pub(crate) fn add_waited(&mut self, name: &LockName, owner: OwnerToken, waited: Waited) {
        self.waited.insert(owner, (name.clone(), waited));
    }

    /// Descriptions kept from an earlier wait on `name`, if any — not if its lock file has
    /// since been unlinked (a wait there would exclude nobody who opens the path anew).
    pub(crate) fn spare_kit(&mut self, name: &LockName) -> Option<WaitKit> {
        let kit = self.slots.get_mut(name)?.spare_kits.pop()?;
        self.spares -= 1;
        let linked = kit.file.metadata().is_ok_and(|m| m.nlink() > 0);
        linked.then_some(kit)
    }

    pub(crate) fn release(&mut self, name: &LockName, owner: OwnerToken) -> Result<bool> {
        if let Some((held, waited)) = self.waited.remove(&owner) {
            if held != *name {
                self.waited.insert(owner, (held, waited));
                return Ok(false);
            }
            // Closing the description would drop its lock too; unlocking reports a failure.
            ofd::unlock(&waited.file).map_err(|e| io_error(name, "cannot unlock", e))?;
            if let (Some(marker), Some(slot)) = (waited.marker, self.slots.get_mut(name))
                && slot.spare_kits.len() < MAX_SPARE_KITS
                && self.spares < MAX_SPARE_KITS_TOTAL
            {
                let file = waited.file;
                slot.spare_kits.push(WaitKit { file, marker });
                self.spares += 1;
            }
            return Ok(true);
        }
        let Some(slot) = self.slots.get_mut(name) else {
            return Ok(false);
        };
        let before = slot.holders.len();
        slot.holders.retain(|(o, _)| *o != owner);
        if slot.holders.len() == before {
            return Ok(false);
        }
        if slot.holders.is_empty() {
            ofd::unlock(&slot.file).map_err(|e| io_error(name, "cannot unlock", e))?;
            self.close_if_idle(name);
        }
        Ok(true)
    }

    /// Closes `name`'s descriptor if nobody holds it through us and the table is over its
    /// idle allowance. Only this one entry is looked at, so the cost stays constant however
    /// many locks are held.
    fn close_if_idle(&mut self, name: &LockName) {
        if self.slots.len() > MAX_IDLE
            && self.slots.get(name).is_some_and(|s| s.holders.is_empty())
            && let Some(slot) = self.slots.remove(name)
        {
            self.spares -= slot.spare_kits.len();
        }
    }

    /// Drops every lock (on stop).
    pub(crate) fn clear(&mut self) {
        self.slots.clear();
        self.waited.clear();
        self.spares = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open_fds() -> usize {
        std::fs::read_dir("/proc/self/fd").unwrap().count()
    }

    /// The soft limit on open descriptors (unsafe code is forbidden, so it cannot be raised).
    fn fd_limit() -> usize {
        let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
        let line = limits
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .unwrap();
        let soft = line.split_whitespace().nth(3).unwrap();
        soft.parse().unwrap_or(usize::MAX)
    }

    fn request(name: &LockName) -> LockRequest<'_> {
        LockRequest {
            name,
            mode: LockMode::Exclusive,
            owner: OwnerToken::generate(),
            wait: false,
        }
    }

    /// A holder that never waited itself releases and asks again at once, while another
    /// waits in the kernel: it must not take the lock back (the lock file's contended mark
    /// sends it to the marker, where the waiter shows).
    #[test]
    fn a_releaser_that_never_waited_queues_behind_a_kernel_waiter() {
        let dir = std::env::temp_dir().join(format!("tooz-lock-retake-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let root = File::open(&dir).unwrap();
        let name = LockName::from("retake");
        let mut holder = LockTable::default();
        let first = request(&name);
        assert!(holder.try_acquire(&root, first).unwrap().is_some());
        let waiter = {
            let (root, name) = (root.try_clone().unwrap(), name.clone());
            std::thread::spawn(move || wait_exclusive(&root, &name, None).unwrap())
        };
        let lock_file = paths::open_lock(&root, &name).unwrap();
        wait_until("the waiter marks the lock contended", || {
            marked_contended(&lock_file).unwrap()
        });
        holder.release(&name, first.owner).unwrap();
        let again = holder.try_acquire(&root, request(&name)).unwrap();
        assert!(
            again.is_none(),
            "the releaser took the lock back ahead of the waiter"
        );
        let (waited, token) = waiter.join().unwrap();
        assert!(token.get() >= 2);
        drop(waited);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Polls `done` until it holds, failing the test after 10 s rather than hanging it.
    fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
        let give_up = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !done() {
            assert!(std::time::Instant::now() < give_up, "timed out: {what}");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// `waiter` wins `name` by a kernel wait (on a spare kit if it has one) from a holder
    /// that releases it: returns the grant's owner and token, the grant recorded in `waiter`.
    fn won_by_waiting(root: &File, name: &LockName, waiter: &mut LockTable) -> (OwnerToken, u64) {
        let mut holder = LockTable::default();
        let held = request(name);
        assert!(holder.try_acquire(root, held).unwrap().is_some());
        let wanted = request(name);
        assert!(waiter.try_acquire(root, wanted).unwrap().is_none());
        let kit = waiter.spare_kit(name);
        let waiting = {
            let (root, name) = (root.try_clone().unwrap(), name.clone());
            std::thread::spawn(move || wait_exclusive(&root, &name, kit).unwrap())
        };
        let marker = open_marker(root, name).unwrap();
        wait_until("the waiter shows on the marker", || {
            ofd::locked_elsewhere(&marker, Kind::Exclusive).unwrap()
        });
        holder.release(name, held.owner).unwrap();
        let (waited, token) = waiting.join().unwrap();
        assert!(
            !ofd::locked_elsewhere(&marker, Kind::Exclusive).unwrap(),
            "a granted waiter still shows as waiting"
        );
        waiter.add_waited(name, wanted.owner, waited);
        (wanted.owner, token.get())
    }

    /// A kernel waiter's descriptions are kept when its grant is released — unlocked, both
    /// the lock file's (others take the lock at once) and the marker's (nobody is shown
    /// waiting) — and serve the next wait.
    #[test]
    fn a_released_waited_grant_keeps_its_descriptions_unlocked_for_the_next_wait() {
        let dir = std::env::temp_dir().join(format!("tooz-lock-kit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let root = File::open(&dir).unwrap();
        let name = LockName::from("kit");
        let (mut waiter, mut other) = (LockTable::default(), LockTable::default());
        let lock_file = paths::open_lock(&root, &name).unwrap();
        let mut last_token = 0;
        for round in 0..3 {
            let spares_before = waiter.spares;
            let (owner, token) = won_by_waiting(&root, &name, &mut waiter);
            assert_eq!(
                spares_before,
                usize::from(round > 0),
                "round {round}: spare kits"
            );
            assert!(token > last_token, "round {round}: token order");
            last_token = token;
            assert!(!ofd::try_lock(&lock_file, Kind::Shared).unwrap());
            assert!(waiter.release(&name, owner).unwrap());
            assert_eq!(waiter.spares, 1, "round {round}: the kit kept");
            let probe = request(&name);
            assert!(
                other.try_acquire(&root, probe).unwrap().is_some(),
                "round {round}: the lock stayed held after its release"
            );
            other.release(&name, probe.owner).unwrap();
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn spare_kits_stay_within_their_bound_over_many_locks() {
        let dir = std::env::temp_dir().join(format!("tooz-lock-kits-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let root = File::open(&dir).unwrap();
        let mut waiter = LockTable::default();
        for i in 0..MAX_SPARE_KITS_TOTAL + 8 {
            let name = LockName::from(format!("k{i}"));
            let (owner, _) = won_by_waiting(&root, &name, &mut waiter);
            assert!(waiter.release(&name, owner).unwrap());
        }
        let kept: usize = waiter.slots.values().map(|s| s.spare_kits.len()).sum();
        assert_eq!(kept, waiter.spares);
        assert_eq!(kept, MAX_SPARE_KITS_TOTAL);
        // A kit whose lock file was unlinked since is not used again.
        std::fs::remove_file(dir.join("k0")).unwrap();
        assert!(waiter.spare_kit(&LockName::from("k0")).is_none());
        assert!(waiter.spare_kit(&LockName::from("k1")).is_some());
        assert_eq!(waiter.spares, MAX_SPARE_KITS_TOTAL - 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn probing_locks_held_elsewhere_keeps_descriptors_flat() {
        // 1,000 as asked, fewer under a low limit (held + at most MAX_IDLE probing must fit),
        // but always far more than MAX_IDLE + 50, so that keeping a descriptor per failed
        // attempt cannot pass.
        let room = fd_limit().saturating_sub(open_fds() + MAX_IDLE + 100);
        let count = room.min(1000);
        assert!(
            count >= 2 * MAX_IDLE,
            "descriptor limit too low for this test"
        );
        let dir = std::env::temp_dir().join(format!("tooz-lock-fds-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let root = File::open(&dir).unwrap();
        let names: Vec<LockName> = (0..count).map(|i| format!("l{i}").into()).collect();
        // Two tables are two coordinators: their OFD locks exclude each other.
        let (mut holder, mut prober) = (LockTable::default(), LockTable::default());
        for name in &names {
            assert!(holder.try_acquire(&root, request(name)).unwrap().is_some());
        }
        let before = open_fds();
        for name in &names {
            assert!(prober.try_acquire(&root, request(name)).unwrap().is_none());
        }
        let grown = open_fds().saturating_sub(before);
        assert!(
            grown < MAX_IDLE + 50,
            "{grown} descriptors left open by {count} failed attempts"
        );
        assert!(prober.slots.len() <= MAX_IDLE, "{}", prober.slots.len());
        holder.clear();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn descriptors_of_held_locks_stay_and_idle_ones_stay_bounded() {
        let dir = std::env::temp_dir().join(format!("tooz-lock-idle-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let root = File::open(&dir).unwrap();
        let mut table = LockTable::default();
        let mut owners = Vec::new();
        for i in 0..MAX_IDLE + 100 {
            let name = LockName::from(format!("l{i}"));
            let req = request(&name);
            let owner = req.owner;
            assert!(table.try_acquire(&root, req).unwrap().is_some());
            owners.push((name, owner));
        }
        for (name, owner) in &owners {
            assert!(table.release(name, *owner).unwrap());
        }
        let idle = table
            .slots
            .values()
            .filter(|s| s.holders.is_empty())
            .count();
        assert!(idle <= MAX_IDLE, "{idle} idle descriptors");
        // A name whose descriptor was closed is opened again on the next attempt.
        let (name, _) = &owners[0];
        assert!(table.try_acquire(&root, request(name)).unwrap().is_some());
        table.clear();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
