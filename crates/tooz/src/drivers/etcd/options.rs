//! Options of an `etcd3+http://` URL (the table is on [`EtcdOptions`]).

use std::fmt;
use std::time::Duration;

use url::Url;

use super::NAME;
use crate::error::{Error, Result};
use crate::options::{RedactedUrl, UrlOptions, percent_decode};

const OPTIONS: &[&str] = &[
    "timeout",
    "membership_timeout",
    "lock_timeout",
    "endpoints",
    "api_version",
    "ca_cert",
    "cert_key",
    "cert_cert",
    "executor",
];
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// etcd takes lease TTLs in whole seconds (as an int64; a year is plenty).
const LONGEST_TTL: Duration = Duration::from_secs(365 * 24 * 3600);

/// Options of an `etcd3+http://HOST[:PORT]` URL (also `etcd://`; port 2379), tooz's names and
/// defaults:
///
/// | option | default | meaning |
/// |---|---|---|
/// | `timeout` | `30` | seconds: bound on connecting and on every request, and the default of the two below |
/// | `membership_timeout` | `timeout` | the session lease's TTL (whole seconds, at least 2): how long members, locks and leaderships outlive the last heartbeat |
/// | `lock_timeout` | `timeout` | as tooz's; the session lease takes the shorter of the two |
/// | `endpoints` | — | more endpoints, `host:port`, comma-separated or repeated, or listed in the URL (`etcd3+http://h1:2379,h2:2379`; etcd clients balance over them) |
/// | `api_version` | — | accepted and ignored (tooz's gateway path; we speak gRPC) |
/// | `ca_cert` | — | `etcd3+https://` (cargo feature `etcd-tls`): the CA that signed the servers' certificates, required; they are always verified, names included |
/// | `cert_cert`, `cert_key` | — | a client certificate and its key (PEM), both or neither |
/// | `executor` | — | accepted and ignored (tooz's thread pool) |
#[derive(Clone)]
pub struct EtcdOptions {
    /// TLS, for `etcd3+https://`.
    #[cfg(feature = "etcd-tls")]
    pub(super) tls: Option<Tls>,
    pub(super) url: RedactedUrl,
    pub(super) endpoints: Vec<String>,
    pub(super) user: Option<(String, String)>,
    /// Bound on connecting and on every request.
    pub timeout: Duration,
    /// The session lease's TTL.
    pub lease_ttl: Duration,
}

impl fmt::Debug for EtcdOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdOptions")
            .field("url", &self.url)
            .field("endpoints", &self.endpoints)
            .field("timeout", &self.timeout)
            .field("lease_ttl", &self.lease_ttl)
            .finish_non_exhaustive()
    }
}

impl EtcdOptions {
    /// Reads an `etcd3+http://`, `etcd3+https://` or `etcd://` URL.
    pub fn from_url(url: &Url) -> Result<Self> {
        let shown = RedactedUrl::new(url.clone());
        let options = UrlOptions::parse(NAME, url, OPTIONS)?;
        #[cfg_attr(not(feature = "etcd-tls"), allow(unused_variables))]
        let tls = tls(url, &options)?;
        let scheme = if url.scheme() == "etcd3+https" {
            "https"
        } else {
            "http"
        };
        let host = match url.host() {
            Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
            Some(host) => host.to_string(),
            None => "localhost".to_owned(),
        };
        let mut endpoints = vec![format!("{scheme}://{host}:{}", url.port().unwrap_or(2379))];
        for listed in options.get_all("endpoints") {
            for endpoint in listed.split(',').map(str::trim).filter(|e| !e.is_empty()) {
                let valid = !endpoint.contains("://")
                    && endpoint
                        .rsplit_once(':')
                        .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
                if !valid {
                    return Err(options.invalid("endpoints", endpoint, "expected HOST:PORT"));
                }
                endpoints.push(format!("{scheme}://{endpoint}"));
            }
        }
        let decode = |s: &str| {
            percent_decode(s).ok_or_else(|| Error::InvalidUrl {
                url: shown.to_string(),
                reason: "the user or password is not valid percent-encoded UTF-8".into(),
            })
        };
        let user = if url.username().is_empty() {
            None
        } else {
            let password = decode(url.password().unwrap_or_default())?;
            Some((decode(url.username())?, password))
        };
        let timeout = options.duration("timeout", DEFAULT_TIMEOUT)?;
        if timeout < Duration::from_millis(100) {
            return Err(options.invalid(
                "timeout",
                options.get("timeout").unwrap_or_default(),
                "at least 0.1 s",
            ));
        }
        let ttl = |name: &str| -> Result<Duration> {
            let value = options.duration(name, timeout)?;
            if value < Duration::from_secs(2) || value > LONGEST_TTL {
                let raw = options.get(name).unwrap_or("(from timeout)");
                return Err(options.invalid(name, raw, "between 2 s and 365 days"));
            }
            Ok(value)
        };
        let lease_ttl = ttl("membership_timeout")?.min(ttl("lock_timeout")?);
        Ok(Self {
            url: shown,
            endpoints,
            user,
            timeout,
            lease_ttl,
            #[cfg(feature = "etcd-tls")]
            tls,
        })
    }
}

/// TLS for `etcd3+https://`: the CA (PEM) that signed the servers' certificates, and a
/// client certificate and key (PEM) if given.
#[cfg(feature = "etcd-tls")]
#[derive(Clone)]
pub(super) struct Tls {
    pub(super) ca: Vec<u8>,
    pub(super) identity: Option<(Vec<u8>, Vec<u8>)>,
}

#[cfg(feature = "etcd-tls")]
type TlsSettings = Tls;
#[cfg(not(feature = "etcd-tls"))]
type TlsSettings = std::convert::Infallible;

/// Reads tooz's TLS options: `etcd3+https://` needs `ca_cert` (the servers are always
/// verified against it, names included); `cert_cert` and `cert_key` go together; on
/// `etcd3+http://` they would be ignored, so they are refused.
fn tls(url: &Url, options: &UrlOptions) -> Result<Option<TlsSettings>> {
    let (ca, cert, key) = (
        options.get("ca_cert"),
        options.get("cert_cert"),
        options.get("cert_key"),
    );
    if url.scheme() != "etcd3+https" {
        for (option, value) in [("ca_cert", ca), ("cert_cert", cert), ("cert_key", key)] {
            if let Some(value) = value {
                return Err(options.invalid(
                    option,
                    value,
                    "TLS options need an etcd3+https:// URL (here they would be ignored)",
                ));
            }
        }
        return Ok(None);
    }
    let Some(ca) = ca else {
        return Err(options.invalid(
            "ca_cert",
            "",
            "etcd3+https:// needs the CA that signed the servers' certificates: they are \
             always verified",
        ));
    };
    let client = match (cert, key) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        (Some(_), None) => {
            return Err(options.invalid("cert_key", "", "cert_cert and cert_key go together"));
        }
        (None, Some(_)) => {
            return Err(options.invalid("cert_cert", "", "cert_cert and cert_key go together"));
        }
    };
    #[cfg(feature = "etcd-tls")]
    {
        use crate::drivers::tls::{TlsFiles, client_config};
        // Read and checked now, so that a bad file is an error naming its option.
        let files = TlsFiles {
            ca: (ca.into(), "ca_cert"),
            client: client.map(|(c, k)| ((c.into(), "cert_cert"), (k.into(), "cert_key"))),
            check_hostname: true,
        };
        client_config(NAME, &files)?;
        let read = |path: &str, option: &str| {
            std::fs::read(path)
                .map_err(|e| options.invalid(option, path, &format!("cannot read it: {e}")))
        };
        let identity = match client {
            Some((cert, key)) => Some((read(cert, "cert_cert")?, read(key, "cert_key")?)),
            None => None,
        };
        Ok(Some(Tls {
            ca: read(ca, "ca_cert")?,
            identity,
        }))
    }
    #[cfg(not(feature = "etcd-tls"))]
    {
        let _ = (ca, client);
        Err(Error::FeatureNotEnabled {
            what: "TLS for etcd (etcd3+https://)",
            feature: "etcd-tls",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> Result<EtcdOptions> {
        EtcdOptions::from_url(&url.parse().unwrap())
    }

    #[test]
    fn tooz_forms() {
        let o = parse("etcd3+http://h:2479?timeout=5&endpoints=h2:2379,h3:2379&endpoints=h4:1")
            .unwrap();
        assert_eq!(
            o.endpoints,
            [
                "http://h:2479",
                "http://h2:2379",
                "http://h3:2379",
                "http://h4:1"
            ]
        );
        assert_eq!(o.lease_ttl, Duration::from_secs(5));
        let o = parse("etcd://h?membership_timeout=20&lock_timeout=8&api_version=v3").unwrap();
        assert_eq!(o.endpoints, ["http://h:2379"]);
        assert_eq!(o.lease_ttl, Duration::from_secs(8));
        // A host list, as etcd users write one.
        let url = crate::options::split_host_list("etcd3+http://h1:2379,h2:2380/?timeout=5");
        let o = parse(&url).unwrap();
        assert_eq!(o.endpoints, ["http://h1:2379", "http://h2:2380"]);
        let parsed = parse("etcd3+http://u:s%2Bcret+x@h").unwrap();
        assert_eq!(parsed.user, Some(("u".into(), "s+cret+x".into())));
        let shown = format!("{parsed:?}");
        assert!(!shown.contains("cret"), "{shown}");
    }

    #[test]
    fn bad_values_are_refused() {
        for bad in [
            "lock_timeout=1",
            "timeout=abc",
            "endpoints=nohost",
            "endpoints=http://h:1",
        ] {
            let err = parse(&format!("etcd3+http://h?{bad}")).unwrap_err();
            assert!(matches!(err, Error::InvalidOption { .. }), "{bad}: {err:?}");
        }
        for tls in [
            "etcd3+https://h",
            "etcd3+http://h?ca_cert=/ca.pem",
            "etcd3+https://h?ca_cert=/ca.pem&cert_cert=/c.pem",
        ] {
            assert!(matches!(
                parse(tls).unwrap_err(),
                Error::InvalidOption { .. } | Error::FeatureNotEnabled { .. }
            ));
        }
    }
}
