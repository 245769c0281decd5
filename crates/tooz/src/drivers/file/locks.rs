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

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;

use super::ofd::{self, Kind};
use super::paths;
use crate::backend::{LockMode, LockRequest, OwnerToken};
use crate::error::{Error, Result};
use crate::ids::LockName;
use crate::lock::FencingToken;

/// Idle lock descriptors kept open beyond this count are closed.
const MAX_IDLE: usize = 256;

#[derive(Debug)]
struct Slot {
    file: File,
    holders: Vec<(OwnerToken, LockMode)>,
}

#[derive(Debug, Default)]
pub(crate) struct LockTable {
    slots: HashMap<LockName, Slot>,
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
        let slot = match self.slots.get_mut(name) {
            Some(slot) => slot,
            None => {
                let components = paths::lock_components(name)?;
                let file = paths::open_below(root, &components)
                    .map_err(|e| io_error(name, "cannot open", e))?;
                self.slots.entry(name.clone()).or_insert(Slot {
                    file,
                    holders: Vec::new(),
                })
            }
        };
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

    pub(crate) fn release(&mut self, name: &LockName, owner: OwnerToken) -> Result<bool> {
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
            if self.slots.len() > MAX_IDLE {
                self.slots.retain(|_, s| !s.holders.is_empty());
            }
        }
        Ok(true)
    }

    /// Drops every lock (on stop).
    pub(crate) fn clear(&mut self) {
        self.slots.clear();
    }
}
