//! A Redis server that goes away and comes back: every lock, leadership and membership whose
//! TTL may have passed is reported lost (locally, before anyone else could take it), the
//! coordinator reconnects by itself, and afterwards works as before. Runs its own throw-away
//! `redis-server` on a free loopback port.

#![cfg(feature = "redis")]

#[path = "support/redis_server.rs"]
mod redis_server;

use std::time::Duration;

use redis_server::{Server, free_port, have_redis_server};

use tokio::time::{Instant, sleep, timeout};
use tooz::{Capabilities, Coordinator};

async fn wait_live(coord: &Coordinator, within: Duration) {
    let deadline = Instant::now() + within;
    while !coord.is_live() {
        assert!(
            Instant::now() < deadline,
            "the coordinator did not reconnect"
        );
        sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losses_are_reported_and_the_coordinator_recovers_after_a_restart() {
    if !have_redis_server() {
        eprintln!("redis-server is not installed: skipping (scripts/test installs it)");
        return;
    }
    let port = free_port();
    let mut server = Server::start(port);
    let url = format!("redis://127.0.0.1:{}?timeout=2", server.port);
    let coord = Coordinator::connect(&url, "survivor").await.unwrap();
    let membership = coord
        .join_group_create("g", Capabilities::none())
        .await
        .unwrap();
    let guard = coord.lock("l").acquire().await.unwrap();
    let leadership = coord.campaign("g").await.unwrap();
    let first_tokens = (guard.token(), leadership.token());

    // A long outage: longer than every TTL. The local lease runs out first.
    server.kill();
    let down = Instant::now();
    timeout(Duration::from_secs(3), guard.lost())
        .await
        .expect("lock reported lost");
    timeout(Duration::from_millis(200), leadership.lost())
        .await
        .expect("leadership lost");
    timeout(Duration::from_millis(200), membership.lost())
        .await
        .expect("membership lost");
    assert!(
        down.elapsed() < Duration::from_secs(2),
        "lost before the TTL ran out on the server"
    );
    assert!(!guard.is_held() && !leadership.is_held() && !membership.is_active());

    // The server comes back (empty): the coordinator reconnects by itself and works again.
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
    let leadership = coord
        .campaign_timeout("g", Duration::from_secs(2))
        .await
        .unwrap();
    // The server lost its counters with everything else; fencing tokens still only grow.
    assert!(
        guard.token() > first_tokens.0,
        "lock token {} after an empty restart must exceed {} from before",
        guard.token(),
        first_tokens.0
    );
    assert!(
        leadership.token() > first_tokens.1,
        "leadership term {} after an empty restart must exceed {} from before",
        leadership.token(),
        first_tokens.1
    );
    let second_tokens = (guard.token(), leadership.token());

    // A short outage that loses the server's data: the next heartbeat finds everything gone
    // and reports it, rather than pretending to hold it.
    drop(server);
    let _server = Server::start(port);
    timeout(Duration::from_secs(4), guard.lost())
        .await
        .expect("lock reported lost");
    timeout(Duration::from_secs(1), leadership.lost())
        .await
        .expect("leadership lost");
    timeout(Duration::from_secs(1), membership.lost())
        .await
        .expect("membership lost");
    wait_live(&coord, Duration::from_secs(10)).await;
    let guard = coord
        .lock("l")
        .acquire_timeout(Duration::from_secs(2))
        .await
        .unwrap();
    assert!(
        guard.token() > second_tokens.0,
        "tokens grow across every restart"
    );
    let leadership = coord
        .campaign_timeout("g", Duration::from_secs(2))
        .await
        .unwrap();
    assert!(leadership.token() > second_tokens.1);
    guard.release().await.unwrap();
    leadership.resign().await.unwrap();
    coord.stop().await.unwrap();
}
