//! The PostgreSQL driver's errors: one place decides `Connection` (unreachable, timed out,
//! the session ended: worth retrying) against `Backend` (the server answered, and said no),
//! keeping the client's error as the typed source — with the server's own message, which the
//! client's `Display` leaves out, and (when connecting) the server's address.

use std::error::Error as _;
use std::fmt;

use super::NAME;
use crate::error::Error;

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Self {
        postgres_error(e)
    }
}

/// A client error with the words that say what happened.
#[derive(Debug)]
struct Described {
    text: String,
    source: tokio_postgres::Error,
}

impl fmt::Display for Described {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for Described {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Sorts a client error: an I/O failure, a closed session, or the server ending the session
/// (SQLSTATE class 08, or 57P01-57P03: terminated, shutting down) is `Connection`; the rest
/// (a refused login, a bad statement) `Backend`.
pub(crate) fn postgres_error(e: tokio_postgres::Error) -> Error {
    described(e, None)
}

/// [`postgres_error`] for a failed connect, naming the server (never its password).
pub(crate) fn connect_error(e: tokio_postgres::Error, server: &str) -> Error {
    described(e, Some(server))
}

fn described(e: tokio_postgres::Error, server: Option<&str>) -> Error {
    let io = e
        .source()
        .is_some_and(|s| s.downcast_ref::<std::io::Error>().is_some());
    let ended = e.code().is_some_and(|code| {
        let code = code.code();
        code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03")
    });
    let mut text = match server {
        Some(server) => format!("{server}: {e}"),
        None => e.to_string(),
    };
    if let Some(db) = e.as_db_error() {
        text = format!(
            "{text}: {} {}: {}",
            db.severity(),
            db.code().code(),
            db.message()
        );
    } else if let Some(cause) = e.source() {
        text = format!("{text} ({cause})");
    }
    let source = Box::new(Described { text, source: e });
    if io || ended || source.source.is_closed() {
        Error::Connection {
            backend: NAME,
            source,
        }
    } else {
        Error::Backend {
            backend: NAME,
            source,
        }
    }
}
