//! tooz's memcached keys (research/tooz.md §2.3), and how any name reaches the wire safely.
//!
//! A key is the exact bytes tooz would use (`_TOOZ_GROUP_<g>`, `__TOOZ_LOCK_<name>`, ...).
//! On the wire it goes as a plain token when it can (printable ASCII without spaces, at most
//! 250 bytes: every key pymemcache accepts, so Python and Rust meet on them), otherwise
//! base64-encoded with the meta protocol's `b` flag — the server stores the same binary key,
//! so no name can inject a command or land on another key. A key too long for memcached
//! even so becomes `__TOOZ_RS_LONG_<sha256 hex of the key>`, a prefix no key of tooz's layout
//! or ours starts with (Python cannot use such names at all).

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::ids::{GroupId, LockName, MemberId};

/// memcached's longest key.
const MAX_KEY: usize = 250;
/// The longest binary key whose base64 form fits in [`MAX_KEY`] (the server checks the
/// encoded length).
const MAX_BASE64_KEY: usize = MAX_KEY / 4 * 3;

pub(crate) const GROUP_LIST: &[u8] = b"_TOOZ_GROUP_LIST";
const GROUP: &[u8] = b"_TOOZ_GROUP_";
const MEMBER: &[u8] = b"_TOOZ_MEMBER_";
const LOCK: &[u8] = b"__TOOZ_LOCK_";
/// tooz's leader lock of group `g` is the lock named `_TOOZ_GROUP_LEADER_<g>`.
const LEADER_LOCK_NAME: &[u8] = b"_TOOZ_GROUP_LEADER_";
const FENCE: &[u8] = b"__TOOZ_RS_FENCE_";
const LEADER_FENCE: &[u8] = b"__TOOZ_RS_LEADER_FENCE_";
const LONG: &str = "__TOOZ_RS_LONG_";

/// A key as stored, and its form on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Key {
    wire: Vec<u8>,
    base64: bool,
}

impl Key {
    /// The key for these exact bytes.
    pub(crate) fn new(bytes: Vec<u8>) -> Self {
        let plain = bytes.iter().all(|b| (0x21..=0x7e).contains(b));
        if plain && bytes.len() <= MAX_KEY {
            Self {
                wire: bytes,
                base64: false,
            }
        } else if bytes.len() <= MAX_BASE64_KEY {
            Self {
                wire: base64(&bytes).into_bytes(),
                base64: true,
            }
        } else {
            let hex: String = Sha256::digest(&bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            Self {
                wire: format!("{LONG}{hex}").into_bytes(),
                base64: false,
            }
        }
    }

    /// The token sent for the key.
    pub(crate) fn wire(&self) -> &[u8] {
        &self.wire
    }

    /// Whether [`Key::wire`] is base64 (the command needs the `b` flag).
    pub(crate) fn is_base64(&self) -> bool {
        self.base64
    }
}

fn join(prefix: &[u8], name: &[u8]) -> Key {
    Key::new([prefix, name].concat())
}

pub(crate) fn group_list() -> Key {
    Key::new(GROUP_LIST.to_vec())
}

pub(crate) fn group(group: &GroupId) -> Key {
    join(GROUP, group.as_bytes())
}

pub(crate) fn member(member: &MemberId) -> Key {
    join(MEMBER, member.as_bytes())
}

pub(crate) fn lock(name: &LockName) -> Key {
    join(LOCK, name.as_bytes())
}

pub(crate) fn fence(name: &LockName) -> Key {
    join(FENCE, name.as_bytes())
}

pub(crate) fn leader_lock(group: &GroupId) -> Key {
    Key::new([LOCK, LEADER_LOCK_NAME, group.as_bytes()].concat())
}

pub(crate) fn leader_fence(group: &GroupId) -> Key {
    join(LEADER_FENCE, group.as_bytes())
}

/// A group whose key would be another kind of key in tooz's layout: `LIST` (the group list).
pub(crate) fn check_group(group: &GroupId) -> Result<()> {
    if [GROUP, group.as_bytes()].concat() == GROUP_LIST {
        return Err(Error::InvalidName {
            kind: "group",
            name: crate::ids::display_name(group.as_bytes()),
            reason: "on memcached its key would be tooz's list of groups".to_owned(),
        });
    }
    Ok(())
}

/// A lock whose key would be a group's leader lock in tooz's layout.
pub(crate) fn check_lock(name: &LockName) -> Result<()> {
    if name.as_bytes().starts_with(LEADER_LOCK_NAME) {
        return Err(Error::InvalidName {
            kind: "lock",
            name: crate::ids::display_name(name.as_bytes()),
            reason: "on memcached its key would be a group's leader lock".to_owned(),
        });
    }
    Ok(())
}

/// Standard base64 with padding (what the meta protocol's `b` flag reads).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tooz_keys_and_their_wire_forms() {
        assert_eq!(lock(&"l".into()).wire(), b"__TOOZ_LOCK_l");
        assert_eq!(group(&"g".into()).wire(), b"_TOOZ_GROUP_g");
        assert_eq!(member(&"m".into()).wire(), b"_TOOZ_MEMBER_m");
        assert_eq!(
            leader_lock(&"g".into()).wire(),
            b"__TOOZ_LOCK__TOOZ_GROUP_LEADER_g"
        );
        let spaced = lock(&"a b".into());
        assert!(spaced.is_base64());
        assert_eq!(spaced.wire(), base64(b"__TOOZ_LOCK_a b").as_bytes());
    }

    #[test]
    fn base64_matches_the_standard_alphabet_and_padding() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foob"), "Zm9vYg==");
        assert_eq!(base64(&[0xff, 0xfe, 0x00]), "//4A");
    }

    #[test]
    fn every_key_fits_and_long_names_are_hashed_apart() {
        for len in [1, 100, 186, 187, 238, 239, 240, 1024] {
            for byte in [b'x', b' '] {
                let name = LockName::from(vec![byte; len]);
                let key = lock(&name);
                assert!(key.wire().len() <= MAX_KEY, "{len} {byte}");
                assert!(key.wire().iter().all(|b| (0x21..=0x7e).contains(b)));
            }
        }
        let a = lock(&LockName::from(vec![b'a'; 300]));
        let b = lock(&LockName::from([vec![b'a'; 299], vec![b'b']].concat()));
        assert_ne!(a, b);
        assert!(a.wire().starts_with(LONG.as_bytes()));
        // A long lock and a long group of the same name are different keys.
        assert_ne!(group(&GroupId::from(vec![b'a'; 300])), a);
    }

    #[test]
    fn names_that_would_be_other_keys_are_refused() {
        assert!(check_group(&"LIST".into()).is_err());
        check_group(&"LISTS".into()).unwrap();
        assert!(check_lock(&"_TOOZ_GROUP_LEADER_g".into()).is_err());
        check_lock(&"TOOZ_GROUP_LEADER_g".into()).unwrap();
    }
}
