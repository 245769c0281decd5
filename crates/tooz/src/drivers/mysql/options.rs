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
/// | `ssl_ca`, `ssl_cert`, `ssl_key`, `ssl_check_hostname`, `ssl_capath`, `ssl_cipher`, `ssl_verify_mode` | — | tooz's TLS options: not offered yet, refused with [`Error::Unsupported`] rather than ignored (a connection the URL asks to encrypt never goes out in plain text) |
/// | `executor` | — | accepted and ignored (tooz's thread pool) |
#[derive(Clone)]
pub struct MysqlOptions {
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
        for tls in [
            "ssl_ca",
            "ssl_capath",
            "ssl_cert",
            "ssl_key",
            "ssl_cipher",
            "ssl_verify_mode",
            "ssl_check_hostname",
        ] {
            if options.get(tls).is_some() {
                return Err(Error::Unsupported {
                    operation: "TLS (the ssl_* options)",
                    backend: NAME,
                });
            }
        }
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
        let bounded = |name: &str, default: Duration| -> Result<Duration> {
            let value = options.duration(name, default)?;
            let raw = options.get(name).unwrap_or("(from timeout)");
            if value < Duration::from_secs(1) || value > LONGEST_TIMEOUT {
                return Err(options.invalid(name, raw, "between 1 s and 365 days"));
            }
            Ok(value)
        };
        let timeout = bounded("timeout", timeout)?;
        let table_prefix = options.get("table_prefix").unwrap_or(DEFAULT_PREFIX);
        let valid_prefix = !table_prefix.is_empty()
            && table_prefix.len() <= 40
            && table_prefix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            && !table_prefix.as_bytes()[0].is_ascii_digit();
        if !valid_prefix {
            return Err(options.invalid(
                "table_prefix",
                table_prefix,
                "1 to 40 lowercase letters, digits or '_', not starting with a digit",
            ));
        }
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
            table_prefix: table_prefix.to_owned(),
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
        // Asked for TLS: refused, never a plain-text connection.
        assert!(matches!(
            parse("mysql://h/db?ssl_ca=/ca.pem").unwrap_err(),
            Error::Unsupported { .. }
        ));
    }
}
