//! The backends under test: `memory://` and `file://` always, the servers from
//! `TOOZ_TEST_URLS` (what `scripts/backends env` prints) for the rest.

use std::net::SocketAddr;
use std::path::Path;

use tooz::options::redact_str;

/// The session timeout every target runs with: short, so crashes and pauses resolve quickly.
pub(crate) const TIMEOUT_SECS: u64 = 2;

#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The row's name: the URL's scheme family (`redis`, `etcd`, ...).
    pub(crate) name: String,
    pub(crate) url: String,
    /// The server's address, for the fault proxy; `None` without a network (memory, file).
    pub(crate) upstream: Option<SocketAddr>,
}

impl Target {
    /// Whether other processes share this backend (`memory://` lives in one process).
    pub(crate) fn is_shared(&self) -> bool {
        self.name != "memory"
    }

    /// The URL with the server's address replaced by the fault proxy's; an error if the URL
    /// does not spell the address as the proxy was given it (the faults would miss it).
    pub(crate) fn url_through(&self, port: u16) -> Result<String, String> {
        let upstream = self.upstream.ok_or("no network address")?.to_string();
        if !self.url.contains(&upstream) {
            return Err(format!(
                "{} does not spell its address as {upstream}",
                redact_str(&self.url)
            ));
        }
        Ok(self
            .url
            .replacen(&upstream, &format!("127.0.0.1:{port}"), 1))
    }
}

/// Every target: the two embedded ones, then each server URL in `TOOZ_TEST_URLS`.
pub(crate) fn all(scratch: &Path) -> Result<Vec<Target>, String> {
    let mut targets = vec![
        Target {
            name: "memory".into(),
            url: format!(
                "memory://torture-{}?timeout={TIMEOUT_SECS}",
                std::process::id()
            ),
            upstream: None,
        },
        Target {
            name: "file".into(),
            url: format!(
                "file://{}?timeout={TIMEOUT_SECS}",
                scratch.join("file").display()
            ),
            upstream: None,
        },
    ];
    let urls = std::env::var("TOOZ_TEST_URLS").unwrap_or_default();
    for url in urls.split_whitespace() {
        targets.push(server(url)?);
    }
    Ok(targets)
}

fn server(url: &str) -> Result<Target, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("TOOZ_TEST_URLS: {} has no scheme", redact_str(url)))?;
    let name = match scheme {
        "etcd3+http" | "etcd3" => "etcd",
        "postgresql" => "postgres",
        other => other,
    };
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let hostport = authority.rsplit('@').next().unwrap_or_default();
    let upstream = hostport.parse::<SocketAddr>().map_err(|e| {
        format!(
            "TOOZ_TEST_URLS: {}: the fault proxy needs an IP address and a port ({e})",
            redact_str(url)
        )
    })?;
    Ok(Target {
        name: name.into(),
        url: with_timeout(url),
        upstream: Some(upstream),
    })
}

/// `timeout=` set to [`TIMEOUT_SECS`], replacing the URL's own.
fn with_timeout(url: &str) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut options: Vec<String> = query
        .split('&')
        .filter(|o| !o.is_empty() && !o.starts_with("timeout="))
        .map(str::to_owned)
        .collect();
    options.push(format!("timeout={TIMEOUT_SECS}"));
    format!("{base}?{}", options.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_get_the_short_timeout_and_an_address() {
        let t = server("postgresql://postgres@127.0.0.1:5432/tooz?timeout=5").unwrap();
        assert_eq!(t.name, "postgres");
        assert_eq!(t.url, "postgresql://postgres@127.0.0.1:5432/tooz?timeout=2");
        assert_eq!(t.upstream, Some("127.0.0.1:5432".parse().unwrap()));
        assert_eq!(
            t.url_through(40000).unwrap(),
            "postgresql://postgres@127.0.0.1:40000/tooz?timeout=2"
        );
        let hidden = server("redis://:secret@db.example:6379").unwrap_err();
        assert!(!hidden.contains("secret"), "{hidden}");
        let t = server("etcd3+http://127.0.0.1:2379").unwrap();
        assert_eq!(
            (t.name.as_str(), t.url.as_str()),
            ("etcd", "etcd3+http://127.0.0.1:2379?timeout=2")
        );
    }
}
