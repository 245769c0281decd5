//! MySQL connections that end under a coordinator: ended by the server (`KILL`, as an
//! administrator or a watchdog would), or with the whole server (SIGKILL, then a restart on
//! the same port and data directory).
//!
//! * `KILL` of every connection of a coordinator: the lock it took without waiting (held by
//!   its main connection) and the lock a waiting acquire was granted (held by the spare
//!   connection that waited) are both reported lost: the first at once (well within a
//!   second: a watcher waits on a sentinel lock the main connection holds, granted the moment
//!   the server ends it), the second within a heartbeat or two (the next statement on that
//!   connection finds it gone) — and both are really free on the server: a
//!   third coordinator takes the two at once, with larger fencing tokens. Memberships and
//!   leaderships are rows timed by the server's clock, not tied to a connection: they carry
//!   on. The coordinator opens new connections by itself and works as before.
//! * A crash of the server: the lock is reported lost at the next heartbeat, the leadership
//!   and the membership when their local leases run out (heartbeats fail while the server is
//!   down), all before `lock_timeout` is over. Once the server is back (crash recovery on the
//!   same data directory), the same coordinator reconnects by itself, and every fencing token
//!   is larger than before: the counters are InnoDB rows, durable across the crash.
//!
//! The first test uses the server in `TOOZ_TEST_URLS` (touching only the connections holding
//! its own locks); the second runs a throw-away MariaDB of its own on a free loopback port.

#![cfg(feature = "mysql")]

#[path = "support/mysql_server.rs"]
mod mysql_server;
#[path = "support/mysql_url.rs"]
mod mysql_url;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mysql_server::{Server, have_mariadb};
use mysql_url::{base, connection_exists, direct, execute, lock_holder, mysql_url};
use tokio::time::{Instant, sleep, timeout};
use tooz::{Capabilities, Coordinator, FencingToken, MemberId};

/// `timeout=3`: statements bounded by 3 s, `lock_timeout` 3 s (the session's `wait_timeout`),
/// heartbeats every second (a third of it) — for the restart test.
const TIMEOUT: &str = "timeout=3";
const LOCK_TIMEOUT: Duration = Duration::from_secs(3);

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
            "the coordinator did not reconnect within {within:?}"
        );
        sleep(Duration::from_millis(50)).await;
    }
}

/// Waits for a loss signal, at most `within`; how long it took since `since`.
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
async fn connections_killed_by_the_server_lose_their_locks_and_are_replaced() {
    let Some(url) = mysql_url() else {
        eprintln!("no mysql:// URL in TOOZ_TEST_URLS: skipping (scripts/test runs it)");
        return;
    };
    let base = base(&url);
    let run = run_id("kill");
    // Heartbeats every 3 s: a loss reported well within a second of the KILL is the
    // watcher's doing, not a heartbeat's.
    let url = format!("{base}?timeout=9");
    let heartbeat = Duration::from_secs(3);
    let mut admin = direct(&base).await;
    let rival = Coordinator::connect(&url, format!("{run}-rival").as_str())
        .await
        .unwrap();
    let victim_id = MemberId::from(format!("{run}-victim"));
    let victim = Coordinator::connect(&url, victim_id.clone()).await.unwrap();
    let (on_main, on_spare) = (format!("{run}-main"), format!("{run}-spare"));
    let group = format!("{run}-g");

    // A membership and a leadership: rows, not the connection's.
    let membership = victim
        .join_group_create(group.as_str(), Capabilities::none())
        .await
        .unwrap();
    let leadership = victim
        .campaign_timeout(group.as_str(), Duration::from_secs(10))
        .await
        .unwrap();

    // A lock taken without waiting: held by the victim's main connection.
    let main_guard = victim
        .lock(on_main.as_str())
        .try_acquire()
        .await
        .unwrap()
        .expect("free");
    // A lock taken by a waiting acquire: the rival holds it first, so the victim waits for it
    // on the server, on a spare connection, which is then the one holding it.
    let rival_guard = rival
        .lock(on_spare.as_str())
        .try_acquire()
        .await
        .unwrap()
        .expect("free");
    let lock = victim.lock(on_spare.as_str());
    let waiter = tokio::spawn(async move { lock.acquire_timeout(Duration::from_secs(10)).await });
    sleep(Duration::from_millis(500)).await;
    assert!(!waiter.is_finished(), "granted a lock the rival holds");
    rival_guard.release().await.unwrap();
    let spare_guard = timeout(Duration::from_secs(10), waiter)
        .await
        .expect("the waiter is granted the lock once the rival released it")
        .unwrap()
        .unwrap();

    // The two server connections holding them: distinct, as the design says.
    let main_conn = lock_holder(&mut admin, &on_main)
        .await
        .expect("the main connection holds its lock");
    let spare_conn = lock_holder(&mut admin, &on_spare)
        .await
        .expect("the spare connection holds its lock");
    assert_ne!(
        main_conn, spare_conn,
        "the lock a waiting acquire was granted is held by the connection that waited"
    );

    // The server ends both.
    let killed = Instant::now();
    for id in [main_conn, spare_conn] {
        execute(&mut admin, &format!("KILL {id}")).await;
    }
    // The main connection's end is seen at once by its watcher; the spare's at the next
    // heartbeat (or one retry later: a failed beat is retried after half a second), and in
    // any case before the grants' own local leases run out.
    let took_main = lost_within(
        main_guard.lost(),
        killed,
        Duration::from_millis(800),
        "the main connection's lock",
    )
    .await;
    let took_spare = lost_within(
        spare_guard.lost(),
        killed,
        heartbeat + Duration::from_secs(2),
        "the spare connection's lock",
    )
    .await;
    println!("KILL: the locks reported lost {took_main:?} and {took_spare:?} after it");
    assert!(!main_guard.is_held() && !spare_guard.is_held());
    // (The server ends a killed connection's thread asynchronously: soon, not at once.)
    for id in [main_conn, spare_conn] {
        let deadline = Instant::now() + Duration::from_secs(5);
        while connection_exists(&mut admin, id).await {
            assert!(
                Instant::now() < deadline,
                "killed connection {id} is still listed 5 s later"
            );
            sleep(Duration::from_millis(20)).await;
        }
    }

    // Both locks are free on the server: a third coordinator takes them at once, with tokens
    // above the lost ones.
    let third = Coordinator::connect(&url, format!("{run}-third").as_str())
        .await
        .unwrap();
    let third_main = third
        .lock(on_main.as_str())
        .try_acquire()
        .await
        .unwrap()
        .expect("the killed main connection's lock is free");
    let third_spare = third
        .lock(on_spare.as_str())
        .try_acquire()
        .await
        .unwrap()
        .expect("the killed spare connection's lock is free");
    assert!(
        third_main.token() > main_guard.token() && third_spare.token() > spare_guard.token(),
        "tokens after the loss ({}, {}) must exceed the lost ones ({}, {})",
        third_main.token(),
        third_spare.token(),
        main_guard.token(),
        spare_guard.token()
    );
    let after_kill = (third_main.token(), third_spare.token());
    third_main.release().await.unwrap();
    third_spare.release().await.unwrap();
    third.stop().await.unwrap();

    // The victim was not rebuilt: it opens connections by itself, and takes locks (one on its
    // main connection, one by waiting on a spare again) with larger tokens.
    wait_live(&victim, Duration::from_secs(15)).await;
    let again_main = victim
        .lock(on_main.as_str())
        .try_acquire()
        .await
        .unwrap()
        .expect("free");
    let rival_again = rival
        .lock(on_spare.as_str())
        .try_acquire()
        .await
        .unwrap()
        .expect("free");
    let lock = victim.lock(on_spare.as_str());
    let waiter = tokio::spawn(async move { lock.acquire_timeout(Duration::from_secs(10)).await });
    sleep(Duration::from_millis(300)).await;
    rival_again.release().await.unwrap();
    let again_spare = timeout(Duration::from_secs(10), waiter)
        .await
        .expect("the waiter is granted the lock")
        .unwrap()
        .unwrap();
    assert!(
        again_main.token() > after_kill.0 && again_spare.token() > after_kill.1,
        "tokens keep growing"
    );
    assert!(
        lock_holder(&mut admin, &on_main).await.is_some()
            && lock_holder(&mut admin, &on_spare).await.is_some(),
        "both are held on the server again"
    );

    // The membership and the leadership carried on (renewed by heartbeats on the new main
    // connection), and the victim joins a new group.
    victim.heartbeat().await.unwrap();
    assert!(
        membership.is_active() && leadership.is_held(),
        "the membership and the leadership outlive the connections"
    );
    assert_eq!(
        rival.leader(group.as_str()).await.unwrap(),
        Some(victim_id.clone())
    );
    let other_group = format!("{run}-g2");
    let joined = victim
        .join_group_create(other_group.as_str(), Capabilities::none())
        .await
        .unwrap();
    assert!(
        rival
            .members(other_group.as_str())
            .await
            .unwrap()
            .contains(&victim_id),
        "the victim is listed in the group it joined after the kill"
    );

    again_main.release().await.unwrap();
    again_spare.release().await.unwrap();
    joined.leave().await.unwrap();
    leadership.resign().await.unwrap();
    membership.leave().await.unwrap();
    victim.delete_group(other_group.as_str()).await.unwrap();
    victim.delete_group(group.as_str()).await.unwrap();
    rival.stop().await.unwrap();
    victim.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_and_restarted_server_is_reported_and_tokens_keep_growing() {
    if !have_mariadb() {
        eprintln!("MariaDB is not installed: skipping (scripts/test installs it)");
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
    // A few grants, so that a counter restarting from scratch could not pass for durable.
    for _ in 0..3 {
        let other = coord.lock("other").acquire().await.unwrap();
        other.release().await.unwrap();
    }
    let other = coord.lock("other").acquire().await.unwrap();
    let other_token = other.token();
    other.release().await.unwrap();
    let before: (FencingToken, FencingToken) = (guard.token(), leadership.token());

    // A crash: mariadbd SIGKILLed; the kernel closes our connection. The lock is lost with
    // it (found by the next heartbeat); the leadership and the membership when their local
    // leases run out, heartbeats failing meanwhile. All before lock_timeout is over.
    let killed = Instant::now();
    server.kill();
    let took = lost_within(guard.lost(), killed, LOCK_TIMEOUT, "the lock").await;
    let took_leader = lost_within(leadership.lost(), killed, LOCK_TIMEOUT, "the leadership").await;
    let took_member = lost_within(membership.lost(), killed, LOCK_TIMEOUT, "the membership").await;
    println!(
        "server killed: lock lost after {took:?}, leadership after {took_leader:?}, \
         membership after {took_member:?}"
    );
    assert!(!guard.is_held() && !leadership.is_held() && !membership.is_active());

    // While it is down, calls fail (in bounded time) rather than pretend.
    let down = timeout(Duration::from_secs(15), coord.lock("l").try_acquire())
        .await
        .expect("a call while the server is down returns in bounded time");
    let err = down.expect_err("a lock granted while the server is down");
    assert!(err.is_retryable(), "{err:?}");

    // Back on the same port and data directory (crash recovery): the same coordinator
    // reconnects, and every counter carries on from where it was.
    server.restart();
    wait_live(&coord, Duration::from_secs(20)).await;
    let guard = coord
        .lock("l")
        .acquire_timeout(Duration::from_secs(10))
        .await
        .unwrap();
    assert!(
        guard.token() > before.0,
        "lock token {} after the crash must exceed {} from before",
        guard.token(),
        before.0
    );
    let other = coord.lock("other").acquire().await.unwrap();
    assert!(
        other.token() > other_token,
        "the counter of lock 'other' survived the crash: {} after {other_token}",
        other.token()
    );
    other.release().await.unwrap();
    let membership = coord
        .join_group_create("g", Capabilities::none())
        .await
        .unwrap();
    let leadership = coord
        .campaign_timeout("g", Duration::from_secs(15))
        .await
        .unwrap();
    assert!(
        leadership.token() > before.1,
        "leadership token {} after the crash must exceed {} from before",
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
            .contains(&MemberId::from("survivor")),
        "a member again after the restart"
    );
    println!(
        "tokens before the crash: lock {} leadership {}; after: lock {} leadership {}",
        before.0,
        before.1,
        guard.token(),
        leadership.token()
    );
    guard.release().await.unwrap();
    leadership.resign().await.unwrap();
    membership.leave().await.unwrap();
    coord.stop().await.unwrap();
}
