//! Options of a `postgresql://` URL (the table is on [`PostgresOptions`]).

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
    "host",
    "port",
    "dbname",
    "user",
    "password",
    "sslmode",
    "sslrootcert",
    "table_prefix",
    "tooz_lock_keys",
    "executor",
];
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_PREFIX: &str = "tooz_";
/// PostgreSQL's `idle_session_timeout` is an int of milliseconds.
const LONGEST_TIMEOUT: Duration = Duration::from_millis(i32::MAX as u64);

/// Options of a `postgresql://[USER[:PASS]@]HOST[:PORT]/DBNAME` URL (tooz's forms: `host`,
/// `port` and `dbname` in the query override the URL's parts, and `host` may be a socket
/// directory):
///
/// | option | default | meaning |
/// |---|---|---|
/// | `timeout` | `30` | seconds (1 s to 24 days, as the two below): bound on connecting and on every statement, and the default of the two below |
/// | `membership_timeout` | `timeout` | how long a member lives without a heartbeat (by the server's clock) |
/// | `lock_timeout` | `timeout` | how long the session, and so its locks, outlive the last heartbeat when cut off (`idle_session_timeout`), and how long a leadership lives unrenewed |
/// | `host`, `port`, `dbname`, `user`, `password` | from the URL | override the URL's parts |
/// | `sslmode` | `prefer` | TLS (cargo feature `postgres-tls`): `require`, `verify-ca` (certificate verified against `sslrootcert`) and `verify-full` (its name checked too) refuse a server without TLS; `prefer` uses TLS when the server offers it and `sslrootcert` is given; `allow`, `disable`: plain text |
/// | `sslrootcert` | — | the CA that signed the server's certificate; required by `require` and `verify-*` (a certificate is never trusted unverified) |
/// | `table_prefix` | `tooz_` | prefix of the tables and notification channels (lowercase letters, digits, `_`) |
/// | `tooz_lock_keys` | `false` | also take Python tooz's two-key advisory lock of each name, so that a fleet still running Python tooz excludes us on the same names |
/// | `executor` | — | accepted and ignored (tooz's thread pool) |
#[derive(Clone)]
pub struct PostgresOptions {
    pub(super) url: RedactedUrl,
    pub(super) host: String,
    pub(super) port: u16,
    pub(super) dbname: String,
    pub(super) user: String,
    pub(super) password: Option<String>,
    /// Bound on connecting and on every statement.
    pub timeout: Duration,
    /// How long a member lives without a heartbeat.
    pub membership_timeout: Duration,
    /// How long the session outlives its last heartbeat when cut off; a leadership's lease.
    pub lock_timeout: Duration,
    /// Prefix of tables and channels.
    pub table_prefix: String,
    /// Also take Python tooz's two-key advisory locks.
    pub tooz_lock_keys: bool,
    /// TLS, from `sslmode` and `sslrootcert`.
    #[cfg(feature = "postgres-tls")]
    pub(super) tls: Option<Tls>,
}

/// TLS as `sslmode` asks: the rustls configuration, and whether a server without TLS is
/// refused (`require`, `verify-*`) or accepted in plain text (`prefer` with a CA given).
#[cfg(feature = "postgres-tls")]
#[derive(Debug, Clone)]
pub(super) struct Tls {
    pub(super) config: std::sync::Arc<rustls::ClientConfig>,
    pub(super) required: bool,
}

#[cfg(feature = "postgres-tls")]
type TlsSettings = Tls;
#[cfg(not(feature = "postgres-tls"))]
type TlsSettings = std::convert::Infallible;

/// Reads `sslmode` and `sslrootcert`. The server's certificate is always verified against
/// `sslrootcert` (there is no mode that trusts any certificate, as libpq's `require` without a
/// root certificate would): `verify-full` also checks its name, `require` and `verify-ca` do
/// not. `prefer` without `sslrootcert`, `allow` and `disable` connect in plain text.
#[allow(unused_variables)]
fn tls(options: &UrlOptions) -> Result<Option<TlsSettings>> {
    let mode = options.get("sslmode").unwrap_or("prefer");
    let (required, check_hostname) = match mode {
        "disable" | "allow" => return Ok(None),
        "prefer" if options.get("sslrootcert").is_none() => return Ok(None),
        "prefer" => (false, true),
        "require" | "verify-ca" => (true, false),
        "verify-full" => (true, true),
        other => {
            return Err(options.invalid(
                "sslmode",
                other,
                "one of disable, allow, prefer, require, verify-ca, verify-full",
            ));
        }
    };
    let Some(root) = options.get("sslrootcert") else {
        return Err(options.invalid(
            "sslrootcert",
            "",
            "sslmode=require, verify-ca and verify-full need the CA that signed the server's \
             certificate here: it is always verified",
        ));
    };
    #[cfg(feature = "postgres-tls")]
    {
        let files = crate::drivers::tls::TlsFiles {
            ca: (root.into(), "sslrootcert"),
            client: None,
            check_hostname,
        };
        let config = crate::drivers::tls::client_config(NAME, &files)?;
        Ok(Some(Tls {
            config: std::sync::Arc::new(config),
            required,
        }))
    }
    #[cfg(not(feature = "postgres-tls"))]
    Err(Error::FeatureNotEnabled {
        what: "TLS for postgresql:// (sslmode with sslrootcert)",
        feature: "postgres-tls",
    })
}

impl fmt::Debug for PostgresOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresOptions")
            .field("url", &self.url)
            .field("membership_timeout", &self.membership_timeout)
            .field("lock_timeout", &self.lock_timeout)
            .field("table_prefix", &self.table_prefix)
            .field("tooz_lock_keys", &self.tooz_lock_keys)
            .finish_non_exhaustive()
    }
}

impl PostgresOptions {
    /// Reads a `postgresql://` or `postgres://` URL.
    pub fn from_url(url: &Url) -> Result<Self> {
        let shown = RedactedUrl::new(url.clone());
        let options = UrlOptions::parse(NAME, url, OPTIONS)?;
        #[cfg_attr(not(feature = "postgres-tls"), allow(unused_variables))]
        let tls = tls(&options)?;
        let host = match options.get("host") {
            Some(host) => host.to_owned(),
            None => match url.host() {
                Some(url::Host::Ipv6(ip)) => ip.to_string(),
                Some(host) => host.to_string(),
                None => "localhost".to_owned(),
            },
        };
        let port = match options.get("port") {
            Some(raw) => raw
                .parse()
                .map_err(|_| options.invalid("port", raw, "a TCP port number"))?,
            None => url.port().unwrap_or(5432),
        };
        let decode = |s: &str| {
            percent_decode(s).ok_or_else(|| Error::InvalidUrl {
                url: shown.to_string(),
                reason: "the user, password or database name is not valid percent-encoded UTF-8"
                    .into(),
            })
        };
        let path_db = url.path().trim_start_matches('/');
        let dbname = match options.get("dbname") {
            Some(db) => db.to_owned(),
            None if !path_db.is_empty() => decode(path_db)?,
            None => "postgres".to_owned(),
        };
        let user = match options.get("user") {
            Some(user) => user.to_owned(),
            None if !url.username().is_empty() => decode(url.username())?,
            None => "postgres".to_owned(),
        };
        let password = match options.get("password") {
            Some(password) => Some(password.to_owned()),
            None => url.password().map(decode).transpose()?,
        };
        let timeout = options.duration("timeout", DEFAULT_TIMEOUT)?;
        let limits = (Duration::from_secs(1), LONGEST_TIMEOUT);
        let bounded = |name: &str, default: Duration| {
            options.duration_within(name, default, limits, "between 1 s and about 24 days")
        };
        let timeout = bounded("timeout", timeout)?;
        let table_prefix = options.table_prefix(DEFAULT_PREFIX)?;
        Ok(Self {
            url: shown,
            host,
            port,
            dbname,
            user,
            password,
            timeout,
            membership_timeout: bounded("membership_timeout", timeout)?,
            lock_timeout: bounded("lock_timeout", timeout)?,
            table_prefix,
            tooz_lock_keys: options.bool("tooz_lock_keys", false)?,
            #[cfg(feature = "postgres-tls")]
            tls,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> Result<PostgresOptions> {
        PostgresOptions::from_url(&url.parse().unwrap())
    }

    #[test]
    fn tooz_forms() {
        let o = parse("postgresql://u:p%40ss@db.example:6543/app?timeout=5").unwrap();
        assert_eq!((o.host.as_str(), o.port), ("db.example", 6543));
        assert_eq!(
            (o.user.as_str(), o.password.as_deref()),
            ("u", Some("p@ss"))
        );
        assert_eq!(o.dbname, "app");
        assert_eq!(o.lock_timeout, Duration::from_secs(5));
        let o =
            parse("postgresql://localhost/postgres?host=/tmp/sock&port=9824&dbname=other").unwrap();
        assert_eq!((o.host.as_str(), o.port), ("/tmp/sock", 9824));
        assert_eq!(o.dbname, "other");
        assert!(!o.tooz_lock_keys);
        assert!(
            parse("postgres://h/db?tooz_lock_keys=true")
                .unwrap()
                .tooz_lock_keys
        );
        let shown = format!("{:?}", parse("postgresql://u:secret@h/db").unwrap());
        assert!(!shown.contains("secret"), "{shown}");
    }

    #[test]
    fn bad_values_are_refused() {
        for bad in [
            "lock_timeout=0",
            "timeout=abc",
            "sslmode=bogus",
            "table_prefix=Tooz",
            "table_prefix=x;drop",
            "port=99999",
        ] {
            let err = parse(&format!("postgresql://h/db?{bad}")).unwrap_err();
            assert!(matches!(err, Error::InvalidOption { .. }), "{bad}: {err:?}");
        }
        assert!(matches!(
            parse("postgresql://h/db?sslmode=require").unwrap_err(),
            Error::InvalidOption { option, .. } if option == "sslrootcert"
        ));
    }
}
