//! A released Redis lock goes straight to its first queued waiter: it is never free while
//! someone waits (so no poller, Python tooz's or a late arrival's, slips in ahead of the
//! line), and a waiter that gives up just as the lock is handed to it passes it on instead of
//! stranding it until its TTL.

#![cfg(feature = "redis")]

#[path = "support/redis_url.rs"]
mod redis_url;

use std::time::Duration;

use tokio::time::{Instant, sleep, sleep_until};
use tooz::Coordinator;

/// The server, and a URL on it with a namespace of this test's own.
fn server(test: &str) -> Option<(redis::Client, String, String)> {
    let Some(url) = redis_url::redis_url() else {
        eprintln!("no redis:// URL in TOOZ_TEST_URLS: skipping (scripts/test runs it)");
        return None;
    };
    let url = url::Url::parse(&url).expect("a redis URL");
    let host = url.host_str().unwrap_or("127.0.0.1").to_owned();
    let port = url.port().unwrap_or(6379);
    let ns = format!("handoff-{test}-{}", std::process::id());
    let client = redis::Client::open(format!("redis://{host}:{port}")).unwrap();
    Some((client, format!("redis://{host}:{port}?namespace={ns}"), ns))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_released_lock_is_never_free_while_someone_waits() {
    let Some((client, url, ns)) = server("free") else {
        return;
    };
    let mut direct = client.get_multiplexed_async_connection().await.unwrap();
    let holder = Coordinator::connect(&url, "holder").await.unwrap();
    let waiter = Coordinator::connect(&url, "waiter").await.unwrap();
    let key = format!("{ns}_handed_lock");
    for round in 0..20 {
        let held = holder.lock("handed").acquire().await.unwrap();
        let lock = waiter.lock("handed");
        let waiting =
            tokio::spawn(async move { lock.acquire_timeout(Duration::from_secs(10)).await });
        // Queued by its first attempt.
        sleep(Duration::from_millis(50)).await;
        let released_token = held.token();
        held.release().await.unwrap();
        // The next command after the release: a poller's `SET NX` finds the lock taken.
        let snatched: Option<String> = redis::cmd("SET")
            .arg(&key)
            .arg("a-python-poller")
            .arg("NX")
            .arg("PX")
            .arg(5_000)
            .query_async(&mut direct)
            .await
            .unwrap();
        let granted = waiting.await.unwrap();
        assert!(
            snatched.is_none(),
            "round {round}: the lock was free between the release and the waiter's grant"
        );
        let granted = granted.expect("the waiter is granted the lock");
        assert!(granted.token() > released_token, "round {round}");
        granted.release().await.unwrap();
    }
    holder.stop().await.unwrap();
    waiter.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_giving_up_as_the_lock_is_handed_to_it_passes_it_on() {
    let Some((_client, url, _ns)) = server("give-up") else {
        return;
    };
    // Lock TTL 30 s: a stranded grant would block the next taker far past its 2 s.
    let holder = Coordinator::connect(&url, "holder").await.unwrap();
    let waiter = Coordinator::connect(&url, "waiter").await.unwrap();
    let next = Coordinator::connect(&url, "next").await.unwrap();
    let (mut taken, mut gave_up) = (0, 0);
    for round in 0..30_i64 {
        let held = holder.lock("crossed").acquire().await.unwrap();
        let patience = Duration::from_millis(200);
        let start = Instant::now();
        let lock = waiter.lock("crossed");
        let waiting = tokio::spawn(async move { lock.acquire_timeout(patience).await });
        // The release lands from 6 ms before the waiter's deadline to 6 ms after it.
        let offset = Duration::from_micros(400 * (round % 30).unsigned_abs());
        sleep_until(start + patience - Duration::from_millis(6) + offset).await;
        held.release().await.unwrap();
        match waiting.await.unwrap() {
            Ok(guard) => {
                taken += 1;
                guard.release().await.unwrap();
            }
            Err(tooz::Error::OperationTimedOut { .. }) => gave_up += 1,
            Err(e) => panic!("round {round}: {e}"),
        }
        let after = next
            .lock("crossed")
            .acquire_timeout(Duration::from_secs(2))
            .await
            .unwrap_or_else(|e| panic!("round {round}: the lock was stranded: {e}"));
        after.release().await.unwrap();
    }
    eprintln!("waiter took the lock {taken} times and gave up {gave_up} times");
    for coord in [holder, waiter, next] {
        coord.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handed_lock_lives_by_the_waiters_ttl_not_the_releasers() {
    let Some((_client, url, _ns)) = server("ttl") else {
        return;
    };
    // The releaser's locks live 2 s; the waiter's 30 s, renewed every 10 s. A hand-off with
    // the releaser's TTL would let the key expire under a waiter that still holds it.
    let holder = Coordinator::connect(&format!("{url}&lock_timeout=2"), "short")
        .await
        .unwrap();
    let waiter = Coordinator::connect(&format!("{url}&lock_timeout=30"), "long")
        .await
        .unwrap();
    let rival = Coordinator::connect(&format!("{url}&lock_timeout=30"), "rival")
        .await
        .unwrap();
    let held = holder.lock("ttl").acquire().await.unwrap();
    let lock = waiter.lock("ttl");
    let waiting = tokio::spawn(async move { lock.acquire_timeout(Duration::from_secs(10)).await });
    sleep(Duration::from_millis(50)).await;
    held.release().await.unwrap();
    let granted = waiting.await.unwrap().expect("handed to the waiter");
    sleep(Duration::from_secs(3)).await;
    assert!(granted.is_held(), "the waiter's own lease runs 27 s");
    let stolen = rival.lock("ttl").try_acquire().await.unwrap();
    assert!(
        stolen.is_none(),
        "a rival took the lock while the waiter held it (the key expired by the releaser's TTL)"
    );
    granted.release().await.unwrap();
    for coord in [holder, waiter, rival] {
        coord.stop().await.unwrap();
    }
}
