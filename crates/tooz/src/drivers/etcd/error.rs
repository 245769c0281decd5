//! The etcd driver's errors: one place decides `Connection` (unreachable, timed out, no
//! leader: worth retrying) against `Backend` (etcd answered, and said no), keeping the
//! client's error as the typed source.

use super::NAME;
use crate::error::Error;

impl From<etcd_client::Error> for Error {
    fn from(e: etcd_client::Error) -> Self {
        etcd_error(e)
    }
}

/// Sorts a client error (a request on a lease etcd no longer has is `SessionLost`): transport and I/O failures, and the gRPC codes of a server that
/// cannot serve now (unavailable, deadline, cancelled, no leader: `Unavailable`), are
/// `Connection`; the rest (a refused login, a bad request) `Backend`.
pub(crate) fn etcd_error(e: etcd_client::Error) -> Error {
    use etcd_client::Error as E;
    // A request made on a lease etcd no longer has (it expired, or `stop` revoked it while
    // the request was out): the session is over, which the next heartbeat reports.
    if let E::GRpcStatus(status) = &e
        && status.code() as i32 == 5
        && status.message().contains("lease not found")
    {
        return Error::SessionLost { backend: NAME };
    }
    let connection = match &e {
        E::TransportError(_) | E::IoError(_) | E::LeaseKeepAliveError(_) | E::WatchError(_) => true,
        // gRPC codes: CANCELLED 1, UNKNOWN 2, DEADLINE_EXCEEDED 4, INTERNAL 13 (a stream cut
        // mid-answer: the request may have been applied), UNAVAILABLE 14.
        E::GRpcStatus(status) => matches!(status.code() as i32, 1 | 2 | 4 | 13 | 14),
        _ => false,
    };
    if connection {
        Error::Connection {
            backend: NAME,
            source: Box::new(e),
        }
    } else {
        Error::Backend {
            backend: NAME,
            source: Box::new(e),
        }
    }
}

/// An answer that is not what the request returns.
pub(super) fn unexpected(what: &str) -> Error {
    Error::Backend {
        backend: NAME,
        source: format!("unexpected answer from etcd: {what}").into(),
    }
}
