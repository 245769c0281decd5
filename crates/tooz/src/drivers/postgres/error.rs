//! The PostgreSQL driver's errors: one place decides `Connection` (unreachable, timed out,
//! the session ended: worth retrying) against `Backend` (the server answered, and said no),
//! keeping the client's error as the typed source.

use std::error::Error as _;

use super::NAME;
use crate::error::Error;

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Self {
        postgres_error(e)
    }
}

/// Sorts a client error: an I/O failure, a closed session, or the server ending the session
/// (SQLSTATE class 08, or 57P01-57P03: terminated, shutting down) is `Connection`; the rest
/// (a refused login, a bad statement, a server that is not PostgreSQL) `Backend`.
pub(crate) fn postgres_error(e: tokio_postgres::Error) -> Error {
    let io = e
        .source()
        .is_some_and(|s| s.downcast_ref::<std::io::Error>().is_some());
    let ended = e.code().is_some_and(|code| {
        let code = code.code();
        code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03")
    });
    if io || ended || e.is_closed() {
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
