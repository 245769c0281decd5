//! How the command fails: a one-line message and a documented exit code.

use std::fmt;

/// An error: unreachable backend, refused name, ...
pub(crate) const EXIT_ERROR: i32 = 1;
/// Bad usage: unknown flag, malformed JSON, missing `--`.
pub(crate) const EXIT_USAGE: i32 = 2;
/// The lock or leadership was not acquired; CMD was not run.
pub(crate) const EXIT_NOT_ACQUIRED: i32 = 75;
/// The grant was lost while CMD ran; CMD was stopped.
pub(crate) const EXIT_LOST: i32 = 76;
/// CMD could not be executed.
pub(crate) const EXIT_CANNOT_EXECUTE: i32 = 126;
/// CMD was not found.
pub(crate) const EXIT_NOT_FOUND: i32 = 127;

#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: i32,
    message: String,
    hint: Option<String>,
}

impl Failure {
    pub(crate) fn with_code(code: i32, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            hint: None,
        }
    }

    pub(crate) fn error(message: impl Into<String>) -> Self {
        Self::with_code(EXIT_ERROR, message)
    }

    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self::with_code(EXIT_USAGE, message)
    }

    pub(crate) fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tooz: {}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " ({hint})")?;
        }
        Ok(())
    }
}

impl From<tooz::Error> for Failure {
    fn from(e: tooz::Error) -> Self {
        let hint = match &e {
            tooz::Error::Connection { .. } => {
                Some("is the backend running? check --url / TOOZ_URL")
            }
            tooz::Error::InvalidUrl { .. } | tooz::Error::UnknownOption { .. } => {
                Some("see `tooz --help` for the URL forms")
            }
            tooz::Error::GroupNotCreated { .. } => Some("create it with `tooz group create`"),
            tooz::Error::Unsupported { .. } => Some("`tooz info` shows what this backend supports"),
            _ => None,
        };
        let failure = Self::error(e.to_string());
        match hint {
            Some(hint) => failure.hint(hint),
            None => failure,
        }
    }
}
