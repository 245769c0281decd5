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
