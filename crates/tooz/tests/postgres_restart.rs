//! A PostgreSQL session that ends under a coordinator: ended by the server
//! (`pg_terminate_backend`, as an administrator or a pooler would), or with the whole server
//! (SIGKILL, then a restart on the same port and data directory). Every lock — a session
//! advisory lock — is reported lost at once (the dropped connection is the news, no heartbeat
//! has to find it out) and is really free on the server (a rival takes it). Leaderships and
//! memberships are rows timed by the server's clock, not tied to the session: they carry on,
//! renewed by the next heartbeat on the new session the coordinator opens by itself. Fencing
//! tokens keep growing (the counter is a row: it survives the crash). Runs its own throw-away
//! PostgreSQL on a free loopback port.

#![cfg(feature = "postgres")]

#[path = "support/postgres_server.rs"]
mod postgres_server;
#[path = "support/postgres_url.rs"]
mod postgres_url;

use std::time::Duration;

use postgres_server::{Server, have_postgres};
use postgres_url::direct;
use tokio::time::{Instant, sleep, timeout};
use tooz::{Capabilities, Coordinator, FencingToken, Leadership, LockGuard, MemberId, Membership};

/// How soon a dropped session must be reported: it is pushed, not found by a heartbeat.
const PUSHED: Duration = Duration::from_secs(1);

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

/// A lock, a leadership and a membership, all held by `coord`.
struct Holdings {
    guard: LockGuard,
    leadership: Leadership,
    membership: Membership,
}

impl Holdings {
    async fn take(coord: &Coordinator) -> Self {
        let membership = coord
            .join_group_create("g", Capabilities::none())
            .await
            .unwrap();
        let guard = coord
            .lock("l")
            .acquire_timeout(Duration::from_secs(10))
            .await
            .unwrap();
        let leadership = coord
            .campaign_timeout("g", Duration::from_secs(15))
            .await
            .unwrap();
        assert!(guard.is_held() && leadership.is_held() && membership.is_active());
        Self {
            guard,
            leadership,
            membership,
        }
    }

    fn tokens(&self) -> (FencingToken, FencingToken) {
        (self.guard.token(), self.leadership.token())
    }

    /// The lock reports lost within `within` of `since` (how long it took); the leadership and
    /// the membership, which are not the session's, do not.
    async fn lock_lost(&self, since: Instant, within: Duration, what: &str) -> Duration {
        if timeout(within, self.guard.lost()).await.is_err() {
            panic!("{what}: the lock was not reported lost within {within:?}");
        }
        let took = since.elapsed();
        assert!(
            !self.guard.is_held(),
            "{what}: lost() fired, so it is not held"
        );
        assert!(
            self.leadership.is_held() && self.membership.is_active(),
            "{what}: the leadership and the membership outlive the session"
        );
        took
    }
}

/// After the loss: the same coordinator takes the lock again (reconnecting by itself), with a
/// token above every one handed out before, and still leads and is still a member.
async fn recovers(
    coord: &Coordinator,
    held: Holdings,
    before: (FencingToken, FencingToken),
    what: &str,
) -> Holdings {
    wait_live(coord, Duration::from_secs(15)).await;
    let guard = coord
        .lock("l")
        .acquire_timeout(Duration::from_secs(10))
        .await
        .unwrap();
    assert!(
        guard.token() > before.0,
        "{what}: lock token {} after the loss must exceed {} from before",
        guard.token(),
        before.0
    );
    // A heartbeat on the new session renews both.
    coord.heartbeat().await.unwrap();
    assert!(
        held.leadership.is_held() && held.membership.is_active(),
        "{what}: the leadership and the membership were kept"
    );
    let again = Holdings {
        guard,
        leadership: held.leadership,
        membership: held.membership,
    };
    assert_eq!(again.leadership.token(), before.1, "{what}: the same term");
    assert_eq!(
        coord.leader("g").await.unwrap(),
        Some(MemberId::from("survivor")),
        "{what}: leader() after the recovery"
    );
    assert!(
        coord
            .members("g")
            .await
            .unwrap()
            .contains(&MemberId::from("survivor")),
        "{what}: a member again after the recovery"
    );
    again
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ended_by_the_server_is_reported_lost_at_once_and_replaced() {
    if !have_postgres() {
        eprintln!("PostgreSQL is not installed: skipping (scripts/test installs it)");
        return;
    }
    let server = Server::start();
    let url = server.url("timeout=5");
    let coord = Coordinator::connect(&url, "survivor").await.unwrap();
    let rival = Coordinator::connect(&url, "rival").await.unwrap();
    let held = Holdings::take(&coord).await;
    let before = held.tokens();
    assert!(
        rival.lock("l").try_acquire().await.unwrap().is_none(),
        "the lock is held"
    );

    // Our session, as the server lists it: the driver names it `tooz:<member>`.
    let admin = direct(&server.direct_config()).await;
    let sessions: Vec<i32> = admin
        .query(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'tooz:survivor'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert!(
        !sessions.is_empty(),
        "no session named tooz:survivor in pg_stat_activity"
    );
    let ended = Instant::now();
    for pid in &sessions {
        let done: bool = admin
            .query_one("SELECT pg_terminate_backend($1)", &[pid])
            .await
            .unwrap()
            .get(0);
        assert!(done, "pg_terminate_backend({pid})");
    }
    let took = held.lock_lost(ended, PUSHED, "pg_terminate_backend").await;
    println!("pg_terminate_backend: the lock reported lost {took:?} after it");

    // The server freed the lock with the session: a rival takes it, with a larger token.
    let taken = timeout(Duration::from_secs(5), async {
        loop {
            if let Some(guard) = rival.lock("l").try_acquire().await.unwrap() {
                return guard;
            }
            sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the lock of the ended session is free on the server");
    assert!(
        taken.token() > before.0,
        "the rival's token {} must exceed the lost holder's {}",
        taken.token(),
        before.0
    );
    let rival_token = taken.token();
    taken.release().await.unwrap();

    // The coordinator was not rebuilt: it opens a new session by itself.
    let again = recovers(
        &coord,
        held,
        (rival_token, before.1),
        "after pg_terminate_backend",
    )
    .await;
    let sessions_now: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'tooz:survivor'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(sessions_now >= 1, "a new session of ours is on the server");
    again.guard.release().await.unwrap();
    again.leadership.resign().await.unwrap();
    again.membership.leave().await.unwrap();
    rival.stop().await.unwrap();
    coord.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_and_restarted_server_is_reported_and_tokens_keep_growing() {
    if !have_postgres() {
        eprintln!("PostgreSQL is not installed: skipping (scripts/test installs it)");
        return;
    }
    let mut server = Server::start();
    let url = server.url("timeout=5");
    let coord = Coordinator::connect(&url, "survivor").await.unwrap();
    let held = Holdings::take(&coord).await;
    // A few grants, so that a counter restarting from scratch could not pass for durable.
    let mut before = held.tokens();
    for _ in 0..3 {
        let guard = coord.lock("other").acquire().await.unwrap();
        guard.release().await.unwrap();
    }
    let other_before = coord.lock("other").acquire().await.unwrap();
    let other_token = other_before.token();
    other_before.release().await.unwrap();

    // A crash: every server process SIGKILLed; the kernel closes our connection.
    let killed = Instant::now();
    server.kill();
    let took = held.lock_lost(killed, PUSHED, "server killed").await;
    println!("server killed: the lock reported lost {took:?} after it");

    // While it is down, calls fail (in bounded time) rather than pretend.
    let down = timeout(Duration::from_secs(15), coord.lock("l").try_acquire())
        .await
        .expect("a call while the server is down returns in bounded time");
    assert!(down.is_err(), "a lock granted while the server is down");
    assert!(down.unwrap_err().is_retryable());

    // Back on the same port and data directory (crash recovery): the same coordinator
    // reconnects, and every counter carries on from where it was.
    server.restart();
    let again = recovers(&coord, held, before, "after the restart").await;
    let other_after = coord.lock("other").acquire().await.unwrap();
    assert!(
        other_after.token() > other_token,
        "the counter of lock 'other' survived the crash: {} after {other_token}",
        other_after.token()
    );
    other_after.release().await.unwrap();
    println!(
        "tokens before the crash: lock {} leadership {}; after: lock {} leadership {}",
        before.0,
        before.1,
        again.guard.token(),
        again.leadership.token()
    );
    before = again.tokens();

    // A second crash, then tokens keep growing still.
    let killed = Instant::now();
    server.kill();
    again.lock_lost(killed, PUSHED, "second kill").await;
    server.restart();
    let last = recovers(&coord, again, before, "after the second restart").await;
    last.guard.release().await.unwrap();
    last.leadership.resign().await.unwrap();
    last.membership.leave().await.unwrap();
    coord.stop().await.unwrap();
}
