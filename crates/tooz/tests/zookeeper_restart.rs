//! A ZooKeeper session that ends, or does not, under a coordinator: the whole server SIGKILLed
//! and restarted quickly (with its data), kept down past the session timeout, restarted empty,
//! or still running while the coordinator is cut off from it long enough for it to expire the
//! session.
//!
//! * Restarted within the session timeout, with its data: ZooKeeper gives every session it had
//!   a full timeout again, the client reconnects to the same session, and nothing is lost — the
//!   lock, the membership and the leadership are still held on the same ephemeral nodes, and
//!   a later grant's fencing token is larger (zxids survive a restart).
//! * Down past the session timeout: the lock, the leadership and the membership — all
//!   ephemeral nodes of the one session — are reported lost within the timeout of the kill
//!   (heartbeats fail from there on). Calls fail in bounded time while it is down. Once it is
//!   back, the same coordinator begins a new session by itself: it is live again, takes locks
//!   with tokens above every one from before, and joins; what it was told it lost is really
//!   free — a rival takes the lock and the leadership once ZooKeeper has expired the old
//!   session (a restarted server gives it a full timeout again), with larger tokens.
//! * Restarted empty (a new server): the client's old session is refused there for ever
//!   without ever being told it expired; the coordinator reports everything lost, abandons the
//!   old session once no heartbeat was answered for its timeout, and begins a new one: the
//!   namespace node is made again, and groups, joins, locks and elections work. (Fencing tokens
//!   are zxids, which start over on an empty server: they are not compared across the wipe.)
//! * Cut off by a partition (the fault proxy drops every byte) while the server runs: the server
//!   expires the session after its timeout; the coordinator has reported everything lost
//!   before that, and once the partition heals it works on a new session (the old one is gone
//!   from the server, its ephemeral nodes with it).
//!
//! Every test runs a throw-away ZooKeeper of its own (`support/zookeeper_server.rs`): nothing
//! here touches the server in `TOOZ_TEST_URLS`.

#![cfg(feature = "zookeeper")]

#[path = "support/fault_proxy.rs"]
mod fault_proxy;
#[path = "support/zookeeper_server.rs"]
mod zookeeper_server;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use fault_proxy::{Fault, FaultProxy};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, sleep_until, timeout, timeout_at};
use tooz::{Capabilities, Coordinator, Error, MemberId, Membership};
use zookeeper_client::{Client, Stat};
use zookeeper_server::{Server, have_zookeeper};

/// `timeout=2`: a session timeout of 2 s, heartbeats every 0.67 s, local leases of 1.8 s.
const SHORT: &str = "timeout=2";
const TTL: Duration = Duration::from_secs(2);
/// How long the server stays down in the outage test: past the session timeout.
const DOWN: Duration = Duration::from_secs(4);
/// What a loss may take past the session timeout on a loaded machine.
const SLACK: Duration = Duration::from_secs(1);

/// A client of the test's own, straight to the server (never through a fault proxy).
async fn raw_client(hosts: &str) -> Client {
    Client::connector()
        .with_session_timeout(Duration::from_secs(10))
        .connect(hosts)
        .await
        .unwrap_or_else(|e| panic!("a raw client of {hosts}: {e}"))
}

/// The stat of `path`, which must exist.
async fn stat(raw: &Client, path: &str) -> Stat {
    raw.check_stat(path)
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .unwrap_or_else(|| panic!("{path} does not exist"))
}

/// The stat of the one contender under lock node `dir` (the holder's).
async fn contender(raw: &Client, dir: &str) -> Stat {
    let children = raw
        .list_children(dir)
        .await
        .unwrap_or_else(|e| panic!("{dir}: {e}"));
    assert_eq!(children.len(), 1, "{dir}: one contender: {children:?}");
    stat(raw, &format!("{dir}/{}", children[0])).await
}

/// The sessions owning member `member`'s node in `group`, lock `lock`'s contender and the
/// leader contender of `group` (plain names: each is its own node name).
async fn owners(raw: &Client, group: &str, member: &str, lock: &str) -> [i64; 3] {
    let member = stat(raw, &format!("/tooz/{group}/{member}")).await;
    let lock = contender(raw, &format!("/tooz/locks/{lock}")).await;
    let leader = contender(raw, &format!("/tooz/{group}/leader")).await;
    [
        member.ephemeral_owner,
        lock.ephemeral_owner,
        leader.ephemeral_owner,
    ]
}

/// When `lost` resolves, seen by a task of its own (started before the fault: the time is the
/// signal's, not when the test got round to looking).
fn loss_time(lost: impl Future<Output = ()> + Send + 'static) -> JoinHandle<Instant> {
    tokio::spawn(async move {
        lost.await;
        Instant::now()
    })
}

/// When `watcher` saw its loss, waiting for it until `deadline` at most.
async fn lost_at(watcher: JoinHandle<Instant>, deadline: Instant, what: &str) -> Instant {
    match timeout_at(deadline, watcher).await {
        Ok(at) => at.expect("the task watching a loss"),
        Err(_) => panic!("{what} was not reported lost in time"),
    }
}

async fn wait_live(coord: &Coordinator, within: Duration) {
    let deadline = Instant::now() + within;
    while !coord.is_live() {
        assert!(
            Instant::now() < deadline,
            "the coordinator did not begin a session again within {within:?}"
        );
        sleep(Duration::from_millis(50)).await;
    }
}

/// Heartbeats until one is answered (the client reconnects by itself), for at most `within`.
async fn heartbeat_within(coord: &Coordinator, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        match coord.heartbeat().await {
            Ok(()) => return,
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "no heartbeat was answered within {within:?}: {e}"
                );
                sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Joins `group` (made if missing) again after a session was lost. The old session's member
/// node may be listed until ZooKeeper expires that session (a restarted server gives it a full
/// timeout again) or the coordinator takes it away: `MemberAlreadyExist` is retried until
/// `deadline`.
async fn join_again(coord: &Coordinator, group: &str, deadline: Instant) -> Membership {
    let mut tries = 0u32;
    loop {
        tries += 1;
        match coord.join_group_create(group, Capabilities::none()).await {
            Ok(membership) => {
                println!("joined '{group}' again at try {tries}");
                return membership;
            }
            Err(Error::MemberAlreadyExist { .. }) if Instant::now() < deadline => {
                sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("joining '{group}' again (try {tries}): {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restarted_within_the_session_timeout_keeps_the_session_and_its_grants() {
    if !have_zookeeper() {
        eprintln!("ZooKeeper is not installed: skipping (scripts/test installs it)");
        return;
    }
    let mut server = Server::start();
    // timeout=20: heartbeats every 6.7 s, local leases of 18 s. A JVM started again on a busy
    // machine is serving well within that, and the client's reconnection attempts (backing off
    // exponentially while the port is closed) find it in time.
    let session_timeout = Duration::from_secs(20);
    let coord = Coordinator::connect(&server.url_with("timeout=20"), "keeper")
        .await
        .unwrap();
    assert_eq!(
        coord.membership_timeout(),
        session_timeout,
        "the session timeout ZooKeeper settled"
    );
    let membership = coord
        .join_group_create("g", Capabilities::none())
        .await
        .unwrap();
    let guard = coord.lock("l").try_acquire().await.unwrap().expect("free");
    let leadership = coord
        .campaign_timeout("g", Duration::from_secs(10))
        .await
        .unwrap();
    let session = {
        let raw = raw_client(&server.hosts()).await;
        let owners = owners(&raw, "g", "keeper", "l").await;
        assert!(
            owners[0] != 0 && owners.iter().all(|o| *o == owners[0]),
            "one session owns the member, the lock contender and the leader contender: \
             {owners:x?}"
        );
        let lock = contender(&raw, "/tooz/locks/l").await;
        assert_eq!(
            u64::try_from(lock.czxid).ok(),
            Some(guard.token().get()),
            "the lock's fencing token is its contender's czxid"
        );
        owners[0]
    };

    let watchers = [
        loss_time(guard.lost()),
        loss_time(leadership.lost()),
        loss_time(membership.lost()),
    ];
    // A crash, and the server serving again at once (on the same data).
    let killed = Instant::now();
    server.kill();
    server.restart();
    let down = killed.elapsed();
    println!("ZooKeeper SIGKILLed, and serving again {down:?} later");
    heartbeat_within(&coord, Duration::from_secs(15)).await;
    println!(
        "a heartbeat was answered {:?} after the kill",
        killed.elapsed()
    );

    for (watcher, what) in watchers
        .iter()
        .zip(["the lock", "the leadership", "the membership"])
    {
        assert!(
            !watcher.is_finished(),
            "{what} was reported lost across a restart of {down:?} (session timeout \
             {session_timeout:?})"
        );
    }
    assert!(guard.is_held() && leadership.is_held() && membership.is_active());
    assert!(coord.is_live());
    // The same session, on the same nodes.
    let raw = raw_client(&server.hosts()).await;
    assert_eq!(
        owners(&raw, "g", "keeper", "l").await,
        [session; 3],
        "the session from before the restart owns them still"
    );
    assert!(
        coord
            .members("g")
            .await
            .unwrap()
            .contains(&MemberId::from("keeper")),
        "still listed"
    );
    assert_eq!(
        coord.leader("g").await.unwrap(),
        Some(MemberId::from("keeper"))
    );
    // Still exclusive.
    let rival = Coordinator::connect(&server.url_with("timeout=5"), "rival")
        .await
        .unwrap();
    assert!(rival.lock("l").try_acquire().await.unwrap().is_none());
    assert!(rival.try_campaign("g").await.unwrap().is_none());
    // A grant after the restart has a larger token: zxids survived it.
    let later = coord
        .lock("later")
        .acquire_timeout(Duration::from_secs(10))
        .await
        .unwrap();
    assert!(
        later.token() > guard.token() && later.token() > leadership.token(),
        "a token after the restart ({}) must exceed those from before ({}, {})",
        later.token(),
        guard.token(),
        leadership.token()
    );
    // And another heartbeat renews it all.
    coord.heartbeat().await.unwrap();
    assert!(guard.is_held() && leadership.is_held() && membership.is_active());

    later.release().await.unwrap();
    guard.release().await.unwrap();
    leadership.resign().await.unwrap();
    membership.leave().await.unwrap();
    rival.stop().await.unwrap();
    coord.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_down_past_the_session_timeout_is_reported_and_the_coordinator_recovers() {
    if !have_zookeeper() {
        eprintln!("ZooKeeper is not installed: skipping (scripts/test installs it)");
        return;
    }
    let mut server = Server::start();
    let url = server.url_with(SHORT);
    let coord = Coordinator::connect(&url, "survivor").await.unwrap();
    assert_eq!(coord.membership_timeout(), TTL);
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
    // A few more grants, so that zxids starting over could not pass for durable.
    for _ in 0..3 {
        let other = coord.lock("other").acquire().await.unwrap();
        other.release().await.unwrap();
    }
    let other = coord.lock("other").acquire().await.unwrap();
    let highest_before = other.token();
    other.release().await.unwrap();
    let before = (guard.token(), leadership.token());

    // A crash: heartbeats fail from here on, and every grant on the session is reported lost
    // within the session timeout of the kill (the local leases count from the last heartbeat
    // answered, before it).
    let [lock_watch, leader_watch, member_watch] = [
        loss_time(guard.lost()),
        loss_time(leadership.lost()),
        loss_time(membership.lost()),
    ];
    let killed = Instant::now();
    server.kill();
    let deadline = killed + TTL + SLACK;
    let took = lost_at(lock_watch, deadline, "the lock").await - killed;
    let took_leader = lost_at(leader_watch, deadline, "the leadership").await - killed;
    let took_member = lost_at(member_watch, deadline, "the membership").await - killed;
    println!(
        "ZooKeeper killed: lock lost after {took:?}, leadership after {took_leader:?}, \
         membership after {took_member:?}"
    );
    for (what, took) in [
        ("the lock", took),
        ("the leadership", took_leader),
        ("the membership", took_member),
    ] {
        assert!(
            took <= TTL + SLACK,
            "{what} was reported lost {took:?} after the kill: past the session timeout"
        );
    }
    assert!(!guard.is_held() && !leadership.is_held() && !membership.is_active());
    assert!(
        !coord.is_live(),
        "no session is vouched for while ZooKeeper is down"
    );

    // While it is down, calls fail in bounded time rather than pretend.
    let down = timeout(Duration::from_secs(15), coord.lock("l2").try_acquire())
        .await
        .expect("a call while ZooKeeper is down returns in bounded time");
    let err = down.expect_err("a lock granted while ZooKeeper is down");
    assert!(err.is_retryable(), "{err:?}");

    // Down past the session timeout, then back on the same port and data.
    sleep_until(killed + DOWN).await;
    server.restart();
    let restarted = Instant::now();
    wait_live(&coord, Duration::from_secs(20)).await;
    println!("live again {:?} after the restart", restarted.elapsed());

    // The coordinator recovers by itself: a lock it never held, with a token above every one
    // from before the crash, and a join.
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
    let membership_again = join_again(&coord, "g", restarted + TTL + Duration::from_secs(5)).await;
    assert!(
        coord
            .members("g")
            .await
            .unwrap()
            .contains(&MemberId::from("survivor")),
        "a member again after the restart"
    );

    // What was reported lost is free: a rival takes the lock and the leadership once the
    // restarted server has expired the old session (a full timeout from the restart, at most).
    // The lost handles are kept on purpose: dropping them would hand the grants back and hide
    // the question.
    let rival = Coordinator::connect(&url, "rival").await.unwrap();
    let within = TTL + Duration::from_secs(4);
    let taken = rival
        .lock("l")
        .acquire_timeout(within)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "lock 'l', reported lost before the restart, is still taken {within:?} later \
                 ({e}): the old session's contender outlived it"
            )
        });
    println!(
        "the rival took the lock {:?} after the restart",
        restarted.elapsed()
    );
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
                 {within:?} later ({e})"
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
async fn a_server_restarted_empty_is_reported_and_a_new_session_begins() {
    if !have_zookeeper() {
        eprintln!("ZooKeeper is not installed: skipping (scripts/test installs it)");
        return;
    }
    let mut server = Server::start();
    let url = server.url_with(SHORT);
    let coord = Coordinator::connect(&url, "phoenix").await.unwrap();
    let membership = coord
        .join_group_create("g", Capabilities::none())
        .await
        .unwrap();
    let guard = coord.lock("l").try_acquire().await.unwrap().expect("free");
    let leadership = coord
        .campaign_timeout("g", Duration::from_secs(10))
        .await
        .unwrap();
    let old_session = {
        let raw = raw_client(&server.hosts()).await;
        owners(&raw, "g", "phoenix", "l").await[0]
    };

    let [lock_watch, leader_watch, member_watch] = [
        loss_time(guard.lost()),
        loss_time(leadership.lost()),
        loss_time(membership.lost()),
    ];
    // A new, empty server on the same port: no znodes, no sessions, zxids from the start.
    let killed = Instant::now();
    server.kill();
    server.wipe_and_restart();
    let restarted = Instant::now();
    println!(
        "ZooKeeper wiped and serving again {:?} later",
        restarted - killed
    );
    let deadline = killed + TTL + SLACK;
    let took = lost_at(lock_watch, deadline, "the lock").await - killed;
    let took_leader = lost_at(leader_watch, deadline, "the leadership").await - killed;
    let took_member = lost_at(member_watch, deadline, "the membership").await - killed;
    println!(
        "lock lost after {took:?}, leadership after {took_leader:?}, membership after \
         {took_member:?}"
    );
    for took in [took, took_leader, took_member] {
        assert!(
            took <= TTL + SLACK,
            "a loss reported {took:?} after the kill"
        );
    }
    assert!(!guard.is_held() && !leadership.is_held() && !membership.is_active());

    // The old session is refused there for ever; the coordinator gives it up and begins
    // another, making the namespace node again.
    wait_live(&coord, Duration::from_secs(20)).await;
    println!("live again {:?} after the restart", restarted.elapsed());
    let raw = raw_client(&server.hosts()).await;
    assert!(
        raw.check_stat("/tooz").await.unwrap().is_some(),
        "the new session made the namespace node again"
    );
    assert!(
        coord.groups().await.unwrap().is_empty(),
        "no group survived the wipe"
    );
    coord.create_group("g").await.unwrap();
    let membership_again = coord.join_group("g", Capabilities::none()).await.unwrap();
    assert!(
        coord
            .members("g")
            .await
            .unwrap()
            .contains(&MemberId::from("phoenix"))
    );
    let guard_again = coord
        .lock("l")
        .try_acquire()
        .await
        .unwrap()
        .expect("the lock is free on the empty server");
    let leadership_again = coord
        .campaign_timeout("g", Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        coord.leader("g").await.unwrap(),
        Some(MemberId::from("phoenix"))
    );
    let owners = owners(&raw, "g", "phoenix", "l").await;
    assert!(
        owners[0] != 0 && owners[0] != old_session && owners.iter().all(|o| *o == owners[0]),
        "one new session owns everything ({owners:x?}; the old one was {old_session:x})"
    );
    // Exclusive on the new session too.
    let rival = Coordinator::connect(&url, "rival").await.unwrap();
    assert!(rival.lock("l").try_acquire().await.unwrap().is_none());
    assert!(rival.try_campaign("g").await.unwrap().is_none());
    // Kept alive by heartbeats past a whole session timeout.
    sleep(TTL + Duration::from_millis(500)).await;
    assert!(guard_again.is_held() && leadership_again.is_held() && membership_again.is_active());

    drop((guard, leadership, membership));
    guard_again.release().await.unwrap();
    leadership_again.resign().await.unwrap();
    membership_again.leave().await.unwrap();
    rival.stop().await.unwrap();
    coord.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_expired_by_the_server_while_cut_off_is_reported_and_replaced() {
    if !have_zookeeper() {
        eprintln!("ZooKeeper is not installed: skipping (scripts/test installs it)");
        return;
    }
    let server = Server::start();
    let proxy = FaultProxy::start(SocketAddr::from((Ipv4Addr::LOCALHOST, server.port()))).await;
    // timeout=3: heartbeats every second, local leases of 2.7 s.
    let session_timeout = Duration::from_secs(3);
    let coord = Coordinator::connect(
        &format!("zookeeper://127.0.0.1:{}?timeout=3", proxy.port()),
        "cutoff",
    )
    .await
    .unwrap();
    let membership = coord
        .join_group_create("g", Capabilities::none())
        .await
        .unwrap();
    let guard = coord.lock("l").try_acquire().await.unwrap().expect("free");
    let leadership = coord
        .campaign_timeout("g", Duration::from_secs(10))
        .await
        .unwrap();
    // The raw client talks to the server directly: the partition does not touch it.
    let raw = raw_client(&server.hosts()).await;
    let old_session = owners(&raw, "g", "cutoff", "l").await[0];
    let old_hex = format!("{old_session:x}");
    // (`dump` lists the sessions that own ephemeral nodes; the check below is only made if it
    // shows ours in the form looked for.)
    let dumped = server
        .four_letter_word("dump")
        .is_some_and(|dump| dump.contains(&old_hex));

    let [lock_watch, leader_watch, member_watch] = [
        loss_time(guard.lost()),
        loss_time(leadership.lost()),
        loss_time(membership.lost()),
    ];
    proxy.set(Fault::Blackhole);
    let cut = Instant::now();
    // The server expires the session (a session timeout after it last heard from the client,
    // within a tick), deleting its ephemeral nodes.
    let member_node = "/tooz/g/cutoff";
    let freed_at = timeout(session_timeout + Duration::from_secs(5), async {
        while raw.check_stat(member_node).await.unwrap().is_some() {
            sleep(Duration::from_millis(10)).await;
        }
        Instant::now()
    })
    .await
    .expect("the server expires the cut-off session");
    let deadline = cut + session_timeout + SLACK;
    let lost = [
        ("the lock", lost_at(lock_watch, deadline, "the lock").await),
        (
            "the leadership",
            lost_at(leader_watch, deadline, "the leadership").await,
        ),
        (
            "the membership",
            lost_at(member_watch, deadline, "the membership").await,
        ),
    ];
    for (what, at) in lost {
        assert!(
            at < freed_at,
            "{what} was reported lost {:?} after the server expired the session",
            at - freed_at
        );
        println!(
            "{what} lost {:?} after the cut; the server freed the member {:?} after it",
            at - cut,
            freed_at - cut
        );
    }
    assert!(!guard.is_held() && !leadership.is_held() && !membership.is_active());
    assert!(!coord.is_live());

    // Cut off well past the expiry, then healed.
    sleep_until(cut + 2 * session_timeout).await;
    if dumped {
        let dump = server.four_letter_word("dump").unwrap_or_default();
        assert!(
            !dump.contains(&old_hex),
            "the server still knows session {old_hex}:\n{dump}"
        );
    }
    proxy.set(Fault::Forward);
    let healed = Instant::now();
    wait_live(&coord, Duration::from_secs(20)).await;
    println!(
        "live again {:?} after the partition healed",
        healed.elapsed()
    );

    // A new session: everything works again, on nodes it owns.
    let guard_again = coord
        .lock("l")
        .acquire_timeout(Duration::from_secs(10))
        .await
        .unwrap();
    assert!(
        guard_again.token() > guard.token(),
        "tokens grow across sessions ({} after {})",
        guard_again.token(),
        guard.token()
    );
    let membership_again = join_again(&coord, "g", healed + Duration::from_secs(10)).await;
    let leadership_again = coord
        .campaign_timeout("g", Duration::from_secs(10))
        .await
        .unwrap();
    assert!(leadership_again.token() > leadership.token());
    let owners = owners(&raw, "g", "cutoff", "l").await;
    assert!(
        owners[0] != 0 && owners[0] != old_session && owners.iter().all(|o| *o == owners[0]),
        "one new session owns everything ({owners:x?}; the expired one was {old_session:x})"
    );
    // Kept alive through the healed proxy past a whole session timeout.
    sleep(session_timeout + Duration::from_millis(500)).await;
    assert!(guard_again.is_held() && leadership_again.is_held() && membership_again.is_active());

    drop((guard, leadership, membership));
    guard_again.release().await.unwrap();
    leadership_again.resign().await.unwrap();
    membership_again.leave().await.unwrap();
    coord.stop().await.unwrap();
    drop(proxy);
}
