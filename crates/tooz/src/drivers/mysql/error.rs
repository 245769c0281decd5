//! The MySQL driver's errors: one place decides `Connection` (unreachable, timed out, the
//! connection ended or was killed: worth retrying) against `Backend` (the server answered, and
//! said no), keeping the client's error as the typed source.

use super::NAME;
use crate::error::Error;

/// Server error codes that mean the session is over: killed (`ER_CONNECTION_KILLED`, MySQL's
/// 3169), the server shutting down (`ER_SERVER_SHUTDOWN`), ended for idleness (MySQL 8's
/// 4031), gone away or lost (client codes 2006, 2013).
const SESSION_OVER: &[u16] = &[1053, 1927, 2006, 2013, 3169, 4031];

/// `ER_QUERY_INTERRUPTED`: a statement ended by `KILL QUERY` (a waiter that gave up).
pub(super) const INTERRUPTED: u16 = 1317;

impl From<mysql_async::Error> for Error {
    fn from(e: mysql_async::Error) -> Self {
        mysql_error(e)
    }
}

/// Sorts a client error: an I/O failure, a closed connection, a driver-side protocol failure
/// or a server code that ends the session is `Connection`; the rest (a refused login, a bad
/// statement) `Backend`.
pub(crate) fn mysql_error(e: mysql_async::Error) -> Error {
    let over = match &e {
        mysql_async::Error::Server(server) => SESSION_OVER.contains(&server.code),
        other => other.is_fatal(),
    };
    if over {
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

/// Whether `e` is a statement that `KILL QUERY` interrupted.
pub(super) fn interrupted(e: &mysql_async::Error) -> bool {
    matches!(e, mysql_async::Error::Server(s) if s.code == INTERRUPTED)
}

/// An answer that is not what the statement returns (a value of another type, a missing
/// column): the server is not what we think, or the table was altered.
pub(super) fn unexpected(what: &str) -> Error {
    Error::Backend {
        backend: NAME,
        source: format!("unexpected answer from the server: {what}").into(),
    }
}
