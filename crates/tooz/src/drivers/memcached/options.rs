//! Options of a `memcached://` URL (the table is on [`MemcachedOptions`]).

use std::fmt;
use std::time::Duration;

use url::Url;

use super::NAME;
use crate::error::{Error, Result};
use crate::options::{RedactedUrl, UrlOptions};

const OPTIONS: &[&str] = &[
    "timeout",
    "membership_timeout",
    "lock_timeout",
    "leader_timeout",
    "max_pool_size",
    "use_ssl",
    "ca_cert",
    "ssl_cert",
    "ssl_key",
    "ssl_key_password",
    "ssl_ciphers",
    "ssl_check_hostname",
    "executor",
];
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_PORT: u16 = 11211;
const DEFAULT_CONNECTIONS: u64 = 4;
/// memcached reads a TTL over 30 days as a point in time.
const LONGEST_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// memcached's clock ticks once a second, so an item may expire up to a second before its
/// TTL: a TTL of one second could be no time at all.
const SHORTEST_TTL: Duration = Duration::from_secs(2);

/// Options of a `memcached://HOST[:PORT]` URL (tooz's names and defaults):
///
/// | option | default | meaning |
/// |---|---|---|
/// | `timeout` | `30` | seconds: bound on connecting and on every exchange, and the default of the three below |
/// | `membership_timeout` | `timeout` | TTL of a member's key (whole seconds, 2 to 30 days) |
/// | `lock_timeout` | `timeout` | TTL of a lock (whole seconds, 2 to 30 days) |
/// | `leader_timeout` | `timeout` | TTL of a leadership (whole seconds, 2 to 30 days) |
/// | `max_pool_size` | `4` | connections to the server at most |
/// | `use_ssl` | `false` | TLS (cargo feature `memcached-tls`); the server's certificate is always verified |
/// | `ca_cert` | — | with `use_ssl`, required: the CA that signed the server's certificate |
/// | `ssl_cert`, `ssl_key` | — | a client certificate and its (unencrypted) key |
/// | `ssl_check_hostname` | `false` | also check that the certificate names the host (tooz's default is not to) |
/// | `ssl_key_password`, `ssl_ciphers` | — | refused: encrypted keys and cipher lists are not supported |
/// | `executor` | — | accepted and ignored (tooz's thread pool) |
#[derive(Clone)]
pub struct MemcachedOptions {
    pub(super) url: RedactedUrl,
    /// `host:port`.
    pub(super) addr: String,
    /// Bound on connecting and on every exchange.
    pub timeout: Duration,
    /// TTL of a member's key.
    pub membership_timeout: Duration,
    /// TTL of a lock.
    pub lock_timeout: Duration,
    /// TTL of a leadership.
    pub leader_timeout: Duration,
    /// Connections at most.
    pub max_pool_size: usize,
    /// TLS, built from the `use_ssl` options.
    #[cfg(feature = "memcached-tls")]
    pub(super) tls: Option<super::client::Tls>,
}

/// Reads the `use_ssl` options: the CA (required, the server is always verified), a client
/// certificate, the name check; the rustls configuration is built here, so that a bad file is
/// an error of the URL.
#[allow(unused_variables)]
fn tls(options: &UrlOptions, host: &str) -> Result<Option<TlsSettings>> {
    if !options.bool("use_ssl", false)? {
        return Ok(None);
    }
    for unsupported in ["ssl_key_password", "ssl_ciphers"] {
        if let Some(value) = options.get(unsupported) {
            return Err(options.invalid(
                unsupported,
                value,
                "not supported: use an unencrypted key file and the default cipher suites",
            ));
        }
    }
    let Some(ca) = options.get("ca_cert") else {
        return Err(options.invalid(
            "ca_cert",
            "",
            "use_ssl=true needs the CA that signed the server's certificate: it is always verified",
        ));
    };
    let client = match (options.get("ssl_cert"), options.get("ssl_key")) {
        (Some(cert), Some(key)) => Some((
            (std::path::PathBuf::from(cert), "ssl_cert"),
            (std::path::PathBuf::from(key), "ssl_key"),
        )),
        (None, None) => None,
        _ => {
            return Err(options.invalid("ssl_cert", "", "ssl_cert and ssl_key go together"));
        }
    };
    let check_hostname = options.bool("ssl_check_hostname", false)?;
    #[cfg(feature = "memcached-tls")]
    {
        let files = crate::drivers::tls::TlsFiles {
            ca: (ca.into(), "ca_cert"),
            client,
            check_hostname,
        };
        let config = crate::drivers::tls::client_config(NAME, &files)?;
        let server_name = rustls::pki_types::ServerName::try_from(host.to_owned())
            .map_err(|e| options.invalid("use_ssl", "true", &format!("host {host}: {e}")))?;
        Ok(Some(super::client::Tls {
            config: std::sync::Arc::new(config),
            server_name,
        }))
    }
    #[cfg(not(feature = "memcached-tls"))]
    Err(Error::FeatureNotEnabled {
        what: "TLS for memcached:// (use_ssl=true)",
        feature: "memcached-tls",
    })
}

/// The host as a certificate names it: an IPv6 literal without its brackets.
fn host_name(url: &Url) -> String {
    match url.host() {
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        Some(host) => host.to_string(),
        None => "localhost".to_owned(),
    }
}

#[cfg(feature = "memcached-tls")]
type TlsSettings = super::client::Tls;
#[cfg(not(feature = "memcached-tls"))]
type TlsSettings = std::convert::Infallible;

impl fmt::Debug for MemcachedOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemcachedOptions")
            .field("url", &self.url)
            .field("membership_timeout", &self.membership_timeout)
            .field("lock_timeout", &self.lock_timeout)
            .field("leader_timeout", &self.leader_timeout)
            .finish_non_exhaustive()
    }
}

impl MemcachedOptions {
    /// Reads a `memcached://` URL.
    pub fn from_url(url: &Url) -> Result<Self> {
        let shown = RedactedUrl::new(url.clone());
        let options = UrlOptions::parse(NAME, url, OPTIONS)?;
        let host = match url.host() {
            Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
            Some(host) => host.to_string(),
            None => "localhost".to_owned(),
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Error::InvalidUrl {
                url: shown.to_string(),
                reason: "memcached takes no user or password here (SASL is not offered)".into(),
            });
        }
        let addr = format!("{host}:{}", url.port().unwrap_or(DEFAULT_PORT));
        #[cfg_attr(not(feature = "memcached-tls"), allow(unused_variables))]
        let tls = tls(&options, &host_name(url))?;
        let timeout = options.duration("timeout", DEFAULT_TIMEOUT)?;
        if timeout.is_zero() {
            return Err(options.invalid("timeout", "0", "must be greater than zero"));
        }
        let ttl = |name: &str| -> Result<Duration> {
            let value = options.duration(name, timeout)?;
            let shown = options.get(name).unwrap_or("(from timeout)");
            if value.subsec_nanos() != 0 {
                return Err(options.invalid(name, shown, "memcached TTLs are whole seconds"));
            }
            if !(SHORTEST_TTL..=LONGEST_TTL).contains(&value) {
                return Err(options.invalid(
                    name,
                    shown,
                    "between 2 seconds (memcached expires items up to a second early) and 30 \
                     days (memcached reads longer TTLs as dates)",
                ));
            }
            Ok(value)
        };
        let connections = options.u64("max_pool_size", DEFAULT_CONNECTIONS)?;
        if !(1..=1024).contains(&connections) {
            let raw = options.get("max_pool_size").unwrap_or("");
            return Err(options.invalid("max_pool_size", raw, "between 1 and 1024"));
        }
        Ok(Self {
            url: shown,
            addr,
            timeout,
            membership_timeout: ttl("membership_timeout")?,
            lock_timeout: ttl("lock_timeout")?,
            leader_timeout: ttl("leader_timeout")?,
            max_pool_size: connections as usize,
            #[cfg(feature = "memcached-tls")]
            tls,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> Result<MemcachedOptions> {
        MemcachedOptions::from_url(&url.parse().unwrap())
    }

    #[test]
    fn tooz_defaults_and_names() {
        let o = parse("memcached://127.0.0.1").unwrap();
        assert_eq!(o.addr, "127.0.0.1:11211");
        assert_eq!(o.timeout, Duration::from_secs(30));
        assert_eq!(o.lock_timeout, Duration::from_secs(30));
        let o = parse("memcached://h:1234?timeout=5&lock_timeout=7&leader_timeout=3").unwrap();
        assert_eq!(o.addr, "h:1234");
        assert_eq!(o.membership_timeout, Duration::from_secs(5));
        assert_eq!(o.lock_timeout, Duration::from_secs(7));
        assert_eq!(o.leader_timeout, Duration::from_secs(3));
    }

    #[test]
    fn ttls_memcached_cannot_keep_are_refused() {
        for bad in [
            "lock_timeout=1",
            "lock_timeout=0",
            "lock_timeout=2.5",
            "membership_timeout=2592001",
            "timeout=99999999999",
            "lock_timeout=abc",
            "max_pool_size=0",
        ] {
            let err = parse(&format!("memcached://h?{bad}")).unwrap_err();
            assert!(matches!(err, Error::InvalidOption { .. }), "{bad}: {err:?}");
        }
        assert!(matches!(
            parse("memcached://h?use_ssl=true").unwrap_err(),
            Error::InvalidOption { option, .. } if option == "ca_cert"
        ));
        assert!(matches!(
            parse("memcached://h?nope=1").unwrap_err(),
            Error::UnknownOption { .. }
        ));
    }
}
