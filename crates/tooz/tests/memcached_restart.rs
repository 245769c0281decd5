//! A memcached server that goes away and comes back empty (memcached keeps nothing on disk):
//! every lock, leadership and membership is reported lost — during a long outage by the local
//! leases, before the server could have expired anything; after a quick restart by the next
//! heartbeat, which finds our member key gone — and the coordinator works again without being
//! rebuilt, its fencing tokens still growing (a lost counter restarts from the clock). Runs
//! its own throw-away `memcached` on a free loopback port.

#![cfg(feature = "memcached")]

#[path = "support/memcached_raw.rs"]
mod memcached_raw;
#[path = "support/memcached_server.rs"]
mod memcached_server;

use std::time::Duration;

use memcached_raw::Raw;
use memcached_server::{Server, free_port, have_memcached};
use tokio::time::{Instant, sleep, timeout};
use tooz::{Capabilities, Coordinator, MemberId};

async fn wait_live(coord: &Coordinator, within: Duration) {
    let deadline = Instant::now() + within;
    while !coord.is_live() {
        assert!(
            Instant::now() < deadline,
            "the coordinator did not come back"
        );
        sleep(Duration::from_millis(50)).await;
    }
}

/// `lost` resolves at once: the heartbeat that just returned reported it.
async fn reported_by_the_heartbeat(what: &str, lost: impl Future<Output = ()>) {
    if timeout(Duration::from_millis(500), lost).await.is_err() {
        panic!("{what} not reported lost by the heartbeat that found the server empty");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losses_are_reported_and_the_coordinator_recovers_after_a_restart() {
    if !have_memcached() {
        eprintln!("memcached is not installed: skipping (scripts/test installs it)");
        return;
    }
    let port = free_port();
    let mut server = Server::start(port);
    let url = server.url("timeout=2");
    let coord = Coordinator::connect(&url, "survivor").await.unwrap();
    let membership = coord
        .join_group_create("g", Capabilities::none())
        .await
        .unwrap();
    let guard = coord.lock("l").acquire().await.unwrap();
    let leadership = coord.campaign("g").await.unwrap();
    let before = (guard.token(), leadership.token());
    let mut raw = Raw::connect(port).await;
    for key in [
        "_TOOZ_MEMBER_survivor",
        "__TOOZ_LOCK_l",
        "__TOOZ_LOCK__TOOZ_GROUP_LEADER_g",
    ] {
        assert!(raw.exists(key).await, "{key} is on the server");
    }
    drop(raw);

    // A long outage: the local leases run out before the server could have expired anything.
    server.kill();
    let down = Instant::now();
    timeout(Duration::from_secs(3), guard.lost())
        .await
        .expect("lock reported lost");
    timeout(Duration::from_secs(3), leadership.lost())
        .await
        .expect("leadership reported lost");
    timeout(Duration::from_secs(3), membership.lost())
        .await
        .expect("membership reported lost");
    let lost_after = down.elapsed();
    println!("long outage: everything reported lost {lost_after:?} after the kill");
    assert!(
        lost_after < Duration::from_secs(2),
        "lost {lost_after:?} after the kill: not before the 2 s TTLs could have run out"
    );
    assert!(!guard.is_held() && !leadership.is_held() && !membership.is_active());

    // The server comes back empty: the same coordinator reconnects and works again.
    let server = Server::start(port);
    wait_live(&coord, Duration::from_secs(10)).await;
    let membership = coord
        .join_group_create("g", Capabilities::none())
        .await
        .unwrap();
    let guard = coord
        .lock("l")
        .acquire_timeout(Duration::from_secs(2))
        .await
        .unwrap();
    let first = guard.token();
    // The driver starts a counter it finds missing from the clock (in microseconds), so
    // tokens still grow across an empty restart.
    assert!(
        first > before.0,
        "lock token {first} after an empty restart must exceed {} from before",
        before.0
    );
    guard.release().await.unwrap();
    let guard = coord
        .lock("l")
        .acquire_timeout(Duration::from_secs(2))
        .await
        .unwrap();
    assert!(
        guard.token() > first,
        "tokens grow again on the new server: {first} then {}",
        guard.token()
    );
    let leadership = coord
        .campaign_timeout("g", Duration::from_secs(2))
        .await
        .unwrap();
    assert!(
        leadership.token() > before.1,
        "leadership term {} after an empty restart must exceed {} from before",
        leadership.token(),
        before.1
    );
    assert_eq!(
        coord.leader("g").await.unwrap(),
        Some(MemberId::from("survivor"))
    );
    assert!(
        coord
            .members("g")
            .await
            .unwrap()
            .contains(&"survivor".into())
    );

    // A quick restart (kill and start at once, well inside every TTL): the server is empty
    // again, and the heartbeats notice.
    drop(server);
    let _server = Server::start(port);
    let restarted = Instant::now();
    timeout(Duration::from_secs(4), guard.lost())
        .await
        .expect("lock reported lost");
    timeout(Duration::from_secs(4), leadership.lost())
        .await
        .expect("leadership reported lost");
    timeout(Duration::from_secs(4), membership.lost())
        .await
        .expect("membership reported lost");
    println!(
        "quick restart: everything reported lost {:?} after it",
        restarted.elapsed()
    );
    wait_live(&coord, Duration::from_secs(10)).await;
    let guard = coord
        .lock("l")
        .acquire_timeout(Duration::from_secs(2))
        .await
        .unwrap();
    let leadership = coord
        .campaign_timeout("g", Duration::from_secs(2))
        .await
        .unwrap();
    coord
        .join_group_create("g", Capabilities::none())
        .await
        .unwrap();
    guard.release().await.unwrap();
    leadership.resign().await.unwrap();
    coord.stop().await.unwrap();
}

/// Long timeouts (10 s: the local leases last 8 s and more) and manual heartbeats, so that
/// nothing can run out by itself: only the heartbeat that finds the member key gone after a
/// quick restart can report the losses, and it must.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_heartbeat_after_a_quick_restart_reports_everything_lost() {
    if !have_memcached() {
        eprintln!("memcached is not installed: skipping (scripts/test installs it)");
        return;
    }
    let port = free_port();
    let server = Server::start(port);
    let url = server.url("timeout=10");
    let coord = Coordinator::builder(&url, "m")
        .manual_heartbeat()
        .connect()
        .await
        .unwrap();
    let membership = coord
        .join_group_create("g", Capabilities::none())
        .await
        .unwrap();
    let guard = coord.lock("l").acquire().await.unwrap();
    let leadership = coord.campaign("g").await.unwrap();
    // A heartbeat on an unchanged server loses nothing.
    coord.heartbeat().await.unwrap();
    assert!(guard.is_held() && leadership.is_held() && membership.is_active());

    drop(server);
    let _server = Server::start(port);
    let restarted = Instant::now();
    // The first heartbeat may meet the dead connection; one that reaches the new server
    // follows within a few tries.
    let mut tries = 0;
    loop {
        tries += 1;
        match timeout(Duration::from_secs(5), coord.heartbeat()).await {
            Ok(Ok(())) => break,
            Ok(Err(e)) if e.is_retryable() && tries < 10 => {
                println!("heartbeat {tries} after the restart: {e}");
                sleep(Duration::from_millis(100)).await;
            }
            Ok(Err(e)) => panic!("heartbeat {tries} after the restart: {e:?}"),
            Err(_) => panic!("heartbeat {tries} after the restart hangs"),
        }
    }
    reported_by_the_heartbeat("membership", membership.lost()).await;
    reported_by_the_heartbeat("lock", guard.lost()).await;
    reported_by_the_heartbeat("leadership", leadership.lost()).await;
    assert!(
        restarted.elapsed() < Duration::from_secs(5),
        "reported by the heartbeat, long before any lease could run out: {:?}",
        restarted.elapsed()
    );
    assert!(!guard.is_held() && !leadership.is_held() && !membership.is_active());

    // The coordinator carries on with a new session on the new server.
    let mut raw = Raw::connect(port).await;
    assert!(
        raw.exists("_TOOZ_MEMBER_m").await,
        "the heartbeat set the member key again"
    );
    let membership = coord
        .join_group_create("g", Capabilities::none())
        .await
        .unwrap();
    assert!(coord.members("g").await.unwrap().contains(&"m".into()));
    let guard = coord.lock("l").try_acquire().await.unwrap().expect("free");
    coord.heartbeat().await.unwrap();
    assert!(guard.is_held() && membership.is_active());
    guard.release().await.unwrap();
    coord.stop().await.unwrap();
}
