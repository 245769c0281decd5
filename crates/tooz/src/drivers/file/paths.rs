//! Where things live under the root directory, and how a lock name becomes a path that can
//! never leave it.
//!
//! Group and member files use tooz's names (`groups/<sha1hex(group)>/<sha1hex(member)>.raw`),
//! which are hex and safe by construction. A lock is the file `DIR/<name>` as in tooz, so a
//! lock name must be a relative path of plain components: we refuse what tooz's prefix check
//! lets through (`../tooz-evil/x` resolves to a sibling of the root there) and open every
//! component relative to the root's descriptor without following symlinks, so not even a
//! symlink planted inside the root can redirect a lock.

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use nix::fcntl::{OFlag, openat};
use nix::sys::stat::{Mode, mkdirat};
use sha1::{Digest, Sha1};

use crate::error::{Error, Result};
use crate::ids::{LockName, display_name};

/// The longest path component a file system accepts.
const NAME_MAX: usize = 255;

/// Top-level entries of the root that tooz reserves; a lock may not be named after them.
const RESERVED_TOP: &[&[u8]] = &[b"groups", b"tmp", b".driver_lock"];

/// Where this crate keeps what tooz has no notion of (leader files). Lock names under it are
/// refused, so none of ours can reach it; Python tooz would have to be asked for a lock named
/// `.tooz-rs/...` on purpose to touch it.
pub(crate) const PRIVATE_DIR: &str = ".tooz-rs";

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
    if components.len() == 1 && RESERVED_TOP.contains(&components[0]) {
        return Err(refuse("it is reserved by tooz's directory layout".into()));
    }
    if components[0] == PRIVATE_DIR.as_bytes() {
        return Err(refuse(format!(
            "'{PRIVATE_DIR}/' is reserved for this library"
        )));
    }
    Ok(components)
}

/// Opens (creating) a file at `components` below `root`, creating missing directories, never
/// following a symlink, close-on-exec. Mode as tooz's (`0666` and `0777` less the umask).
pub(crate) fn open_below(root: &File, components: &[&[u8]]) -> std::io::Result<File> {
    let (file_name, dirs) = components.split_last().expect("at least one component");
    let dir_flags = OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY;
    let mut current: Option<OwnedFd> = None;
    for dir in dirs {
        let parent = current.as_ref().map_or(root.as_fd(), AsFd::as_fd);
        let dir = std::ffi::OsStr::from_bytes(dir);
        match mkdirat(parent, dir, Mode::from_bits_truncate(0o777)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e.into()),
        }
        current = Some(openat(parent, dir, dir_flags, Mode::empty())?);
    }
    let parent = current.as_ref().map_or(root.as_fd(), AsFd::as_fd);
    let flags = OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = openat(
        parent,
        std::ffi::OsStr::from_bytes(file_name),
        flags,
        Mode::from_bits_truncate(0o666),
    )?;
    Ok(File::from(fd))
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
        assert!(refused(b"groups").contains("reserved"));
        assert!(refused(b".driver_lock").contains("reserved"));
        assert!(refused(b".tooz-rs/leaders/x").contains("reserved"));
    }

    #[test]
    fn plain_names_are_accepted() {
        assert_eq!(
            lock_components(&"a/b".into()).unwrap(),
            vec![&b"a"[..], b"b"]
        );
        lock_components(&"groups/x".into()).unwrap();
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
