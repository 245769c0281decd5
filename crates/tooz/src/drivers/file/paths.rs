//! Where things live under the root directory, and how a lock name becomes a path that can
//! never leave it.
//!
//! Group and member files use tooz's names (`groups/<sha1hex(group)>/<sha1hex(member)>.raw`),
//! which are hex and safe by construction. A lock is the file `DIR/<name>` as in tooz, so a
//! lock name must be a relative path of plain components: we refuse what tooz's prefix check
//! lets through (`../tooz-evil/x` resolves to a sibling of the root there) and open every
//! component relative to the root's descriptor without following symlinks, so not even a
//! symlink planted inside the root can redirect a lock.

use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{Mode, fstatat, mkdirat};
use sha1::{Digest, Sha1};

use crate::error::{Error, Result};
use crate::ids::{LockName, display_name};

/// The longest path component a file system accepts.
const NAME_MAX: usize = 255;

/// Where this crate keeps what tooz has no notion of (leader files). Lock names under it are
/// refused, so none of ours can reach it; Python tooz would have to be asked for a lock named
/// `.tooz-rs/...` on purpose to touch it.
pub(crate) const PRIVATE_DIR: &str = ".tooz-rs";

/// Top-level entries of the root that are not locks, and what they hold. A lock file is
/// written (its first 8 bytes are the fencing counter), so a lock reaching any of them would
/// corrupt group metadata, member records or leader files: no lock name may start with one.
/// Compared ignoring ASCII case, so that a case-insensitive file system cannot alias them.
const RESERVED_TOP: &[(&str, &str)] = &[
    ("groups", "it holds the group and member files"),
    ("tmp", "it holds the temporary files of atomic writes"),
    (".driver_lock", "it is the lock guarding group changes"),
    (PRIVATE_DIR, "it holds this library's leader files"),
];

/// tooz's file-system-safe name: lowercase hex SHA-1 of the id's bytes.
pub(crate) fn sha1_hex(bytes: &[u8]) -> String {
    Sha1::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The components of a lock name, or why it cannot be a path under the root.
pub(crate) fn lock_components(name: &LockName) -> Result<Vec<&[u8]>> {
    let bytes = name.as_bytes();
    let refuse = |reason: String| Error::InvalidName {
        kind: "lock",
        name: display_name(bytes),
        reason,
    };
    if bytes.contains(&0) {
        return Err(refuse(
            "the file backend cannot store a NUL byte in a path".into(),
        ));
    }
    if bytes.starts_with(b"/") {
        return Err(refuse(
            "it is an absolute path; lock names are relative to the directory".into(),
        ));
    }
    let components: Vec<&[u8]> = bytes.split(|b| *b == b'/').collect();
    for component in &components {
        match *component {
            b"" => {
                return Err(refuse(
                    "it has an empty path component ('//' or a trailing '/')".into(),
                ));
            }
            b"." | b".." => {
                return Err(refuse(
                    "'.' and '..' components could leave or alias the directory".into(),
                ));
            }
            c if c.len() > NAME_MAX => {
                return Err(refuse(format!(
                    "a path component is {} bytes, over the file-system limit of {NAME_MAX}",
                    c.len()
                )));
            }
            _ => {}
        }
    }
    if let Some((top, why)) = reserved(components[0]) {
        return Err(refuse(format!(
            "its first component '{top}' is reserved in the directory ({why}), so no lock \
             may be named '{top}' or '{top}/...'"
        )));
    }
    Ok(components)
}

fn reserved(first: &[u8]) -> Option<(&'static str, &'static str)> {
    RESERVED_TOP
        .iter()
        .copied()
        .find(|(top, _)| first.eq_ignore_ascii_case(top.as_bytes()))
}

/// Why a file below the root could not be opened.
#[derive(Debug)]
pub(crate) enum OpenError {
    /// The first `depth` components name a plain file where a directory is needed.
    FileInPath {
        depth: usize,
    },
    /// The path names a directory.
    IsDirectory,
    Io(std::io::Error),
}

impl From<Errno> for OpenError {
    fn from(e: Errno) -> Self {
        Self::Io(e.into())
    }
}

impl From<OpenError> for std::io::Error {
    fn from(e: OpenError) -> Self {
        match e {
            OpenError::FileInPath { .. } => Errno::ENOTDIR.into(),
            OpenError::IsDirectory => Errno::EISDIR.into(),
            OpenError::Io(e) => e,
        }
    }
}

/// Opens (creating) a file at `components` below `root`, creating missing directories, never
/// following a symlink, close-on-exec. Mode as tooz's (`0666` and `0777` less the umask).
pub(crate) fn open_below(root: &File, components: &[&[u8]]) -> Result<File, OpenError> {
    let (file_name, dirs) = components.split_last().expect("at least one component");
    let dir_flags = OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY;
    let mut current: Option<OwnedFd> = None;
    for (depth, dir) in dirs.iter().enumerate() {
        let parent = current.as_ref().map_or(root.as_fd(), AsFd::as_fd);
        let dir = OsStr::from_bytes(dir);
        match mkdirat(parent, dir, Mode::from_bits_truncate(0o777)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e.into()),
        }
        let opened = openat(parent, dir, dir_flags, Mode::empty()).map_err(|e| {
            // A symlink gives ENOTDIR too; only a plain file is another lock in the way.
            if e == Errno::ENOTDIR && is_plain_file(parent, dir) {
                OpenError::FileInPath { depth: depth + 1 }
            } else {
                e.into()
            }
        })?;
        current = Some(opened);
    }
    let parent = current.as_ref().map_or(root.as_fd(), AsFd::as_fd);
    let flags = OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mode = Mode::from_bits_truncate(0o666);
    match openat(parent, OsStr::from_bytes(file_name), flags, mode) {
        Ok(fd) => Ok(File::from(fd)),
        Err(Errno::EISDIR) => Err(OpenError::IsDirectory),
        Err(e) => Err(e.into()),
    }
}

fn is_plain_file(parent: BorrowedFd<'_>, name: &OsStr) -> bool {
    fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW)
        .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFREG)
}

/// Opens (creating) the file of lock `name`. Lock files and the directories that hold them
/// share one namespace, so `a` and `a/b` cannot both be locks: whichever comes second is
/// refused, naming the other, instead of failing with a bare ENOTDIR or EISDIR.
pub(crate) fn open_lock(root: &File, name: &LockName) -> Result<File> {
    let components = lock_components(name)?;
    let shown = display_name(name.as_bytes());
    let refuse = |reason: String| Error::InvalidName {
        kind: "lock",
        name: shown.clone(),
        reason,
    };
    open_below(root, &components).map_err(|e| match e {
        OpenError::FileInPath { depth } => {
            let above = display_name(&components[..depth].join(&b'/'));
            refuse(format!(
                "'{above}' is already a lock file, so '{shown}' cannot be a lock below it"
            ))
        }
        OpenError::IsDirectory => refuse(format!(
            "'{shown}' is a directory of other locks (such as '{shown}/...'), so it cannot be \
             a lock itself"
        )),
        OpenError::Io(e) => super::io_error(format_args!("cannot open lock file for '{name}'"), e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(name: &[u8]) -> String {
        lock_components(&LockName::from(name))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn names_that_would_escape_are_refused() {
        assert!(refused(b"../tooz-evil/x").contains("'..'"));
        assert!(refused(b"a/../../tooz_x").contains("'..'"));
        assert!(refused(b"..").contains("'..'"));
        assert!(refused(b"/etc/passwd").contains("absolute"));
        assert!(refused(b"a\0b").contains("NUL"));
        assert!(refused(b"a//b").contains("empty"));
        assert!(refused(b"a/").contains("empty"));
        assert!(refused(b"./a").contains("'.'"));
        assert!(refused(&[b'x'; 256]).contains("255"));
    }

    #[test]
    fn names_reaching_the_layout_are_refused() {
        // Each would land on a file the driver writes or reads as something else: group
        // metadata, member records, the driver lock, leader files, atomic-write scratch.
        let group = sha1_hex(b"g");
        let member = sha1_hex(b"m");
        for (name, top) in [
            ("groups".to_owned(), "'groups'"),
            (format!("groups/{group}/.metadata"), "'groups'"),
            (format!("groups/{group}/{member}.raw"), "'groups'"),
            ("groups/x".to_owned(), "'groups'"),
            ("GROUPS/x".to_owned(), "'groups'"),
            ("tmp".to_owned(), "'tmp'"),
            ("tmp/tmp01234567tooz".to_owned(), "'tmp'"),
            (".driver_lock".to_owned(), "'.driver_lock'"),
            (".driver_lock/x".to_owned(), "'.driver_lock'"),
            (".tooz-rs".to_owned(), "'.tooz-rs'"),
            (format!(".tooz-rs/leaders/{group}"), "'.tooz-rs'"),
        ] {
            let err = refused(name.as_bytes());
            assert!(
                err.contains("reserved") && err.contains(top),
                "{name}: {err}"
            );
        }
    }

    #[test]
    fn plain_names_are_accepted() {
        assert_eq!(
            lock_components(&"a/b".into()).unwrap(),
            vec![&b"a"[..], b"b"]
        );
        // Only the first component is the directory's; below it, names are free.
        lock_components(&"a/groups/.metadata".into()).unwrap();
        lock_components(&"groupsx/tmp".into()).unwrap();
        lock_components(&".tooz-rsx".into()).unwrap();
        lock_components(&LockName::from(&[0xff, b'.', b'.'][..])).unwrap();
        lock_components(&"...".into()).unwrap();
    }

    #[test]
    fn sha1_names_match_tooz() {
        assert_eq!(
            sha1_hex(b"group-a"),
            "0958da2e657dc2374f71e180339cc4275f28a1a0"
        );
        assert_eq!(
            sha1_hex(b"member-1"),
            "8b1e49a1b1843b6f0e91cfdfa1ab2d954c0ebe0b"
        );
    }
}
