//! memcached servers, options, data and names that are not what we expect: nobody listening,
//! a server that never answers, a server that is not memcached, option values out of range,
//! garbage planted by someone else in tooz's keys, names with spaces, line breaks, control or
//! non-UTF-8 bytes and names too long for a memcached key. Each gives a clear error or works;
//! none panics or hangs, and no name ever smuggles a command to the server. Runs its own
//! throw-away `memcached` servers on free loopback ports.

#![cfg(feature = "memcached")]

#[path = "support/fake_server.rs"]
mod fake_server;
#[path = "support/memcached_raw.rs"]
mod memcached_raw;
#[path = "support/memcached_server.rs"]
mod memcached_server;
#[path = "support/memcached_url.rs"]
mod memcached_url;

use std::time::{Duration, Instant};

use memcached_raw::Raw;
use memcached_server::{Server, free_port, have_memcached};
use serde_json::json;
use tooz::{Capabilities, Coordinator, Error, GroupId, LockName, MemberId};

/// The bound on any one call here: generous against the 2-second timeouts, far from a hang.
const BOUND: Duration = Duration::from_secs(15);

async fn bounded<T>(what: &str, call: impl Future<Output = T>) -> T {
    match tokio::time::timeout(BOUND, call).await {
        Ok(result) => result,
        Err(_) => panic!("{what} did not return within {BOUND:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_listening_is_a_connection_error_in_bounded_time() {
    let port = free_port();
    let started = Instant::now();
    let url = format!("memcached://127.0.0.1:{port}?timeout=2");
    let err = bounded("connect", Coordinator::connect(&url, "m"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Connection { .. }), "{err:?}");
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
    let url = format!("memcached://127.0.0.1:{port}?timeout=2");
    let err = match bounded(
        "connect to a silent server",
        Coordinator::connect(&url, "m"),
    )
    .await
    {
        Err(err) => err,
        // A connect that needs no reply would wait at the first call instead.
        Ok(coord) => bounded("a lock on a silent server", coord.lock("l").try_acquire())
            .await
            .expect_err("a lock granted by a server that never answers"),
    };
    println!("a silent server: {err} after {:?}", started.elapsed());
    assert!(err.is_retryable(), "a timeout is worth retrying: {err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_is_not_memcached_is_an_error_naming_it() {
    let answers: [&'static [u8]; 2] = [
        b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
        b"\x00\xff\xfe\x07 garbage \x1b[0m\r\nmore garbage",
    ];
    for answer in answers {
        let port = fake_server::fake_server(Some(answer));
        let started = Instant::now();
        let url = format!("memcached://127.0.0.1:{port}?timeout=2");
        let err = match bounded("connect", Coordinator::connect(&url, "m")).await {
            Err(err) => err,
            // A connect that needs no reply would meet the garbage at the first call instead.
            Ok(coord) => bounded("a lock", coord.lock("l").try_acquire())
                .await
                .expect_err("a lock granted by a server that is not memcached"),
        };
        let shown = format!("{err} / {err:?}");
        println!(
            "{:?} where memcached was expected: {err} (after {:?})",
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
async fn option_values_out_of_range_are_refused() {
    if !have_memcached() {
        return eprintln!("memcached is not installed: skipping");
    }
    let server = Server::start(free_port());
    let thirty_days = 30 * 86_400;
    let refused = [
        ("lock_timeout", "1".to_owned()),
        ("lock_timeout", "0".to_owned()),
        ("lock_timeout", "99999999999".to_owned()),
        ("lock_timeout", "abc".to_owned()),
        ("lock_timeout", "2.5".to_owned()),
        ("lock_timeout", "1500ms".to_owned()),
        ("lock_timeout", "-3".to_owned()),
        ("lock_timeout", (thirty_days + 1).to_string()),
        ("membership_timeout", "1".to_owned()),
        ("membership_timeout", (thirty_days + 1).to_string()),
        ("leader_timeout", "1".to_owned()),
        ("leader_timeout", "abc".to_owned()),
        ("max_pool_size", "abc".to_owned()),
    ];
    for (option, value) in &refused {
        let url = server.url(&format!("timeout=2&{option}={value}"));
        match bounded("connect", Coordinator::connect(&url, "m")).await {
            Err(Error::InvalidOption { option: named, .. }) => {
                assert_eq!(&named, option, "{option}={value}")
            }
            Err(e) => panic!("{option}={value}: {e:?}"),
            Ok(_) => panic!("{option}={value} accepted"),
        }
    }
    // The three TTLs default to `timeout`: a timeout below 2 s makes them invalid too.
    let err = bounded(
        "connect",
        Coordinator::connect(&server.url("timeout=1"), "m"),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::InvalidOption { .. }), "{err:?}");

    let err = bounded(
        "connect",
        Coordinator::connect(&server.url("timeout=2&bogus=1"), "m"),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, Error::UnknownOption { option, .. } if option == "bogus"),
        "{err:?}"
    );
    // TLS is refused for now, with an error rather than a plain-text connection.
    let err = bounded(
        "connect",
        Coordinator::connect(&server.url("timeout=2&use_ssl=true"), "m"),
    )
    .await
    .expect_err("use_ssl=true must not connect in plain text");
    println!("use_ssl=true: {err}");

    // The edges are accepted, as are tooz's TLS options when TLS is off.
    for options in [
        "timeout=2".to_owned(),
        format!("timeout=2&lock_timeout={thirty_days}&membership_timeout={thirty_days}"),
        "timeout=2&leader_timeout=2&max_pool_size=1".to_owned(),
        "timeout=2&use_ssl=false&ssl_check_hostname=true&ssl_ciphers=DEFAULT".to_owned(),
    ] {
        let coord = bounded("connect", Coordinator::connect(&server.url(&options), "m"))
            .await
            .unwrap_or_else(|e| panic!("{options}: {e}"));
        let guard = coord
            .lock("edge")
            .try_acquire()
            .await
            .unwrap()
            .expect("free");
        guard.release().await.unwrap();
        coord.stop().await.unwrap();
    }

    // What the backend says it offers.
    let coord = Coordinator::connect(&server.url("timeout=2"), "m")
        .await
        .unwrap();
    let supported = coord.supported();
    assert!(supported.groups && supported.elections, "{supported:?}");
    assert!(!supported.shared_locks, "{supported:?}");
    assert!(supported.lease_bound_locks, "{supported:?}");
    let err = coord.lock("s").shared().try_acquire().await.unwrap_err();
    assert!(err.is_unsupported(), "{err:?}");
    coord.stop().await.unwrap();

    // No port: memcached's 11211 (only where the shared server listens there).
    if let Some(shared) = memcached_url::memcached_url()
        && url::Url::parse(&shared).unwrap().port().unwrap_or(11211) == 11211
    {
        let coord = Coordinator::connect("memcached://127.0.0.1?timeout=2", "default-port")
            .await
            .unwrap();
        coord.stop().await.unwrap();
    }
}

/// A msgpack value as the driver's flags-2 values are written (bin strings for ids).
fn msgpack(value: &rmpv::Value) -> Vec<u8> {
    let mut bytes = Vec::new();
    rmpv::encode::write_value(&mut bytes, value).unwrap();
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_planted_in_tooz_keys_is_an_error_or_skipped_never_a_panic() {
    if !have_memcached() {
        return eprintln!("memcached is not installed: skipping");
    }
    let server = Server::start(free_port());
    let coord = Coordinator::connect(&server.url("timeout=2"), "good")
        .await
        .unwrap();
    let mut raw = Raw::connect(server.port).await;

    // A whole group value that is not a group map: raw bytes (flags 1), invalid msgpack,
    // msgpack of the wrong shape, a flag tooz never writes.
    let cases: [(&str, u32, &[u8]); 5] = [
        ("raw-bytes", 1, b"\xc1\xff\x00 not msgpack"),
        ("bad-msgpack", 2, b"\xc1\xff\x00"),
        ("truncated-map", 2, b"\x81\xc4\x08intr"),
        ("an-integer", 2, b"\x05"),
        ("unknown-flags", 7, b"\x80"),
    ];
    for (case, flags, bytes) in cases {
        let group = format!("garbage-{case}");
        coord.create_group(group.as_str()).await.unwrap();
        let key = format!("_TOOZ_GROUP_{group}");
        raw.set(&key, flags, bytes).await;
        match bounded("members", coord.members(group.as_str())).await {
            Ok(members) => assert!(members.is_empty(), "{case}: members {members:?}"),
            Err(e) => println!("{case}: members() -> {e}"),
        }
        match bounded("members", coord.members_with_capabilities(group.as_str())).await {
            Ok(members) => assert!(members.is_empty(), "{case}: members {members:?}"),
            Err(e) => println!("{case}: members_with_capabilities() -> {e}"),
        }
        let one = bounded("caps", coord.member_capabilities(group.as_str(), "good")).await;
        assert!(one.is_err(), "{case}: {one:?}");
        // Reading never overwrites someone else's bytes.
        assert_eq!(
            raw.get(&key).await,
            Some((flags, bytes.to_vec())),
            "{case}: the planted value was changed by a read"
        );
        let joined = bounded(
            "join",
            coord.join_group(group.as_str(), Capabilities::none()),
        )
        .await;
        println!("{case}: join_group -> {:?}", joined.map(|_| ()));
    }

    // A group map with entries of the wrong shape beside a good one; the intruders have live
    // member keys.
    use rmpv::Value;
    let bin = |s: &str| Value::Binary(s.as_bytes().to_vec());
    coord
        .join_group_create("mixed", json!({"ok": true}))
        .await
        .unwrap();
    let map = Value::Map(vec![
        (
            bin("good"),
            Value::Map(vec![(
                bin("capabilities"),
                Value::Map(vec![(Value::from("ok"), Value::from(true))]),
            )]),
        ),
        (bin("intruder"), Value::from(5)),
        (
            bin("intruder2"),
            Value::Map(vec![(Value::from("x"), Value::from(1))]),
        ),
        (Value::from(7), Value::Nil),
    ]);
    raw.set("_TOOZ_GROUP_mixed", 2, &msgpack(&map)).await;
    for intruder in ["intruder", "intruder2"] {
        raw.set(&format!("_TOOZ_MEMBER_{intruder}"), 1, b"It's alive!")
            .await;
    }
    match bounded("members", coord.members("mixed")).await {
        Ok(members) => assert!(members.contains(&MemberId::from("good")), "{members:?}"),
        Err(e) => println!("mixed: members() -> {e}"),
    }
    match bounded("members", coord.members_with_capabilities("mixed")).await {
        Ok(members) => assert_eq!(
            members
                .get(&MemberId::from("good"))
                .map(Capabilities::to_json),
            Some(json!({"ok": true})),
            "{members:?}"
        ),
        Err(e) => println!("mixed: members_with_capabilities() -> {e}"),
    }
    let intruder = bounded("caps", coord.member_capabilities("mixed", "intruder")).await;
    println!("mixed: the intruder's capabilities -> {intruder:?}");

    // The group list is garbage.
    raw.set("_TOOZ_GROUP_LIST", 1, b"\xc1 not a list").await;
    match bounded("groups", coord.groups()).await {
        Ok(groups) => println!("garbage group list: groups() -> {} groups", groups.len()),
        Err(e) => println!("garbage group list: groups() -> {e}"),
    }
    let created = bounded("create", coord.create_group("after-garbage-list")).await;
    println!("garbage group list: create_group -> {created:?}");

    // A leader lock holding bytes that are not UTF-8: that is the leader's id, as tooz reads it.
    raw.set("__TOOZ_LOCK__TOOZ_GROUP_LEADER_led", 1, b"\xff\xfe boss")
        .await;
    assert_eq!(
        bounded("leader", coord.leader("led")).await.unwrap(),
        Some(MemberId::from(&b"\xff\xfe boss"[..]))
    );
    assert!(coord.try_campaign("led").await.unwrap().is_none());
    // A lock key holding msgpack nil (flags 2): held by someone, whatever it holds.
    raw.set("__TOOZ_LOCK_planted", 2, b"\xc0").await;
    assert!(
        bounded("lock", coord.lock("planted").try_acquire())
            .await
            .unwrap()
            .is_none()
    );

    // Through all of it the coordinator kept working.
    let guard = coord
        .lock("after")
        .try_acquire()
        .await
        .unwrap()
        .expect("free");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(guard.is_held(), "renewed by the heartbeats");
    guard.release().await.unwrap();
    coord.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_name_works_and_never_injects_a_command() {
    if !have_memcached() {
        return eprintln!("memcached is not installed: skipping");
    }
    let server = Server::start(free_port());
    let mut raw = Raw::connect(server.port).await;
    raw.set("canary", 1, b"still here").await;
    let url = server.url("timeout=2");
    let a = Coordinator::connect(&url, "a").await.unwrap();
    // A member id that would be a second command if sent as a plain key.
    let b_id = MemberId::from("b\r\nflush_all\r\nset x 0 0 1");
    let b = Coordinator::connect(&url, b_id.clone()).await.unwrap();

    let long = |last: u8| {
        let mut name = vec![b'n'; 299];
        name.push(last);
        name
    };
    let names: Vec<Vec<u8>> = vec![
        b"with space".to_vec(),
        b"a b".to_vec(),
        b"a_b".to_vec(),
        b"cr\r\nlf".to_vec(),
        b"x\r\nflush_all".to_vec(),
        b"x\r\nflush_all\r\n".to_vec(),
        b"x flush_all 0".to_vec(),
        b"x\r\nflush_all\r\nmn".to_vec(),
        b"tab\there\0nul\x7fdel".to_vec(),
        b"\xff\xfe not utf-8 \x80".to_vec(),
        "é ü 漢字".as_bytes().to_vec(),
        long(b'a'),
        long(b'b'),
        [b"long with spaces \r\n".repeat(20), b"!".to_vec()].concat(),
        vec![b'x'; tooz::MAX_NAME_LEN],
    ];

    // Locks: every name at once, each its own lock (no two names share a key), each
    // excluding the other coordinator.
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
    // Past the local lease of a lock (0.9 s of the 1 s grant timeout): held only if the
    // heartbeats renewed every one of these keys.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for guard in guards {
        assert!(guard.is_held(), "{:?} was not renewed", guard.name());
        guard.release().await.unwrap();
    }
    for name in &names {
        let guard = b
            .lock(LockName::from(name.clone()))
            .try_acquire()
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{:?} was not released", String::from_utf8_lossy(name)));
        guard.release().await.unwrap();
    }

    // Groups: created and joined by one, seen by the other, listed, led.
    for (i, name) in names.iter().enumerate() {
        let group = GroupId::from(name.clone());
        bounded("create", a.create_group(group.clone()))
            .await
            .unwrap_or_else(|e| panic!("group {group:?}: {e}"));
        a.join_group(group.clone(), json!({"n": i})).await.unwrap();
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
            json!({"n": i})
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

    // Nothing reached the server as a command of its own.
    assert_eq!(
        raw.get("canary").await,
        Some((1, b"still here".to_vec())),
        "a name flushed the server"
    );
    assert!(!raw.exists("x").await, "a name set a key of its own");
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_that_would_be_tooz_internal_keys_are_refused() {
    if !have_memcached() {
        return eprintln!("memcached is not installed: skipping");
    }
    let server = Server::start(free_port());
    let coord = Coordinator::connect(&server.url("timeout=2"), "m")
        .await
        .unwrap();
    let refused = |result: Result<(), Error>, what: &str| match result {
        Err(Error::InvalidName { .. }) => {}
        other => panic!("{what}: {other:?}"),
    };
    // `_TOOZ_GROUP_LIST` is the group list.
    refused(coord.create_group("LIST").await, "create_group(LIST)");
    refused(
        coord
            .join_group_create("LIST", Capabilities::none())
            .await
            .map(|_| ()),
        "join_group_create(LIST)",
    );
    refused(coord.members("LIST").await.map(|_| ()), "members(LIST)");
    // `__TOOZ_LOCK__TOOZ_GROUP_LEADER_<g>` is group g's leader lock.
    refused(
        coord
            .lock("_TOOZ_GROUP_LEADER_g")
            .try_acquire()
            .await
            .map(|_| ()),
        "lock(_TOOZ_GROUP_LEADER_g)",
    );
    refused(
        coord
            .lock("_TOOZ_GROUP_LEADER_g")
            .acquire_timeout(Duration::from_millis(100))
            .await
            .map(|_| ()),
        "lock(_TOOZ_GROUP_LEADER_g), waiting",
    );
    // The group list was not touched.
    let mut raw = Raw::connect(server.port).await;
    assert_eq!(raw.get("_TOOZ_GROUP_LIST").await, None);
    // Names next to them are ordinary.
    for group in ["list", "LIST2", "LIS"] {
        coord
            .join_group_create(group, Capabilities::none())
            .await
            .unwrap();
        assert!(coord.members(group).await.unwrap().contains(&"m".into()));
    }
    for lock in [
        "_TOOZ_GROUP_LEADER",
        "_TOOZ_GROUP_LEADEr_g",
        "x_TOOZ_GROUP_LEADER_g",
    ] {
        coord
            .lock(lock)
            .try_acquire()
            .await
            .unwrap()
            .expect("free")
            .release()
            .await
            .unwrap();
    }
    coord.stop().await.unwrap();
}
