//! The waiting design on `zookeeper://`, measured on a private ZooKeeper by the requests it
//! receives (`mntr`'s `zk_packets_received`): waiters are served in arrival order, a release
//! wakes only the next waiter (no herd), and a waiting acquire or campaign sends nothing while
//! it waits (ZooKeeper watches, no polling).

#![cfg(feature = "zookeeper")]

#[path = "support/zookeeper_server.rs"]
mod zookeeper_server;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::sleep;
use tooz::Coordinator;
use zookeeper_server::{Server, have_zookeeper};

/// Long sessions: heartbeats every few seconds, so that they barely show in the counts.
const OPTIONS: &str = "timeout=20";

/// Requests the server has received so far.
fn packets(server: &Server) -> u64 {
    let stats = server.four_letter_word("mntr").expect("mntr answers");
    stats
        .lines()
        .find_map(|line| line.strip_prefix("zk_packets_received\t"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no zk_packets_received in {stats}"))
}

async fn coordinator(server: &Server, member: &str) -> Coordinator {
    Coordinator::connect(&server.url_with(OPTIONS), member)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_are_served_in_order_and_one_release_wakes_one() {
    if !have_zookeeper() {
        return;
    }
    let server = Server::start();
    let holder = coordinator(&server, "holder").await;
    let guard = holder.lock("queue").acquire().await.unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut waiters = Vec::new();
    for i in 0..6 {
        let coord = coordinator(&server, &format!("w{i}")).await;
        let order = Arc::clone(&order);
        waiters.push(tokio::spawn(async move {
            let guard = coord.lock("queue").acquire().await.unwrap();
            order.lock().unwrap().push(i);
            // Held briefly, then handed on.
            sleep(Duration::from_millis(20)).await;
            guard.release().await.unwrap();
            coord.stop().await.unwrap();
        }));
        // Each queued before the next arrives.
        sleep(Duration::from_millis(150)).await;
    }
    // All six wait now: nothing is sent while they do.
    let before = packets(&server);
    sleep(Duration::from_secs(2)).await;
    let idle = packets(&server) - before;
    let before = packets(&server);
    guard.release().await.unwrap();
    for waiter in waiters {
        waiter.await.unwrap();
    }
    let chain = packets(&server) - before;
    assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3, 4, 5], "arrival order");
    // Seven sessions for 2 s: the client's pings (one per session every few seconds) and
    // heartbeats only. A waiter polling every 100 ms would send 120.
    assert!(
        idle <= 15,
        "{idle} requests while six waiters waited for 2 s"
    );
    // Six hand-offs: a release, the next waiter's look at the contenders, the next watch, its
    // stop (each waiter's session closes): about four requests each. With a herd, every
    // remaining waiter would look again on each release (15 more, at least).
    assert!(chain <= 6 * 5, "{chain} requests for six hand-offs");
    eprintln!("idle: {idle} requests in 2 s; six hand-offs: {chain} requests");
    holder.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_campaign_sends_nothing_until_the_leader_goes() {
    if !have_zookeeper() {
        return;
    }
    let server = Server::start();
    let (a, b) = (
        coordinator(&server, "a").await,
        coordinator(&server, "b").await,
    );
    a.create_group("g").await.unwrap();
    let leadership = a.campaign("g").await.unwrap();
    let campaign = tokio::spawn(async move {
        let won = b.campaign("g").await.unwrap();
        (b, won)
    });
    sleep(Duration::from_millis(300)).await;
    let before = packets(&server);
    sleep(Duration::from_secs(2)).await;
    let idle = packets(&server) - before;
    assert!(idle <= 10, "{idle} requests while b waited 2 s to lead");
    let resigned = tokio::time::Instant::now();
    leadership.resign().await.unwrap();
    let (b, won) = tokio::time::timeout(Duration::from_secs(2), campaign)
        .await
        .expect("b leads soon after a resigns")
        .unwrap();
    let took = resigned.elapsed();
    assert!(took < Duration::from_millis(500), "b led {took:?} after");
    assert_eq!(
        a.leader("g").await.unwrap().map(|m| m.as_bytes().to_vec()),
        Some(b"b".to_vec())
    );
    won.resign().await.unwrap();
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_longer_than_the_session_timeout_still_grants_a_live_lock() {
    if !have_zookeeper() {
        return;
    }
    let server = Server::start();
    let url = server.url_with("timeout=2");
    let a = Coordinator::connect(&url, "a").await.unwrap();
    let b = Coordinator::connect(&url, "b").await.unwrap();
    let held = a.lock("long").acquire().await.unwrap();
    let first = held.token();
    let waiter = tokio::spawn(async move {
        let guard = b.lock("long").acquire().await.unwrap();
        (b, guard)
    });
    // Three session timeouts of waiting, woken once, at the release.
    sleep(Duration::from_secs(6)).await;
    held.release().await.unwrap();
    let (b, guard) = tokio::time::timeout(Duration::from_secs(2), waiter)
        .await
        .expect("granted at the release")
        .unwrap();
    assert!(guard.token() > first);
    // The grant lives on b's session, renewed by its heartbeats: not lost at once because the
    // wait before it was long.
    sleep(Duration::from_millis(2500)).await;
    assert!(
        guard.is_held(),
        "a grant after a long wait must not start out expired"
    );
    guard.release().await.unwrap();
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

/// A waiter cut short at any point of its wait — before its contender is made, while it is
/// made, queued — leaves no place in line: once the holder releases, another takes the lock
/// at once (a queued contender left behind would hold it for as long as its session lives).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_queued_waiter_leaves_no_place_in_line() {
    if !have_zookeeper() {
        return;
    }
    let server = Server::start();
    let (a, b, c) = (
        coordinator(&server, "a").await,
        coordinator(&server, "b").await,
        coordinator(&server, "c").await,
    );
    for cut in [
        0u64, 10, 50, 100, 200, 300, 500, 800, 1_000, 2_000, 5_000, 20_000,
    ] {
        let held = a.lock("cut").acquire().await.unwrap();
        let lock = b.lock("cut");
        let wait = lock.acquire();
        let cut_short = tokio::time::timeout(Duration::from_micros(cut), wait).await;
        assert!(cut_short.is_err(), "b cannot have the lock a holds");
        held.release().await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        loop {
            if let Some(guard) = c.lock("cut").try_acquire().await.unwrap() {
                guard.release().await.unwrap();
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "b's wait cut after {cut} µs still holds a place in line a second later"
            );
            sleep(Duration::from_millis(10)).await;
        }
    }
    for coord in [a, b, c] {
        coord.stop().await.unwrap();
    }
}

/// Shared locks, kazoo's read-write recipe: readers share; a writer queues behind the readers
/// before it; a reader arriving after a waiting writer queues behind that writer (no writer
/// starves behind a stream of readers); tokens never go back across an exclusive grant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_share_and_a_waiting_writer_is_not_overtaken() {
    if !have_zookeeper() {
        return;
    }
    let server = Server::start();
    let (r1, w, r2) = (
        coordinator(&server, "r1").await,
        coordinator(&server, "w").await,
        coordinator(&server, "r2").await,
    );
    let first = r1.lock("rw").shared().acquire().await.unwrap();
    let writer = {
        let w = w.clone();
        tokio::spawn(async move { w.lock("rw").acquire().await.unwrap() })
    };
    sleep(Duration::from_millis(200)).await;
    assert!(
        !writer.is_finished(),
        "the writer waits for the reader before it"
    );
    // A reader after the waiting writer queues behind it.
    let late_reader = {
        let r2 = r2.clone();
        tokio::spawn(async move { r2.lock("rw").shared().acquire().await.unwrap() })
    };
    sleep(Duration::from_millis(200)).await;
    assert!(
        !late_reader.is_finished(),
        "a reader does not overtake a waiting writer"
    );
    let first_token = first.token();
    first.release().await.unwrap();
    let written = tokio::time::timeout(Duration::from_secs(2), writer)
        .await
        .expect("the writer goes next")
        .unwrap();
    assert!(written.token() > first_token);
    sleep(Duration::from_millis(200)).await;
    assert!(
        !late_reader.is_finished(),
        "the late reader waits for the writer"
    );
    let written_token = written.token();
    written.release().await.unwrap();
    let read = tokio::time::timeout(Duration::from_secs(2), late_reader)
        .await
        .expect("then the late reader")
        .unwrap();
    assert!(read.token() > written_token);
    // Readers share.
    let shared = r1.lock("rw").shared().try_acquire().await.unwrap();
    assert!(shared.is_some(), "two readers at once");
    assert!(w.lock("rw").try_acquire().await.unwrap().is_none());
    drop(shared);
    read.release().await.unwrap();
    for coord in [r1, w, r2] {
        coord.stop().await.unwrap();
    }
}
