//! Python tooz 9.1.0's PostgreSQL driver and ours on one database. tooz's driver (locks only,
//! and deprecated) takes the two-key advisory lock `pg_advisory_lock(md5[0], md5[1])` of a
//! name, on a connection it opens per acquire; ours takes, with `tooz_lock_keys=true`, that
//! same lock besides its own: the two exclude each other on every name, both ways, and each
//! is granted the lock once the other lets go (ours finds a Python release by polling, Python
//! waiting on the server is granted at once). Without `tooz_lock_keys` the two are independent,
//! as documented. Needs `TOOZ_PYTHON` and a `postgresql://` URL in `TOOZ_TEST_URLS`
//! (scripts/test sets both).

#![cfg(feature = "postgres")]

#[path = "interop/peer.rs"]
mod peer;
#[path = "support/postgres_url.rs"]
mod postgres_url;
#[path = "interop/python.rs"]
mod python;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use md5::{Digest, Md5};
use peer::Peer;
use postgres_url::{base, direct, direct_config, postgres_url};
use python::python;
use serde_json::json;
use tokio::time::{Instant, sleep, timeout};
use tooz::{Coordinator, MemberId};

/// This run's id, so that runs sharing a server never meet.
fn run_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{}-{}", std::process::id(), nanos % 1_000_000_000_000)
}

/// Python tooz's advisory-lock key of `name`: the first two bytes of its md5.
fn tooz_keys(name: &str) -> (i64, i64) {
    let digest = Md5::digest(name.as_bytes());
    (i64::from(digest[0]), i64::from(digest[1]))
}

/// The server processes holding `name`'s two-key advisory lock (as Python takes it).
async fn holders_of_tooz_lock(admin: &tokio_postgres::Client, name: &str) -> Vec<i32> {
    let (k1, k2) = tooz_keys(name);
    admin
        .query(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted
               AND objsubid = 2 AND classid::bigint = $1 AND objid::bigint = $2",
            &[&k1, &k2],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_and_rust_locks_exclude_each_other_with_tooz_lock_keys() {
    let (Some(python), Some(url)) = (python(), postgres_url()) else {
        eprintln!(
            "TOOZ_PYTHON or a postgresql:// TOOZ_TEST_URLS is missing: skipping (scripts/test runs it)"
        );
        return;
    };
    let base = base(&url);
    let run = run_id();
    let admin = direct(&direct_config(&base)).await;
    let mut py = Peer::spawn(&python);
    // Python's driver reads only host, port and dbname from the URL's options.
    py.call(json!({"op": "start", "url": base, "member": format!("py-{run}")}));
    let rust = Coordinator::connect(
        &format!("{base}?timeout=5&tooz_lock_keys=true"),
        format!("rs-{run}").as_str(),
    )
    .await
    .unwrap();
    // Ours without tooz's keys: its own key space only.
    let plain = Coordinator::connect(
        &format!("{base}?timeout=5"),
        format!("plain-{run}").as_str(),
    )
    .await
    .unwrap();

    for name in [format!("interop-{run}"), format!("ünï cödé {run}")] {
        // Python holds it: ours is refused.
        assert_eq!(
            py.call(json!({"op": "lock", "name": name})),
            json!(true),
            "{name}: Python takes the free lock"
        );
        assert_eq!(
            holders_of_tooz_lock(&admin, &name).await.len(),
            1,
            "{name}: Python holds md5[0..2] as a two-key advisory lock"
        );
        assert!(
            rust.lock(name.as_str())
                .try_acquire()
                .await
                .unwrap()
                .is_none(),
            "{name}: ours was granted a lock Python holds"
        );
        // Without tooz_lock_keys ours does not see Python's lock (and says so in its docs).
        let independent = plain
            .lock(name.as_str())
            .try_acquire()
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{name}: without tooz_lock_keys Python's lock is not ours"));
        independent.release().await.unwrap();

        // Python lets go: ours is granted it, and holds tooz's key too.
        assert_eq!(py.call(json!({"op": "unlock", "name": name})), json!(true));
        let guard = rust
            .lock(name.as_str())
            .try_acquire()
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{name}: not free after Python released it"));
        assert_eq!(
            holders_of_tooz_lock(&admin, &name).await.len(),
            1,
            "{name}: ours holds tooz's two-key lock as well"
        );
        // Ours holds it: Python is refused, and so is any other coordinator of ours.
        assert_eq!(
            py.call(json!({"op": "lock", "name": name})),
            json!(false),
            "{name}: Python was granted a lock ours holds"
        );
        assert!(
            plain
                .lock(name.as_str())
                .try_acquire()
                .await
                .unwrap()
                .is_none(),
            "{name}: two of ours hold one lock"
        );
        guard.release().await.unwrap();
        assert!(
            holders_of_tooz_lock(&admin, &name).await.is_empty(),
            "{name}: our release let go of tooz's key too"
        );
        assert_eq!(
            py.call(json!({"op": "lock", "name": name})),
            json!(true),
            "{name}: Python takes it after ours released it"
        );
        assert_eq!(py.call(json!({"op": "unlock", "name": name})), json!(true));
    }

    // Ours waits while Python holds, and is granted the lock soon after Python lets go
    // (Python sends no notification: ours polls, about every half second).
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
        after < Duration::from_millis(1500),
        "ours found Python's release only {after:?} later (polling is about every 0.5 s)"
    );

    // Python waits on the server (a blocking acquire) while ours holds, and is granted the
    // lock as soon as ours lets go.
    let waiting_name = name.clone();
    let python_waits = tokio::task::spawn_blocking(move || {
        let granted = py.call(json!({"op": "lock", "name": waiting_name, "blocking": true}));
        (Instant::now(), granted, py)
    });
    sleep(Duration::from_millis(600)).await;
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
        granted_at - released < Duration::from_secs(2),
        "Python waited {:?} after ours released",
        granted_at - released
    );
    assert!(
        rust.lock(name.as_str())
            .try_acquire()
            .await
            .unwrap()
            .is_none()
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

    // Groups are not Python's (its driver has none): ours has them on the same database.
    let group = format!("group-{run}");
    let membership = rust
        .join_group_create(group.as_str(), json!({"lang": "rust"}))
        .await
        .unwrap();
    assert!(
        plain
            .members(group.as_str())
            .await
            .unwrap()
            .contains(&MemberId::from(format!("rs-{run}")))
    );
    membership.leave().await.unwrap();
    rust.delete_group(group.as_str()).await.unwrap();

    py.call(json!({"op": "stop"}));
    plain.stop().await.unwrap();
    rust.stop().await.unwrap();
}
