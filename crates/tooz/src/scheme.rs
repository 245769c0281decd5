//! URL → backend, through one registration table: each backend's schemes, cargo feature,
//! status and open function in one row. Dispatch, the "not built with feature X" error and the
//! URL tables of the crate docs and the README all come from it (the last two are checked
//! against it by `tests/registrations.rs`).

use url::Url;

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::ids::MemberId;
use crate::options::{redact_str, split_host_list};

/// Builds a backend for a URL, connected for a member (not yet started).
pub(crate) type Opener = fn(&Url, &MemberId) -> Result<Box<dyn Backend>>;

/// Whether a backend can be used yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendStatus {
    /// In this crate (if its feature is enabled).
    Available,
    /// Accepted by Python tooz; not in this crate yet.
    Planned,
}

/// One backend's row in the table.
#[derive(Debug, Clone, Copy)]
pub struct Registration {
    /// The backend's name, as in errors and [`crate::Coordinator::backend_name`].
    pub backend: &'static str,
    /// The URL schemes that select it.
    pub schemes: &'static [&'static str],
    /// The cargo feature that builds it in; `None`: always built.
    pub feature: Option<&'static str>,
    /// Available or planned.
    pub status: BackendStatus,
    /// How to open it; `None` when planned, or when its feature is off in this build.
    open: Option<Opener>,
}

impl Registration {
    /// Whether this build can open it.
    pub fn is_built(&self) -> bool {
        self.open.is_some()
    }
}

const MEMORY: Option<Opener> = Some(|url, member| {
    use crate::drivers::memory::{MemoryBackend, MemoryOptions};
    Ok(Box::new(MemoryBackend::new(
        MemoryOptions::from_url(url)?,
        member.clone(),
    )))
});

#[cfg(feature = "file")]
const FILE: Option<Opener> = Some(|url, member| {
    use crate::drivers::file::{FileBackend, FileOptions};
    Ok(Box::new(FileBackend::new(
        FileOptions::from_url(url)?,
        member.clone(),
    )))
});
#[cfg(not(feature = "file"))]
const FILE: Option<Opener> = None;

#[cfg(feature = "redis")]
const REDIS: Option<Opener> = Some(|url, member| {
    use crate::drivers::redis::{RedisBackend, RedisOptions};
    Ok(Box::new(RedisBackend::new(
        RedisOptions::from_url(url)?,
        member.clone(),
    )))
});
#[cfg(not(feature = "redis"))]
const REDIS: Option<Opener> = None;

#[cfg(feature = "memcached")]
const MEMCACHED: Option<Opener> = Some(|url, member| {
    use crate::drivers::memcached::{MemcachedBackend, MemcachedOptions};
    Ok(Box::new(MemcachedBackend::new(
        MemcachedOptions::from_url(url)?,
        member.clone(),
    )))
});
#[cfg(not(feature = "memcached"))]
const MEMCACHED: Option<Opener> = None;

#[cfg(feature = "postgres")]
const POSTGRES: Option<Opener> = Some(|url, member| {
    use crate::drivers::postgres::{PostgresBackend, PostgresOptions};
    Ok(Box::new(PostgresBackend::new(
        PostgresOptions::from_url(url)?,
        member.clone(),
    )))
});
#[cfg(not(feature = "postgres"))]
const POSTGRES: Option<Opener> = None;

#[cfg(feature = "mysql")]
const MYSQL: Option<Opener> = Some(|url, member| {
    use crate::drivers::mysql::{MysqlBackend, MysqlOptions};
    Ok(Box::new(MysqlBackend::new(
        MysqlOptions::from_url(url)?,
        member.clone(),
    )))
});
#[cfg(not(feature = "mysql"))]
const MYSQL: Option<Opener> = None;

#[cfg(feature = "etcd")]
const ETCD: Option<Opener> = Some(|url, member| {
    use crate::drivers::etcd::{EtcdBackend, EtcdOptions};
    Ok(Box::new(EtcdBackend::new(
        EtcdOptions::from_url(url)?,
        member.clone(),
    )))
});
#[cfg(not(feature = "etcd"))]
const ETCD: Option<Opener> = None;

#[cfg(feature = "zookeeper")]
const ZOOKEEPER: Option<Opener> = Some(|url, member| {
    use crate::drivers::zookeeper::{ZookeeperBackend, ZookeeperOptions};
    Ok(Box::new(ZookeeperBackend::new(
        ZookeeperOptions::from_url(url)?,
        member.clone(),
    )))
});
#[cfg(not(feature = "zookeeper"))]
const ZOOKEEPER: Option<Opener> = None;

const fn planned(backend: &'static str, schemes: &'static [&'static str]) -> Registration {
    Registration {
        backend,
        schemes,
        feature: Some(backend),
        status: BackendStatus::Planned,
        open: None,
    }
}

/// Every backend: those in this crate, then those Python tooz 9.1.0 (or an older release)
/// registers that this crate will accept as they land.
pub const REGISTRATIONS: &[Registration] = &[
    Registration {
        backend: "memory",
        schemes: &["memory"],
        feature: None,
        status: BackendStatus::Available,
        open: MEMORY,
    },
    Registration {
        backend: "file",
        schemes: &["file"],
        feature: Some("file"),
        status: BackendStatus::Available,
        open: FILE,
    },
    Registration {
        backend: "redis",
        schemes: &["redis", "rediss"],
        feature: Some("redis"),
        status: BackendStatus::Available,
        open: REDIS,
    },
    Registration {
        backend: "memcached",
        schemes: &["memcached"],
        feature: Some("memcached"),
        status: BackendStatus::Available,
        open: MEMCACHED,
    },
    Registration {
        backend: "etcd",
        schemes: &["etcd3+http", "etcd3+https", "etcd"],
        feature: Some("etcd"),
        status: BackendStatus::Available,
        open: ETCD,
    },
    Registration {
        backend: "zookeeper",
        schemes: &["zookeeper", "kazoo"],
        feature: Some("zookeeper"),
        status: BackendStatus::Available,
        open: ZOOKEEPER,
    },
    Registration {
        backend: "postgres",
        schemes: &["postgresql", "postgres"],
        feature: Some("postgres"),
        status: BackendStatus::Available,
        open: POSTGRES,
    },
    Registration {
        backend: "mysql",
        schemes: &["mysql"],
        feature: Some("mysql"),
        status: BackendStatus::Available,
        open: MYSQL,
    },
    planned("consul", &["consul"]),
    planned("ipc", &["ipc"]),
];

/// Builds the backend for `url`, connected for `member` (not yet started).
pub(crate) fn open(url: &str, member: &MemberId) -> Result<Box<dyn Backend>> {
    let invalid = |reason: String| Error::InvalidUrl {
        url: redact_str(url),
        reason,
    };
    // (Host lists, `h1:2181,h2:2181`, are no URL authority: made options first.)
    let parsed = Url::parse(&split_host_list(url)).map_err(|e| invalid(e.to_string()))?;
    let scheme = parsed.scheme();
    let Some(registration) = REGISTRATIONS.iter().find(|r| r.schemes.contains(&scheme)) else {
        let known: Vec<String> = REGISTRATIONS
            .iter()
            .filter(|r| r.is_built())
            .flat_map(|r| r.schemes.iter().map(|s| format!("{s}://")))
            .collect();
        return Err(invalid(format!(
            "unknown scheme '{scheme}'; supported: {}",
            known.join(", ")
        )));
    };
    match (registration.open, registration.status, registration.feature) {
        (Some(open), _, _) => open(&parsed, member),
        (None, BackendStatus::Available, Some(feature)) => Err(Error::FeatureNotEnabled {
            what: registration.backend,
            feature,
        }),
        (None, _, _) => Err(invalid(format!(
            "the {} backend is not available in this build of tooz yet",
            registration.backend
        ))),
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
        assert!(error("gopher://x").contains("memory://"));
        assert!(error("consul://u:pw@h").contains("not available"));
        assert!(
            !error("consul://u:pw@h").contains("pw@"),
            "password redacted"
        );
        assert!(error("memory://x?bogus=1").contains("valid options are: timeout"));
    }

    #[test]
    fn every_scheme_belongs_to_one_backend() {
        let mut seen = std::collections::BTreeSet::new();
        for registration in REGISTRATIONS {
            for scheme in registration.schemes {
                assert!(seen.insert(*scheme), "{scheme} registered twice");
            }
        }
    }

    #[cfg(not(feature = "redis"))]
    #[test]
    fn a_backend_left_out_names_its_feature() {
        let err = open("redis://localhost", &MemberId::from("m")).unwrap_err();
        assert!(matches!(
            err,
            Error::FeatureNotEnabled {
                feature: "redis",
                ..
            }
        ));
    }
}
