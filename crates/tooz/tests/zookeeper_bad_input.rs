//! ZooKeeper servers, URLs, options, credentials and names that are not what we expect: nobody
//! listening, a server that never answers, a server that is not ZooKeeper (HTTP, Redis,
//! garbage, frames that promise more than they hold, connect answers no server would give),
//! TLS asked for (refused for now, never downgraded), a password in the URL, option values that
//! cannot be used, digest credentials (tooz's ACL on every node made; those without them locked
//! out, those with them in), and hostile lock, group and member names (NUL, `/`, `.`, `..`,
//! control characters, bytes that are not UTF-8, characters beyond the BMP, 1,024 bytes, names
//! spelling the hex form of others, the group `locks`, the member `leader`). Each gives a clear
//! error in bounded time, never showing a password, or works; none panics or hangs; no two
//! different names ever share a node, no name reaches another's node or nests under it, and
//! nothing is made outside the namespace.
//!
//! Every test that needs a server runs a throw-away ZooKeeper of its own
//! (`support/zookeeper_server.rs`), so that it can see every node on it.

#![cfg(feature = "zookeeper")]

#[path = "support/fake_server.rs"]
mod fake_server;
#[path = "support/zookeeper_server.rs"]
mod zookeeper_server;
#[path = "support/zookeeper_url.rs"]
mod zookeeper_url;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::json;
use tooz::{Capabilities, Coordinator, Error, GroupId, LockName, MAX_NAME_LEN, MemberId};
use zookeeper_client::{Acl, Acls, AuthId, Client, CreateMode, Error as ZkError, Permission};
use zookeeper_server::{Server, free_port, have_zookeeper};
use zookeeper_url::{hex_name, is_contender};

/// The bound on any one call here: generous against the 2-second timeouts, far from a hang.
const BOUND: Duration = Duration::from_secs(15);

/// What a connection attempt with `timeout=2` may take: connecting, then making the namespace
/// node, each bounded by 2 s, and slack.
const CONNECT_WITHIN: Duration = Duration::from_secs(6);

/// A password that must never be shown.
const SECRET: &str = "secretpw";

/// Digest credentials, and the identity ZooKeeper derives from them:
/// `user:base64(sha1("user:password"))`, as kazoo's `make_digest_acl_credential` gives.
const USER: &str = "tooz-user";
const PASSWORD: &str = "s3cret-pw";
const DIGEST_ID: &str = "tooz-user:C1rLJs6qRxNwMMzepBqom1aNRc0=";

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

/// The URL of port `port` on loopback, with and without a user and password.
fn urls_for(port: u16, options: &str) -> [String; 2] {
    [
        format!("zookeeper://127.0.0.1:{port}?{options}"),
        format!("zookeeper://tooz:{SECRET}@127.0.0.1:{port}?{options}"),
    ]
}

/// A client of the test's own, without credentials.
async fn raw_client(hosts: &str) -> Client {
    Client::connector()
        .with_session_timeout(Duration::from_secs(10))
        .connect(hosts)
        .await
        .unwrap_or_else(|e| panic!("a raw client of {hosts}: {e}"))
}

/// The children of `path`, which must exist.
async fn children(raw: &Client, path: &str) -> BTreeSet<String> {
    raw.list_children(path)
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .into_iter()
        .collect()
}

/// The path of the one child of `dir` (a lock node's one contender).
async fn only_child(raw: &Client, dir: &str) -> String {
    let found = raw
        .list_children(dir)
        .await
        .unwrap_or_else(|e| panic!("{dir}: {e}"));
    assert_eq!(found.len(), 1, "{dir}: {found:?}");
    format!("{dir}/{}", found[0])
}

/// Every node below `root` (not `root` itself), as full paths, sorted.
async fn tree(raw: &Client, root: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_owned()];
    while let Some(path) = pending.pop() {
        for child in children(raw, &path).await {
            let full = format!("{path}/{child}");
            found.push(full.clone());
            pending.push(full);
        }
    }
    found.sort();
    found
}

/// The nodes at the root other than ZooKeeper's own and `allowed`.
async fn stray_roots(raw: &Client, allowed: &[&str]) -> Vec<String> {
    children(raw, "/")
        .await
        .into_iter()
        .filter(|child| child != "zookeeper" && !allowed.contains(&child.as_str()))
        .collect()
}

/// The node name tooz gives `name` (written out here from the layout, not taken from the
/// driver): the name itself where it is one node name ZooKeeper takes — UTF-8, not empty, not
/// `.` or `..`, no `/`, none of the characters ZooKeeper refuses (controls, private use,
/// specials, anything beyond the BMP) — unless it is `reserved` or starts with the hex marker;
/// else the marker and its bytes in hex.
fn node_name(name: &[u8], reserved: &str) -> String {
    let plain = std::str::from_utf8(name).ok().filter(|text| {
        !text.is_empty()
            && *text != "."
            && *text != ".."
            && *text != reserved
            && !text.starts_with("~tooz-hex:")
            && !text.contains('/')
            && text.chars().all(|c| {
                !matches!(
                    c,
                    '\0'..='\u{1f}'
                        | '\u{7f}'..='\u{9f}'
                        | '\u{e000}'..='\u{f8ff}'
                        | '\u{fff0}'..='\u{ffff}'
                ) && u32::from(c) <= 0xffff
            })
    });
    plain.map_or_else(|| hex_name(name), str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_listening_is_a_connection_error_in_bounded_time() {
    for url in urls_for(free_port(), "timeout=2") {
        let started = Instant::now();
        let err = bounded("connect", Coordinator::connect(&url, "m"))
            .await
            .unwrap_err();
        let took = started.elapsed();
        let shown = shown_without_secret(&err, SECRET);
        println!("nobody listening: {err} (after {took:?})");
        assert!(
            matches!(
                err,
                Error::Connection {
                    backend: "zookeeper",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(shown.contains("zookeeper"), "the backend is named: {shown}");
        assert!(err.is_retryable(), "{err:?}");
        assert!(took < CONNECT_WITHIN, "bounded by timeout=2, not {took:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_times_out() {
    // Accepts, and never answers the connect request or anything after it (a server for each
    // URL: the fake accepts a bounded number of connections).
    for i in 0..2 {
        let urls = urls_for(fake_server::fake_server(None), "timeout=2");
        let url = &urls[i];
        let started = Instant::now();
        let err = bounded("connect to a silent server", Coordinator::connect(url, "m"))
            .await
            .unwrap_err();
        let took = started.elapsed();
        shown_without_secret(&err, SECRET);
        println!("a silent server: {err} after {took:?}");
        assert!(err.is_retryable(), "a timeout is worth retrying: {err:?}");
        assert!(took < CONNECT_WITHIN, "bounded by timeout=2, not {took:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_is_not_zookeeper_is_an_error() {
    let answers: [&'static [u8]; 8] = [
        // An HTTP/1 server.
        b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        // A Redis server.
        b"-ERR unknown command\r\n",
        // Garbage.
        b"\x00\xff\xfe\x07 garbage \x1b[0m\r\nmore garbage",
        // A frame promising 2 GiB, then nothing.
        b"\x7f\xff\xff\xff\x00",
        // A frame of negative length.
        b"\xff\xff\xff\xfe garbage",
        // A connect answer with no session (session id 0: "expired").
        b"\x00\x00\x00\x25\x00\x00\x00\x00\x00\x00\x07\xd0\x00\x00\x00\x00\x00\x00\x00\x00\
          \x00\x00\x00\x10PPPPPPPPPPPPPPPP\x00",
        // A connect answer with a session timeout of -1 ms, then the connection closed.
        b"\x00\x00\x00\x25\x00\x00\x00\x00\xff\xff\xff\xff\x00\x00\x00\x00\x00\x00\x00\x01\
          \x00\x00\x00\x10PPPPPPPPPPPPPPPP\x00",
        // A connect answer with a session timeout of 0 ms, then the connection closed.
        b"\x00\x00\x00\x25\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\
          \x00\x00\x00\x10PPPPPPPPPPPPPPPP\x00",
    ];
    for answer in answers {
        // A server of its own for each URL: the fake accepts a bounded number of connections.
        for i in 0..2 {
            let urls = urls_for(fake_server::fake_server(Some(answer)), "timeout=2");
            let url = &urls[i];
            let started = Instant::now();
            let result = bounded("connect", Coordinator::connect(url, "m")).await;
            let err = result.expect_err("a coordinator on a server that is not ZooKeeper");
            let took = started.elapsed();
            shown_without_secret(&err, SECRET);
            println!(
                "{:?} where ZooKeeper was expected: {err} (after {took:?})",
                String::from_utf8_lossy(&answer[..answer.len().min(12)]),
            );
            assert!(took < CONNECT_WITHIN, "bounded by timeout=2, not {took:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_that_cannot_be_honoured_is_refused_before_connecting() {
    // Nothing listens there: an attempt to connect would be a Connection error, not this.
    let port = free_port();
    let asked = [
        // TLS without the CA to verify the servers against.
        (
            format!("zookeeper://127.0.0.1:{port}?timeout=2&use_ssl=true"),
            "ca",
        ),
        (
            format!("zookeeper://tooz:{SECRET}@127.0.0.1:{port}?use_ssl=yes"),
            "ca",
        ),
        (
            format!("zookeeper://127.0.0.1:{port},127.0.0.1:{port}?use_ssl=1"),
            "ca",
        ),
        // A CA that cannot be read.
        (
            format!("zookeeper://127.0.0.1:{port}?use_ssl=true&ca=/nonexistent/ca.pem"),
            "ca",
        ),
        // TLS options without TLS would be ignored.
        (format!("kazoo://127.0.0.1:{port}?ca=/etc/ssl/ca.pem"), "ca"),
        (
            format!("zookeeper://127.0.0.1:{port}?keyfile=/k.pem"),
            "keyfile",
        ),
        // Verification off would take any server for ZooKeeper.
        (
            format!("zookeeper://127.0.0.1:{port}?use_ssl=true&ca=/x.pem&verify_certs=false"),
            "verify_certs",
        ),
        // The key's password is a secret too: never repeated back.
        (
            format!("zookeeper://127.0.0.1:{port}?use_ssl=true&keyfile_password={SECRET}"),
            "keyfile_password",
        ),
    ];
    for (url, option) in &asked {
        let started = Instant::now();
        let err = bounded("connect", Coordinator::connect(url, "m"))
            .await
            .expect_err("TLS asked for must not connect in plain text");
        shown_without_secret(&err, SECRET);
        match &err {
            Error::InvalidOption { option: named, .. } => {
                assert_eq!(named, option, "{url}: {err}");
            }
            // (A build without TLS says so once the options are otherwise complete.)
            #[cfg(not(feature = "zookeeper-tls"))]
            Error::FeatureNotEnabled { feature, .. } => assert_eq!(*feature, "zookeeper-tls"),
            other => panic!("{url}: {other:?}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{url}: refused before connecting, not after {:?}",
            started.elapsed()
        );
    }
}

/// A password in the URL — to a server without authentication (which takes any digest
/// credentials), to one that is not there, in a host list, with an option or a chroot that is
/// refused — shows in no error, no builder and no coordinator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_in_the_url_is_never_shown() {
    if !have_zookeeper() {
        return eprintln!("ZooKeeper is not installed: skipping (scripts/test installs it)");
    }
    let server = Server::start();
    let hp = server.hosts();
    let dead = free_port();
    // (Each that connects in a namespace of its own: its nodes get the digest ACL.)
    for with_secret in [
        format!("zookeeper://tooz:{SECRET}@{hp}?timeout=5&namespace=secret1"),
        format!("kazoo://tooz:{SECRET}@{hp}?timeout=5&namespace=secret2"),
        // A password that needs percent-encoding: shown neither encoded nor decoded.
        format!("zookeeper://tooz:{SECRET}%2F%40x@{hp}?timeout=5&namespace=secret3"),
        format!("zookeeper://tooz:{SECRET}@127.0.0.1:{dead},{hp}?timeout=5&namespace=secret4"),
        // Nobody there.
        format!("zookeeper://tooz:{SECRET}@127.0.0.1:{dead}?timeout=2"),
        format!("zookeeper://tooz:{SECRET}@127.0.0.1:{dead},127.0.0.1:{dead}/app?timeout=2"),
        // Refused before connecting.
        format!("zookeeper://tooz:{SECRET}@{hp}/a//b?timeout=2"),
        format!("zookeeper://tooz:{SECRET}@{hp}?timeout=abc"),
        format!("zookeeper://tooz:{SECRET}@{hp}?timeout=2&bogus=1"),
        format!("zookeeper://tooz:{SECRET}@{hp}?timeout=2&hosts=h:notaport"),
        format!("zookeeper://:{SECRET}@{hp}?timeout=2"),
        format!("zookeeper://tooz:{SECRET}@127.0.0.1:99999?timeout=2"),
        format!("zookeeper://tooz:{SECRET}@127.0.0.1:{dead},127.0.0.1:99999?timeout=2"),
    ] {
        assert!(
            !format!("{:?}", Coordinator::builder(&with_secret, "m")).contains(SECRET),
            "the builder's Debug shows the password"
        );
        match bounded("connect", Coordinator::connect(&with_secret, "m")).await {
            Err(err) => {
                shown_without_secret(&err, SECRET);
                println!("a password in the URL: {err}");
            }
            Ok(coord) => {
                let shown = format!("{coord:?}");
                assert!(!shown.contains(SECRET), "the coordinator's Debug: {shown}");
                let guard = coord.lock("l").try_acquire().await.unwrap().expect("free");
                guard.release().await.unwrap();
                coord.stop().await.unwrap();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn option_values_that_cannot_be_used_are_refused() {
    // Nothing listens there: options are checked before anything connects.
    let port = free_port();
    let with_secret = format!("zookeeper://tooz:{SECRET}@127.0.0.1:{port}");
    let refused = [
        // Seconds from 0.1 to a day (ZooKeeper negotiates milliseconds as an int); nothing
        // that overflows a duration, nothing that is not a number.
        ("timeout", "1e12"),
        ("timeout", "1e300"),
        ("timeout", "18446744073709551616"),
        ("timeout", "inf"),
        ("timeout", "NaN"),
        ("timeout", "-1"),
        ("timeout", "0"),
        ("timeout", "0.05"),
        ("timeout", "86401"),
        ("timeout", "abc"),
        // Hosts are HOST:PORT.
        ("hosts", "h:notaport"),
        ("hosts", "h:notaport"),
        ("hosts", "h:99999"),
        ("hosts", ":2181"),
        ("hosts", "zookeeper://h:2181"),
        ("hosts", "h:2181/chroot"),
        // The namespace is a ZooKeeper path.
        ("namespace", "a/../b"),
        ("namespace", "a%00b"),
        ("namespace", "."),
        ("namespace", "a//b"),
        ("namespace", "/"),
        // Booleans are booleans.
        ("use_ssl", "maybe"),
        ("verify_certs", "maybe"),
        ("randomize_hosts", "maybe"),
    ];
    for (option, value) in refused {
        let url = if option == "timeout" {
            format!("{with_secret}?timeout={value}")
        } else {
            format!("{with_secret}?timeout=2&{option}={value}")
        };
        let started = Instant::now();
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
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{option}={value}: refused before connecting"
        );
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

    // URLs that cannot be used at all.
    for url in [
        // A user without a password (tooz would log in with neither).
        format!("zookeeper://tooz@127.0.0.1:{port}?timeout=2"),
        // A password without a user.
        format!("zookeeper://:{SECRET}@127.0.0.1:{port}?timeout=2"),
        // Chroots that are no ZooKeeper path. (`.` and `..` segments never get this far: URL
        // parsing resolves them, `/a/../b` is `/b`.)
        format!("zookeeper://127.0.0.1:{port}/a//b?timeout=2"),
        format!("zookeeper://127.0.0.1:{port}/a%00b?timeout=2"),
        format!("zookeeper://127.0.0.1:{port}/a%0Ab?timeout=2"),
        format!("zookeeper://tooz:{SECRET}@127.0.0.1:{port}/%ff?timeout=2"),
        // Ports that are no port.
        "zookeeper://127.0.0.1:99999?timeout=2".to_owned(),
    ] {
        let started = Instant::now();
        let err = bounded("connect", Coordinator::connect(&url, "m"))
            .await
            .expect_err("an unusable URL accepted");
        shown_without_secret(&err, SECRET);
        assert!(matches!(err, Error::InvalidUrl { .. }), "{url}: {err:?}");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{url}: refused before connecting"
        );
    }
}

/// Every form tooz's URLs take works, and `membership_timeout()` is the session timeout
/// ZooKeeper settled: the one asked for, or the server's maximum below it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_forms_that_should_work_do() {
    if !have_zookeeper() {
        return eprintln!("ZooKeeper is not installed: skipping (scripts/test installs it)");
    }
    // A server that settles session timeouts of 4 s at most.
    let server = Server::start_with(&["maxSessionTimeout=4000"]);
    let hp = server.hosts();
    let dead = free_port();
    let accepted = [
        (format!("zookeeper://{hp}?timeout=2"), 2000),
        (format!("kazoo://{hp}?timeout=2"), 2000),
        // Host lists: one host that is down and one that is up, either way round, in the URL
        // or in `hosts` (the client tries them all): the list was read.
        (format!("zookeeper://127.0.0.1:{dead},{hp}?timeout=2"), 2000),
        (
            format!("zookeeper://{hp},127.0.0.1:{dead}/?timeout=2"),
            2000,
        ),
        (
            format!("zookeeper://127.0.0.1:{dead}?timeout=2&hosts={hp}"),
            2000,
        ),
        (
            format!("kazoo://127.0.0.1:{dead}?hosts=127.0.0.1:{dead},{hp}&timeout=2"),
            2000,
        ),
        // Durations as tooz writes them.
        (format!("zookeeper://{hp}?timeout=2.5"), 2500),
        (format!("zookeeper://{hp}?timeout=1500ms"), 1500),
        (format!("zookeeper://{hp}?timeout=3s"), 3000),
        // More than the server allows: its maximum is the session timeout.
        (format!("zookeeper://{hp}?timeout=10"), 4000),
        (format!("zookeeper://{hp}"), 4000),
        // kazoo's options, accepted and ignored; TLS off in so many words.
        (
            format!(
                "zookeeper://{hp}?timeout=2&randomize_hosts=false&connection_retry=3\
                 &command_retry=x&handler=eventlet"
            ),
            2000,
        ),
        (
            format!("zookeeper://{hp}?timeout=2&use_ssl=false&verify_certs=true"),
            2000,
        ),
        // A chroot, and other namespaces.
        (format!("zookeeper://{hp}/app/x?timeout=2"), 2000),
        (format!("zookeeper://{hp}/app/x/?timeout=2"), 2000),
        (format!("zookeeper://{hp}?timeout=2&namespace=other"), 2000),
        (
            format!("zookeeper://{hp}?timeout=2&namespace=/deep/er/"),
            2000,
        ),
    ];
    for (i, (url, settled)) in accepted.iter().enumerate() {
        let coord = bounded("connect", Coordinator::connect(url, "edge"))
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(
            coord.membership_timeout(),
            Duration::from_millis(*settled),
            "{url}: the session timeout ZooKeeper settled"
        );
        let guard = coord
            .lock(format!("edge-{i}").as_str())
            .try_acquire()
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"))
            .expect("free");
        guard.release().await.unwrap();
        coord.stop().await.unwrap();
    }
    // Each namespace where it was asked for, and nothing else.
    let raw = raw_client(&hp).await;
    for locks in [
        "/tooz/locks",
        "/app/x/tooz/locks",
        "/other/locks",
        "/deep/er/locks",
    ] {
        assert!(
            raw.check_stat(locks).await.unwrap().is_some(),
            "{locks} was made"
        );
    }
    assert_eq!(
        stray_roots(&raw, &["tooz", "app", "other", "deep"]).await,
        Vec::<String>::new(),
        "nodes made outside the namespaces asked for"
    );

    // Kept alive by heartbeats at a third of the settled timeout, not of the one asked for:
    // still held well past the settled timeout.
    let coord = Coordinator::connect(&format!("zookeeper://{hp}?timeout=10"), "settled")
        .await
        .unwrap();
    let guard = coord
        .lock("settled")
        .try_acquire()
        .await
        .unwrap()
        .expect("free");
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(guard.is_held() && coord.is_live());
    guard.release().await.unwrap();

    // What the backend says it offers.
    let supported = coord.supported();
    assert!(
        supported.groups && supported.elections && supported.queued_lock_waits,
        "{supported:?}"
    );
    assert!(supported.shared_locks, "{supported:?}");
    assert_eq!(coord.backend_name(), "zookeeper");
    let shared = coord.lock("s").shared().try_acquire().await.unwrap();
    assert!(shared.is_some(), "kazoo's read lock");
    coord.stop().await.unwrap();
}

/// Names made to break a node layout: every one a lock of its own, a group of its own and a
/// member of its own (each a single node, its name or its hex form), listed back as exactly
/// its bytes, on exactly the nodes tooz's layout gives it and no other (a private server, so
/// every node on it is accounted for).
fn hostile_names() -> Vec<Vec<u8>> {
    let long = |last: &[u8]| {
        let mut name = vec![b'n'; MAX_NAME_LEN - last.len()];
        name.extend_from_slice(last);
        name
    };
    vec![
        b"\0".to_vec(),
        b"nul\0in the middle".to_vec(),
        b"/".to_vec(),
        b"//".to_vec(),
        // `a` and names that would be paths under it.
        b"a".to_vec(),
        b"a/".to_vec(),
        b"a/b".to_vec(),
        b"/a".to_vec(),
        b".".to_vec(),
        b"..".to_vec(),
        b"../..".to_vec(),
        b"../../zookeeper".to_vec(),
        b"/zookeeper".to_vec(),
        b"zookeeper".to_vec(),
        b"x/..".to_vec(),
        // The nodes tooz keeps (the group `locks` and the member `leader` are written in hex).
        b"locks".to_vec(),
        b"leader".to_vec(),
        b"tooz".to_vec(),
        b"/tooz/locks".to_vec(),
        // The hex marker, and names spelling other names' hex forms.
        b"~tooz-hex:".to_vec(),
        b"~tooz-hex:2e".to_vec(),
        b"~tooz-hex:61".to_vec(),
        b"~tooz-hex:6c6f636b73".to_vec(),
        b"~tooz-hex:zz".to_vec(),
        b"~tooz-hex".to_vec(),
        b"2e".to_vec(),
        b"6c6f636b73".to_vec(),
        // Control characters, and characters ZooKeeper refuses in node names.
        b"cr\r\nlf\ttab".to_vec(),
        b"\x1b[31mred\x1b[0m".to_vec(),
        b"\x7f".to_vec(),
        "\u{85}next line".as_bytes().to_vec(),
        "\u{e000}private".as_bytes().to_vec(),
        "\u{fffe}".as_bytes().to_vec(),
        // Not UTF-8.
        b"\xff".to_vec(),
        b"\xff\xfe not utf-8 \x80".to_vec(),
        b"\xc3\x28".to_vec(),
        // A UTF-16 surrogate encoded as if it were a character (CESU-8: not UTF-8).
        b"\xed\xa0\x80".to_vec(),
        // Beyond the BMP (two surrogates in Java's strings), and within it.
        "\u{1f980}".as_bytes().to_vec(),
        "a\u{1f980}b".as_bytes().to_vec(),
        "\u{e9} \u{6f22}\u{5b57}".as_bytes().to_vec(),
        b" ".to_vec(),
        b"*".to_vec(),
        // The longest names.
        long(b"a"),
        long(b"b"),
        long(b"/"),
        "\u{1f980}".repeat(MAX_NAME_LEN / 4).into_bytes(),
        vec![b'/'; MAX_NAME_LEN],
        vec![b'.'; MAX_NAME_LEN],
        vec![0xff; MAX_NAME_LEN],
        vec![0; MAX_NAME_LEN],
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_names_are_distinct_nodes_and_touch_no_other() {
    if !have_zookeeper() {
        return eprintln!("ZooKeeper is not installed: skipping (scripts/test installs it)");
    }
    let server = Server::start();
    let url = server.url_with("timeout=5");
    let raw = raw_client(&server.hosts()).await;
    let a_id = MemberId::from("a");
    // The name of every group's leader lock node.
    let b_id = MemberId::from("leader");
    // '/', '..', NUL and a byte that is not UTF-8.
    let c_id = MemberId::from(&b"c/..\0\xff"[..]);
    let a = Coordinator::connect(&url, a_id.clone()).await.unwrap();
    let b = Coordinator::connect(&url, b_id.clone()).await.unwrap();
    let c = Coordinator::connect(&url, c_id.clone()).await.unwrap();
    let names = hostile_names();
    assert_eq!(
        names.iter().collect::<BTreeSet<_>>().len(),
        names.len(),
        "the names are distinct"
    );
    for name in &names {
        assert!(name.len() <= MAX_NAME_LEN, "{name:?}");
    }

    // Locks: every name at once, each its own lock, each excluding the other coordinators.
    let mut guards = Vec::new();
    for name in &names {
        let lock = LockName::from(name.clone());
        let guard = bounded("acquire", a.lock(lock.clone()).try_acquire())
            .await
            .unwrap_or_else(|e| panic!("lock {lock:?}: {e}"))
            .unwrap_or_else(|| panic!("lock {lock:?} is taken: another name shares its node"));
        assert!(
            bounded("acquire", b.lock(lock.clone()).try_acquire())
                .await
                .unwrap_or_else(|e| panic!("lock {lock:?}: {e}"))
                .is_none(),
            "lock {lock:?} is not exclusive"
        );
        guards.push(guard);
    }
    // On the server: one node per name under /tooz/locks, named as the layout names it, each
    // holding a's contender alone (nothing nested under any), whose czxid is the token.
    let lock_nodes: BTreeSet<String> = names.iter().map(|n| node_name(n, "")).collect();
    assert_eq!(lock_nodes.len(), names.len(), "one node name per lock name");
    assert_eq!(
        children(&raw, "/tooz/locks").await,
        lock_nodes,
        "the lock nodes"
    );
    for (name, guard) in names.iter().zip(&guards) {
        let dir = format!("/tooz/locks/{}", node_name(name, ""));
        let held = raw
            .list_children(&dir)
            .await
            .unwrap_or_else(|e| panic!("{dir}: {e}"));
        assert!(
            held.len() == 1 && is_contender(&held[0]),
            "{dir}: a's contender alone: {held:?}"
        );
        let (data, stat) = raw
            .get_data(&format!("{dir}/{}", held[0]))
            .await
            .unwrap_or_else(|e| panic!("{dir}: {e}"));
        assert_eq!(data, a_id.as_bytes(), "{dir}: the contender holds a's id");
        assert_ne!(stat.ephemeral_owner, 0, "{dir}: an ephemeral contender");
        assert_eq!(
            u64::try_from(stat.czxid).ok(),
            Some(guard.token().get()),
            "{dir}: the token is the contender's czxid"
        );
    }
    for path in tree(&raw, "/tooz").await {
        if path == "/tooz/locks" {
            continue;
        }
        let Some(rest) = path.strip_prefix("/tooz/locks/") else {
            panic!("{path}: a node other than a lock's, with only locks taken");
        };
        match rest.split('/').collect::<Vec<_>>().as_slice() {
            [node] => assert!(lock_nodes.contains(*node), "{path}: no lock's node"),
            [node, contender] => assert!(
                lock_nodes.contains(*node) && is_contender(contender),
                "{path}: not a contender of a lock"
            ),
            _ => panic!("{path}: nested under a lock's node"),
        }
    }
    assert_eq!(
        stray_roots(&raw, &["tooz"]).await,
        Vec::<String>::new(),
        "nodes outside the namespace"
    );
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
    for node in &lock_nodes {
        let dir = format!("/tooz/locks/{node}");
        assert!(
            children(&raw, &dir).await.is_empty(),
            "{dir}: released locks leave no contender behind"
        );
    }

    // Groups: every name at once, each its own group (a create fails if another name's group
    // had its node), listed as exactly these.
    for name in &names {
        let group = GroupId::from(name.clone());
        bounded("create", a.create_group(group.clone()))
            .await
            .unwrap_or_else(|e| panic!("group {group:?}: {e}"));
    }
    let listed: BTreeSet<GroupId> = a.groups().await.unwrap().into_iter().collect();
    let all: BTreeSet<GroupId> = names.iter().map(|n| GroupId::from(n.clone())).collect();
    assert_eq!(
        listed, all,
        "groups are listed as themselves, and only they"
    );
    // All three join every group (a with capabilities naming the group), b leads every group.
    for (i, name) in names.iter().enumerate() {
        let group = GroupId::from(name.clone());
        a.join_group(group.clone(), json!({"n": i}))
            .await
            .unwrap_or_else(|e| panic!("group {group:?}: {e}"));
        for coord in [&b, &c] {
            coord
                .join_group(group.clone(), Capabilities::none())
                .await
                .unwrap_or_else(|e| panic!("group {group:?}, {:?}: {e}", coord.member_id()));
        }
    }
    let mut leaderships = Vec::new();
    for name in &names {
        let group = GroupId::from(name.clone());
        let led = b
            .try_campaign(group.clone())
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("group {group:?}: another group's leader holds its node"));
        leaderships.push(led);
    }
    let ids = BTreeSet::from([a_id.clone(), b_id.clone(), c_id.clone()]);
    // The hex form of b's node name, given as a member id, is another member.
    let lookalike = MemberId::from(node_name(b_id.as_bytes(), "leader"));
    for (i, name) in names.iter().enumerate() {
        let group = GroupId::from(name.clone());
        let members = c.members_with_capabilities(group.clone()).await.unwrap();
        assert_eq!(
            members.keys().cloned().collect::<BTreeSet<_>>(),
            ids,
            "group {group:?}: exactly its own three members (the leader lock's node is none)"
        );
        assert_eq!(members[&a_id].to_json(), json!({"n": i}), "group {group:?}");
        assert!(
            members[&b_id].is_none() && members[&c_id].is_none(),
            "group {group:?}"
        );
        assert_eq!(
            a.members(group.clone()).await.unwrap(),
            ids,
            "group {group:?}"
        );
        assert_eq!(
            c.member_capabilities(group.clone(), a_id.clone())
                .await
                .unwrap()
                .to_json(),
            json!({"n": i}),
            "group {group:?}"
        );
        assert_eq!(
            a.leader(group.clone()).await.unwrap(),
            Some(b_id.clone()),
            "group {group:?}"
        );
        let err = a
            .member_capabilities(group.clone(), lookalike.clone())
            .await
            .expect_err("a member id spelling another's node name");
        assert!(
            matches!(err, Error::MemberNotJoined { .. }),
            "group {group:?}: {err:?}"
        );
    }
    // On the server: exactly each group's node under /tooz (beside `locks`), each holding the
    // three member nodes (ephemeral, nothing under them) and the leader lock's node with b's
    // contender alone.
    let group_nodes: BTreeSet<String> = names.iter().map(|n| node_name(n, "locks")).collect();
    assert_eq!(group_nodes.len(), names.len(), "one node name per group");
    let mut top = children(&raw, "/tooz").await;
    assert!(top.remove("locks"), "the locks' node");
    assert_eq!(top, group_nodes, "the group nodes");
    let member_nodes: BTreeSet<String> = [&a_id, &b_id, &c_id]
        .iter()
        .map(|m| node_name(m.as_bytes(), "leader"))
        .collect();
    assert_eq!(member_nodes.len(), 3, "one node name per member");
    assert!(
        !member_nodes.contains("leader"),
        "the member 'leader' is written in hex"
    );
    for node in &group_nodes {
        let dir = format!("/tooz/{node}");
        let mut found = children(&raw, &dir).await;
        assert!(found.remove("leader"), "{dir}: the leader lock's node");
        assert_eq!(found, member_nodes, "{dir}: the member nodes");
        for member in &member_nodes {
            let path = format!("{dir}/{member}");
            let stat = raw
                .check_stat(&path)
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("{path}"));
            assert!(
                stat.ephemeral_owner != 0 && stat.num_children == 0,
                "{path}: an ephemeral member node, nothing under it"
            );
        }
        let leader_dir = format!("{dir}/leader");
        let contenders = raw.list_children(&leader_dir).await.unwrap();
        assert!(
            contenders.len() == 1 && is_contender(&contenders[0]),
            "{leader_dir}: b's contender alone: {contenders:?}"
        );
        let (data, _) = raw
            .get_data(&format!("{leader_dir}/{}", contenders[0]))
            .await
            .unwrap();
        assert_eq!(data, b_id.as_bytes(), "{leader_dir}: b's contender");
    }
    assert_eq!(
        stray_roots(&raw, &["tooz"]).await,
        Vec::<String>::new(),
        "nodes outside the namespace"
    );

    for led in leaderships {
        led.resign().await.unwrap();
    }
    for name in &names {
        let group = GroupId::from(name.clone());
        for coord in [&a, &b, &c] {
            coord.leave_group(group.clone()).await.unwrap();
        }
    }
    // Deleted in the order above: `a` while `a/b` exists, `/` while `//` exists, ...
    for name in &names {
        let group = GroupId::from(name.clone());
        a.delete_group(group.clone())
            .await
            .unwrap_or_else(|e| panic!("deleting group {group:?}: {e}"));
        assert!(
            !a.groups().await.unwrap().contains(&group),
            "group {group:?} is gone"
        );
    }
    assert!(a.groups().await.unwrap().is_empty());
    assert_eq!(
        children(&raw, "/tooz").await,
        BTreeSet::from(["locks".to_owned()]),
        "only the locks' node is left in the namespace"
    );
    for coord in [&a, &b, &c] {
        coord.stop().await.unwrap();
    }
    assert_eq!(
        stray_roots(&raw, &["tooz"]).await,
        Vec::<String>::new(),
        "nodes outside the namespace"
    );
}

/// Digest credentials in the URL: every node the coordinator makes carries tooz's ACL (all
/// permissions for that digest identity, nothing for anyone else), so a client without them
/// can neither read nor change anything; another coordinator with the same credentials shares
/// everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_credentials_lock_out_others_and_let_their_holders_in() {
    if !have_zookeeper() {
        return eprintln!("ZooKeeper is not installed: skipping (scripts/test installs it)");
    }
    let server = Server::start();
    let hosts = server.hosts();
    let url = format!("zookeeper://{USER}:{PASSWORD}@{hosts}?timeout=5");
    let a = Coordinator::connect(&url, "a").await.unwrap();
    a.create_group("g").await.unwrap();
    let membership = a.join_group("g", json!({"role": "a"})).await.unwrap();
    let guard = a.lock("l").try_acquire().await.unwrap().expect("free");
    let leadership = a
        .campaign_timeout("g", Duration::from_secs(10))
        .await
        .unwrap();

    // tooz's ACL on every node made: the namespace, the group, the member, the locks' node,
    // the lock's node and its contender, the leader lock's node and its contender.
    let authed = Client::connector()
        .with_session_timeout(Duration::from_secs(10))
        .with_auth("digest", format!("{USER}:{PASSWORD}").as_bytes())
        .connect(&hosts)
        .await
        .unwrap();
    let ours = vec![Acl::new(Permission::ALL, AuthId::new("digest", DIGEST_ID))];
    let lock_contender = only_child(&authed, "/tooz/locks/l").await;
    let leader_contender = only_child(&authed, "/tooz/g/leader").await;
    for path in [
        "/tooz",
        "/tooz/g",
        "/tooz/g/a",
        "/tooz/locks",
        "/tooz/locks/l",
        lock_contender.as_str(),
        "/tooz/g/leader",
        leader_contender.as_str(),
    ] {
        let (acl, _) = authed
            .get_acl(path)
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(acl, ours, "{path}: tooz's digest ACL");
    }

    // A client without the credentials: refused everything.
    let raw = raw_client(&hosts).await;
    for path in ["/tooz", "/tooz/g", "/tooz/g/a", "/tooz/locks/l"] {
        let written = raw.set_data(path, b"intruder", None).await;
        assert!(
            matches!(written, Err(ZkError::NoAuth)),
            "{path}: {written:?}"
        );
    }
    let listed = raw.list_children("/tooz/g").await;
    assert!(matches!(listed, Err(ZkError::NoAuth)), "{listed:?}");
    let read = raw.get_data("/tooz/g/a").await;
    assert!(matches!(read, Err(ZkError::NoAuth)), "{read:?}");
    let created = raw
        .create(
            "/tooz/g/intruder",
            b"",
            &CreateMode::Ephemeral.with_acls(Acls::anyone_all()),
        )
        .await;
    assert!(matches!(created, Err(ZkError::NoAuth)), "{created:?}");
    let deleted = raw.delete("/tooz/g/a", None).await;
    assert!(matches!(deleted, Err(ZkError::NoAuth)), "{deleted:?}");
    assert!(
        membership.is_active() && guard.is_held() && leadership.is_held(),
        "nothing of a's was touched"
    );

    // Another coordinator with the same credentials sees and shares everything.
    let b = Coordinator::connect(&url, "b").await.unwrap();
    assert!(b.groups().await.unwrap().contains(&GroupId::from("g")));
    let members = b.members_with_capabilities("g").await.unwrap();
    assert_eq!(
        members.get(&MemberId::from("a")).map(Capabilities::to_json),
        Some(json!({"role": "a"}))
    );
    assert_eq!(b.leader("g").await.unwrap(), Some(MemberId::from("a")));
    let b_membership = b.join_group("g", Capabilities::none()).await.unwrap();
    let (acl, _) = authed.get_acl("/tooz/g/b").await.unwrap();
    assert_eq!(acl, ours, "b's member node");
    assert!(
        b.lock("l").try_acquire().await.unwrap().is_none(),
        "a holds it"
    );
    guard.release().await.unwrap();
    let b_guard = b
        .lock("l")
        .acquire_timeout(Duration::from_secs(10))
        .await
        .unwrap();
    b_guard.release().await.unwrap();

    // Coordinators without the credentials, or with a wrong password: refused, saying so
    // (ZooKeeper takes any digest credentials at login; it is the ACLs that refuse them).
    for (what, url) in [
        ("no credentials", server.url_with("timeout=5")),
        (
            "a wrong password",
            format!("zookeeper://{USER}:wrong-{PASSWORD}@{hosts}?timeout=5"),
        ),
    ] {
        let c = match bounded("connect", Coordinator::connect(&url, "c")).await {
            Ok(c) => c,
            Err(err) => {
                shown_without_secret(&err, PASSWORD);
                println!("{what}: connecting: {err}");
                continue;
            }
        };
        let listed = bounded("groups", c.groups()).await.map(|_| ());
        let joined = bounded("join", c.join_group("g", Capabilities::none()))
            .await
            .map(|_| ());
        let locked = bounded("lock", c.lock("l2").try_acquire())
            .await
            .map(|_| ());
        for (op, result) in [("groups", listed), ("join", joined), ("lock", locked)] {
            let err = result.expect_err("allowed without the credentials");
            shown_without_secret(&err, PASSWORD);
            println!("{what}: {op}: {err}");
        }
        c.stop().await.unwrap();
    }
    assert!(
        !b.members("g").await.unwrap().contains(&MemberId::from("c")),
        "no member joined without the credentials"
    );

    b_membership.leave().await.unwrap();
    leadership.resign().await.unwrap();
    membership.leave().await.unwrap();
    b.stop().await.unwrap();
    a.stop().await.unwrap();
}
