//! Options of a `mysql://` URL (the table is on [`MysqlOptions`]).

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
    "unix_socket",
    "table_prefix",
    "ssl_ca",
    "ssl_capath",
    "ssl_cert",
    "ssl_key",
    "ssl_cipher",
    "ssl_verify_mode",
    "ssl_check_hostname",
    "executor",
];
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_PREFIX: &str = "tooz_";
/// MySQL's `wait_timeout` tops out at 365 days; it is given in whole seconds.
const LONGEST_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 3600);

/// Options of a `mysql://[USER[:PASS]@]HOST[:PORT]/DBNAME` URL (tooz's form; port 3306):
///
/// | option | default | meaning |
/// |---|---|---|
/// | `timeout` | `30` | seconds (1 s to 365 days, as the two below): bound on connecting and on every statement, and the default of the two below |
/// | `membership_timeout` | `timeout` | how long a member lives without a heartbeat (by the server's clock) |
/// | `lock_timeout` | `timeout` | how long a connection, and so its locks, outlives the last heartbeat when cut off (the session's `wait_timeout`, whole seconds, rounded up), and how long a leadership lives unrenewed |
/// | `unix_socket` | — | connect through this socket instead of TCP |
/// | `table_prefix` | `tooz_` | prefix of the tables (lowercase letters, digits, `_`) |
/// | `ssl_ca` | — | TLS (cargo feature `mysql-tls`): the CA that signed the server's certificate, the only one trusted; the server's certificate and name are always checked, and a server without TLS is refused |
/// | `ssl_cert`, `ssl_key` | — | a client certificate and its key (PEM), both or neither; they need `ssl_ca` |
/// | `ssl_verify_mode` | `CERT_REQUIRED` | only `CERT_REQUIRED` (`required`): a server is never trusted unverified |
/// | `ssl_check_hostname` | `true` | only `true`: the client library cannot check the chain without the name |
/// | `ssl_capath`, `ssl_cipher` | — | refused with [`Error::Unsupported`] (a CA file, and rustls's cipher suites, instead) |
/// | `executor` | — | accepted and ignored (tooz's thread pool) |
#[derive(Clone)]
pub struct MysqlOptions {
    /// TLS, from the `ssl_*` options.
    #[cfg(feature = "mysql-tls")]
    pub(super) tls: Option<mysql_async::SslOpts>,
    pub(super) url: RedactedUrl,
    pub(super) host: String,
    pub(super) port: u16,
    pub(super) socket: Option<String>,
    pub(super) dbname: Option<String>,
    pub(super) user: Option<String>,
    pub(super) password: Option<String>,
    /// Bound on connecting and on every statement.
    pub timeout: Duration,
    /// How long a member lives without a heartbeat.
    pub membership_timeout: Duration,
    /// How long a connection outlives its last heartbeat when cut off; a leadership's lease.
    pub lock_timeout: Duration,
    /// Prefix of the tables.
    pub table_prefix: String,
}

impl fmt::Debug for MysqlOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MysqlOptions")
            .field("url", &self.url)
            .field("membership_timeout", &self.membership_timeout)
            .field("lock_timeout", &self.lock_timeout)
            .field("table_prefix", &self.table_prefix)
            .finish_non_exhaustive()
    }
}

impl MysqlOptions {
    /// Reads a `mysql://` URL.
    pub fn from_url(url: &Url) -> Result<Self> {
        let shown = RedactedUrl::new(url.clone());
        let options = UrlOptions::parse(NAME, url, OPTIONS)?;
        #[cfg_attr(not(feature = "mysql-tls"), allow(unused_variables))]
        let tls = tls(&options)?;
        let host = match url.host() {
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            Some(host) => host.to_string(),
            None => "localhost".to_owned(),
        };
        let decode = |s: &str| {
            percent_decode(s).ok_or_else(|| Error::InvalidUrl {
                url: shown.to_string(),
                reason: "the user, password or database name is not valid percent-encoded UTF-8"
                    .into(),
            })
        };
        let path_db = url.path().trim_start_matches('/');
        let dbname = (!path_db.is_empty()).then(|| decode(path_db)).transpose()?;
        let user = (!url.username().is_empty())
            .then(|| decode(url.username()))
            .transpose()?;
        let password = url.password().map(decode).transpose()?;
        let timeout = options.duration("timeout", DEFAULT_TIMEOUT)?;
        let limits = (Duration::from_secs(1), LONGEST_TIMEOUT);
        let bounded = |name: &str, default: Duration| {
            options.duration_within(name, default, limits, "between 1 s and 365 days")
        };
        let timeout = bounded("timeout", timeout)?;
        let table_prefix = options.table_prefix(DEFAULT_PREFIX)?;
        Ok(Self {
            url: shown,
            host,
            port: url.port().unwrap_or(3306),
            socket: options.get("unix_socket").map(str::to_owned),
            dbname,
            user,
            password,
            timeout,
            membership_timeout: bounded("membership_timeout", timeout)?,
            lock_timeout: bounded("lock_timeout", timeout)?,
            table_prefix,
            #[cfg(feature = "mysql-tls")]
            tls,
        })
    }
}

#[cfg(feature = "mysql-tls")]
type TlsSettings = mysql_async::SslOpts;
#[cfg(not(feature = "mysql-tls"))]
type TlsSettings = std::convert::Infallible;

/// Reads tooz's `ssl_*` options. The server's certificate is always verified against
/// `ssl_ca` (the only CA trusted) and its name checked; there is no mode that trusts a server
/// unverified, and none that falls back to plain text.
fn tls(options: &UrlOptions) -> Result<Option<TlsSettings>> {
    const TLS_OPTIONS: &[&str] = &[
        "ssl_ca",
        "ssl_capath",
        "ssl_cert",
        "ssl_key",
        "ssl_cipher",
        "ssl_verify_mode",
        "ssl_check_hostname",
    ];
    if !TLS_OPTIONS.iter().any(|o| options.get(o).is_some()) {
        return Ok(None);
    }
    for (option, instead) in [
        (
            "ssl_capath",
            "TLS with a CA directory (ssl_capath): give the CA file as ssl_ca",
        ),
        (
            "ssl_cipher",
            "TLS cipher lists (ssl_cipher): rustls's suites are used",
        ),
    ] {
        if options.get(option).is_some() {
            return Err(Error::Unsupported {
                operation: instead,
                backend: NAME,
            });
        }
    }
    if let Some(mode) = options.get("ssl_verify_mode")
        && !matches!(
            mode.to_ascii_lowercase().as_str(),
            "cert_required" | "required"
        )
    {
        return Err(options.invalid(
            "ssl_verify_mode",
            mode,
            "only CERT_REQUIRED: the server's certificate is always verified",
        ));
    }
    if !options.bool("ssl_check_hostname", true)? {
        return Err(Error::Unsupported {
            operation: "ssl_check_hostname=false (the server's name is always checked)",
            backend: NAME,
        });
    }
    let Some(ca) = options.get("ssl_ca") else {
        return Err(options.invalid(
            "ssl_ca",
            "",
            "TLS needs the CA that signed the server's certificate here: it is always verified",
        ));
    };
    let client = match (options.get("ssl_cert"), options.get("ssl_key")) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        (Some(_), None) | (None, Some(_)) => {
            let missing = if options.get("ssl_cert").is_some() {
                "ssl_key"
            } else {
                "ssl_cert"
            };
            return Err(options.invalid(
                missing,
                "",
                "ssl_cert and ssl_key go together (a client certificate and its key)",
            ));
        }
    };
    if options.get("unix_socket").is_some() {
        return Err(options.invalid(
            "unix_socket",
            options.get("unix_socket").unwrap_or_default(),
            "TLS is not offered over a unix socket by the client: connect over TCP",
        ));
    }
    #[cfg(feature = "mysql-tls")]
    {
        use crate::drivers::tls::{TlsFiles, client_config};
        // Read and checked now (so that a bad file is an error naming its option), then
        // handed to the client as bytes.
        let files = TlsFiles {
            ca: (ca.into(), "ssl_ca"),
            client: client.map(|(c, k)| ((c.into(), "ssl_cert"), (k.into(), "ssl_key"))),
            check_hostname: true,
        };
        client_config(NAME, &files)?;
        let read = |path: &str, option: &str| {
            std::fs::read(path)
                .map_err(|e| options.invalid(option, path, &format!("cannot read it: {e}")))
        };
        let mut ssl = mysql_async::SslOpts::default()
            .with_root_certs(vec![read(ca, "ssl_ca")?.into()])
            .with_disable_built_in_roots(true);
        if let Some((cert, key)) = client {
            ssl = ssl.with_client_identity(Some(mysql_async::ClientIdentity::new(
                read(cert, "ssl_cert")?.into(),
                read(key, "ssl_key")?.into(),
            )));
        }
        Ok(Some(ssl))
    }
    #[cfg(not(feature = "mysql-tls"))]
    {
        let _ = (ca, client);
        Err(Error::FeatureNotEnabled {
            what: "TLS for mysql:// (the ssl_* options)",
            feature: "mysql-tls",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> Result<MysqlOptions> {
        MysqlOptions::from_url(&url.parse().unwrap())
    }

    #[test]
    fn tooz_forms() {
        let o = parse("mysql://u:p%40ss@db.example:3307/app?timeout=5").unwrap();
        assert_eq!((o.host.as_str(), o.port), ("db.example", 3307));
        assert_eq!(
            (o.user.as_deref(), o.password.as_deref()),
            (Some("u"), Some("p@ss"))
        );
        assert_eq!(o.dbname.as_deref(), Some("app"));
        assert_eq!(o.lock_timeout, Duration::from_secs(5));
        let o = parse("mysql://root@localhost/pifpaf?unix_socket=/tmp/my.sock").unwrap();
        assert_eq!(o.socket.as_deref(), Some("/tmp/my.sock"));
        assert_eq!(o.port, 3306);
        let shown = format!("{:?}", parse("mysql://u:secret@h/db").unwrap());
        assert!(!shown.contains("secret"), "{shown}");
    }

    #[test]
    fn bad_values_are_refused() {
        for bad in [
            "lock_timeout=0",
            "timeout=abc",
            "table_prefix=Tooz",
            "table_prefix=x;drop",
            "membership_timeout=99999999999",
        ] {
            let err = parse(&format!("mysql://h/db?{bad}")).unwrap_err();
            assert!(matches!(err, Error::InvalidOption { .. }), "{bad}: {err:?}");
        }
        // Asked for TLS in ways we do not offer: refused, never a plain-text connection.
        for (bad, unsupported) in [
            ("ssl_cert=/c.pem&ssl_key=/k.pem", false),
            ("ssl_ca=/ca.pem&ssl_verify_mode=CERT_NONE", false),
            ("ssl_ca=/ca.pem&ssl_cert=/c.pem", false),
            ("ssl_ca=/ca.pem&ssl_capath=/etc/ssl", true),
            ("ssl_ca=/ca.pem&ssl_check_hostname=false", true),
        ] {
            let err = parse(&format!("mysql://h/db?{bad}")).unwrap_err();
            let expected = if unsupported {
                matches!(err, Error::Unsupported { .. })
            } else {
                matches!(err, Error::InvalidOption { .. })
            };
            assert!(expected, "{bad}: {err:?}");
        }
    }
}
