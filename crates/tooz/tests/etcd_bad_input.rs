//! etcd servers, URLs, options, names and keys that are not what we expect: nobody listening, a
//! server that never answers, a server that is not etcd (HTTP/1, Redis, garbage), TLS asked
//! for (refused for now, never downgraded), a password in the URL, option values that cannot
//! be used, member ids holding `/`, hostile lock and group names (NUL, `/`, `..`, 1,024 bytes,
//! non-UTF-8, names spelling other tooz keys), and member keys another program filled with
//! garbage. Each gives a clear error in bounded time, never showing a password, or works; none
//! panics or hangs; no two different names ever share a key, and no name reaches another's.
//! Uses the server in `TOOZ_TEST_URLS` where a shared server will do, and a throw-away etcd of
//! its own where the test must see every key on the server.

#![cfg(feature = "etcd")]

#[path = "support/etcd_server.rs"]
mod etcd_server;
#[path = "support/etcd_url.rs"]
mod etcd_url;
#[path = "support/fake_server.rs"]
mod fake_server;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use etcd_client::PutOptions;
use etcd_server::{Server, free_port, have_etcd};
use etcd_url::{
    all_keys, base, direct, etcd_url, group_key, host_port, key_lease, leader_key, lock_key,
    member_key, shown,
};
use serde_json::json;
use tooz::{Capabilities, Coordinator, Error, GroupId, LockName, MAX_NAME_LEN, MemberId};

/// The bound on any one call here: generous against the 2-second timeouts, far from a hang.
const BOUND: Duration = Duration::from_secs(15);

/// What a connection attempt with `timeout=2` may take: connecting, then the first request
/// (the lease grant, or the login when the URL has a user), each bounded by 2 s, and slack.
const CONNECT_WITHIN: Duration = Duration::from_secs(6);

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

/// An id no other run on the shared server uses.
fn run_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{}-{}", std::process::id(), nanos % 1_000_000_000_000)
}

/// The URL of port `port` on loopback, with and without a user and password.
fn urls_for(port: u16, options: &str) -> [String; 2] {
    [
        format!("etcd3+http://127.0.0.1:{port}?{options}"),
        format!("etcd3+http://root:{SECRET}@127.0.0.1:{port}?{options}"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_listening_is_a_connection_error_in_bounded_time() {
    for url in urls_for(free_port(), "timeout=2") {
        let started = Instant::now();
        let err = bounded("connect", Coordinator::connect(&url, "m"))
            .await
            .unwrap_err();
        let took = started.elapsed();
        shown_without_secret(&err, SECRET);
        println!("nobody listening: {err} (after {took:?})");
        assert!(matches!(err, Error::Connection { .. }), "{err:?}");
        assert!(err.is_retryable(), "{err:?}");
        assert!(took < CONNECT_WITHIN, "bounded by timeout=2, not {took:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_times_out() {
    // Accepts, and never answers the HTTP/2 preface or anything after it (a server for each
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
async fn a_server_that_is_not_etcd_is_an_error() {
    let answers: [&'static [u8]; 4] = [
        // An HTTP/1 server.
        b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        // A Redis server.
        b"-ERR unknown command 'PRI'\r\n",
        // Garbage.
        b"\x00\xff\xfe\x07 garbage \x1b[0m\r\nmore garbage",
        // An HTTP/2 frame header promising a 16 MiB frame, then nothing.
        b"\xff\xff\xff\x04\x00\x00\x00\x00\x00",
    ];
    for answer in answers {
        // A server of its own for each URL: the fake accepts a bounded number of connections.
        for i in 0..2 {
            let urls = urls_for(fake_server::fake_server(Some(answer)), "timeout=2");
            let url = &urls[i];
            let started = Instant::now();
            let result = bounded("connect", Coordinator::connect(url, "m")).await;
            let err = result.expect_err("a coordinator on a server that is not etcd");
            let took = started.elapsed();
            shown_without_secret(&err, SECRET);
            println!(
                "{:?} where etcd was expected: {err} (after {took:?})",
                String::from_utf8_lossy(&answer[..answer.len().min(12)]),
            );
            assert!(took < CONNECT_WITHIN, "bounded by timeout=2, not {took:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_that_cannot_be_honoured_is_refused_never_downgraded() {
    // Nothing listens there: an attempt to connect would be a Connection error, not this.
    let port = free_port();
    let asked = [
        format!("etcd3+https://127.0.0.1:{port}?timeout=2"),
        format!("etcd3+https://root:{SECRET}@127.0.0.1:{port}"),
        format!("etcd3+http://127.0.0.1:{port}?timeout=2&ca_cert=/etc/ssl/ca.pem"),
        format!("etcd3+http://127.0.0.1:{port}?timeout=2&cert_key=/k.pem"),
        format!("etcd3+http://127.0.0.1:{port}?timeout=2&cert_cert=/c.pem"),
        format!("etcd://root:{SECRET}@127.0.0.1:{port}?ca_cert=/ca.pem"),
    ];
    for url in &asked {
        let started = Instant::now();
        let err = bounded("connect", Coordinator::connect(url, "m"))
            .await
            .expect_err("TLS asked for must not connect in plain text");
        shown_without_secret(&err, SECRET);
        // No CA to verify the server with, TLS options on a plain-text URL (they would be
        // ignored), or no `etcd-tls` feature: refused before anything is sent.
        assert!(
            matches!(
                err,
                Error::InvalidOption { .. } | Error::FeatureNotEnabled { .. }
            ),
            "{url}: {err:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{url}: refused before connecting, not after {:?}",
            started.elapsed()
        );
    }
}

/// A password in the URL — to a server without authentication, to one that is not there —
/// shows in no error, no builder and no coordinator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_in_the_url_is_never_shown() {
    let Some(url) = etcd_url() else {
        return eprintln!(
            "no etcd3+http:// URL in TOOZ_TEST_URLS: skipping (scripts/test runs it)"
        );
    };
    let hp = host_port(&url);
    for with_secret in [
        format!("etcd3+http://root:{SECRET}@{hp}?timeout=2"),
        format!("etcd://root:{SECRET}@{hp}?timeout=2"),
        // A password that needs percent-encoding: shown neither encoded nor decoded.
        format!("etcd3+http://root:{SECRET}%2F%40x@{hp}?timeout=2"),
    ] {
        assert!(
            !format!("{:?}", Coordinator::builder(&with_secret, "m")).contains(SECRET),
            "the builder's Debug shows the password"
        );
        match bounded("connect", Coordinator::connect(&with_secret, "m")).await {
            Err(err) => {
                shown_without_secret(&err, SECRET);
                println!("a user and password etcd does not know: {err}");
            }
            Ok(coord) => {
                let shown = format!("{coord:?}");
                assert!(!shown.contains(SECRET), "the coordinator's Debug: {shown}");
                coord.stop().await.unwrap();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn option_values_that_cannot_be_used_are_refused() {
    // Nothing listens there: options are checked before anything connects.
    let port = free_port();
    let with_secret = format!("etcd3+http://root:{SECRET}@127.0.0.1:{port}");
    let refused = [
        // Lease TTLs are whole seconds, at least 2 (etcd's own minimum for its default
        // election timeout), at most 365 days.
        ("lock_timeout", "1"),
        ("lock_timeout", "0"),
        ("lock_timeout", "abc"),
        ("lock_timeout", "-1"),
        ("lock_timeout", "31536001"),
        ("membership_timeout", "1.5"),
        ("membership_timeout", "abc"),
        ("timeout", "abc"),
        ("timeout", "0"),
        ("timeout", "0.05"),
        ("timeout", "-5"),
        // Endpoints are HOST:PORT.
        ("endpoints", "nohost"),
        ("endpoints", "http://h:2379"),
        ("endpoints", "h:notaport"),
        ("endpoints", "h:99999"),
        ("endpoints", ":2379"),
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

    // Every form that should work does, on the shared server.
    let Some(url) = etcd_url() else {
        return eprintln!("no etcd3+http:// URL in TOOZ_TEST_URLS: skipping the accepted forms");
    };
    let base = base(&url);
    let hp = host_port(&url);
    let accepted = [
        format!("{base}?timeout=2"),
        format!("etcd://{hp}?timeout=2"),
        format!("{base}?timeout=2&api_version=v3alpha&executor=threaded"),
        format!("{base}?timeout=2.5"),
        format!("{base}?timeout=2&membership_timeout=2&lock_timeout=10"),
        format!("{base}?timeout=2&endpoints={hp}&endpoints={hp},{hp}"),
    ];
    for url in &accepted {
        let coord = bounded("connect", Coordinator::connect(url, "edge"))
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        let guard = coord
            .lock(format!("edge-{}", run_id()).as_str())
            .try_acquire()
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"))
            .expect("free");
        guard.release().await.unwrap();
        coord.stop().await.unwrap();
    }
    // The session lease takes the shorter of membership_timeout and lock_timeout.
    let coord = Coordinator::connect(
        &format!("{base}?timeout=5&membership_timeout=10&lock_timeout=2"),
        "m",
    )
    .await
    .unwrap();
    assert_eq!(coord.membership_timeout(), Duration::from_secs(2));
    coord.stop().await.unwrap();

    // What the backend says it offers.
    let coord = Coordinator::connect(&format!("{base}?timeout=2"), "m")
        .await
        .unwrap();
    let supported = coord.supported();
    assert!(supported.groups && supported.elections, "{supported:?}");
    assert!(!supported.shared_locks, "{supported:?}");
    assert!(supported.lease_bound_locks, "{supported:?}");
    let err = coord.lock("s").shared().try_acquire().await.unwrap_err();
    assert!(err.is_unsupported(), "{err:?}");
    coord.stop().await.unwrap();
}

/// A member id holding `/` would make its member key another group's (`tooz/groups/g/a/b` is
/// member `b` of group `g/a`): refused at connect, before anything is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_id_with_a_slash_is_refused() {
    let port = free_port();
    for id in ["a/b", "/", "x/", "/x"] {
        let started = Instant::now();
        let err = bounded(
            "connect",
            Coordinator::connect(&format!("etcd3+http://127.0.0.1:{port}?timeout=2"), id),
        )
        .await
        .expect_err("a member id with '/' accepted");
        assert!(
            matches!(&err, Error::InvalidName { kind: "member", .. }),
            "{id}: {err:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{id}: refused before connecting"
        );
    }
}

/// Names made to break a key layout: every one a lock of its own and a group of its own, on
/// exactly the keys tooz's layout gives it and no other (a private server, so every key on it
/// is accounted for).
fn hostile_names() -> Vec<Vec<u8>> {
    let long = |last: u8| {
        let mut name = vec![b'n'; MAX_NAME_LEN - 1];
        name.push(last);
        name
    };
    vec![
        b"\0".to_vec(),
        b"nul\0in the middle".to_vec(),
        b"/".to_vec(),
        b"//".to_vec(),
        // `a` before `a/b`: deleting a group whose key prefixes another's.
        b"a".to_vec(),
        b"a/".to_vec(),
        b"a/b".to_vec(),
        b"a/b/".to_vec(),
        b".".to_vec(),
        b"..".to_vec(),
        b"../..".to_vec(),
        b"x".to_vec(),
        b"x/".to_vec(),
        // Names spelling other tooz keys.
        b"tooz/groups/".to_vec(),
        b"tooz/groups/x".to_vec(),
        b"tooz/groups/x/".to_vec(),
        b"tooz/groups/x/a".to_vec(),
        b"/tooz/locks".to_vec(),
        b"/tooz/locksx".to_vec(),
        b"tooz-rs/leaders/x".to_vec(),
        b"*".to_vec(),
        b" ".to_vec(),
        b"\xff\xfe not utf-8 \x80".to_vec(),
        b"\xc3\x28".to_vec(),
        "é 漢字 🦀".as_bytes().to_vec(),
        b"cr\r\nlf\ttab".to_vec(),
        long(b'a'),
        long(b'b'),
        long(b'/'),
        vec![b'/'; MAX_NAME_LEN],
        vec![0xff; MAX_NAME_LEN],
        vec![0; MAX_NAME_LEN],
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_names_are_distinct_and_touch_no_other_key() {
    if !have_etcd() {
        return eprintln!("etcd is not installed: skipping (scripts/test installs it)");
    }
    let server = Server::start();
    let url = server.url("timeout=5");
    let mut raw = direct(&server.direct_url()).await;
    let a_id = MemberId::from("a");
    // A member id with a NUL and bytes that are not UTF-8 (no '/': see above).
    let b_id = MemberId::from(&b"b\0\xff~"[..]);
    let a = Coordinator::connect(&url, a_id.clone()).await.unwrap();
    let b = Coordinator::connect(&url, b_id.clone()).await.unwrap();
    let names = hostile_names();
    assert_eq!(
        names.iter().collect::<BTreeSet<_>>().len(),
        names.len(),
        "the names are distinct"
    );

    // Locks: every name at once, each its own lock, each excluding the other coordinator.
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
                .unwrap_or_else(|e| panic!("lock {lock:?}: {e}"))
                .is_none(),
            "lock {lock:?} is not exclusive"
        );
        guards.push(guard);
    }
    // On the server: exactly one key per name, `/tooz/locks<name>`, and nothing else; all on
    // a's session lease, each holding a 16-byte owner token.
    let keys = all_keys(&mut raw).await;
    let expected: BTreeSet<Vec<u8>> = names.iter().map(|n| lock_key(n)).collect();
    assert_eq!(
        keys.keys().cloned().collect::<BTreeSet<_>>(),
        expected,
        "the keys of the locks"
    );
    let a_lease = keys[&lock_key(&names[0])].0;
    assert_ne!(a_lease, 0);
    for (key, (lease, value)) in &keys {
        assert_eq!(*lease, a_lease, "{}: on a's lease", shown(key));
        assert_eq!(value.len(), 16, "{}: an owner token", shown(key));
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
    assert_eq!(
        all_keys(&mut raw)
            .await
            .keys()
            .map(|k| shown(k))
            .collect::<Vec<_>>(),
        Vec::<String>::new(),
        "released locks leave no key behind"
    );

    // Groups: every name at once, each its own group (a create fails if another name's group
    // had its key), listed as exactly these.
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
    // Both join every group (a with capabilities naming the group), b leads every group.
    for (i, name) in names.iter().enumerate() {
        let group = GroupId::from(name.clone());
        a.join_group(group.clone(), json!({"n": i}))
            .await
            .unwrap_or_else(|e| panic!("group {group:?}: {e}"));
        b.join_group(group.clone(), Capabilities::none())
            .await
            .unwrap_or_else(|e| panic!("group {group:?}: {e}"));
    }
    let mut leaderships = Vec::new();
    for name in &names {
        let group = GroupId::from(name.clone());
        let led = b
            .try_campaign(group.clone())
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("group {group:?}: another group's leader holds its key"));
        leaderships.push(led);
    }
    for (i, name) in names.iter().enumerate() {
        let group = GroupId::from(name.clone());
        let members = b.members_with_capabilities(group.clone()).await.unwrap();
        assert_eq!(
            members.keys().cloned().collect::<Vec<_>>(),
            vec![a_id.clone(), b_id.clone()],
            "group {group:?}: exactly its own two members (no sub-group, no other group's member)"
        );
        assert_eq!(members[&a_id].to_json(), json!({"n": i}), "group {group:?}");
        assert!(members[&b_id].is_none(), "group {group:?}");
        assert_eq!(
            a.member_capabilities(group.clone(), a_id.clone())
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
    }
    // On the server: exactly each group's key (no lease, its own bytes as value, as tooz
    // writes it), each member's key on its member's lease, each leader key on b's lease.
    let keys = all_keys(&mut raw).await;
    let a_lease = keys[&member_key(&names[0], a_id.as_bytes())].0;
    let b_lease = keys[&member_key(&names[0], b_id.as_bytes())].0;
    assert!(a_lease != 0 && b_lease != 0 && a_lease != b_lease);
    let mut expected = BTreeMap::new();
    for name in &names {
        expected.insert(group_key(name), 0);
        expected.insert(member_key(name, a_id.as_bytes()), a_lease);
        expected.insert(member_key(name, b_id.as_bytes()), b_lease);
        expected.insert(leader_key(name), b_lease);
    }
    assert_eq!(
        expected.len(),
        4 * names.len(),
        "the layout gives every key once"
    );
    let actual: BTreeMap<Vec<u8>, i64> = keys.iter().map(|(k, (l, _))| (k.clone(), *l)).collect();
    let unexpected: Vec<String> = actual
        .iter()
        .filter(|(k, l)| expected.get(*k) != Some(*l))
        .map(|(k, l)| format!("{} (lease {l:x})", shown(k)))
        .collect();
    let missing: Vec<String> = expected
        .keys()
        .filter(|k| !actual.contains_key(*k))
        .map(|k| shown(k))
        .collect();
    assert!(
        unexpected.is_empty() && missing.is_empty(),
        "keys not in the layout: {unexpected:?}; keys missing: {missing:?}"
    );
    for name in &names {
        let key = group_key(name);
        assert_eq!(
            keys[&key].1,
            key,
            "{}: a group key holds its own bytes",
            shown(&key)
        );
    }
    // Member `a` of group `a/b` is not member `b/a` of group `a`, however it is asked for.
    let asked = a.member_capabilities("a", &b"b/a"[..]).await;
    assert!(
        asked.is_err(),
        "group a/b's member a was read as member 'b/a' of group a: {asked:?}"
    );

    for led in leaderships {
        led.resign().await.unwrap();
    }
    for name in &names {
        let group = GroupId::from(name.clone());
        a.leave_group(group.clone()).await.unwrap();
        b.leave_group(group).await.unwrap();
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
        all_keys(&mut raw)
            .await
            .keys()
            .map(|k| shown(k))
            .collect::<Vec<_>>(),
        Vec::<String>::new(),
        "nothing is left on the server"
    );
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

/// A member key whose value another program replaced with garbage, on its member's lease, or
/// written by another program on a lease of its own: that member is skipped by the listing
/// with capabilities (logged), its own capabilities read is an error, and nothing panics; once
/// the key holds capabilities again it is listed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_in_member_keys_is_skipped_not_a_panic() {
    let Some(url) = etcd_url() else {
        return eprintln!(
            "no etcd3+http:// URL in TOOZ_TEST_URLS: skipping (scripts/test runs it)"
        );
    };
    let run = run_id();
    let group = format!("garbage-{run}");
    let (a_id, b_id) = (
        MemberId::from(format!("a-{run}")),
        MemberId::from(format!("b-{run}")),
    );
    let mut raw = direct(&base(&url)).await;
    let a = Coordinator::connect(&url, a_id.clone()).await.unwrap();
    let b = Coordinator::connect(&url, b_id.clone()).await.unwrap();
    a.join_group_create(group.as_str(), json!({"role": "a"}))
        .await
        .unwrap();
    let b_membership = b
        .join_group_create(group.as_str(), json!({"role": "b"}))
        .await
        .unwrap();
    assert_eq!(
        a.members_with_capabilities(group.as_str())
            .await
            .unwrap()
            .len(),
        2
    );
    let b_key = member_key(group.as_bytes(), b_id.as_bytes());
    let b_lease = key_lease(&mut raw, &b_key).await.expect("b's member key");
    // Another program's key under the group, on a lease of its own.
    let intruder = MemberId::from("intruder");
    let intruder_key = member_key(group.as_bytes(), intruder.as_bytes());
    let intruder_lease = raw.lease_grant(60, None).await.unwrap().id();

    let huge = vec![0x91; 70_000];
    let garbage: [&[u8]; 7] = [
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
        // Nested one-element arrays, deeper than any limit, and over the size limit.
        &huge,
    ];
    for bad in garbage {
        let what = String::from_utf8_lossy(&bad[..bad.len().min(12)]).into_owned();
        raw.put(
            b_key.clone(),
            bad.to_vec(),
            Some(PutOptions::new().with_lease(b_lease)),
        )
        .await
        .unwrap();
        raw.put(
            intruder_key.clone(),
            bad.to_vec(),
            Some(PutOptions::new().with_lease(intruder_lease)),
        )
        .await
        .unwrap();

        let listed = bounded("members", a.members_with_capabilities(group.as_str()))
            .await
            .unwrap_or_else(|e| panic!("{what:?}: {e}"));
        assert_eq!(
            listed.keys().cloned().collect::<Vec<_>>(),
            vec![a_id.clone()],
            "{what:?}: the members with garbage capabilities are skipped, the others listed"
        );
        assert_eq!(listed[&a_id].to_json(), json!({"role": "a"}));
        let ids = bounded("members", a.members(group.as_str()))
            .await
            .unwrap_or_else(|e| panic!("{what:?}: {e}"));
        assert!(ids.contains(&a_id), "{what:?}: {ids:?}");
        println!("{what:?}: members() lists {ids:?}");
        let err = bounded(
            "member_capabilities",
            a.member_capabilities(group.as_str(), b_id.clone()),
        )
        .await
        .expect_err("garbage capabilities decoded");
        println!("{what:?}: {err}");

        // Its owner writes them again: listed again (the key kept b's lease: b is still in).
        b.update_capabilities(group.as_str(), json!({"role": "b"}))
            .await
            .unwrap();
        let listed = a.members_with_capabilities(group.as_str()).await.unwrap();
        assert_eq!(
            listed.keys().cloned().collect::<Vec<_>>(),
            vec![a_id.clone(), b_id.clone()],
            "{what:?}: {listed:?}"
        );
        assert_eq!(listed[&b_id].to_json(), json!({"role": "b"}));
    }
    assert!(
        b_membership.is_active(),
        "b's membership outlived the garbage"
    );

    // The intruder's key with capabilities that decode is listed: what was skipped above was
    // skipped for its bytes, not for its key.
    let caps = Capabilities::from(json!({"role": "intruder"}));
    raw.put(
        intruder_key.clone(),
        caps.encode().unwrap(),
        Some(PutOptions::new().with_lease(intruder_lease)),
    )
    .await
    .unwrap();
    let listed = a.members_with_capabilities(group.as_str()).await.unwrap();
    assert_eq!(
        listed.get(&intruder).map(Capabilities::to_json),
        Some(json!({"role": "intruder"}))
    );
    // Its lease revoked: gone.
    raw.lease_revoke(intruder_lease).await.unwrap();
    let listed = a.members_with_capabilities(group.as_str()).await.unwrap();
    assert_eq!(listed.keys().cloned().collect::<Vec<_>>(), vec![a_id, b_id]);

    a.leave_group(group.as_str()).await.unwrap();
    b_membership.leave().await.unwrap();
    a.delete_group(group.as_str()).await.unwrap();
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}
