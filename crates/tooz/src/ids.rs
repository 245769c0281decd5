//! Group ids, member ids and lock names: byte strings, validated once at the API boundary.
//!
//! tooz treats every id as `bytes` (accepting `str` as UTF-8). We do the same: any byte string
//! of 1 to [`MAX_NAME_LEN`] bytes is a valid name, and each backend turns it into a key, path or
//! parameter with its own injective encoding. Nothing about a name is ever interpreted as
//! syntax by this crate.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use crate::error::{Error, Result};

/// The longest group id, member id or lock name accepted, in bytes.
///
/// Backends may document a stricter limit (for example a file-system component length).
pub const MAX_NAME_LEN: usize = 1024;

macro_rules! byte_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Arc<[u8]>);

        impl $name {
            /// What this id names, for error messages (`"group"`, `"member"`, `"lock"`).
            pub const KIND: &'static str = $kind;

            /// The id's bytes.
            pub fn as_bytes(&self) -> &[u8] {
                &self.0
            }

            /// The id as text, with invalid UTF-8 replaced (for display only).
            pub fn to_string_lossy(&self) -> Cow<'_, str> {
                String::from_utf8_lossy(&self.0)
            }

            /// The id as text if it is valid UTF-8.
            pub fn as_str(&self) -> Option<&str> {
                std::str::from_utf8(&self.0).ok()
            }

            /// Checks the length rules shared by every backend.
            pub fn validate(&self) -> Result<()> {
                validate_name(Self::KIND, &self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.to_string_lossy())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&display_name(&self.0))
            }
        }

        impl AsRef<[u8]> for $name {
            fn as_ref(&self) -> &[u8] {
                &self.0
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(Arc::from(s.as_bytes()))
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(Arc::from(s.into_bytes()))
            }
        }

        impl From<&String> for $name {
            fn from(s: &String) -> Self {
                Self::from(s.as_str())
            }
        }

        impl From<&[u8]> for $name {
            fn from(b: &[u8]) -> Self {
                Self(Arc::from(b))
            }
        }

        impl<const N: usize> From<&[u8; N]> for $name {
            fn from(b: &[u8; N]) -> Self {
                Self(Arc::from(&b[..]))
            }
        }

        impl From<Vec<u8>> for $name {
            fn from(b: Vec<u8>) -> Self {
                Self(Arc::from(b))
            }
        }

        impl From<&$name> for $name {
            fn from(id: &$name) -> Self {
                id.clone()
            }
        }
    };
}

byte_id!(
    /// The id of a group.
    GroupId,
    "group"
);
byte_id!(
    /// The id of a member (one coordinator) of groups.
    MemberId,
    "member"
);
byte_id!(
    /// The name of a lock.
    LockName,
    "lock"
);

/// Length rules shared by every kind of name.
pub(crate) fn validate_name(kind: &'static str, bytes: &[u8]) -> Result<()> {
    let reason = if bytes.is_empty() {
        "it is empty".to_owned()
    } else if bytes.len() > MAX_NAME_LEN {
        format!(
            "it is {} bytes long, over the limit of {MAX_NAME_LEN}",
            bytes.len()
        )
    } else {
        return Ok(());
    };
    Err(Error::InvalidName {
        kind,
        name: display_name(bytes),
        reason,
    })
}

/// A name as shown in messages and logs: lossy UTF-8 with control characters escaped (a name
/// holding a line break must not forge a log line), cut to a readable length.
pub(crate) fn display_name(bytes: &[u8]) -> String {
    const SHOWN: usize = 80;
    let text = String::from_utf8_lossy(bytes);
    let mut shown = String::with_capacity(text.len());
    for c in text.chars().take(SHOWN) {
        if c.is_control() {
            shown.extend(c.escape_default());
        } else {
            shown.push(c);
        }
    }
    if text.chars().count() <= SHOWN {
        shown
    } else {
        format!("{shown}… ({} bytes)", bytes.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_names_cannot_forge_a_log_line() {
        let shown = LockName::from("a\r\nWARN forged").to_string();
        assert_eq!(shown, "a\\r\\nWARN forged");
        assert!(!shown.contains('\n'));
    }

    #[test]
    fn text_and_bytes_give_the_same_id() {
        assert_eq!(GroupId::from("g"), GroupId::from(&b"g"[..]));
        assert_eq!(GroupId::from("g"), GroupId::from(b"g".to_vec()));
    }

    #[test]
    fn empty_and_over_long_names_are_refused_with_the_reason() {
        let err = LockName::from("").validate().unwrap_err().to_string();
        assert!(err.contains("lock") && err.contains("empty"), "{err}");
        let long = "x".repeat(MAX_NAME_LEN + 1);
        let err = GroupId::from(long.as_str())
            .validate()
            .unwrap_err()
            .to_string();
        assert!(err.contains("1025 bytes"), "{err}");
        assert!(err.len() < 300, "a long name is cut in messages: {err}");
        MemberId::from("x".repeat(MAX_NAME_LEN)).validate().unwrap();
    }

    #[test]
    fn non_utf8_ids_display_lossily() {
        let id = MemberId::from(&[0xff, b'a'][..]);
        assert_eq!(id.as_str(), None);
        assert_eq!(id.to_string(), "\u{fffd}a");
    }
}
