//! memcached locks under a busy heartbeat: a release racing the renewal that replaces its CAS
//! must still free the lock (a delete sent with the old CAS would leave it held until its TTL),
//! and a renewal must never bring back a lock that was released.

#![cfg(feature = "memcached")]

#[path = "support/memcached_url.rs"]
mod memcached_url;

use std::time::Duration;

use tooz::Coordinator;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn releases_racing_renewals_always_free_the_lock() {
    let Some(url) = memcached_url::memcached_url() else {
        eprintln!("no memcached:// URL in TOOZ_TEST_URLS: skipping (scripts/test runs it)");
        return;
    };
    // TTLs of 30 s: a lock left held by a lost race would block the rival far past its 1 s.
    let url = url.split('?').next().unwrap_or(&url).to_owned() + "?timeout=30";
    let holder = Coordinator::builder(&url, format!("racer-{}", std::process::id()))
        .heartbeat_interval(Duration::from_millis(1))
        .connect()
        .await
        .unwrap();
    let rival = Coordinator::builder(&url, format!("rival-{}", std::process::id()))
        .manual_heartbeat()
        .connect()
        .await
        .unwrap();
    // What the coordinator tells its user about this backend's tokens and waiters.
    assert!(
        !holder.supported().durable_fencing,
        "memcached's tokens are best effort"
    );
    assert!(
        !holder.supported().queued_lock_waits,
        "memcached's waiters poll"
    );
    let name = format!("race-{}", std::process::id());
    for round in 0..300 {
        let guard = holder.lock(name.as_str()).acquire().await.unwrap();
        // Let a renewal or two go by with this grant in them.
        tokio::time::sleep(Duration::from_micros(300 * (round % 7))).await;
        guard
            .release()
            .await
            .unwrap_or_else(|e| panic!("round {round}: release failed: {e}"));
        let taken = rival
            .lock(name.as_str())
            .acquire_timeout(Duration::from_secs(1))
            .await
            .unwrap_or_else(|e| panic!("round {round}: the released lock stayed held: {e}"));
        taken.release().await.unwrap();
    }
    holder.stop().await.unwrap();
    rival.stop().await.unwrap();
}

#[path = "support/memcached_raw.rs"]
mod memcached_raw;
#[path = "support/memcached_server.rs"]
mod memcached_server;

/// A shared server's address (host:port) from the memcached URL.
fn shared_addr() -> Option<(String, String)> {
    let url = memcached_url::memcached_url()?;
    let parsed = url::Url::parse(&url).expect("a memcached URL");
    let addr = format!(
        "{}:{}",
        parsed.host_str().unwrap_or("127.0.0.1"),
        parsed.port().unwrap_or(11211)
    );
    Some((url, addr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_fencing_counter_gives_the_lock_back() {
    let Some((url, addr)) = shared_addr() else {
        return;
    };
    let name = format!("poisoned-{}", std::process::id());
    let mut raw = memcached_raw::Raw::connect_to(&addr).await;
    // Another writer left something that is not a number where our counter lives.
    raw.set(&format!("__TOOZ_RS_FENCE_{name}"), 0, b"abc").await;
    let coord = Coordinator::connect(&url, "poisoned").await.unwrap();
    let err = coord.lock(name.as_str()).try_acquire().await.unwrap_err();
    assert!(matches!(err, tooz::Error::Backend { .. }), "{err:?}");
    assert!(
        !raw.exists(&format!("__TOOZ_LOCK_{name}")).await,
        "the lock was left held in our name after its acquire failed"
    );
    raw.delete(&format!("__TOOZ_RS_FENCE_{name}")).await;
    let guard = coord.lock(name.as_str()).try_acquire().await.unwrap();
    assert!(guard.is_some(), "usable again once the counter is");
    drop(guard);
    coord.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_left_half_deleted_can_be_created_again() {
    let Some((url, addr)) = shared_addr() else {
        return;
    };
    let group = format!("half-deleted-{}", std::process::id());
    let mut raw = memcached_raw::Raw::connect_to(&addr).await;
    // What tooz's delete leaves if it stops after marking the group (msgpack nil).
    raw.set(&format!("_TOOZ_GROUP_{group}"), 2, &[0xc0]).await;
    let coord = Coordinator::connect(&url, "reviver").await.unwrap();
    let gone = coord.delete_group(group.as_str()).await.unwrap_err();
    assert!(
        matches!(gone, tooz::Error::GroupNotCreated { .. }),
        "{gone:?}"
    );
    assert!(
        !raw.exists(&format!("_TOOZ_GROUP_{group}")).await,
        "the mark is cleared"
    );
    raw.set(&format!("_TOOZ_GROUP_{group}"), 2, &[0xc0]).await;
    coord.create_group(group.as_str()).await.unwrap();
    coord
        .join_group(group.as_str(), tooz::Capabilities::none())
        .await
        .unwrap();
    assert!(coord.members(group.as_str()).await.unwrap().len() == 1);
    coord.leave_group(group.as_str()).await.unwrap();
    coord.delete_group(group.as_str()).await.unwrap();
    coord.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cas_from_before_a_restart_never_touches_a_new_holders_lock() {
    if !memcached_server::have_memcached() {
        eprintln!("memcached is not installed: skipping (scripts/test installs it)");
        return;
    }
    let port = memcached_server::free_port();
    let mut server = memcached_server::Server::start(port);
    let url = server.url("timeout=30");
    let old = Coordinator::builder(&url, "old-holder")
        .manual_heartbeat()
        .connect()
        .await
        .unwrap();
    let held = old.lock("reused").acquire().await.unwrap();
    // A restarted memcached numbers its CAS values from the start again: the next holder's
    // add, made in the same order, gets the CAS the old holder kept.
    server.kill();
    let _server = memcached_server::Server::start(port);
    let new = Coordinator::builder(&url, "new-holder")
        .manual_heartbeat()
        .connect()
        .await
        .unwrap();
    let taken = new.lock("reused").acquire().await.unwrap();
    // The old holder's heartbeats (the first may find its connection dead) renew by the CAS
    // it kept, and its release deletes by it.
    for _ in 0..3 {
        let _ = old.heartbeat().await;
    }
    let released = held.release().await;
    assert!(
        released.is_err(),
        "the old grant died with the old server: {released:?}"
    );
    let mut raw = memcached_raw::Raw::connect(port).await;
    assert_eq!(
        raw.get("__TOOZ_LOCK_reused").await.map(|(_, v)| v),
        Some(b"new-holder".to_vec()),
        "the old holder's stale CAS freed the new holder's lock"
    );
    assert!(taken.is_held());
    taken.release().await.unwrap();
    new.stop().await.unwrap();
    let _ = old.stop().await;
}
