//! URL → backend: one `match`, one arm per backend.

use url::Url;

use crate::backend::Backend;
use crate::drivers::memory::{MemoryBackend, MemoryOptions};
use crate::error::{Error, Result};
use crate::ids::MemberId;
use crate::options::redact_str;

/// The schemes Python tooz 9.1.0 (or an older release) registers, which this crate will accept
/// as its backends land.
const PLANNED: &[(&str, &str)] = &[
    ("etcd3+http", "etcd"),
    ("etcd3+https", "etcd"),
    ("etcd", "etcd"),
    ("zookeeper", "zookeeper"),
    ("kazoo", "zookeeper"),
    ("postgresql", "postgres"),
    ("mysql", "mysql"),
    ("memcached", "memcached"),
    ("consul", "consul"),
    ("ipc", "ipc"),
];

/// Builds the backend for `url`, connected for `member` (not yet started).
pub(crate) fn open(url: &str, member: &MemberId) -> Result<Box<dyn Backend>> {
    let invalid = |reason: String| Error::InvalidUrl {
        url: redact_str(url),
        reason,
    };
    let parsed = Url::parse(url).map_err(|e| invalid(e.to_string()))?;
    match parsed.scheme() {
        "memory" => Ok(Box::new(MemoryBackend::new(
            MemoryOptions::from_url(&parsed)?,
            member.clone(),
        ))),
        #[cfg(feature = "file")]
        "file" => Ok(Box::new(crate::drivers::file::FileBackend::new(
            crate::drivers::file::FileOptions::from_url(&parsed)?,
            member.clone(),
        ))),
        #[cfg(feature = "redis")]
        "redis" | "rediss" => Ok(Box::new(crate::drivers::redis::RedisBackend::new(
            crate::drivers::redis::RedisOptions::from_url(&parsed)?,
            member.clone(),
        ))),
        #[cfg(not(feature = "redis"))]
        "redis" | "rediss" => Err(invalid(
            "the redis backend is not built in: enable the cargo feature `redis`".to_owned(),
        )),
        #[cfg(not(feature = "file"))]
        "file" => Err(invalid(
            "the file backend is not built in: enable the cargo feature `file`".to_owned(),
        )),
        scheme => match PLANNED.iter().find(|(s, _)| *s == scheme) {
            Some((_, backend)) => Err(invalid(format!(
                "the {backend} backend is not available in this build of tooz yet"
            ))),
            None => Err(invalid(format!(
                "unknown scheme '{scheme}'; supported: memory://, file:///DIR, redis://"
            ))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(url: &str) -> String {
        open(url, &MemberId::from("m")).unwrap_err().to_string()
    }

    #[test]
    fn bad_urls_name_the_problem() {
        assert!(
            error("nonsense").contains("relative URL"),
            "{}",
            error("nonsense")
        );
        assert!(error("gopher://x").contains("unknown scheme 'gopher'"));
        assert!(error("etcd3+http://u:pw@h").contains("not available"));
        assert!(
            !error("etcd3+http://u:pw@h").contains("pw@"),
            "password redacted"
        );
        assert!(error("memory://x?bogus=1").contains("valid options are: timeout"));
    }
}
