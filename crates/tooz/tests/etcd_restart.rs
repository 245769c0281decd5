//! An etcd session lease that ends under a coordinator: with the whole server (SIGKILL, kept
//! down past the lease's TTL, then a restart on the same data directory), or revoked out from
//! under it (as an operator's `etcdctl lease revoke` would).
//!
//! * A crash of the server: the lock, the leadership and the membership — all on the one
//!   session lease — are reported lost before that lease's TTL is over, counted from the kill
//!   (so from after the last heartbeat that reached etcd), while heartbeats fail. Calls fail in
//!   bounded time while it is down. Once the server is back, the same coordinator recovers by
//!   itself: it is live again, takes locks with fencing tokens above every one from before
//!   (revisions are etcd's, durable across the crash), and joins. What it was told it lost is
//!   really free: a restarted etcd renews every lease it had to a full TTL, so a session lease
//!   the coordinator took up again must not keep the keys of grants it reported lost — a
//!   rival takes the lock and the leadership within the TTL, with larger tokens.
//! * A revoked lease: etcd deletes every key on it at once; the next heartbeat finds the lease
//!   gone and reports lock, leadership and membership lost (well before the local leases
//!   would have run out), and the coordinator starts a new session lease by itself and locks,
//!   leads and joins again on it.
//!
//! The first test runs a throw-away etcd of its own on free loopback ports; the second uses the
//! server in `TOOZ_TEST_URLS`, touching only its own lease.

#![cfg(feature = "etcd")]

#[path = "support/etcd_server.rs"]
mod etcd_server;
#[path = "support/etcd_url.rs"]
mod etcd_url;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use etcd_server::{Server, have_etcd};
use etcd_url::{
    base, direct, etcd_url, key_lease, leader_key, lease_holding, lease_keys, lock_key, member_key,
};
use tokio::time::{Instant, sleep, sleep_until, timeout};
use tooz::{Capabilities, Coordinator, MemberId};

/// `timeout=3`: requests bounded by 3 s, a session lease of 3 s, heartbeats every second, local
/// leases of 2.7 s.
const TIMEOUT: &str = "timeout=3";
const TTL: Duration = Duration::from_secs(3);
/// How long the server stays down: past the TTL.
const DOWN: Duration = Duration::from_secs(5);

/// An id no other run on the shared server uses.
fn run_id(test: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "restart-{test}-{}-{}",
        std::process::id(),
        nanos % 1_000_000_000
    )
}

async fn wait_live(coord: &Coordinator, within: Duration) {
    let deadline = Instant::now() + within;
    while !coord.is_live() {
        assert!(
            Instant::now() < deadline,
            "the coordinator did not take its session up again within {within:?}"
        );
        sleep(Duration::from_millis(50)).await;
    }
}

/// Waits for a loss signal, at most `within` of `since`; how long it took since `since`.
async fn lost_within(
    lost: impl Future<Output = ()>,
    since: Instant,
    within: Duration,
    what: &str,
) -> Duration {
    let left = within.saturating_sub(since.elapsed());
    if timeout(left, lost).await.is_err() {
        panic!("{what} was not reported lost within {within:?}");
    }
    since.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_and_restarted_etcd_is_reported_and_the_coordinator_recovers() {
    if !have_etcd() {
        eprintln!("etcd is not installed: skipping (scripts/test installs it)");
        return;
    }
    let mut server = Server::start();
    let url = server.url(TIMEOUT);
    let coord = Coordinator::connect(&url, "survivor").await.unwrap();
    let membership = coord
        .join_group_create("g", Capabilities::none())
        .await
        .unwrap();
    let guard = coord.lock("l").try_acquire().await.unwrap().expect("free");
    let leadership = coord
        .campaign_timeout("g", Duration::from_secs(10))
        .await
        .unwrap();
    assert!(guard.is_held() && leadership.is_held() && membership.is_active());

    // One session lease holds the lock, the leadership and the membership.
    {
        let mut raw = direct(&server.direct_url()).await;
        let lease = key_lease(&mut raw, &lock_key(b"l"))
            .await
            .expect("the lock key");
        assert_ne!(lease, 0, "the lock key is on the session lease");
        assert_eq!(
            key_lease(&mut raw, &member_key(b"g", b"survivor")).await,
            Some(lease),
            "the member key is on the same lease"
        );
        assert_eq!(
            key_lease(&mut raw, &leader_key(b"g")).await,
            Some(lease),
            "the leader key is on the same lease"
        );
        let keys = lease_keys(&mut raw, lease).await;
        assert_eq!(keys.len(), 3, "the session lease holds exactly these keys");
        let granted = raw
            .lease_time_to_live(lease, None)
            .await
            .unwrap()
            .granted_ttl();
        assert_eq!(granted, 3, "the session lease's TTL is timeout=3");
    }
    // A few more grants, so that revisions starting over could not pass for durable.
    for _ in 0..3 {
        let other = coord.lock("other").acquire().await.unwrap();
        other.release().await.unwrap();
    }
    let other = coord.lock("other").acquire().await.unwrap();
    let highest_before = other.token();
    other.release().await.unwrap();
    let before = (guard.token(), leadership.token());

    // A crash: etcd SIGKILLed. Heartbeats fail from here on; every grant on the session lease
    // is reported lost when its local lease (90% of the TTL, from the last heartbeat that was
    // answered, which was before the kill) runs out: within the TTL of the kill.
    let killed = Instant::now();
    server.kill();
    let took = lost_within(guard.lost(), killed, TTL, "the lock").await;
    let took_leader = lost_within(leadership.lost(), killed, TTL, "the leadership").await;
    let took_member = lost_within(membership.lost(), killed, TTL, "the membership").await;
    println!(
        "etcd killed: lock lost after {took:?}, leadership after {took_leader:?}, membership \
         after {took_member:?}"
    );
    assert!(!guard.is_held() && !leadership.is_held() && !membership.is_active());
    assert!(
        !coord.is_live(),
        "no session is vouched for while etcd is down"
    );

    // While it is down, calls fail in bounded time rather than pretend.
    let down = timeout(Duration::from_secs(15), coord.lock("l2").try_acquire())
        .await
        .expect("a call while etcd is down returns in bounded time");
    let err = down.expect_err("a lock granted while etcd is down");
    assert!(err.is_retryable(), "{err:?}");

    // Down past the TTL, then back on the same ports and data directory.
    sleep_until(killed + DOWN).await;
    server.restart();
    let restarted = Instant::now();
    wait_live(&coord, Duration::from_secs(20)).await;
    println!("live again {:?} after the restart", restarted.elapsed());

    // The coordinator recovers by itself: a lock it never held, with a token above every one
    // from before the crash (etcd's revision survived it), and a join.
    let fresh = coord
        .lock("fresh")
        .acquire_timeout(Duration::from_secs(10))
        .await
        .unwrap();
    assert!(
        fresh.token() > highest_before && fresh.token() > before.0 && fresh.token() > before.1,
        "a token after the crash ({}) must exceed those from before ({highest_before}, {}, {})",
        fresh.token(),
        before.0,
        before.1
    );
    fresh.release().await.unwrap();
    let membership_again = coord
        .join_group_create("g", Capabilities::none())
        .await
        .unwrap();
    assert!(
        coord
            .members("g")
            .await
            .unwrap()
            .contains(&MemberId::from("survivor")),
        "a member again after the restart"
    );

    // What was reported lost is free on etcd: a rival takes the lock and the leadership
    // within the TTL (if the revived session lease still carried their keys, they would stay
    // taken for as long as the coordinator heartbeats). The lost handles are still alive
    // here on purpose: dropping them would hand the grants back and hide the question.
    let rival = Coordinator::connect(&url, "rival").await.unwrap();
    let within = TTL + Duration::from_secs(3);
    let taken = rival
        .lock("l")
        .acquire_timeout(within)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "lock 'l', reported lost before the restart, is still taken {within:?} later \
                 ({e}): the coordinator's revived session lease keeps its key alive"
            )
        });
    assert!(
        taken.token() > before.0,
        "the rival's token {} must exceed the lost grant's {}",
        taken.token(),
        before.0
    );
    taken.release().await.unwrap();
    let led = rival
        .campaign_timeout("g", within)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "the leadership of 'g', reported lost before the restart, is still held \
                 {within:?} later ({e}): the coordinator's revived session lease keeps its key \
                 alive"
            )
        });
    assert!(led.token() > before.1);
    assert_eq!(
        rival.leader("g").await.unwrap(),
        Some(MemberId::from("rival"))
    );
    led.resign().await.unwrap();

    // And the survivor takes both again, with larger tokens still.
    let guard_again = coord
        .lock("l")
        .acquire_timeout(Duration::from_secs(10))
        .await
        .unwrap();
    assert!(guard_again.token() > before.0);
    let leadership_again = coord
        .campaign_timeout("g", Duration::from_secs(10))
        .await
        .unwrap();
    assert!(leadership_again.token() > before.1);
    assert_eq!(
        coord.leader("g").await.unwrap(),
        Some(MemberId::from("survivor"))
    );
    println!(
        "tokens before the crash: lock {} leadership {}; after: lock {} leadership {}",
        before.0,
        before.1,
        guard_again.token(),
        leadership_again.token()
    );

    drop((guard, leadership, membership));
    guard_again.release().await.unwrap();
    leadership_again.resign().await.unwrap();
    membership_again.leave().await.unwrap();
    rival.stop().await.unwrap();
    coord.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_session_lease_is_reported_lost_and_a_new_session_begins() {
    let Some(url) = etcd_url() else {
        eprintln!("no etcd3+http:// URL in TOOZ_TEST_URLS: skipping (scripts/test runs it)");
        return;
    };
    let base = base(&url);
    let run = run_id("revoke");
    // timeout=6: a session lease of 6 s, heartbeats every 2 s, local leases of 5.4 s. A loss
    // reported within 3.5 s of the revoke is the heartbeat's finding, not a local lease
    // running out.
    let url = format!("{base}?timeout=6");
    let ttl = Duration::from_secs(6);
    let heartbeat = ttl / 3;
    let mut raw = direct(&base).await;
    let member = format!("{run}-victim");
    let (group, name) = (format!("{run}-g"), format!("{run}-l"));
    let coord = Coordinator::connect(&url, member.as_str()).await.unwrap();
    let membership = coord
        .join_group_create(group.as_str(), Capabilities::none())
        .await
        .unwrap();
    let guard = coord
        .lock(name.as_str())
        .try_acquire()
        .await
        .unwrap()
        .expect("free");
    let leadership = coord
        .campaign_timeout(group.as_str(), Duration::from_secs(10))
        .await
        .unwrap();

    // Our lease, found as an operator would: the one whose keys include our member key.
    let (member_k, lock_k, leader_k) = (
        member_key(group.as_bytes(), member.as_bytes()),
        lock_key(name.as_bytes()),
        leader_key(group.as_bytes()),
    );
    let lease = lease_holding(&mut raw, &member_k)
        .await
        .expect("a lease holds our member key");
    assert_eq!(key_lease(&mut raw, &member_k).await, Some(lease));
    let keys = lease_keys(&mut raw, lease).await;
    assert!(
        keys.contains(&lock_k) && keys.contains(&leader_k),
        "the lock and the leader key are on the session lease too"
    );

    // Revoked out from under the coordinator: every key on it is gone at once.
    let revoked = Instant::now();
    raw.lease_revoke(lease).await.unwrap();
    for key in [&member_k, &lock_k, &leader_k] {
        assert_eq!(
            key_lease(&mut raw, key).await,
            None,
            "a revoked lease's key"
        );
    }
    let within = heartbeat + Duration::from_millis(1500);
    let took = lost_within(guard.lost(), revoked, within, "the lock").await;
    let took_leader = lost_within(leadership.lost(), revoked, within, "the leadership").await;
    let took_member = lost_within(membership.lost(), revoked, within, "the membership").await;
    println!(
        "lease revoked: lock lost after {took:?}, leadership after {took_leader:?}, membership \
         after {took_member:?}"
    );
    assert!(!guard.is_held() && !leadership.is_held() && !membership.is_active());

    // A new session began by itself: the coordinator is live, and locks, leads and joins on
    // a new lease, with larger tokens.
    wait_live(&coord, Duration::from_secs(5)).await;
    let again = coord
        .lock(name.as_str())
        .acquire_timeout(Duration::from_secs(10))
        .await
        .unwrap();
    assert!(again.token() > guard.token());
    let new_lease = key_lease(&mut raw, &lock_k)
        .await
        .expect("the lock key again");
    assert!(
        new_lease != 0 && new_lease != lease,
        "the lock is on a new lease ({new_lease:x}, the revoked one was {lease:x})"
    );
    let left = raw.lease_time_to_live(new_lease, None).await.unwrap().ttl();
    assert!(left > 0, "the new session lease is alive ({left} s left)");
    let leadership_again = coord
        .campaign_timeout(group.as_str(), Duration::from_secs(10))
        .await
        .unwrap();
    assert!(leadership_again.token() > leadership.token());
    let membership_again = coord
        .join_group(group.as_str(), Capabilities::none())
        .await
        .unwrap();
    assert!(
        coord
            .members(group.as_str())
            .await
            .unwrap()
            .contains(&MemberId::from(member.as_str()))
    );
    assert_eq!(key_lease(&mut raw, &member_k).await, Some(new_lease));
    assert_eq!(key_lease(&mut raw, &leader_k).await, Some(new_lease));
    // Renewed by heartbeats: all still held, on a live lease, past a whole TTL.
    sleep(ttl + Duration::from_secs(1)).await;
    assert!(again.is_held() && leadership_again.is_held() && membership_again.is_active());
    assert_eq!(
        key_lease(&mut raw, &lock_k).await,
        Some(new_lease),
        "the new session lease is kept alive"
    );

    drop((guard, leadership, membership));
    again.release().await.unwrap();
    leadership_again.resign().await.unwrap();
    membership_again.leave().await.unwrap();
    coord.delete_group(group.as_str()).await.unwrap();
    coord.stop().await.unwrap();
}
