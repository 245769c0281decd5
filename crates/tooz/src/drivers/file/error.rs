//! The file driver's errors: an I/O failure keeps its `io::Error` as a typed source (so that
//! its kind survives for callers who look), with what we were doing as context.

use std::fmt;

use super::NAME;
use crate::error::Error;

/// What we were doing, and the I/O error that stopped it.
#[derive(Debug)]
pub(crate) struct IoFailure {
    what: String,
    source: std::io::Error,
}

impl fmt::Display for IoFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.what, self.source)
    }
}

impl std::error::Error for IoFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// An I/O failure while doing `what`. A local directory is never "unreachable", so it is a
/// backend error, with the `io::Error` kept as its source.
pub(crate) fn io_error(what: impl fmt::Display, e: std::io::Error) -> Error {
    Error::Backend {
        backend: NAME,
        source: Box::new(IoFailure {
            what: what.to_string(),
            source: e,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_io_error_kind_survives() {
        let e = io_error("cannot open x", std::io::ErrorKind::PermissionDenied.into());
        assert!(e.to_string().contains("cannot open x"), "{e}");
        let Error::Backend { source, .. } = &e else {
            panic!("{e:?}")
        };
        let io = std::error::Error::source(source.as_ref())
            .and_then(|s| s.downcast_ref::<std::io::Error>())
            .expect("typed source");
        assert_eq!(io.kind(), std::io::ErrorKind::PermissionDenied);
    }
}
