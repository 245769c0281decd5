//! Options of a `file:///DIR` URL (the table is on [`FileOptions`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use url::Url;

use super::NAME;
use crate::error::{Error, Result};
use crate::options::UrlOptions;

const OPTIONS: &[&str] = &["timeout", "executor"];
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Options of a `file:///DIR` URL:
///
/// | option | default | meaning |
/// |---|---|---|
/// | `timeout` | `10` | seconds a member stays alive without a heartbeat (tooz's `timeout`) |
/// | `executor` | — | accepted so that tooz URLs work unchanged; it has no effect here |
#[derive(Debug, Clone)]
pub struct FileOptions {
    /// The directory.
    pub dir: PathBuf,
    /// How long a member stays alive without a heartbeat.
    pub timeout: Duration,
}

impl FileOptions {
    /// Reads a `file:///DIR?options` URL.
    pub fn from_url(url: &Url) -> Result<Self> {
        let options = UrlOptions::parse(NAME, url, OPTIONS)?;
        let timeout = options.duration("timeout", DEFAULT_TIMEOUT)?;
        if timeout.is_zero() {
            return Err(options.invalid("timeout", "0", "must be greater than zero"));
        }
        let invalid = |reason: &str| Error::InvalidUrl {
            url: url.to_string(),
            reason: reason.to_owned(),
        };
        if url.host_str().is_some_and(|h| !h.is_empty()) {
            return Err(invalid(
                "a file URL names a directory by its absolute path: use three slashes, as in file:///var/lib/app/tooz",
            ));
        }
        let dir = url
            .to_file_path()
            .map_err(|()| invalid("the path is not a usable local path"))?;
        if dir == Path::new("/") {
            return Err(invalid("refusing to use / as the coordination directory"));
        }
        Ok(Self { dir, timeout })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_absolute_directories() {
        let ok = FileOptions::from_url(&Url::parse("file:///tmp/x?timeout=3").unwrap()).unwrap();
        assert_eq!(ok.dir, PathBuf::from("/tmp/x"));
        assert_eq!(ok.timeout, Duration::from_secs(3));
        let err = FileOptions::from_url(&Url::parse("file://tmp/x").unwrap()).unwrap_err();
        assert!(err.to_string().contains("three slashes"), "{err}");
        assert!(FileOptions::from_url(&Url::parse("file:///").unwrap()).is_err());
        FileOptions::from_url(&Url::parse("file:///x?executor=sync").unwrap()).unwrap();
        let err = FileOptions::from_url(&Url::parse("file:///x?timout=1").unwrap());
        assert!(
            err.unwrap_err()
                .to_string()
                .contains("valid options are: timeout")
        );
    }
}
