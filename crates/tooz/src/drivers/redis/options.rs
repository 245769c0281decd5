//! Reading a `redis://` URL: tooz's options and defaults, TLS files, Sentinel, credentials.

use std::fmt;
use std::time::Duration;

use redis::{ConnectionAddr, RedisConnectionInfo};
use url::Url;

use super::NAME;
#[cfg(feature = "redis-tls")]
use super::redis_error;
use super::sentinel::SentinelOptions;
use crate::error::{Error, Result};
use crate::options::{RedactedUrl, UrlOptions};

const OPTIONS: &[&str] = &[
    "timeout",
    "membership_timeout",
    "lock_timeout",
    "namespace",
    "db",
    "socket_timeout",
    "socket_connect_timeout",
    "encoding",
    "retry_on_timeout",
    "socket_keepalive",
    "health_check_interval",
    "executor",
    "ssl",
    "ssl_certfile",
    "ssl_keyfile",
    "ssl_ca_certs",
    "sentinel",
    "sentinel_fallback",
    "sentinel_username",
    "sentinel_password",
    "sentinel_ssl",
];
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Certificate files for TLS (tooz's `ssl_*` options).
#[derive(Debug, Clone, Default)]
#[cfg_attr(not(feature = "redis-tls"), allow(dead_code))]
pub(super) struct TlsFiles {
    ca_certs: Option<std::path::PathBuf>,
    certfile: Option<std::path::PathBuf>,
    keyfile: Option<std::path::PathBuf>,
}

/// Options of a `redis://` URL.
#[derive(Clone)]
pub struct RedisOptions {
    pub(super) url: RedactedUrl,
    pub(super) addr: ConnectionAddr,
    pub(super) tls: Option<TlsFiles>,
    pub(super) sentinel: Option<SentinelOptions>,
    pub(super) settings: RedisConnectionInfo,
    /// TTL of the member's beat key.
    pub membership_timeout: Duration,
    /// TTL of locks and leaderships.
    pub lock_timeout: Duration,
    /// Key prefix.
    pub namespace: String,
    /// Bound on each reply.
    pub socket_timeout: Duration,
    /// Bound on connecting.
    pub connect_timeout: Duration,
}

impl fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisOptions")
            .field("url", &self.url)
            .field("membership_timeout", &self.membership_timeout)
            .field("lock_timeout", &self.lock_timeout)
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl RedisOptions {
    /// Reads a `redis://` URL.
    pub fn from_url(url: &Url) -> Result<Self> {
        let shown = RedactedUrl::new(url.clone());
        let invalid = |reason: String| Error::InvalidUrl {
            url: shown.to_string(),
            reason,
        };
        let options = UrlOptions::parse(NAME, url, OPTIONS)?;
        let path = |name: &str| options.get(name).map(std::path::PathBuf::from);
        let tls = (url.scheme() == "rediss" || options.bool("ssl", false)?).then(|| TlsFiles {
            ca_certs: path("ssl_ca_certs"),
            certfile: path("ssl_certfile"),
            keyfile: path("ssl_keyfile"),
        });
        let ssl_files = ["ssl_ca_certs", "ssl_certfile", "ssl_keyfile"];
        if tls.is_none() && ssl_files.iter().any(|o| options.get(o).is_some()) {
            return Err(invalid(
                "ssl_* options need TLS: use rediss:// or ssl=true".into(),
            ));
        }
        if cfg!(not(feature = "redis-tls")) && tls.is_some() {
            return Err(Error::FeatureNotEnabled {
                what: "TLS for redis:// (rediss://, ssl=true)",
                feature: "redis-tls",
            });
        }
        if options
            .get("encoding")
            .is_some_and(|e| !e.eq_ignore_ascii_case("utf8") && !e.eq_ignore_ascii_case("utf-8"))
        {
            return Err(options.invalid(
                "encoding",
                options.get("encoding").unwrap_or(""),
                "only utf8 is supported",
            ));
        }
        let timeout = options.duration("timeout", DEFAULT_TIMEOUT)?;
        let membership_timeout = options.duration("membership_timeout", timeout)?;
        let lock_timeout = options.duration("lock_timeout", timeout)?;
        for (name, value) in [
            ("membership_timeout", membership_timeout),
            ("lock_timeout", lock_timeout),
        ] {
            if value < Duration::from_millis(100) {
                return Err(options.invalid(
                    name,
                    &format!("{value:?}"),
                    "must be at least 100 ms",
                ));
            }
        }
        let decode = |s: &str| {
            percent_decode(s).map_err(|()| {
                invalid("the user name or password is not valid percent-encoding".into())
            })
        };
        let (addr, path_db) = match url.host_str().filter(|h| !h.is_empty()) {
            Some(host) => {
                let host = host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_owned();
                let db = url.path().trim_start_matches('/');
                let db = if db.is_empty() {
                    None
                } else {
                    Some(db.parse::<i64>().map_err(|_| {
                        invalid(format!("the path '/{db}' is not a database number"))
                    })?)
                };
                (
                    tcp_addr(host, url.port().unwrap_or(6379), tls.is_some()),
                    db,
                )
            }
            None if !url.path().is_empty() && url.path() != "/" => {
                (ConnectionAddr::Unix(url.path().into()), None)
            }
            None => return Err(invalid("no host and no socket path".into())),
        };
        let db = match options.get("db") {
            Some(_) => options.u64("db", 0)? as i64,
            None => path_db.unwrap_or(0),
        };
        let mut settings = RedisConnectionInfo::default().set_db(db);
        if !url.username().is_empty() {
            settings = settings.set_username(decode(url.username())?);
        }
        if let Some(password) = url.password() {
            settings = settings.set_password(decode(password)?);
        }
        let sentinel = match &addr {
            ConnectionAddr::Tcp(host, port) | ConnectionAddr::TcpTls { host, port, .. } => {
                SentinelOptions::from_options(&options, (host.clone(), *port))?
            }
            _ if options.get("sentinel").is_some() => {
                return Err(invalid(
                    "sentinels are reached over TCP, not a unix socket".into(),
                ));
            }
            _ => None,
        };
        Ok(Self {
            url: shown,
            addr,
            tls,
            sentinel,
            settings,
            membership_timeout,
            lock_timeout,
            namespace: options.get("namespace").unwrap_or("_tooz").to_owned(),
            socket_timeout: options.duration("socket_timeout", timeout)?,
            connect_timeout: options.duration("socket_connect_timeout", timeout)?,
        })
    }
}

/// A TCP address, with TLS (certificates checked) or without.
pub(super) fn tcp_addr(host: String, port: u16, tls: bool) -> ConnectionAddr {
    if tls {
        ConnectionAddr::TcpTls {
            host,
            port,
            insecure: false,
            tls_params: None,
        }
    } else {
        ConnectionAddr::Tcp(host, port)
    }
}

fn percent_decode(s: &str) -> std::result::Result<String, ()> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3).ok_or(())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| ())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ())
}

#[cfg(feature = "redis-tls")]
pub(super) fn tls_client(info: redis::ConnectionInfo, files: &TlsFiles) -> Result<redis::Client> {
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|e| Error::InvalidOption {
            backend: NAME,
            option: "ssl_*".to_owned(),
            value: path.display().to_string(),
            reason: format!("cannot read the file: {e}"),
        })
    };
    let client_tls = match (&files.certfile, &files.keyfile) {
        (Some(cert), Some(key)) => Some(redis::ClientTlsConfig {
            client_cert: read(cert)?,
            client_key: read(key)?,
        }),
        (None, None) => None,
        _ => {
            return Err(Error::InvalidOption {
                backend: NAME,
                option: "ssl_certfile".to_owned(),
                value: String::new(),
                reason: "ssl_certfile and ssl_keyfile go together".to_owned(),
            });
        }
    };
    let root_cert = files.ca_certs.as_deref().map(read).transpose()?;
    let certs = redis::TlsCertificates {
        client_tls,
        root_cert,
    };
    redis::Client::build_with_tls(info, certs).map_err(redis_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(url: &str) -> Result<RedisOptions> {
        RedisOptions::from_url(&Url::parse(url).unwrap())
    }

    #[test]
    fn urls_take_toozs_forms_and_defaults() {
        let o = options("redis://127.0.0.1").unwrap();
        assert_eq!(o.lock_timeout, Duration::from_secs(30));
        assert_eq!(o.namespace, "_tooz");
        let o = options("redis://h:7000/3?timeout=5&lock_timeout=2&namespace=app").unwrap();
        assert_eq!(
            (o.membership_timeout, o.lock_timeout),
            (Duration::from_secs(5), Duration::from_secs(2))
        );
        assert_eq!(o.settings.db(), 3);
        assert!(matches!(o.addr, ConnectionAddr::Tcp(ref h, 7000) if h == "h"));
        let o = options("redis:///run/redis.sock?db=2").unwrap();
        assert!(matches!(o.addr, ConnectionAddr::Unix(_)));
        assert_eq!(o.settings.db(), 2);
        options("redis://h?executor=threaded&retry_on_timeout=true").unwrap();
        let o = options("redis://s1:26379?sentinel=mymaster&sentinel_fallback=s2:26380&sentinel_fallback=[::1]:1").unwrap();
        let sentinel = o.sentinel.expect("sentinel options");
        assert_eq!(sentinel.master, "mymaster");
        assert_eq!(
            sentinel.sentinels,
            [
                ("s1".into(), 26379),
                ("s2".into(), 26380),
                ("::1".into(), 1)
            ]
        );
        assert!(options("redis://s1?sentinel=m&sentinel_fallback=nonsense").is_err());
    }

    #[test]
    fn bad_urls_name_the_problem_and_never_the_password() {
        let err = options("redis://u:s3cret@h/x").unwrap_err().to_string();
        assert!(err.contains("'/x'") && !err.contains("s3cret"), "{err}");
        assert!(
            options("redis://h?sentinel=m&sentinel_ssl=true")
                .unwrap_err()
                .is_unsupported()
        );
        let err = options("redis://h?ssl_ca_certs=/x.pem")
            .unwrap_err()
            .to_string();
        assert!(err.contains("rediss://"), "{err}");
        match options("rediss://h?ssl_ca_certs=/ca.pem") {
            Ok(o) => assert!(
                cfg!(feature = "redis-tls") && matches!(o.addr, ConnectionAddr::TcpTls { .. })
            ),
            Err(e) => assert!(!cfg!(feature = "redis-tls") && e.is_unsupported(), "{e}"),
        }
        assert!(
            options("redis://h?timout=1")
                .unwrap_err()
                .to_string()
                .contains("valid options")
        );
        let o = options("redis://u:s3cret@h").unwrap();
        assert!(!format!("{o:?}").contains("s3cret"));
        assert_eq!(o.settings.password(), Some("s3cret"));
    }
}
