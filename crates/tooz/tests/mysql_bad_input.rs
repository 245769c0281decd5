//! MySQL servers, URLs, options, names and rows that are not what we expect: nobody listening,
//! a server that never answers, a server that is not MySQL, a wrong password, a database or a
//! user that does not exist, option values that cannot be used, names made to break SQL or the
//! server's lock names (quotes, `' OR 1=1 --`, `%`, `\`, NUL bytes, non-UTF-8, 1,024 bytes,
//! over 64 characters, the driver's own hashed-name marker), and capabilities rows another
//! program filled with garbage. Each gives a clear error in bounded time, never showing a
//! password, or works; none panics or hangs; no name ever reaches SQL text (no table is
//! dropped); and no two different names ever share a lock or a group. Uses the server in
//! `TOOZ_TEST_URLS` (scripts/test starts one) where a server is needed.

#![cfg(feature = "mysql")]

#[path = "support/fake_server.rs"]
mod fake_server;
#[path = "support/mysql_server.rs"]
mod mysql_server;
#[path = "support/mysql_url.rs"]
mod mysql_url;

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_server::free_port;
use mysql_url::{base, direct, execute, table_exists};
use serde_json::json;
use sha2::{Digest, Sha256};
use tooz::{Capabilities, Coordinator, Error, GroupId, LockName, MemberId};

/// The bound on any one call here: generous against the 2-second timeouts, far from a hang.
const BOUND: Duration = Duration::from_secs(15);

/// A password that must never be shown.
const SECRET: &str = "secretpw";

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

/// The shared server's URL without options, and the same with user `root:SECRET` (a password
/// the server's passwordless `root` does not have).
fn shared() -> Option<(String, url::Url)> {
    let base = base(&mysql_url::mysql_url()?);
    let mut with_secret = url::Url::parse(&base).unwrap();
    if with_secret.username().is_empty() {
        with_secret.set_username("root").unwrap();
    }
    with_secret.set_password(Some(SECRET)).unwrap();
    Some((base, with_secret))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_listening_is_a_connection_error_in_bounded_time() {
    let port = free_port();
    let started = Instant::now();
    let url = format!("mysql://root:{SECRET}@127.0.0.1:{port}/tooz?timeout=2");
    let err = bounded("connect", Coordinator::connect(&url, "m"))
        .await
        .unwrap_err();
    let shown = shown_without_secret(&err, SECRET);
    println!("nobody listening: {err}");
    assert!(matches!(err, Error::Connection { .. }), "{err:?}");
    assert!(err.is_retryable(), "{err:?}");
    assert!(
        shown.contains(&format!("127.0.0.1:{port}")),
        "the error names the server: {shown}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a refused connection fails at once: {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_times_out() {
    // Accepts, and never sends the greeting a MySQL client waits for.
    let port = fake_server::fake_server(None);
    let started = Instant::now();
    let url = format!("mysql://root:{SECRET}@127.0.0.1:{port}/tooz?timeout=2");
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
async fn a_server_that_is_not_mysql_is_an_error_naming_it() {
    let answers: [&'static [u8]; 6] = [
        // An HTTP server.
        b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
        // A Redis server.
        b"-ERR unknown command\r\n",
        // Garbage.
        b"\x00\xff\xfe\x07 garbage \x1b[0m\r\nmore garbage",
        // A well-framed packet that is not a greeting (an error packet with a bogus code).
        b"\x09\x00\x00\x00\xff\x01\x02garbage",
        // A greeting cut short: protocol 10, then nothing of what must follow.
        b"\x03\x00\x00\x00\x0a\x35\x00",
        // An empty packet.
        b"\x00\x00\x00\x00",
    ];
    for answer in answers {
        let port = fake_server::fake_server(Some(answer));
        let started = Instant::now();
        let url = format!("mysql://root:{SECRET}@127.0.0.1:{port}/tooz?timeout=2");
        let err = bounded("connect", Coordinator::connect(&url, "m"))
            .await
            .expect_err("a coordinator on a server that is not MySQL");
        let took = started.elapsed();
        let shown = shown_without_secret(&err, SECRET);
        println!(
            "{:?} where MySQL was expected: {err} (after {took:?})",
            String::from_utf8_lossy(&answer[..answer.len().min(8)]),
        );
        assert!(
            shown.contains(&format!("127.0.0.1:{port}")),
            "the error names the server: {shown}"
        );
        assert!(
            took < Duration::from_secs(6),
            "bounded by timeout=2, not {took:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_an_error_without_the_password() {
    let Some((base, with_secret)) = shared() else {
        return eprintln!("no mysql:// URL in TOOZ_TEST_URLS: skipping (scripts/test runs it)");
    };
    let url = format!("{with_secret}?timeout=2");
    let started = Instant::now();
    let err = bounded("connect", Coordinator::connect(&url, "m"))
        .await
        .expect_err("connected with a password root does not have");
    let shown = shown_without_secret(&err, SECRET);
    println!("a wrong password: {err} (after {:?})", started.elapsed());
    assert!(matches!(err, Error::Backend { .. }), "{err:?}");
    assert!(
        shown.to_lowercase().contains("access denied"),
        "the error names the problem: {shown}"
    );
    // Neither the builder nor a coordinator shows a password it was given.
    assert!(
        !format!("{:?}", Coordinator::builder(&url, "m")).contains(SECRET),
        "the builder's Debug shows the password"
    );
    let coord = Coordinator::connect(&format!("{base}?timeout=2"), "m")
        .await
        .unwrap();
    assert!(!format!("{coord:?}").contains(SECRET));
    coord.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_or_user_that_does_not_exist_is_an_error_naming_it() {
    let Some((base, _)) = shared() else {
        return eprintln!("no mysql:// URL in TOOZ_TEST_URLS: skipping (scripts/test runs it)");
    };
    let pid = std::process::id();

    let database = format!("no_such_database_{pid}");
    let mut url = url::Url::parse(&base).unwrap();
    url.set_path(&format!("/{database}"));
    let err = bounded(
        "connect",
        Coordinator::connect(&format!("{url}?timeout=2"), "m"),
    )
    .await
    .unwrap_err();
    let shown = format!("{err} / {err:?}");
    println!("a database that does not exist: {err}");
    assert!(matches!(err, Error::Backend { .. }), "{err:?}");
    assert!(!err.is_retryable(), "{err:?}");
    assert!(
        shown.contains(&database),
        "the error names the database: {shown}"
    );

    let user = format!("no_such_user_{pid}");
    let mut url = url::Url::parse(&base).unwrap();
    url.set_username(&user).unwrap();
    url.set_password(Some(SECRET)).unwrap();
    let err = bounded(
        "connect",
        Coordinator::connect(&format!("{url}?timeout=2"), "m"),
    )
    .await
    .unwrap_err();
    let shown = shown_without_secret(&err, SECRET);
    println!("a user that does not exist: {err}");
    assert!(matches!(err, Error::Backend { .. }), "{err:?}");
    assert!(shown.contains(&user), "the error names the user: {shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn option_values_that_cannot_be_used_are_refused() {
    let Some((base, with_secret)) = shared() else {
        return eprintln!("no mysql:// URL in TOOZ_TEST_URLS: skipping (scripts/test runs it)");
    };
    let mut admin = direct(&base).await;
    let refused = [
        ("lock_timeout", "0"),
        // At least a second (the server's wait_timeout is whole seconds).
        ("lock_timeout", "0.5"),
        ("lock_timeout", "abc"),
        ("lock_timeout", "-1"),
        // At most 365 days (the server's limit for wait_timeout).
        ("lock_timeout", "31536001"),
        ("timeout", "abc"),
        ("timeout", "0"),
        ("timeout", "-5"),
        ("membership_timeout", "abc"),
        ("membership_timeout", "0"),
        ("membership_timeout", "99999999999"),
        // A table prefix is spliced into statements: only [a-z_][a-z0-9_]*, up to 40.
        ("table_prefix", "x%3Bdrop"),
        ("table_prefix", "x%3B%20DROP%20TABLE%20tooz_locks%3B%20--"),
        ("table_prefix", "Tooz"),
        ("table_prefix", "9lives"),
        ("table_prefix", "tooz-x"),
        ("table_prefix", "x%60"),
        ("table_prefix", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
    ];
    let locks_before = table_exists(&mut admin, "tooz_locks").await;
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
    assert_eq!(
        table_exists(&mut admin, "tooz_locks").await,
        locks_before,
        "a table prefix dropped a table"
    );
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
    // TLS asked for in a way that cannot be honoured (no CA to verify the server with, a file
    // that is not there, an option we do not offer, or no `mysql-tls` feature) is refused
    // before anything connects: never a plain-text connection the URL asked to encrypt.
    for tls in [
        "ssl_ca=/etc/ssl/ca.pem",
        "ssl_capath=/etc/ssl/certs",
        "ssl_cert=/c.pem",
        "ssl_key=/k.pem",
        "ssl_cipher=AES256-SHA",
        "ssl_verify_mode=CERT_REQUIRED",
        "ssl_check_hostname=true",
    ] {
        let err = bounded(
            "connect",
            Coordinator::connect(&format!("{with_secret}?timeout=2&{tls}"), "m"),
        )
        .await
        .expect_err("TLS options must not connect in plain text");
        shown_without_secret(&err, SECRET);
        assert!(
            matches!(
                err,
                Error::InvalidOption { .. }
                    | Error::Unsupported { .. }
                    | Error::FeatureNotEnabled { .. }
            ),
            "{tls}: {err:?}"
        );
    }

    // Every form that should work does: the edges, tooz's options.
    let accepted = [
        format!("{base}?timeout=2"),
        format!("{base}?timeout=2&lock_timeout=1"),
        format!("{base}?timeout=2&lock_timeout=1.5&membership_timeout=3"),
        format!("{base}?timeout=2&lock_timeout=31536000"),
        format!("{base}?timeout=2&table_prefix=tooz_"),
        format!("{base}?timeout=2&executor=threaded"),
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
    // `unix_socket`: the one scripts/backends gives the shared server, when it is there.
    let socket = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../target/backends/mariadb/data/mysqld.sock"
    );
    if std::path::Path::new(socket).exists() {
        let path: String = url::form_urlencoded::byte_serialize(socket.as_bytes()).collect();
        let database = url::Url::parse(&base)
            .unwrap()
            .path()
            .trim_start_matches('/')
            .to_owned();
        // Host and port are not used: the socket is.
        let url = format!("mysql://root@localhost:1/{database}?timeout=2&unix_socket={path}");
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
    assert!(supported.blocking_lock_waits, "{supported:?}");
    assert!(supported.queued_lock_waits, "{supported:?}");
    assert!(supported.durable_fencing, "{supported:?}");
    let err = coord.lock("s").shared().try_acquire().await.unwrap_err();
    assert!(err.is_unsupported(), "{err:?}");
    coord.stop().await.unwrap();
}

/// The server's name ours takes for a name it cannot take as it is (locks.rs).
fn hashed(name: &[u8]) -> String {
    let hex: String = Sha256::digest(name)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("~tooz-sha256:{}", &hex[..51])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_name_works_and_never_reaches_sql() {
    let Some((base, _)) = shared() else {
        return eprintln!("no mysql:// URL in TOOZ_TEST_URLS: skipping (scripts/test runs it)");
    };
    let pid = std::process::id();
    // Tables of this run's own (nothing left from another run), dropped at the end.
    let prefix = format!("tooz_hostile_{pid}_");
    let canary = format!("tooz_canary_{pid}");
    let mut admin = direct(&base).await;
    execute(
        &mut admin,
        &format!("CREATE TABLE IF NOT EXISTS {canary} (v TEXT) ENGINE=InnoDB"),
    )
    .await;
    execute(
        &mut admin,
        &format!("INSERT INTO {canary} VALUES ('still here')"),
    )
    .await;
    let tables = ["locks", "groups", "beats", "members", "leaders"].map(|t| format!("{prefix}{t}"));

    let a = Coordinator::connect(&format!("{base}?timeout=5&table_prefix={prefix}"), "a")
        .await
        .unwrap();
    // A member id that would be SQL if it were spliced in, with a NUL and a byte that is not
    // UTF-8.
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
    // 64 characters: the longest name the server takes as it is; then one more character.
    let longest_as_is = "m".repeat(64);
    let one_more = format!("{longest_as_is}x");
    let names: Vec<Vec<u8>> = vec![
        b"'".to_vec(),
        b"''".to_vec(),
        b"\"".to_vec(),
        b"`".to_vec(),
        b"%".to_vec(),
        b"%%".to_vec(),
        b"_".to_vec(),
        b"?".to_vec(),
        b"\\".to_vec(),
        b"\\\\".to_vec(),
        b"\\'".to_vec(),
        b"' OR 1=1 --".to_vec(),
        b"' OR '1'='1".to_vec(),
        format!("'; DROP TABLE {canary}; --").into_bytes(),
        format!("'); DROP TABLE {prefix}locks; --").into_bytes(),
        format!("`; DROP TABLE {prefix}members; --").into_bytes(),
        b"x'); DELETE FROM mysql.user; --".to_vec(),
        b"NULL".to_vec(),
        b"%s %d %n".to_vec(),
        b"/* comment".to_vec(),
        b"pad".to_vec(),
        b"pad ".to_vec(),
        b"\0".to_vec(),
        b"nul\0in the middle".to_vec(),
        b"\0\0\0".to_vec(),
        b"\xff\xfe not utf-8 \x80".to_vec(),
        b"\xc3\x28".to_vec(),
        "é ü 漢字 🦀".as_bytes().to_vec(),
        b"cr\r\nlf\ttab".to_vec(),
        longest_as_is.clone().into_bytes(),
        one_more.clone().into_bytes(),
        format!("{longest_as_is}y").into_bytes(),
        // 48 four-byte characters: 192 bytes, the most MariaDB takes as a lock name.
        "🦀".repeat(48).into_bytes(),
        // 64 four-byte characters: 64 characters (MySQL's limit) but 256 bytes, over MariaDB's
        // 192: the server refuses it as it is, so it must be taken hashed there.
        "🦀".repeat(64).into_bytes(),
        long(b'a'),
        long(b'b'),
        long(0),
        vec![0xff; tooz::MAX_NAME_LEN],
        // The driver's marker: a name that begins with it is hashed too, so it never shares
        // a lock with the name whose hashed form it spells (`one_more`'s, here), in any case.
        b"~tooz-sha256:".to_vec(),
        hashed(one_more.as_bytes()).into_bytes(),
        hashed(one_more.as_bytes())
            .replacen("~tooz-sha256:", "~TOOZ-SHA256:", 1)
            .into_bytes(),
    ];

    // Locks: every name at once, each its own lock (no two names share a server lock), each
    // excluding the other coordinator.
    let mut guards = Vec::new();
    for name in &names {
        let lock = LockName::from(name.clone());
        let guard = bounded("acquire", a.lock(lock.clone()).try_acquire())
            .await
            .unwrap_or_else(|e| panic!("lock {lock:?}: {e}"))
            .unwrap_or_else(|| panic!("lock {lock:?} is taken: another name shares its lock"));
        assert!(
            bounded("acquire", b.lock(lock.clone()).try_acquire())
                .await
                .unwrap_or_else(|e| panic!("lock {lock:?}: {e}"))
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
            "group {group:?}: another name's group, or a member missing"
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
    // All at once: as many groups as names (no two names share a group).
    for name in &names {
        a.create_group(GroupId::from(name.clone()))
            .await
            .unwrap_or_else(|e| panic!("group {:?}: {e}", String::from_utf8_lossy(name)));
    }
    assert_eq!(a.groups().await.unwrap().len(), names.len());
    for name in &names {
        a.delete_group(GroupId::from(name.clone())).await.unwrap();
    }

    // Nothing reached the server as SQL of its own.
    let still: Option<String> = admin
        .query_first(format!("SELECT v FROM {canary}"))
        .await
        .expect("the canary table is still there");
    assert_eq!(still.as_deref(), Some("still here"));
    for table in &tables {
        assert!(
            table_exists(&mut admin, table).await,
            "table {table} was dropped"
        );
    }
    let users: Option<u64> = admin
        .query_first("SELECT COUNT(*) FROM mysql.user")
        .await
        .unwrap();
    assert!(users.unwrap_or(0) > 0, "mysql.user was emptied");
    a.stop().await.unwrap();
    b.stop().await.unwrap();
    execute(
        &mut admin,
        &format!("DROP TABLE IF EXISTS {canary}, {}", tables.join(", ")),
    )
    .await;
}

/// A capabilities value another program wrote into a member's row (garbage, truncated, a
/// length prefix promising gigabytes): that member is skipped by `members()` (logged), its
/// own capabilities read is an error, and nothing panics; once its row holds capabilities
/// again it is listed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_capabilities_in_a_row_are_skipped_not_a_panic() {
    let Some((base, _)) = shared() else {
        return eprintln!("no mysql:// URL in TOOZ_TEST_URLS: skipping (scripts/test runs it)");
    };
    let pid = std::process::id();
    let prefix = format!("tooz_garbage_{pid}_");
    let url = format!("{base}?timeout=5&table_prefix={prefix}");
    let mut admin = direct(&base).await;
    let a = Coordinator::connect(&url, "a").await.unwrap();
    let b = Coordinator::connect(&url, "b").await.unwrap();
    let (a_id, b_id) = (MemberId::from("a"), MemberId::from("b"));
    a.join_group_create("g", json!({"role": "a"}))
        .await
        .unwrap();
    b.join_group_create("g", json!({"role": "b"}))
        .await
        .unwrap();
    let listed = a.members_with_capabilities("g").await.unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");

    let garbage: [&[u8]; 6] = [
        b"",
        // A two-element array with one element.
        b"\x92\x01",
        // Trailing bytes after a value.
        b"\x01 trailing",
        // A str32 promising 4 GiB.
        b"\xdb\xff\xff\xff\xff",
        // A map32 promising 4 billion entries.
        b"\xdf\xff\xff\xff\xff",
        b"\xc1\xc1\xc1 not msgpack at all \x00\xff",
    ];
    for bad in garbage {
        admin
            .exec_drop(
                format!("UPDATE {prefix}members SET capabilities = ? WHERE name = ?"),
                (bad.to_vec(), b"b".to_vec()),
            )
            .await
            .unwrap();
        assert_eq!(admin.affected_rows(), 1, "b's row was rewritten");

        let listed = bounded("members", a.members_with_capabilities("g"))
            .await
            .unwrap_or_else(|e| panic!("{bad:?}: {e}"));
        assert_eq!(
            listed.keys().cloned().collect::<Vec<_>>(),
            vec![a_id.clone()],
            "{bad:?}: the member with garbage capabilities is skipped, the others listed"
        );
        assert_eq!(listed[&a_id].to_json(), json!({"role": "a"}));
        let ids = bounded("members", a.members("g")).await.unwrap();
        assert!(
            ids.contains(&a_id) && !ids.contains(&b_id),
            "{bad:?}: {ids:?}"
        );
        let err = bounded("member_capabilities", a.member_capabilities("g", "b"))
            .await
            .expect_err("garbage capabilities decoded");
        println!("{bad:?}: {err}");

        // Its owner writes them again: listed again.
        b.update_capabilities("g", json!({"role": "b"}))
            .await
            .unwrap();
        let listed = a.members_with_capabilities("g").await.unwrap();
        assert_eq!(listed.len(), 2, "{bad:?}: {listed:?}");
        assert_eq!(listed[&b_id].to_json(), json!({"role": "b"}));
    }

    a.leave_group("g").await.unwrap();
    b.leave_group("g").await.unwrap();
    a.delete_group("g").await.unwrap();
    a.stop().await.unwrap();
    b.stop().await.unwrap();
    let tables = ["locks", "groups", "beats", "members", "leaders"].map(|t| format!("{prefix}{t}"));
    execute(
        &mut admin,
        &format!("DROP TABLE IF EXISTS {}", tables.join(", ")),
    )
    .await;
}
