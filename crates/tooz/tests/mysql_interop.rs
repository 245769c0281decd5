//! Python tooz 9.1.0's MySQL driver and ours on one server. tooz's driver (locks only) takes
//! `GET_LOCK(name, 0)` on the lock's very name, on a connection it opens per lock; ours takes
//! `GET_LOCK` on that same name whenever the server can take it as it is (up to 64
//! characters, UTF-8, no NUL), so the two exclude each other on every such name, both ways,
//! and each is granted the lock once the other lets go (ours waits on the server, so it is
//! granted the moment Python releases; Python polls, about once a second). Longer names are
//! where the two part ways, as documented: ours takes a hashed name (`~tooz-sha256:...`),
//! Python the raw one, which MySQL refuses past 64 characters and MariaDB past 192 bytes.
//! Needs `TOOZ_PYTHON` and a `mysql://` URL in `TOOZ_TEST_URLS` (scripts/test sets both).

#![cfg(feature = "mysql")]

#[path = "support/mysql_url.rs"]
mod mysql_url;
#[path = "interop/peer.rs"]
mod peer;
#[path = "interop/python.rs"]
mod python;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mysql_async::prelude::Queryable;
use mysql_url::{base, direct, lock_holder, mysql_url};
use peer::Peer;
use python::python;
use serde_json::json;
use tokio::time::{Instant, sleep, timeout};
use tooz::Coordinator;

/// This run's id, so that runs sharing a server never meet.
fn run_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{}-{}", std::process::id(), nanos % 1_000_000_000_000)
}

/// `prefix` padded with `fill` to exactly `chars` characters.
fn padded(prefix: &str, fill: char, chars: usize) -> String {
    let mut name = prefix.to_owned();
    assert!(
        name.chars().count() <= chars,
        "{prefix} is too long already"
    );
    while name.chars().count() < chars {
        name.push(fill);
    }
    name
}

/// Whether the server is MariaDB (which takes lock names up to 192 bytes) rather than MySQL
/// (up to 64 characters).
async fn is_mariadb(admin: &mut mysql_async::Conn) -> bool {
    let version: Option<String> = admin.query_first("SELECT VERSION()").await.unwrap();
    version
        .unwrap_or_default()
        .to_lowercase()
        .contains("mariadb")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_and_rust_locks_exclude_each_other() {
    let (Some(python), Some(url)) = (python(), mysql_url()) else {
        eprintln!(
            "TOOZ_PYTHON or a mysql:// TOOZ_TEST_URLS is missing: skipping (scripts/test runs it)"
        );
        return;
    };
    let base = base(&url);
    let run = run_id();
    let mut admin = direct(&base).await;
    let mut py = Peer::spawn(&python);
    // Python's driver reads only host, port, user, password, database and its ssl_* options.
    py.call(json!({"op": "start", "url": base, "member": format!("py-{run}")}));
    let rust = Coordinator::connect(&format!("{base}?timeout=5"), format!("rs-{run}").as_str())
        .await
        .unwrap();
    let other = Coordinator::connect(
        &format!("{base}?timeout=5"),
        format!("other-{run}").as_str(),
    )
    .await
    .unwrap();

    // Plain ASCII, UTF-8 beyond ASCII (Python sends the name's bytes, ours the same bytes as
    // text: one lock on the server), and the longest name taken as it is: 64 characters.
    let names = [
        format!("interop-{run}"),
        format!("ünï cödé {run}"),
        padded(&format!("max-{run}-"), 'é', 64),
    ];
    for name in &names {
        // Python holds it: ours is refused.
        assert_eq!(
            py.call(json!({"op": "lock", "name": name})),
            json!(true),
            "{name}: Python takes the free lock"
        );
        let python_holder = lock_holder(&mut admin, name).await;
        assert!(
            python_holder.is_some(),
            "{name}: Python holds GET_LOCK on the name as it is"
        );
        assert!(
            rust.lock(name.as_str())
                .try_acquire()
                .await
                .unwrap()
                .is_none(),
            "{name}: ours was granted a lock Python holds"
        );

        // Python lets go: ours is granted it, on the very same server name.
        assert_eq!(py.call(json!({"op": "unlock", "name": name})), json!(true));
        let guard = rust
            .lock(name.as_str())
            .try_acquire()
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{name}: not free after Python released it"));
        let ours = lock_holder(&mut admin, name).await;
        assert!(
            ours.is_some() && ours != python_holder,
            "{name}: ours holds GET_LOCK on the name as it is, on a connection of its own \
             (holder {ours:?}, Python's was {python_holder:?})"
        );
        // Ours holds it: Python is refused, and so is any other coordinator of ours.
        assert_eq!(
            py.call(json!({"op": "lock", "name": name})),
            json!(false),
            "{name}: Python was granted a lock ours holds"
        );
        assert!(
            other
                .lock(name.as_str())
                .try_acquire()
                .await
                .unwrap()
                .is_none(),
            "{name}: two of ours hold one lock"
        );
        guard.release().await.unwrap();
        assert_eq!(
            lock_holder(&mut admin, name).await,
            None,
            "{name}: our release let go of the server's lock"
        );
        assert_eq!(
            py.call(json!({"op": "lock", "name": name})),
            json!(true),
            "{name}: Python takes it after ours released it"
        );
        assert_eq!(py.call(json!({"op": "unlock", "name": name})), json!(true));
    }

    // Ours waits while Python holds — on the server, in GET_LOCK with a timeout — and so is
    // granted the lock the moment Python lets go, with no polling delay.
    let name = format!("wait-{run}");
    assert_eq!(py.call(json!({"op": "lock", "name": name})), json!(true));
    let lock = rust.lock(name.as_str());
    let waiter = tokio::spawn(async move {
        let guard = lock.acquire_timeout(Duration::from_secs(10)).await;
        (Instant::now(), guard)
    });
    sleep(Duration::from_millis(600)).await;
    assert!(
        !waiter.is_finished(),
        "ours was granted a lock Python holds"
    );
    let released = Instant::now();
    assert_eq!(py.call(json!({"op": "unlock", "name": name})), json!(true));
    let (granted, guard) = timeout(Duration::from_secs(10), waiter)
        .await
        .expect("the waiter returns")
        .unwrap();
    let guard = guard.expect("ours is granted the lock Python released");
    let after = granted - released;
    println!("ours granted {after:?} after Python released");
    assert!(
        after < Duration::from_secs(1),
        "ours was granted the lock only {after:?} after Python released it: a wait on the \
         server is granted at once"
    );
    assert!(
        lock_holder(&mut admin, &name).await.is_some(),
        "ours holds the server's lock"
    );

    // Python waits (a blocking acquire: tooz retries GET_LOCK(name, 0), backing off to once a
    // second) while ours holds, and is granted the lock soon after ours lets go.
    let waiting_name = name.clone();
    let python_waits = tokio::task::spawn_blocking(move || {
        let granted = py.call(json!({"op": "lock", "name": waiting_name, "blocking": true}));
        (Instant::now(), granted, py)
    });
    sleep(Duration::from_millis(1500)).await;
    assert!(
        !python_waits.is_finished(),
        "Python was granted a lock ours holds"
    );
    let released = Instant::now();
    guard.release().await.unwrap();
    let (granted_at, granted, mut py) = timeout(Duration::from_secs(10), python_waits)
        .await
        .expect("Python's blocking acquire returns once ours released")
        .unwrap();
    assert_eq!(granted, json!(true));
    println!(
        "Python granted {:?} after ours released",
        granted_at - released
    );
    assert!(
        granted_at - released < Duration::from_secs(3),
        "Python waited {:?} after ours released (it retries about once a second)",
        granted_at - released
    );
    assert!(
        rust.lock(name.as_str())
            .try_acquire()
            .await
            .unwrap()
            .is_none(),
        "ours was granted a lock Python's blocking acquire took"
    );
    assert_eq!(py.call(json!({"op": "unlock", "name": name})), json!(true));
    rust.lock(name.as_str())
        .try_acquire()
        .await
        .unwrap()
        .expect("free again")
        .release()
        .await
        .unwrap();

    py.call(json!({"op": "stop"}));
    other.stop().await.unwrap();
    rust.stop().await.unwrap();
}

/// Long names. The server takes a name as it is up to its limit — 64 characters on MySQL
/// (error 3057 past it), 192 bytes on MariaDB (error 1059) — and so do Python's driver and
/// ours, which then exclude each other. Past the limit Python's driver is refused, and ours
/// takes the name hashed — `~tooz-sha256:` and 51 hex digits of its SHA-256, a name no
/// server refuses and that no name taken as it is can equal — so every such name works, and
/// two of them that differ only in their last character, or a long name and its prefix, are
/// different locks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_names_exclude_python_up_to_the_server_limit_and_are_hashed_past_it() {
    let (Some(python), Some(url)) = (python(), mysql_url()) else {
        eprintln!(
            "TOOZ_PYTHON or a mysql:// TOOZ_TEST_URLS is missing: skipping (scripts/test runs it)"
        );
        return;
    };
    let base = base(&url);
    let run = run_id();
    let mut admin = direct(&base).await;
    let mariadb = is_mariadb(&mut admin).await;
    let a = Coordinator::connect(&format!("{base}?timeout=5"), format!("a-{run}").as_str())
        .await
        .unwrap();
    let b = Coordinator::connect(&format!("{base}?timeout=5"), format!("b-{run}").as_str())
        .await
        .unwrap();

    // 64 characters, then two names that add one different character each.
    let prefix = padded(&format!("long-{run}-"), 'p', 64);
    let long_q = format!("{prefix}q");
    let long_r = format!("{prefix}r");
    let held_q = a
        .lock(long_q.as_str())
        .try_acquire()
        .await
        .unwrap()
        .expect("a 65-character name is a lock like any other");
    assert!(
        b.lock(long_q.as_str())
            .try_acquire()
            .await
            .unwrap()
            .is_none(),
        "a 65-character name excludes like any other"
    );
    let held_r = b
        .lock(long_r.as_str())
        .try_acquire()
        .await
        .unwrap()
        .expect("names that differ only after the 64th character are different locks");
    let held_prefix = b
        .lock(prefix.as_str())
        .try_acquire()
        .await
        .unwrap()
        .expect("a 65-character name and its 64-character prefix are different locks");
    // The prefix is taken as it is (Python's name for it too); on MariaDB the 65-character
    // names too (MySQL refuses to even look up a name over 64 characters).
    assert!(lock_holder(&mut admin, &prefix).await.is_some());
    if mariadb {
        assert!(
            lock_holder(&mut admin, &long_q).await.is_some(),
            "MariaDB takes a 65-character name as it is: ours must too, as Python does"
        );
    }

    // A name Python cannot take on any server: 300 characters (MySQL: over 64 characters;
    // MariaDB: over 192 bytes). Ours takes it, and its twin differing in the last character is
    // another lock.
    let very_long = padded(&format!("very-long-{run}-"), 'v', 299);
    let mut py = Peer::spawn(&python);
    py.call(json!({"op": "start", "url": base, "member": format!("py-{run}")}));
    let refused = py.try_call(json!({"op": "lock", "name": format!("{very_long}x")}));
    let err = refused.expect_err("Python's driver took a 300-character name");
    println!("Python, a 300-character lock name: {err}");
    assert!(
        err.contains("1059") || err.contains("3057"),
        "the server refused the name as too long: {err}"
    );
    let vx = a
        .lock(format!("{very_long}x").as_str())
        .try_acquire()
        .await
        .unwrap()
        .expect("ours takes a 300-character name");
    let vy = b
        .lock(format!("{very_long}y").as_str())
        .try_acquire()
        .await
        .unwrap()
        .expect("300-character names differing in their last character are different locks");

    if mariadb {
        // MariaDB takes a 65-character name as it is, for Python and for ours alike: they
        // exclude each other on it.
        let shared = format!("{prefix}g");
        assert_eq!(
            py.call(json!({"op": "lock", "name": shared})),
            json!(true),
            "MariaDB takes a 65-character name as it is for Python"
        );
        assert!(
            a.lock(shared.as_str())
                .try_acquire()
                .await
                .unwrap()
                .is_none(),
            "Python holds the 65-character name: ours must be refused"
        );
        assert_eq!(
            py.call(json!({"op": "unlock", "name": shared})),
            json!(true)
        );
        let ours = a
            .lock(shared.as_str())
            .try_acquire()
            .await
            .unwrap()
            .expect("free once Python released it");
        ours.release().await.unwrap();
    } else {
        // MySQL refuses Python a name over 64 characters.
        let refused = py.try_call(json!({"op": "lock", "name": format!("{prefix}g")}));
        assert!(
            refused.is_err(),
            "MySQL took a 65-character name for Python: {refused:?}"
        );
    }

    for guard in [held_q, held_r, held_prefix, vx, vy] {
        assert!(guard.is_held(), "{:?}", guard.name());
        guard.release().await.unwrap();
    }
    py.call(json!({"op": "stop"}));
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}
