//! The ZooKeeper driver's errors: one place decides `Connection` (no server answers now:
//! worth retrying), `SessionLost` (the session is over: everything on it is gone) and
//! `Backend` (ZooKeeper answered, and said no), keeping the client's error as the source.
//! The answers a caller expects (`NoNode`, `NodeExists`, `NotEmpty`) are matched where they
//! are asked, before this.

use zookeeper_client::Error as ZkError;

use super::NAME;
use crate::error::Error;

impl From<ZkError> for Error {
    fn from(e: ZkError) -> Self {
        match e {
            ZkError::ConnectionLoss | ZkError::Timeout | ZkError::NoHosts | ZkError::Throttled => {
                Self::Connection {
                    backend: NAME,
                    source: Box::new(e),
                }
            }
            ZkError::SessionExpired | ZkError::ClientClosed => Self::SessionLost { backend: NAME },
            _ => Self::Backend {
                backend: NAME,
                source: Box::new(e),
            },
        }
    }
}

/// An answer that is not what the request returns.
pub(super) fn unexpected(what: &str) -> Error {
    Error::Backend {
        backend: NAME,
        source: format!("unexpected answer from ZooKeeper: {what}").into(),
    }
}
