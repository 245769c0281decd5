//! The waiting design on `etcd3+http://`, measured on a private etcd by the transactions it
//! serves (its `/metrics`): waiters of ours queue (a key each under `tooz-rs/queue/`, on their
//! session lease) and are served in arrival order; a release wakes only the first waiter, each
//! of the others watching only the waiter before it (no herd); nothing is sent while waiting.

#![cfg(feature = "etcd")]

#[path = "support/etcd_server.rs"]
mod etcd_server;

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use etcd_server::{Server, have_etcd};
use tokio::time::sleep;
use tooz::Coordinator;

/// Transactions the server has started so far (every lock attempt is one).
fn txns(server: &Server) -> u64 {
    let out = Command::new("curl")
        .args(["-sf", &format!("{}/metrics", server.endpoint())])
        .output()
        .expect("curl runs");
    let metrics = String::from_utf8_lossy(&out.stdout);
    metrics
        .lines()
        .find(|l| l.starts_with("grpc_server_started_total{grpc_method=\"Txn\""))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Txn counter in {}/metrics", server.endpoint()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_are_served_in_order_and_one_release_wakes_one() {
    if !have_etcd() {
        return;
    }
    let server = Server::start();
    let url = server.url("timeout=20");
    let holder = Coordinator::connect(&url, "holder").await.unwrap();
    let guard = holder.lock("queue").acquire().await.unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut waiters = Vec::new();
    for i in 0..6 {
        let coord = Coordinator::connect(&url, format!("w{i}")).await.unwrap();
        let order = Arc::clone(&order);
        waiters.push(tokio::spawn(async move {
            let guard = coord.lock("queue").acquire().await.unwrap();
            order.lock().unwrap().push(i);
            sleep(Duration::from_millis(20)).await;
            guard.release().await.unwrap();
            coord.stop().await.unwrap();
        }));
        // Each queued before the next arrives.
        sleep(Duration::from_millis(150)).await;
    }
    let before = txns(&server);
    sleep(Duration::from_secs(2)).await;
    let idle = txns(&server) - before;
    let before = txns(&server);
    guard.release().await.unwrap();
    for waiter in waiters {
        waiter.await.unwrap();
    }
    let chain = txns(&server) - before;
    eprintln!("idle: {idle} transactions in 2 s; six hand-offs: {chain} transactions");
    assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3, 4, 5], "arrival order");
    // Heartbeats of seven coordinators (every ~7 s at timeout=20) at most.
    assert!(
        idle <= 8,
        "{idle} transactions while six waiters waited 2 s"
    );
    // Per hand-off: the release, the next waiter's grant, the one after it waking to find
    // itself first (one refused attempt), and the stop's clean-ups. With a herd, every
    // remaining waiter would try on each release (15 more at least).
    assert!(chain <= 6 * 4, "{chain} transactions for six hand-offs");
    holder.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_releaser_asking_again_queues_behind_the_waiter_and_a_try_does_not_jump_the_queue() {
    if !have_etcd() {
        return;
    }
    let server = Server::start();
    let url = server.url("timeout=20");
    let (a, b, c) = (
        Coordinator::connect(&url, "a").await.unwrap(),
        Coordinator::connect(&url, "b").await.unwrap(),
        Coordinator::connect(&url, "c").await.unwrap(),
    );
    let held = a.lock("fair").acquire().await.unwrap();
    let waiter = {
        let b = b.clone();
        tokio::spawn(async move { b.lock("fair").acquire().await.unwrap() })
    };
    sleep(Duration::from_millis(200)).await;
    held.release().await.unwrap();
    // However fast: neither the releaser asking again nor another's try takes it from the
    // queued waiter.
    let again = a.lock("fair").try_acquire().await.unwrap();
    assert!(
        again.is_none(),
        "the releaser took the lock back from a queued waiter"
    );
    let tried = c.lock("fair").try_acquire().await.unwrap();
    assert!(
        tried.is_none(),
        "a try took the lock ahead of a queued waiter"
    );
    let granted = tokio::time::timeout(Duration::from_secs(2), waiter)
        .await
        .expect("the waiter is granted")
        .unwrap();
    granted.release().await.unwrap();
    for coord in [a, b, c] {
        coord.stop().await.unwrap();
    }
}

/// A waiter whose queue key is gone (deleted by hand here; a new session's lease, after an
/// expiry, does the same) queues again instead of being refused for ever: with its key gone
/// and no other, the queue's range is compared as one absent key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_whose_queue_key_vanished_queues_again() {
    if !have_etcd() {
        return;
    }
    let server = Server::start();
    let url = server.url("timeout=20");
    let (a, b) = (
        Coordinator::connect(&url, "a").await.unwrap(),
        Coordinator::connect(&url, "b").await.unwrap(),
    );
    let held = a.lock("gone").acquire().await.unwrap();
    let waiter = {
        let b = b.clone();
        tokio::spawn(async move { b.lock("gone").acquire().await.unwrap() })
    };
    sleep(Duration::from_millis(300)).await;
    let mut raw = etcd_client::Client::connect([server.endpoint()], None)
        .await
        .unwrap();
    let deleted = raw
        .delete(
            "tooz-rs/queue/",
            Some(etcd_client::DeleteOptions::new().with_prefix()),
        )
        .await
        .unwrap();
    assert_eq!(deleted.deleted(), 1, "b's queue key");
    held.release().await.unwrap();
    let granted = tokio::time::timeout(Duration::from_secs(3), waiter)
        .await
        .expect("granted soon after the release, though its queue key was gone")
        .unwrap();
    granted.release().await.unwrap();
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}
