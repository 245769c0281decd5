//! The PostgreSQL server the tests may use: the `postgresql://` (or `postgres://`) URL in
//! `TOOZ_TEST_URLS`. Where `TOOZ_REQUIRE_INTEROP` is set (scripts/test, CI) its absence fails
//! the test instead of skipping it.

// Shared by several test binaries, each of which uses only part of it.
#![allow(dead_code)]

pub(crate) fn postgres_url() -> Option<String> {
    let urls = std::env::var("TOOZ_TEST_URLS").unwrap_or_default();
    let url = urls
        .split_whitespace()
        .find(|u| u.starts_with("postgresql://") || u.starts_with("postgres://"))
        .map(str::to_owned);
    if url.is_none() && std::env::var_os("TOOZ_REQUIRE_INTEROP").is_some() {
        panic!("TOOZ_REQUIRE_INTEROP is set but TOOZ_TEST_URLS names no postgresql:// server");
    }
    url
}

/// The URL without its options (`postgresql://user@host:port/db`).
pub(crate) fn base(url: &str) -> String {
    url.split('?').next().unwrap_or(url).to_owned()
}

/// The server's `HOST:PORT` (5432 when the URL names no port).
pub(crate) fn host_port(url: &str) -> String {
    let parsed = url::Url::parse(url).expect("a postgresql URL");
    format!(
        "{}:{}",
        parsed.host_str().unwrap_or("127.0.0.1"),
        parsed.port().unwrap_or(5432)
    )
}

/// A tokio-postgres configuration (a URL it reads) for a direct connection of the test's own,
/// beside the driver's, to the server and database of `url`.
pub(crate) fn direct_config(url: &str) -> String {
    format!("{}?application_name=tooz-test&connect_timeout=5", base(url))
}

/// A direct connection of the test's own (tokio-postgres, no library), to watch and poke the
/// server beside the driver; `config` is a URL without tooz's options or a `key=value` string.
pub(crate) async fn direct(config: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(config, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("a direct connection to {config}: {e}"));
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}
