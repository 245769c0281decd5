//! PostgreSQL servers, URLs, options and names that are not what we expect: a wrong password,
//! a database or a user that does not exist, nobody listening, a server that never answers, a
//! server that is not PostgreSQL, option values that cannot be used, and names made to break
//! SQL (quotes, `'; DROP TABLE ...; --`, NUL bytes, non-UTF-8, 1,024 bytes) as lock, group and
//! member names. Each gives a clear error in bounded time, never showing a password, or works;
//! none panics or hangs, and no name ever reaches SQL text (no table is dropped). Uses the
//! server in `TOOZ_TEST_URLS` (scripts/test starts one) and, for passwords, a throw-away server
//! of its own that asks for one.

#![cfg(feature = "postgres")]

#[path = "support/fake_server.rs"]
mod fake_server;
#[path = "support/postgres_server.rs"]
mod postgres_server;
#[path = "support/postgres_url.rs"]
mod postgres_url;

use std::time::{Duration, Instant};

use postgres_server::{Server, free_port, have_postgres};
use postgres_url::{base, direct, direct_config, postgres_url};
use serde_json::json;
use tooz::{Capabilities, Coordinator, Error, GroupId, LockName, MemberId};

/// The bound on any one call here: generous against the 2-second timeouts, far from a hang.
const BOUND: Duration = Duration::from_secs(15);

/// A password that must never be shown.
const SECRET: &str = "canary-s3cret";

async fn bounded<T>(what: &str, call: impl Future<Output = T>) -> T {
    match tokio::time::timeout(BOUND, call).await {
        Ok(result) => result,
        Err(_) => panic!("{what} did not return within {BOUND:?}"),
    }
}

/// Display and Debug of an error, checked for the secret.
fn shown_without_secret(err: &Error, secret: &str) -> String {
    let shown = format!("{err} / {err:?}");
    assert!(
        !shown.contains(secret),
        "the password appears in an error: {shown}"
    );
    shown
}

/// The shared server's URL without options, and the same with user `postgres:SECRET`.
fn shared() -> Option<(String, url::Url)> {
    let base = base(&postgres_url()?);
    let mut with_secret = url::Url::parse(&base).unwrap();
    if with_secret.username().is_empty() {
        with_secret.set_username("postgres").unwrap();
    }
    with_secret.set_password(Some(SECRET)).unwrap();
    Some((base, with_secret))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_an_error_without_the_password() {
    if !have_postgres() {
        return eprintln!("PostgreSQL is not installed: skipping (scripts/test installs it)");
    }
    let server = Server::start_with_password(Some("right-one"));
    let wrong = format!(
        "postgresql://postgres:hunter2@127.0.0.1:{}/postgres?timeout=2",
        server.port
    );
    let started = Instant::now();
    let err = bounded("connect", Coordinator::connect(&wrong, "m"))
        .await
        .unwrap_err();
    let shown = shown_without_secret(&err, "hunter2");
    println!("a wrong password: {err} (after {:?})", started.elapsed());
    assert!(
        shown.to_lowercase().contains("password"),
        "the error names the problem: {shown}"
    );
    // A wrong password given as a `password` option instead (or that option refused): never
    // shown either.
    let wrong_option = format!(
        "postgresql://postgres@127.0.0.1:{}/postgres?timeout=2&password=hunter2",
        server.port
    );
    let err = bounded("connect", Coordinator::connect(&wrong_option, "m"))
        .await
        .unwrap_err();
    let shown = shown_without_secret(&err, "hunter2");
    assert!(
        shown.to_lowercase().contains("password"),
        "the error names the problem: {shown}"
    );
    // No password at all, where the server wants one.
    let none = format!(
        "postgresql://postgres@127.0.0.1:{}/postgres?timeout=2",
        server.port
    );
    let err = bounded("connect", Coordinator::connect(&none, "m"))
        .await
        .unwrap_err();
    let shown = format!("{err} / {err:?}");
    println!("no password: {err}");
    assert!(
        shown.to_lowercase().contains("password"),
        "the error names the problem: {shown}"
    );
    // The right one (scram-sha-256) works, and the coordinator never shows it either.
    let right = server.url("timeout=2");
    let coord = bounded("connect", Coordinator::connect(&right, "m"))
        .await
        .unwrap();
    assert!(
        !format!("{coord:?}").contains("right-one"),
        "the coordinator's Debug shows the password"
    );
    let guard = coord
        .lock("after-auth")
        .try_acquire()
        .await
        .unwrap()
        .expect("free");
    guard.release().await.unwrap();
    coord.stop().await.unwrap();
    assert!(
        !format!("{:?}", Coordinator::builder(&right, "m")).contains("right-one"),
        "the builder's Debug shows the password"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_or_user_that_does_not_exist_is_an_error_naming_it() {
    let Some((_, with_secret)) = shared() else {
        return eprintln!(
            "no postgresql:// URL in TOOZ_TEST_URLS: skipping (scripts/test runs it)"
        );
    };
    let pid = std::process::id();

    let database = format!("no_such_database_{pid}");
    let mut url = with_secret.clone();
    url.set_path(&format!("/{database}"));
    let err = bounded(
        "connect",
        Coordinator::connect(&format!("{url}?timeout=2"), "m"),
    )
    .await
    .unwrap_err();
    let shown = shown_without_secret(&err, SECRET);
    println!("a database that does not exist: {err}");
    assert!(
        shown.contains(&database),
        "the error names the database: {shown}"
    );
    // The same through tooz's `dbname` option, which overrides the URL's path.
    let err = bounded(
        "connect",
        Coordinator::connect(&format!("{with_secret}?timeout=2&dbname={database}"), "m"),
    )
    .await
    .unwrap_err();
    let shown = shown_without_secret(&err, SECRET);
    assert!(
        shown.contains(&database),
        "the error names the database: {shown}"
    );

    let user = format!("no_such_user_{pid}");
    let mut url = with_secret;
    url.set_username(&user).unwrap();
    let err = bounded(
        "connect",
        Coordinator::connect(&format!("{url}?timeout=2"), "m"),
    )
    .await
    .unwrap_err();
    let shown = shown_without_secret(&err, SECRET);
    println!("a user that does not exist: {err}");
    assert!(shown.contains(&user), "the error names the user: {shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_listening_is_a_connection_error_in_bounded_time() {
    let port = free_port();
    let started = Instant::now();
    let url = format!("postgresql://postgres:{SECRET}@127.0.0.1:{port}/tooz?timeout=2");
    let err = bounded("connect", Coordinator::connect(&url, "m"))
        .await
        .unwrap_err();
    shown_without_secret(&err, SECRET);
    assert!(matches!(err, Error::Connection { .. }), "{err:?}");
    assert!(err.is_retryable(), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a refused connection fails at once: {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_times_out() {
    let port = fake_server::fake_server(None);
    let started = Instant::now();
    let url = format!("postgresql://postgres:{SECRET}@127.0.0.1:{port}/tooz?timeout=2");
    let err = bounded(
        "connect to a silent server",
        Coordinator::connect(&url, "m"),
    )
    .await
    .unwrap_err();
    let took = started.elapsed();
    shown_without_secret(&err, SECRET);
    println!("a silent server: {err} after {took:?}");
    assert!(err.is_retryable(), "a timeout is worth retrying: {err:?}");
    assert!(
        took < Duration::from_secs(6),
        "bounded by timeout=2, not {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_is_not_postgresql_is_an_error_naming_it() {
    let answers: [&'static [u8]; 3] = [
        b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
        b"-ERR unknown command\r\n",
        b"\x00\xff\xfe\x07 garbage \x1b[0m\r\nmore garbage",
    ];
    for answer in answers {
        let port = fake_server::fake_server(Some(answer));
        let started = Instant::now();
        let url = format!("postgresql://postgres:{SECRET}@127.0.0.1:{port}/tooz?timeout=2");
        let err = bounded("connect", Coordinator::connect(&url, "m"))
            .await
            .expect_err("a coordinator on a server that is not PostgreSQL");
        let shown = shown_without_secret(&err, SECRET);
        println!(
            "{:?} where PostgreSQL was expected: {err} (after {:?})",
            String::from_utf8_lossy(&answer[..8]),
            started.elapsed()
        );
        assert!(
            shown.contains(&format!("127.0.0.1:{port}")),
            "the error names the server: {shown}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn option_values_that_cannot_be_used_are_refused() {
    let Some((base, with_secret)) = shared() else {
        return eprintln!(
            "no postgresql:// URL in TOOZ_TEST_URLS: skipping (scripts/test runs it)"
        );
    };
    let refused = [
        ("lock_timeout", "0"),
        // At least a second.
        ("lock_timeout", "0.5"),
        ("lock_timeout", "abc"),
        ("lock_timeout", "-1"),
        ("timeout", "abc"),
        ("timeout", "0"),
        ("timeout", "-5"),
        ("membership_timeout", "abc"),
        ("membership_timeout", "0"),
        ("sslmode", "bogus"),
        ("tooz_lock_keys", "maybe"),
        ("port", "abc"),
    ];
    for (option, value) in refused {
        let url = if option == "timeout" {
            format!("{with_secret}?timeout={value}")
        } else {
            format!("{with_secret}?timeout=2&{option}={value}")
        };
        match bounded("connect", Coordinator::connect(&url, "m")).await {
            Err(err @ Error::InvalidOption { .. }) => {
                shown_without_secret(&err, SECRET);
                let Error::InvalidOption { option: named, .. } = &err else {
                    unreachable!()
                };
                assert_eq!(named, option, "{option}={value}: {err}");
            }
            Err(e) => panic!("{option}={value}: {e:?}"),
            Ok(_) => panic!("{option}={value} accepted"),
        }
    }
    let err = bounded(
        "connect",
        Coordinator::connect(&format!("{with_secret}?timeout=2&bogus=1"), "m"),
    )
    .await
    .unwrap_err();
    shown_without_secret(&err, SECRET);
    assert!(
        matches!(&err, Error::UnknownOption { option, .. } if option == "bogus"),
        "{err:?}"
    );
    // TLS that must be had is refused (for now), or fails on this server without TLS: never a
    // plain-text connection.
    for mode in ["require", "verify-ca", "verify-full"] {
        let err = bounded(
            "connect",
            Coordinator::connect(&format!("{with_secret}?timeout=2&sslmode={mode}"), "m"),
        )
        .await
        .expect_err("sslmode requiring TLS must not connect in plain text");
        shown_without_secret(&err, SECRET);
        println!("sslmode={mode}: {err}");
    }
    // A table prefix that would be SQL: refused, or (if quoted) harmless.
    let admin = direct(&direct_config(&base)).await;
    let hostile_prefix = "x\"; DROP TABLE tooz_locks; --";
    let encoded: String = url::form_urlencoded::byte_serialize(hostile_prefix.as_bytes()).collect();
    let locks_before = table_exists(&admin, "tooz_locks").await;
    match bounded(
        "connect",
        Coordinator::connect(&format!("{base}?timeout=2&table_prefix={encoded}"), "m"),
    )
    .await
    {
        Err(Error::InvalidOption { option, .. }) => assert_eq!(option, "table_prefix"),
        Err(e) => panic!("a hostile table_prefix: {e:?}"),
        Ok(coord) => {
            coord
                .lock("p")
                .try_acquire()
                .await
                .unwrap()
                .expect("free")
                .release()
                .await
                .unwrap();
            coord.stop().await.unwrap();
        }
    }
    assert_eq!(
        table_exists(&admin, "tooz_locks").await,
        locks_before,
        "a table prefix dropped a table"
    );

    // Every form that should work does: the edges, TLS when possible, tooz's URL forms.
    let port = url::Url::parse(&base).unwrap().port().unwrap_or(5432);
    let database = url::Url::parse(&base)
        .unwrap()
        .path()
        .trim_start_matches('/')
        .to_owned();
    let mut elsewhere = url::Url::parse(&base).unwrap();
    elsewhere.set_port(Some(free_port())).unwrap();
    elsewhere.set_path("/no_such_database");
    let accepted = [
        format!("{base}?timeout=2"),
        format!("{with_secret}?timeout=2"),
        format!("{base}?timeout=2&lock_timeout=1"),
        format!("{base}?timeout=2&lock_timeout=1.5&membership_timeout=3"),
        format!("{base}?timeout=2&sslmode=disable"),
        format!("{base}?timeout=2&sslmode=prefer"),
        format!("{base}?timeout=2&tooz_lock_keys=true"),
        format!("{base}?timeout=2&tooz_lock_keys=false"),
        format!("{base}?timeout=2&table_prefix=tooz_"),
        base.replacen("postgresql://", "postgres://", 1) + "?timeout=2",
        // tooz's forms: the query's port and dbname override the URL's.
        format!("{elsewhere}?timeout=2&port={port}&dbname={database}"),
    ];
    for url in &accepted {
        let coord = bounded("connect", Coordinator::connect(url, "edge"))
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        let guard = coord
            .lock("edge")
            .try_acquire()
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"))
            .expect("free");
        guard.release().await.unwrap();
        coord.stop().await.unwrap();
    }
    // `host` as a socket directory: the one scripts/backends gives the shared server.
    let socket_dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../target/backends/postgres/run"
    );
    if std::path::Path::new(&format!("{socket_dir}/.s.PGSQL.{port}")).exists() {
        let dir: String = url::form_urlencoded::byte_serialize(socket_dir.as_bytes()).collect();
        // The query's host (a directory: a unix socket) and port override the URL's.
        let url = format!(
            "postgresql://postgres@127.0.0.1:1/{database}?timeout=2&host={dir}&port={port}"
        );
        let coord = bounded(
            "connect over the unix socket",
            Coordinator::connect(&url, "unix"),
        )
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
        coord
            .lock("unix")
            .try_acquire()
            .await
            .unwrap()
            .expect("free")
            .release()
            .await
            .unwrap();
        coord.stop().await.unwrap();
    }

    // What the backend says it offers.
    let coord = Coordinator::connect(&format!("{base}?timeout=2"), "m")
        .await
        .unwrap();
    let supported = coord.supported();
    assert!(supported.groups && supported.elections, "{supported:?}");
    assert!(!supported.shared_locks, "{supported:?}");
    assert!(supported.lease_bound_locks, "{supported:?}");
    assert!(!supported.queued_lock_waits, "{supported:?}");
    let err = coord.lock("s").shared().try_acquire().await.unwrap_err();
    assert!(err.is_unsupported(), "{err:?}");
    coord.stop().await.unwrap();
}

async fn table_exists(admin: &tokio_postgres::Client, table: &str) -> bool {
    admin
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_name_works_and_never_reaches_sql() {
    let Some((base, _)) = shared() else {
        return eprintln!(
            "no postgresql:// URL in TOOZ_TEST_URLS: skipping (scripts/test runs it)"
        );
    };
    let pid = std::process::id();
    // Tables of this run's own (nothing left from another run), dropped at the end.
    let prefix = format!("tooz_hostile_{pid}_");
    let canary = format!("tooz_canary_{pid}");
    let admin = direct(&direct_config(&base)).await;
    admin
        .batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS {canary} (v text);
             INSERT INTO {canary} VALUES ('still here');"
        ))
        .await
        .unwrap();
    let tables = ["locks", "groups", "beats", "members", "leaders"].map(|t| format!("{prefix}{t}"));

    // Ours with tooz's two-key locks too (md5 of the bytes), and ours without.
    let a = Coordinator::connect(
        &format!("{base}?timeout=5&table_prefix={prefix}&tooz_lock_keys=true"),
        "a",
    )
    .await
    .unwrap();
    // A member id that would be SQL if it were spliced in, with a NUL and a byte that is not
    // UTF-8 (also shown, cleaned, as the session's application_name).
    let b_id = MemberId::from(&b"b'); DROP TABLE tooz_beats; --\0\xff"[..]);
    let b = Coordinator::connect(
        &format!("{base}?timeout=5&table_prefix={prefix}"),
        b_id.clone(),
    )
    .await
    .unwrap();

    let long = |last: u8| {
        let mut name = vec![b'n'; tooz::MAX_NAME_LEN - 1];
        name.push(last);
        name
    };
    let names: Vec<Vec<u8>> = vec![
        b"'".to_vec(),
        b"''".to_vec(),
        b"\"".to_vec(),
        format!("'; DROP TABLE {canary}; --").into_bytes(),
        format!("'); DROP TABLE {prefix}locks; --").into_bytes(),
        format!("\"; DROP TABLE {prefix}members; --").into_bytes(),
        b"x'); DELETE FROM pg_catalog.pg_class; --".to_vec(),
        b"$1".to_vec(),
        b"$$ || pg_sleep(10) || $$".to_vec(),
        b"%s %d %n".to_vec(),
        b"back\\slash\\' E'\\x00'".to_vec(),
        b"/* comment".to_vec(),
        b"\0".to_vec(),
        b"nul\0in the middle".to_vec(),
        b"\0\0\0".to_vec(),
        b"\xff\xfe not utf-8 \x80".to_vec(),
        b"\xc3\x28".to_vec(),
        "é ü 漢字 🦀".as_bytes().to_vec(),
        b"cr\r\nlf\ttab".to_vec(),
        long(b'a'),
        long(b'b'),
        long(0),
        vec![0xff; tooz::MAX_NAME_LEN],
    ];

    // Locks: every name at once, each its own lock (no two names share a key), each excluding
    // the other coordinator.
    let mut guards = Vec::new();
    for name in &names {
        let lock = LockName::from(name.clone());
        let guard = bounded("acquire", a.lock(lock.clone()).try_acquire())
            .await
            .unwrap_or_else(|e| panic!("lock {lock:?}: {e}"))
            .unwrap_or_else(|| panic!("lock {lock:?} is taken: another name shares its key"));
        assert!(
            bounded("acquire", b.lock(lock.clone()).try_acquire())
                .await
                .unwrap()
                .is_none(),
            "lock {lock:?} is not exclusive"
        );
        guards.push(guard);
    }
    let mut tokens = Vec::new();
    for guard in guards {
        assert!(guard.is_held(), "{:?}", guard.name());
        tokens.push(guard.token());
        guard.release().await.unwrap();
    }
    for (name, token) in names.iter().zip(tokens) {
        let guard = b
            .lock(LockName::from(name.clone()))
            .try_acquire()
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{:?} was not released", String::from_utf8_lossy(name)));
        assert!(guard.token() > token, "tokens grow per name");
        guard.release().await.unwrap();
    }

    // Groups: created and joined by one, seen by the other, listed, led.
    for (i, name) in names.iter().enumerate() {
        let group = GroupId::from(name.clone());
        bounded("create", a.create_group(group.clone()))
            .await
            .unwrap_or_else(|e| panic!("group {group:?}: {e}"));
        a.join_group(
            group.clone(),
            json!({"n": i, "name": "'; DROP TABLE x; --"}),
        )
        .await
        .unwrap();
        b.join_group(group.clone(), Capabilities::none())
            .await
            .unwrap();
        let members = b.members(group.clone()).await.unwrap();
        assert_eq!(
            members.into_iter().collect::<Vec<_>>(),
            vec![MemberId::from("a"), b_id.clone()],
            "group {group:?}"
        );
        assert_eq!(
            b.member_capabilities(group.clone(), "a")
                .await
                .unwrap()
                .to_json(),
            json!({"n": i, "name": "'; DROP TABLE x; --"})
        );
        assert!(
            a.groups().await.unwrap().contains(&group),
            "group {group:?} is listed as itself"
        );
        let lead = b.campaign(group.clone()).await.unwrap();
        assert_eq!(a.leader(group.clone()).await.unwrap(), Some(b_id.clone()));
        lead.resign().await.unwrap();
        a.leave_group(group.clone()).await.unwrap();
        b.leave_group(group.clone()).await.unwrap();
        a.delete_group(group.clone()).await.unwrap();
        assert!(!a.groups().await.unwrap().contains(&group));
    }

    // Nothing reached the server as SQL of its own.
    let still: String = admin
        .query_one(&format!("SELECT v FROM {canary}"), &[])
        .await
        .expect("the canary table is still there")
        .get(0);
    assert_eq!(still, "still here");
    for table in &tables {
        assert!(
            table_exists(&admin, table).await,
            "table {table} was dropped"
        );
    }
    a.stop().await.unwrap();
    b.stop().await.unwrap();
    let drop_all = format!(
        "DROP TABLE IF EXISTS {canary}; DROP TABLE IF EXISTS {} CASCADE;",
        tables.join(", ")
    );
    admin.batch_execute(&drop_all).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_whose_row_vanished_is_given_back_and_found_again() {
    let Some(url) = postgres_url() else {
        eprintln!("no postgresql:// URL in TOOZ_TEST_URLS: skipping (scripts/test runs it)");
        return;
    };
    let prefix = format!("tooz_vanished_{}_", std::process::id());
    let url = format!("{url}&table_prefix={prefix}");
    let coord = Coordinator::connect(&url, "vanished").await.unwrap();
    let guard = coord.lock("v").acquire().await.unwrap();
    guard.release().await.unwrap();
    // Someone empties the table (a restore, a careless cleanup) under a coordinator that
    // remembers the lock's key.
    let admin = direct(&direct_config(&url)).await;
    admin
        .batch_execute(&format!("DELETE FROM {prefix}locks"))
        .await
        .unwrap();
    let err = coord.lock("v").try_acquire().await.unwrap_err();
    assert!(matches!(err, Error::Backend { .. }), "{err:?}");
    let leaked: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
             WHERE l.locktype = 'advisory' AND a.application_name = 'tooz:vanished'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(leaked, 0, "the lock taken without its row was left held");
    let again = coord.lock("v").try_acquire().await.unwrap();
    assert!(again.is_some(), "the name gets a key anew");
    drop(again);
    coord.stop().await.unwrap();
    for table in ["members", "leaders", "beats", "groups", "locks"] {
        let _ = admin
            .batch_execute(&format!("DROP TABLE IF EXISTS {prefix}{table} CASCADE"))
            .await;
    }
}
