//! The Redis driver's errors: one place decides `Connection` (unreachable, timed out,
//! dropped: worth retrying) against `Backend` (the server answered, and said no), keeping the
//! client's error as the typed source.

use super::NAME;
use crate::error::Error;

/// Maps a client error: unreachable, timed out or dropped is `Connection`; the rest `Backend`.
pub(crate) fn redis_error(e: redis::RedisError) -> Error {
    if e.is_io_error() || e.is_connection_refusal() || e.is_timeout() || e.is_connection_dropped() {
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

/// A failed first exchange: unreachable is `Connection`; a server that answers, but not
/// in Redis's protocol (a web server, a database on the wrong port), is said to be so.
pub(super) fn handshake_error(url: &impl std::fmt::Display, e: redis::RedisError) -> Error {
    let protocol = matches!(
        e.kind(),
        redis::ErrorKind::Parse | redis::ErrorKind::UnexpectedReturnType
    );
    if protocol {
        Error::Backend {
            backend: NAME,
            source: format!("{} does not answer like a Redis server ({e})", url).into(),
        }
    } else {
        redis_error(e)
    }
}
