//! The MySQL or MariaDB server the tests may use: the `mysql://` URL in `TOOZ_TEST_URLS`. Where
//! `TOOZ_REQUIRE_INTEROP` is set (scripts/test, CI) its absence fails the test instead of
//! skipping it.

// Shared by several test binaries, each of which uses only part of it.
#![allow(dead_code)]

use mysql_async::prelude::Queryable;

pub(crate) fn mysql_url() -> Option<String> {
    let urls = std::env::var("TOOZ_TEST_URLS").unwrap_or_default();
    let url = urls
        .split_whitespace()
        .find(|u| u.starts_with("mysql://"))
        .map(str::to_owned);
    if url.is_none() && std::env::var_os("TOOZ_REQUIRE_INTEROP").is_some() {
        panic!("TOOZ_REQUIRE_INTEROP is set but TOOZ_TEST_URLS names no mysql:// server");
    }
    url
}

/// The URL without its options (`mysql://user@host:port/db`).
pub(crate) fn base(url: &str) -> String {
    url.split('?').next().unwrap_or(url).to_owned()
}

/// The server's `HOST:PORT` (3306 when the URL names no port).
pub(crate) fn host_port(url: &str) -> String {
    let parsed = url::Url::parse(url).expect("a mysql URL");
    format!(
        "{}:{}",
        parsed.host_str().unwrap_or("127.0.0.1"),
        parsed.port().unwrap_or(3306)
    )
}

/// A direct connection of the test's own (mysql_async, no library), to watch and poke the
/// server beside the driver: to the host, port, user, password and database of `url` (its
/// options are ignored), over TCP even where a unix socket would do.
pub(crate) async fn direct(url: &str) -> mysql_async::Conn {
    let parsed = url::Url::parse(url).expect("a mysql URL");
    let user = (!parsed.username().is_empty()).then(|| parsed.username().to_owned());
    let database = parsed.path().trim_start_matches('/');
    let options = mysql_async::OptsBuilder::default()
        .ip_or_hostname(parsed.host_str().unwrap_or("127.0.0.1").to_owned())
        .tcp_port(parsed.port().unwrap_or(3306))
        .user(user)
        .pass(parsed.password().map(str::to_owned))
        .db_name((!database.is_empty()).then(|| database.to_owned()))
        .prefer_socket(false);
    let shown = base(url);
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        mysql_async::Conn::new(options),
    )
    .await
    .unwrap_or_else(|_| panic!("a direct connection to {shown}: no answer within 10 s"))
    .unwrap_or_else(|e| panic!("a direct connection to {shown}: {e}"))
}

/// The server's connection holding user-level lock `server_name` (`IS_USED_LOCK`), if any.
pub(crate) async fn lock_holder(admin: &mut mysql_async::Conn, server_name: &str) -> Option<u64> {
    let holder: Option<Option<u64>> = admin
        .exec_first("SELECT IS_USED_LOCK(?)", (server_name.to_owned(),))
        .await
        .unwrap_or_else(|e| panic!("IS_USED_LOCK({server_name:?}): {e}"));
    holder.flatten()
}

/// Whether connection `id` is still on the server's process list.
pub(crate) async fn connection_exists(admin: &mut mysql_async::Conn, id: u64) -> bool {
    let count: Option<u64> = admin
        .exec_first(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ?",
            (id,),
        )
        .await
        .unwrap_or_else(|e| panic!("reading the process list: {e}"));
    count.unwrap_or(0) > 0
}

/// Whether table `table` exists in the connection's database.
pub(crate) async fn table_exists(admin: &mut mysql_async::Conn, table: &str) -> bool {
    let count: Option<u64> = admin
        .exec_first(
            "SELECT COUNT(*) FROM information_schema.TABLES
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
            (table.to_owned(),),
        )
        .await
        .unwrap_or_else(|e| panic!("reading information_schema.TABLES: {e}"));
    count.unwrap_or(0) > 0
}

/// Runs `sql` (text of the test's own, no input) on the direct connection, or panics.
pub(crate) async fn execute(admin: &mut mysql_async::Conn, sql: &str) {
    admin
        .query_drop(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}
