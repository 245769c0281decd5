//! URL parsing shared by every backend: query options with tooz's names, one value parser,
//! and redaction so that a password never reaches a message.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use url::Url;

use crate::error::{Error, Result};

/// A URL that prints with its password replaced by `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct RedactedUrl(Url);

impl RedactedUrl {
    /// Wraps a parsed URL.
    pub fn new(url: Url) -> Self {
        Self(url)
    }

    /// The full URL, password included; for the backend's client only, never for messages.
    pub fn expose(&self) -> &Url {
        &self.0
    }
}

/// Whether a query option carries a secret (`password`, `ssl_key_password`,
/// `sentinel_password`, a token, ...): its value is never shown.
fn is_secret(option: &str) -> bool {
    let option = option.to_ascii_lowercase();
    ["password", "passwd", "secret", "token"]
        .iter()
        .any(|word| option.contains(word))
}

impl fmt::Display for RedactedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secret_query = self.0.query_pairs().any(|(k, _)| is_secret(&k));
        if self.0.password().is_none() && !secret_query {
            return f.write_str(self.0.as_str());
        }
        let mut shown = self.0.clone();
        if shown.password().is_some() {
            // Only fails for URLs that cannot have a password, which this one has.
            let _ = shown.set_password(Some("***"));
        }
        if secret_query {
            let pairs: Vec<(String, String)> = self
                .0
                .query_pairs()
                .map(|(k, v)| {
                    let v = if is_secret(&k) {
                        "***".into()
                    } else {
                        v.into_owned()
                    };
                    (k.into_owned(), v)
                })
                .collect();
            shown.query_pairs_mut().clear().extend_pairs(pairs);
        }
        f.write_str(shown.as_str())
    }
}

impl fmt::Debug for RedactedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedactedUrl({self})")
    }
}

/// Redacts a URL string that may not even parse: the password part of its authority is
/// replaced by `***`. For printing URLs a user gave.
pub fn redact_str(raw: &str) -> String {
    if let Ok(url) = Url::parse(raw) {
        return RedactedUrl(url).to_string();
    }
    // Unparsable (a bad port, say): the same rules by hand, the query included.
    let (head, query) = match raw.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (raw, None),
    };
    let mut shown = redact_authority(head);
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if is_secret(k) => format!("{k}=***"),
                _ => pair.to_owned(),
            })
            .collect();
        shown.push('?');
        shown.push_str(&pairs.join("&"));
    }
    shown
}

/// The password of `scheme://user:password@host...` replaced by `***`.
fn redact_authority(raw: &str) -> String {
    let Some(start) = raw.find("://").map(|i| i + 3) else {
        return raw.to_owned();
    };
    let authority_end = raw[start..]
        .find(['/', '?', '#'])
        .map_or(raw.len(), |i| start + i);
    let authority = &raw[start..authority_end];
    match (authority.rfind('@'), authority.find(':')) {
        (Some(at), Some(colon)) if colon < at => format!(
            "{}{}:***{}",
            &raw[..start],
            &authority[..colon],
            &raw[start + at..]
        ),
        _ => raw.to_owned(),
    }
}

/// The query options of a coordination URL, checked against the names a backend accepts.
///
/// As in tooz, a repeated option keeps its last value and an empty value is ignored.
#[derive(Debug, Clone)]
pub struct UrlOptions {
    backend: &'static str,
    values: BTreeMap<String, Vec<String>>,
}

impl UrlOptions {
    /// Reads the query of `url`, refusing any option not in `valid`.
    pub fn parse(backend: &'static str, url: &Url, valid: &'static [&'static str]) -> Result<Self> {
        let mut values = BTreeMap::new();
        for (key, value) in url.query_pairs() {
            if !valid.contains(&key.as_ref()) {
                return Err(Error::UnknownOption {
                    backend,
                    option: key.into_owned(),
                    valid,
                });
            }
            if !value.is_empty() {
                values
                    .entry(key.into_owned())
                    .or_insert_with(Vec::new)
                    .push(value.into_owned());
            }
        }
        Ok(Self { backend, values })
    }

    /// The raw value of an option (the last one given).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .and_then(|v| v.last())
            .map(String::as_str)
    }

    /// Every value given for a repeatable option (tooz's `sentinel_fallback`, ...), in order.
    pub fn get_all(&self, name: &str) -> &[String] {
        self.values.get(name).map_or(&[], Vec::as_slice)
    }

    /// A duration: a bare number is seconds (tooz's unit, fractions allowed); `ms` and `s`
    /// suffixes are accepted too. At most [`LONGEST_DURATION`]: every deadline and server TTL
    /// made from it must stay representable.
    pub fn duration(&self, name: &str, default: Duration) -> Result<Duration> {
        let Some(raw) = self.get(name) else {
            return Ok(default);
        };
        let duration = parse_duration(raw).ok_or_else(|| {
            self.invalid(name, raw, "expected seconds, like 10, 2.5, 2s or 500ms")
        })?;
        if duration > LONGEST_DURATION {
            return Err(self.invalid(name, raw, "at most 100 years (3153600000 seconds)"));
        }
        Ok(duration)
    }

    /// A boolean, parsed as oslo's `bool_from_string` does (`1/t/true/on/y/yes`, any case,
    /// are true; `0/f/false/off/n/no` are false; anything else is an error here).
    pub fn bool(&self, name: &str, default: bool) -> Result<bool> {
        let Some(raw) = self.get(name) else {
            return Ok(default);
        };
        match raw.to_ascii_lowercase().as_str() {
            "1" | "t" | "true" | "on" | "y" | "yes" => Ok(true),
            "0" | "f" | "false" | "off" | "n" | "no" => Ok(false),
            _ => Err(self.invalid(name, raw, "expected a boolean such as true or false")),
        }
    }

    /// A non-negative integer.
    pub fn u64(&self, name: &str, default: u64) -> Result<u64> {
        let Some(raw) = self.get(name) else {
            return Ok(default);
        };
        raw.parse()
            .map_err(|_| self.invalid(name, raw, "expected a non-negative integer"))
    }

    /// A duration option between `min` and `max` (`range` says so in the error), `default`
    /// when absent (checked too: it may come from another option).
    #[cfg(any(feature = "postgres", feature = "mysql", feature = "zookeeper"))]
    pub(crate) fn duration_within(
        &self,
        name: &str,
        default: Duration,
        (min, max): (Duration, Duration),
        range: &str,
    ) -> Result<Duration> {
        let value = self.duration(name, default)?;
        if value < min || value > max {
            let raw = self.get(name).unwrap_or("(from timeout)");
            return Err(self.invalid(name, raw, range));
        }
        Ok(value)
    }

    /// `table_prefix`, spliced into SQL text: 1 to 40 lowercase letters, digits or `_`, not
    /// starting with a digit.
    #[cfg(any(feature = "postgres", feature = "mysql"))]
    pub(crate) fn table_prefix(&self, default: &str) -> Result<String> {
        let prefix = self.get("table_prefix").unwrap_or(default);
        let valid = (1..=40).contains(&prefix.len())
            && prefix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            && !prefix.as_bytes()[0].is_ascii_digit();
        if !valid {
            return Err(self.invalid(
                "table_prefix",
                prefix,
                "1 to 40 lowercase letters, digits or '_', not starting with a digit",
            ));
        }
        Ok(prefix.to_owned())
    }

    /// The error for a bad value of `name`.
    pub fn invalid(&self, name: &str, value: &str, reason: &str) -> Error {
        // The value of a password-like option is never repeated back.
        let value = if is_secret(name) { "***" } else { value };
        Error::InvalidOption {
            backend: self.backend,
            option: name.to_owned(),
            value: value.to_owned(),
            reason: reason.to_owned(),
        }
    }
}

/// The longest duration a URL option may give.
pub const LONGEST_DURATION: Duration = Duration::from_secs(86_400 * 365 * 100);

fn parse_duration(raw: &str) -> Option<Duration> {
    let raw = raw.trim();
    let (number, scale) = if let Some(ms) = raw.strip_suffix("ms") {
        (ms, 1e-3)
    } else if let Some(s) = raw.strip_suffix('s') {
        (s, 1.0)
    } else {
        (raw, 1.0)
    };
    let value: f64 = number.trim().parse().ok()?;
    Duration::try_from_secs_f64(value * scale).ok()
}

/// Turns the host list of a `zookeeper://h1:2181,h2:2181/chroot` URL, which no URL parser
/// accepts, into `zookeeper://h1:2181/chroot?hosts=h2:2181`: the first host stays the URL's,
/// the others become the scheme's option for more servers (`hosts` on ZooKeeper, as tooz
/// joins its netloc and `hosts`; `endpoints` on etcd). Other URLs are returned as they are.
pub(crate) fn split_host_list(url: &str) -> std::borrow::Cow<'_, str> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.into();
    };
    let option = match scheme {
        "zookeeper" | "kazoo" => "hosts",
        "etcd3+http" | "etcd3+https" | "etcd" => "endpoints",
        _ => return url.into(),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (userinfo, hosts) = match authority.rfind('@') {
        Some(at) => authority.split_at(at + 1),
        None => ("", authority),
    };
    let Some((first, others)) = hosts.split_once(',') else {
        return url.into();
    };
    let (path, query_and_fragment) = tail.split_at(tail.find(['?', '#']).unwrap_or(tail.len()));
    let (query, fragment) = match query_and_fragment.split_once('#') {
        Some((q, f)) => (q, format!("#{f}")),
        None => (query_and_fragment, String::new()),
    };
    let added = others
        .split(',')
        .filter(|h| !h.is_empty())
        .map(|h| format!("{option}={h}"))
        .collect::<Vec<_>>()
        .join("&");
    let query = match query.strip_prefix('?') {
        Some(q) if !q.is_empty() => format!("?{q}&{added}"),
        _ => format!("?{added}"),
    };
    format!("{scheme}://{userinfo}{first}{path}{query}{fragment}").into()
}

/// `%XX` escapes of a URL part, decoded.
#[cfg(any(
    feature = "postgres",
    feature = "mysql",
    feature = "etcd",
    feature = "zookeeper"
))]
pub(crate) fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_in_the_query_are_redacted_too() {
        for raw in [
            "memcached://h?ssl_key_password=s3cret&timeout=2",
            "redis://:s3cret@h/0?sentinel_password=s3cret&sentinel=m",
            "postgresql://u:s3cret@h/db?password=s3cret",
        ] {
            let shown = redact_str(raw);
            assert!(!shown.contains("s3cret"), "{shown}");
            assert!(shown.contains("***"), "{shown}");
        }
        assert_eq!(redact_str("redis://h?timeout=2"), "redis://h?timeout=2");
        // A URL that does not even parse (a port out of range).
        let bad = redact_str("postgresql://u:hunter2@h:99999/d?password=hunter2&x=1");
        assert!(!bad.contains("hunter2"), "{bad}");
        assert!(bad.ends_with("password=***&x=1"), "{bad}");
        let url = Url::parse("memcached://h?ssl_key_password=s3cret").unwrap();
        let options = UrlOptions::parse("memcached", &url, &["ssl_key_password"]).unwrap();
        let err = options.invalid("ssl_key_password", "s3cret", "not supported");
        assert!(!format!("{err} {err:?}").contains("s3cret"), "{err:?}");
    }

    const VALID: &[&str] = &["timeout", "flag"];

    fn opts(url: &str) -> Result<UrlOptions> {
        UrlOptions::parse("test", &Url::parse(url).unwrap(), VALID)
    }

    #[test]
    fn unknown_option_lists_the_valid_ones() {
        let err = opts("x://h?timout=3").unwrap_err().to_string();
        assert!(
            err.contains("'timout'") && err.contains("timeout, flag"),
            "{err}"
        );
    }

    #[test]
    fn last_value_wins_and_empty_is_ignored() {
        let o = opts("x://h?timeout=1&timeout=3&flag=").unwrap();
        assert_eq!(
            o.duration("timeout", Duration::ZERO).unwrap(),
            Duration::from_secs(3)
        );
        assert!(o.bool("flag", true).unwrap());
    }

    #[test]
    fn durations_and_bools_parse_as_documented() {
        for (raw, ms) in [("2", 2000), ("2.5", 2500), ("2s", 2000), ("250ms", 250)] {
            let o = opts(&format!("x://h?timeout={raw}")).unwrap();
            assert_eq!(
                o.duration("timeout", Duration::ZERO).unwrap(),
                Duration::from_millis(ms)
            );
        }
        for bad in [
            "-1",
            "soon",
            "1e400",
            "1e19",
            "3e18",
            "NaN",
            "inf",
            "3153600001",
        ] {
            let err = opts(&format!("x://h?timeout={bad}"))
                .unwrap()
                .duration("timeout", Duration::ZERO);
            assert!(err.is_err(), "{bad}");
        }
        assert!(!opts("x://h?flag=Off").unwrap().bool("flag", true).unwrap());
        assert!(
            opts("x://h?flag=maybe")
                .unwrap()
                .bool("flag", true)
                .is_err()
        );
    }

    #[test]
    fn passwords_never_print() {
        let url = RedactedUrl::new(Url::parse("redis://user:s3cret@host:1/0").unwrap());
        assert_eq!(url.to_string(), "redis://user:***@host:1/0");
        assert!(!format!("{url:?}").contains("s3cret"));
        assert_eq!(
            redact_str("redis://u:s3cret@h:99999"),
            "redis://u:***@h:99999"
        );
        assert_eq!(
            redact_str("zookeeper://u:pw@h1:1,h2:2/x"),
            "zookeeper://u:***@h1:1,h2:2/x"
        );
    }
}
