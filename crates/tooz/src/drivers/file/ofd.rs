//! Linux open-file-description locks on whole files.
//!
//! They conflict with the classic POSIX record locks that Python's `fcntl.lockf` takes (so
//! Python tooz and we exclude each other), but belong to the open file description rather than
//! the process: two descriptors opened separately exclude each other even within one process,
//! closing an unrelated descriptor drops nothing, and a killed holder's locks vanish with its
//! descriptors. `flock(2)` would not conflict with Python's locks at all.

use std::io;
use std::os::fd::AsFd;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, fcntl};

/// Exclusive (write) or shared (read) lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Shared,
    Exclusive,
}

fn whole_file(l_type: libc::c_int) -> libc::flock {
    libc::flock {
        l_type: l_type as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 0,
        // Must be zero for OFD locks.
        l_pid: 0,
    }
}

fn l_type(kind: Kind) -> libc::c_int {
    match kind {
        Kind::Shared => libc::F_RDLCK,
        Kind::Exclusive => libc::F_WRLCK,
    }
}

/// Tries once to lock the whole file; `false` if another description holds a conflicting lock.
pub(crate) fn try_lock(file: impl AsFd, kind: Kind) -> io::Result<bool> {
    let flock = whole_file(l_type(kind));
    match fcntl(file, FcntlArg::F_OFD_SETLK(&flock)) {
        Ok(_) => Ok(true),
        Err(Errno::EAGAIN | Errno::EACCES) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Waits in the kernel until the whole file can be locked, then locks it. The kernel queues
/// the waiter and wakes it at the conflicting holder's release (or death).
pub(crate) fn lock_wait(file: impl AsFd, kind: Kind) -> io::Result<()> {
    let flock = whole_file(l_type(kind));
    loop {
        match fcntl(&file, FcntlArg::F_OFD_SETLKW(&flock)) {
            Ok(_) => return Ok(()),
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Drops this description's lock on the file.
pub(crate) fn unlock(file: impl AsFd) -> io::Result<()> {
    let flock = whole_file(libc::F_UNLCK);
    fcntl(file, FcntlArg::F_OFD_SETLK(&flock))?;
    Ok(())
}

/// Whether another description (of any process) holds a lock that conflicts with `probe`.
pub(crate) fn locked_elsewhere(file: impl AsFd, probe: Kind) -> io::Result<bool> {
    let mut flock = whole_file(l_type(probe));
    fcntl(file, FcntlArg::F_OFD_GETLK(&mut flock))?;
    Ok(i32::from(flock.l_type) != libc::F_UNLCK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::OpenOptions;

    #[test]
    fn descriptions_exclude_each_other_even_in_one_process() {
        let dir = std::env::temp_dir().join(format!("tooz-ofd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("l");
        let open = || {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .unwrap()
        };
        let (a, b) = (open(), open());
        assert!(try_lock(&a, Kind::Exclusive).unwrap());
        assert!(!try_lock(&b, Kind::Exclusive).unwrap());
        assert!(!try_lock(&b, Kind::Shared).unwrap());
        assert!(locked_elsewhere(&b, Kind::Shared).unwrap());
        assert!(
            !locked_elsewhere(&a, Kind::Exclusive).unwrap(),
            "own lock is no conflict"
        );
        unlock(&a).unwrap();
        assert!(try_lock(&a, Kind::Shared).unwrap());
        assert!(try_lock(&b, Kind::Shared).unwrap(), "readers share");
        assert!(locked_elsewhere(&b, Kind::Exclusive).unwrap());
        drop(a);
        assert!(
            !locked_elsewhere(&b, Kind::Exclusive).unwrap(),
            "closing drops the lock"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
