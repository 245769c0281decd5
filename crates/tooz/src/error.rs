//! The one error type of the crate, mirroring tooz's exceptions.

use std::time::Duration;

use crate::ids::{GroupId, LockName, MemberId};

/// A boxed error from a backend's client library.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The result type of every fallible call in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong, named as tooz names it where tooz has a name.
///
/// Messages never contain a password: URLs are shown redacted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The group does not exist (tooz `GroupNotCreated`).
    #[error("group '{group}' does not exist")]
    GroupNotCreated {
        /// The group asked for.
        group: GroupId,
    },
    /// The group exists already (tooz `GroupAlreadyExist`).
    #[error("group '{group}' already exists")]
    GroupAlreadyExist {
        /// The group asked for.
        group: GroupId,
    },
    /// The member is in the group already (tooz `MemberAlreadyExist`).
    #[error("member '{member}' has already joined group '{group}'")]
    MemberAlreadyExist {
        /// The group.
        group: GroupId,
        /// The member.
        member: MemberId,
    },
    /// The member is not in the group (tooz `MemberNotJoined`).
    #[error("member '{member}' has not joined group '{group}'")]
    MemberNotJoined {
        /// The group.
        group: GroupId,
        /// The member.
        member: MemberId,
    },
    /// The group still has members (tooz `GroupNotEmpty`).
    #[error("group '{group}' is not empty")]
    GroupNotEmpty {
        /// The group.
        group: GroupId,
    },
    /// An operation did not finish in time (tooz `OperationTimedOut`).
    #[error("{operation} timed out after {after:?}")]
    OperationTimedOut {
        /// What was being done.
        operation: String,
        /// How long we waited.
        after: Duration,
    },
    /// A lock release or check for a lock this guard no longer holds.
    #[error("lock '{lock}' is not held (it was released, lost, or never acquired)")]
    LockNotHeld {
        /// The lock.
        lock: LockName,
    },
    /// The backend does not offer this operation (tooz `NotImplemented`).
    #[error("the {backend} backend does not support {operation}")]
    Unsupported {
        /// The operation asked for.
        operation: &'static str,
        /// The backend's name.
        backend: &'static str,
    },
    /// What the URL asks for is in this crate, but this build leaves it out: the cargo feature
    /// named enables it.
    #[error("{what} is not built in: enable the cargo feature `{feature}` of tooz")]
    FeatureNotEnabled {
        /// What was asked for (a backend, TLS, ...).
        what: &'static str,
        /// The cargo feature that brings it.
        feature: &'static str,
    },
    /// A call of the blocking API (`tooz::blocking`) was made from inside an async runtime,
    /// where blocking the thread would stall every task on it: use the async API there.
    #[error(
        "{operation}: the blocking API cannot be called from inside an async runtime; use the async API there"
    )]
    BlockingInsideRuntime {
        /// What was called.
        operation: &'static str,
    },
    /// The backend lacks characteristics the caller required (tooz `ToozDriverChosenPoorly`).
    #[error("the {backend} backend lacks the required characteristics {missing:?}")]
    CharacteristicsNotMet {
        /// The backend's name.
        backend: &'static str,
        /// The required characteristics it does not have.
        missing: Vec<crate::Characteristic>,
    },
    /// The URL cannot be used (shown redacted).
    #[error("invalid coordination URL '{url}': {reason}")]
    InvalidUrl {
        /// The URL, with any password replaced.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The URL names an option the backend does not know.
    #[error("unknown option '{option}' for the {backend} backend; valid options are: {}", valid.join(", "))]
    UnknownOption {
        /// The backend's name.
        backend: &'static str,
        /// The option given.
        option: String,
        /// Every option the backend accepts.
        valid: &'static [&'static str],
    },
    /// An option has a value that cannot be used.
    #[error("option '{option}' of the {backend} backend has invalid value '{value}': {reason}")]
    InvalidOption {
        /// The backend's name.
        backend: &'static str,
        /// The option.
        option: String,
        /// The value given.
        value: String,
        /// What was expected.
        reason: String,
    },
    /// A group id, member id or lock name that cannot be used.
    #[error("invalid {kind} name '{name}': {reason}")]
    InvalidName {
        /// `group`, `member` or `lock`.
        kind: &'static str,
        /// The name (lossy UTF-8, cut if long).
        name: String,
        /// Why it is refused.
        reason: String,
    },
    /// Capabilities over the size every backend accepts.
    #[error("capabilities are {size} bytes encoded, over the limit of {max}")]
    CapabilitiesTooLarge {
        /// Encoded size.
        size: usize,
        /// The limit ([`crate::MAX_CAPABILITIES_LEN`]).
        max: usize,
    },
    /// A value could not be encoded or decoded (tooz `SerializationError`).
    #[error("serialization error: {reason}")]
    Serialization {
        /// What failed.
        reason: String,
    },
    /// The backend cannot be reached (tooz `ToozConnectionError`).
    #[error("cannot reach the {backend} backend: {source}")]
    Connection {
        /// The backend's name.
        backend: &'static str,
        /// The client library's error.
        #[source]
        source: BoxError,
    },
    /// This coordinator's session with the backend ended (membership timed out, or the
    /// coordinator was stopped), so nothing that depended on it is held any more.
    #[error("the coordinator's session with the {backend} backend has ended")]
    SessionLost {
        /// The backend's name.
        backend: &'static str,
    },
    /// The coordinator was stopped; it cannot be used any more.
    #[error("the coordinator has been stopped")]
    Stopped,
    /// A node asked of a [`crate::HashRing`] is not on it (tooz `UnknownNode`).
    #[error("unknown node '{node}'")]
    UnknownNode {
        /// The node (lossy UTF-8).
        node: String,
    },
    /// An argument outside what the call accepts.
    #[error("invalid {argument} '{value}': {reason}")]
    InvalidArgument {
        /// The argument.
        argument: &'static str,
        /// The value given.
        value: String,
        /// What is accepted.
        reason: String,
    },
    /// Any other backend failure.
    #[error("{backend} backend error: {source}")]
    Backend {
        /// The backend's name.
        backend: &'static str,
        /// The underlying error.
        #[source]
        source: BoxError,
    },
}

impl Error {
    /// True for errors that say "not now" rather than "never": a retry may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Connection { .. } | Self::OperationTimedOut { .. } | Self::SessionLost { .. }
        )
    }

    /// True when the backend does not offer the operation.
    pub fn is_unsupported(&self) -> bool {
        matches!(self, Self::Unsupported { .. })
    }
}
