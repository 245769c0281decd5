//! Options of a `zookeeper://` URL (the table is on [`ZookeeperOptions`]).

use std::fmt;
use std::time::Duration;

use url::Url;

use super::NAME;
use super::paths;
use crate::error::{Error, Result};
use crate::options::{RedactedUrl, UrlOptions, percent_decode};

const OPTIONS: &[&str] = &[
    "timeout",
    "namespace",
    "hosts",
    "randomize_hosts",
    "connection_retry",
    "command_retry",
    "handler",
    "use_ssl",
    "ca",
    "certfile",
    "keyfile",
    "keyfile_password",
    "verify_certs",
];
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// ZooKeeper negotiates session timeouts in milliseconds, as an `int`.
const LONGEST_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// Options of a `zookeeper://[USER:PASSWORD@]HOST[:PORT][,HOST[:PORT]...][/CHROOT]` URL (also
/// `kazoo://`; port 2181), tooz's names and defaults:
///
/// | option | default | meaning |
/// |---|---|---|
/// | `timeout` | `10` | seconds: the session timeout asked of ZooKeeper (it may settle another, within its `minSessionTimeout`..`maxSessionTimeout`), and the bound on connecting and on every request |
/// | `namespace` | `tooz` | the root node of everything (groups, members, locks) |
/// | `hosts` | — | more servers, `host:port`, comma-separated or repeated (as in the URL's host list) |
/// | `randomize_hosts`, `connection_retry`, `command_retry`, `handler` | — | accepted and ignored (kazoo's; the client reconnects by itself, and every call is bounded by `timeout`) |
/// | `use_ssl` | `false` | TLS (cargo feature `zookeeper-tls`), to every host |
/// | `ca` | — | with `use_ssl`, required: the CA (PEM) that signed the servers' certificates; they are always verified against it, names included |
/// | `certfile`, `keyfile` | — | a client certificate and its key (PEM), both or neither |
/// | `verify_certs` | `true` | `false` is refused: it would take any server for ZooKeeper |
/// | `keyfile_password` | — | refused: keep the key unencrypted, readable by this process only |
///
/// A user and password in the URL log in with ZooKeeper's `digest` scheme and every node we
/// create gets the ACL tooz sets: all permissions for that digest identity only. A path after
/// the hosts is a chroot (created if missing); Python tooz ignores it, so processes that share
/// a server with Python tooz use none.
#[derive(Clone)]
pub struct ZookeeperOptions {
    pub(super) url: RedactedUrl,
    /// `host:port,host:port` as the client takes it.
    pub(super) hosts: String,
    /// The chroot (`/app`), or empty.
    pub(super) chroot: String,
    /// The namespace node's path, `/tooz`.
    pub(super) base: String,
    pub(super) user: Option<(String, String)>,
    /// TLS (`use_ssl=true`).
    #[cfg(feature = "zookeeper-tls")]
    pub(super) tls: Option<Tls>,
    /// Bound on connecting and on every request; the session timeout asked for.
    pub timeout: Duration,
}

/// TLS files, read and checked when the URL is: the CA (PEM), and a client certificate chain
/// and key (PEM) if given.
#[cfg(feature = "zookeeper-tls")]
#[derive(Clone)]
pub(super) struct Tls {
    pub(super) ca: String,
    pub(super) identity: Option<(String, String)>,
}

impl fmt::Debug for ZookeeperOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZookeeperOptions")
            .field("url", &self.url)
            .field("hosts", &self.hosts)
            .field("chroot", &self.chroot)
            .field("base", &self.base)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl ZookeeperOptions {
    /// Reads a `zookeeper://` or `kazoo://` URL (a host list in it already turned into
    /// `hosts` options before the URL was parsed: `zookeeper://h1,h2` is no valid URL).
    pub fn from_url(url: &Url) -> Result<Self> {
        let shown = RedactedUrl::new(url.clone());
        let options = UrlOptions::parse(NAME, url, OPTIONS)?;
        #[cfg_attr(not(feature = "zookeeper-tls"), allow(unused_variables))]
        let tls = tls(&options)?;
        options.bool("randomize_hosts", true)?;
        let host = match url.host() {
            Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
            Some(host) => host.to_string(),
            None => "localhost".to_owned(),
        };
        let mut hosts = vec![format!("{host}:{}", url.port().unwrap_or(2181))];
        for listed in options.get_all("hosts") {
            for endpoint in listed.split(',').map(str::trim).filter(|e| !e.is_empty()) {
                // (As kazoo: a host without a port is on 2181.)
                let endpoint = if endpoint.ends_with(']') || !endpoint.contains(':') {
                    format!("{endpoint}:2181")
                } else {
                    endpoint.to_owned()
                };
                let valid = !endpoint.contains("://")
                    && !endpoint.contains('/')
                    && endpoint
                        .rsplit_once(':')
                        .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
                if !valid {
                    return Err(options.invalid("hosts", &endpoint, "expected HOST[:PORT]"));
                }
                hosts.push(endpoint);
            }
        }
        let chroot = url.path().trim_end_matches('/');
        if !chroot.is_empty() {
            let decoded = percent_decode(chroot).unwrap_or_default();
            paths::check_path(&decoded).map_err(|reason| Error::InvalidUrl {
                url: shown.to_string(),
                reason: format!("the chroot '{chroot}' is not a ZooKeeper path: {reason}"),
            })?;
        }
        let chroot = percent_decode(chroot).unwrap_or_default();
        let namespace = options.get("namespace").unwrap_or("tooz");
        let base = format!("/{}", namespace.trim_matches('/'));
        if let Err(reason) = paths::check_path(&base) {
            return Err(options.invalid("namespace", namespace, &reason));
        }
        let decode = |s: &str| {
            percent_decode(s).ok_or_else(|| Error::InvalidUrl {
                url: shown.to_string(),
                reason: "the user or password is not valid percent-encoded UTF-8".into(),
            })
        };
        // (tooz logs in only with both; a user alone would be ignored, so it is refused.)
        let user = match (url.username(), url.password()) {
            ("", None) => None,
            (user, Some(password)) if !user.is_empty() => Some((decode(user)?, decode(password)?)),
            _ => {
                return Err(Error::InvalidUrl {
                    url: shown.to_string(),
                    reason: "digest authentication needs both a user and a password".into(),
                });
            }
        };
        let timeout = options.duration_within(
            "timeout",
            DEFAULT_TIMEOUT,
            (Duration::from_millis(100), LONGEST_TIMEOUT),
            "between 0.1 s and 24 hours",
        )?;
        Ok(Self {
            url: shown,
            hosts: hosts.join(","),
            chroot,
            base,
            user,
            #[cfg(feature = "zookeeper-tls")]
            tls,
            timeout,
        })
    }
}

#[cfg(feature = "zookeeper-tls")]
type TlsSettings = Tls;
#[cfg(not(feature = "zookeeper-tls"))]
type TlsSettings = std::convert::Infallible;

/// Reads tooz's (kazoo's) TLS options: `use_ssl=true` needs `ca` (the servers are always
/// verified against it, names included); `certfile` and `keyfile` go together; what would
/// weaken or be ignored is refused rather than dropped.
fn tls(options: &UrlOptions) -> Result<Option<TlsSettings>> {
    let use_ssl = options.bool("use_ssl", false)?;
    if !options.bool("verify_certs", true)? {
        return Err(options.invalid(
            "verify_certs",
            options.get("verify_certs").unwrap_or_default(),
            "refused: it would take any server for ZooKeeper (give the CA in `ca` instead)",
        ));
    }
    if let Some(value) = options.get("keyfile_password") {
        let _ = value;
        return Err(options.invalid(
            "keyfile_password",
            "(hidden)",
            "encrypted keys are not supported: keep the key unencrypted, readable by this \
             process only",
        ));
    }
    let (ca, cert, key) = (
        options.get("ca"),
        options.get("certfile"),
        options.get("keyfile"),
    );
    if !use_ssl {
        for (option, value) in [("ca", ca), ("certfile", cert), ("keyfile", key)] {
            if let Some(value) = value {
                return Err(options.invalid(
                    option,
                    value,
                    "TLS options need use_ssl=true (here they would be ignored)",
                ));
            }
        }
        return Ok(None);
    }
    let Some(ca) = ca else {
        return Err(options.invalid(
            "ca",
            "",
            "use_ssl=true needs the CA that signed the servers' certificates: they are always \
             verified",
        ));
    };
    let client = match (cert, key) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        (Some(_), None) => {
            return Err(options.invalid("keyfile", "", "certfile and keyfile go together"));
        }
        (None, Some(_)) => {
            return Err(options.invalid("certfile", "", "certfile and keyfile go together"));
        }
    };
    #[cfg(feature = "zookeeper-tls")]
    {
        use crate::drivers::tls::{TlsFiles, client_config};
        // Read and checked now, so that a bad file is an error naming its option.
        let files = TlsFiles {
            ca: (ca.into(), "ca"),
            client: client.map(|(c, k)| ((c.into(), "certfile"), (k.into(), "keyfile"))),
            check_hostname: true,
        };
        client_config(NAME, &files)?;
        let read = |path: &str, option: &str| {
            std::fs::read_to_string(path)
                .map_err(|e| options.invalid(option, path, &format!("cannot read it as text: {e}")))
        };
        let identity = match client {
            Some((cert, key)) => Some((read(cert, "certfile")?, read(key, "keyfile")?)),
            None => None,
        };
        Ok(Some(Tls {
            ca: read(ca, "ca")?,
            identity,
        }))
    }
    #[cfg(not(feature = "zookeeper-tls"))]
    {
        let _ = (ca, client);
        Err(Error::FeatureNotEnabled {
            what: "TLS for ZooKeeper (use_ssl=true)",
            feature: "zookeeper-tls",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::options::split_host_list;

    fn parse(url: &str) -> Result<ZookeeperOptions> {
        ZookeeperOptions::from_url(&Url::parse(&split_host_list(url)).unwrap())
    }

    #[test]
    fn host_lists_become_hosts_options() {
        assert_eq!(
            split_host_list("zookeeper://u:p@h1:2181,h2:2182,h3/app?timeout=3#x"),
            "zookeeper://u:p@h1:2181/app?timeout=3&hosts=h2:2182&hosts=h3#x"
        );
        assert_eq!(split_host_list("kazoo://h1,h2"), "kazoo://h1?hosts=h2");
        assert_eq!(split_host_list("redis://a,b"), "redis://a,b");
        assert_eq!(split_host_list("zookeeper://h1"), "zookeeper://h1");
        let options = parse("zookeeper://h1:2181,h2:2182/app?hosts=h3:1,h4:2").unwrap();
        assert_eq!(options.hosts, "h1:2181,h3:1,h4:2,h2:2182");
        assert_eq!(options.chroot, "/app");
        assert_eq!(options.base, "/tooz");
        let options = parse("zookeeper://h1,h2,[::1]").unwrap();
        assert_eq!(options.hosts, "h1:2181,h2:2181,[::1]:2181");
    }

    #[test]
    fn defaults_are_tooz_s() {
        let options = parse("zookeeper://localhost").unwrap();
        assert_eq!(options.hosts, "localhost:2181");
        assert_eq!(options.timeout, Duration::from_secs(10));
        assert_eq!(options.chroot, "");
        assert!(options.user.is_none());
        let options = parse("kazoo://u:p%40ss@[::1]:2190?namespace=other&timeout=2.5").unwrap();
        assert_eq!(options.hosts, "[::1]:2190");
        assert_eq!(options.base, "/other");
        assert_eq!(options.timeout, Duration::from_millis(2500));
        assert_eq!(options.user, Some(("u".into(), "p@ss".into())));
    }

    #[test]
    fn bad_options_are_named() {
        for (url, named) in [
            ("zookeeper://h?hosts=x:y", "hosts"),
            ("zookeeper://h?hosts=h:1/chroot", "hosts"),
            ("zookeeper://h?timeout=0", "timeout"),
            ("zookeeper://h?timeout=1e9", "timeout"),
            ("zookeeper://h?namespace=a/../b", "namespace"),
            ("zookeeper://h?namespace=a%00b", "namespace"),
            ("zookeeper://h?ca=/x", "ca"),
            ("zookeeper://h?certfile=/x", "certfile"),
            ("zookeeper://h?verify_certs=false", "verify_certs"),
            ("zookeeper://h?keyfile_password=secret", "keyfile_password"),
            ("zookeeper://h?bogus=1", "bogus"),
        ] {
            let err = parse(url).unwrap_err().to_string();
            assert!(err.contains(named), "{url}: {err}");
        }
        let err = parse("zookeeper://u@h").unwrap_err().to_string();
        assert!(err.contains("user and a password"), "{err}");
        let err = parse("zookeeper://u:secret@h/a//b")
            .unwrap_err()
            .to_string();
        assert!(err.contains("chroot") && !err.contains("secret"), "{err}");
        let shown = format!("{:?}", parse("zookeeper://u:secret@h").unwrap());
        assert!(!shown.contains("secret"), "{shown}");
    }
}
