//! A ZooKeeper holder cut off by a partition: it talks to ZooKeeper through the fault proxy,
//! which then drops every byte and keeps the connections open, as a real partition looks (no
//! FIN, no RST). ZooKeeper bounds the cut-off session itself: it expires it a session timeout
//! after it last heard from the client (within a tick), deleting the session's ephemeral nodes
//! — the lock contender, the member, the leader contender. So the holder's `lost()` must
//! resolve, and `is_held()` turn false, strictly before ZooKeeper deletes the contender
//! (watched by a raw client of the test's, which the partition does not touch) and before a
//! rival connected directly is granted the lock (no overlap); and the rival must be granted
//! it — woken by its watch on the deleted contender — within about the session timeout of the
//! cut. The same for a membership (a peer's listing) and a leadership (a peer's campaign).
//! And latency well below the session timeout (every byte late, none lost) costs nothing:
//! no loss is reported and no rival gets in.
//!
//! Every test runs a throw-away ZooKeeper of its own (`support/zookeeper_server.rs`).

#![cfg(feature = "zookeeper")]

#[path = "support/fault_proxy.rs"]
mod fault_proxy;
#[path = "support/zookeeper_server.rs"]
mod zookeeper_server;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use fault_proxy::{Fault, FaultProxy};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, timeout};
use tooz::{Capabilities, Coordinator, MemberId};
use zookeeper_client::Client;
use zookeeper_server::{Server, have_zookeeper};

/// `timeout=3`: a session timeout of 3 s, heartbeats every second, local leases of 2.7 s.
const TIMEOUT: &str = "timeout=3";
const TTL: Duration = Duration::from_secs(3);

/// ZooKeeper must free what the holder held within this of the cut: the session timeout after
/// it last heard from the client (at the cut at the latest), a tick (500 ms on the kit's
/// servers) of expiry granularity, and slack for a loaded machine.
const FREED_WITHIN: Duration = Duration::from_secs(6);
/// The rival must be granted the lock within this of the cut.
const RIVAL_WITHIN: Duration = Duration::from_secs(8);

/// The server's client port, for a proxy in front of it.
fn upstream(server: &Server) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, server.port()))
}

/// A coordinator of `member` talking to the server through `proxy`.
async fn through(proxy: &FaultProxy, member: impl Into<MemberId>) -> Coordinator {
    let url = format!("zookeeper://127.0.0.1:{}?{TIMEOUT}", proxy.port());
    Coordinator::connect(&url, member).await.unwrap()
}

/// A client of the test's own, straight to the server.
async fn raw_client(server: &Server) -> Client {
    Client::connector()
        .with_session_timeout(Duration::from_secs(10))
        .connect(&server.hosts())
        .await
        .unwrap_or_else(|e| panic!("a raw client: {e}"))
}

/// The path of the one contender under lock node `dir` (the holder's).
async fn contender(raw: &Client, dir: &str) -> String {
    let children = raw
        .list_children(dir)
        .await
        .unwrap_or_else(|e| panic!("{dir}: {e}"));
    assert_eq!(
        children.len(),
        1,
        "{dir}: the holder's contender: {children:?}"
    );
    format!("{dir}/{}", children[0])
}

/// Polls (on the raw client, which the partition does not touch) until `path` is gone; when.
async fn gone(raw: &Client, path: &str) -> Instant {
    loop {
        let found = raw
            .check_stat(path)
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        if found.is_none() {
            return Instant::now();
        }
        sleep(Duration::from_millis(5)).await;
    }
}

/// Whether `lost` resolved, seen by a task of its own.
fn loss_watcher(lost: impl Future<Output = ()> + Send + 'static) -> JoinHandle<()> {
    tokio::spawn(lost)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_holder_knows_it_lost_the_lock_before_zookeeper_frees_it() {
    if !have_zookeeper() {
        eprintln!("ZooKeeper is not installed: skipping (scripts/test installs it)");
        return;
    }
    let server = Server::start();
    let raw = raw_client(&server).await;
    // A rival on a connection the partition does not touch.
    let rival = Coordinator::connect(&server.url_with(TIMEOUT), "rival")
        .await
        .unwrap();

    let rounds = 3u32;
    let mut margins = Vec::new();
    for round in 0..rounds {
        let proxy = FaultProxy::start(upstream(&server)).await;
        let holder = through(&proxy, format!("holder-{round}")).await;
        assert_eq!(holder.membership_timeout(), TTL);
        let name = format!("l{round}");
        let guard = holder
            .lock(name.as_str())
            .try_acquire()
            .await
            .unwrap()
            .expect("free");
        let node = contender(&raw, &format!("/tooz/locks/{name}")).await;
        assert!(
            rival
                .lock(name.as_str())
                .try_acquire()
                .await
                .unwrap()
                .is_none(),
            "round {round}: the lock is held"
        );
        // Cut at a different point of the heartbeat cycle each round.
        sleep(Duration::from_millis(330 * u64::from(round))).await;
        proxy.set(Fault::Blackhole);
        let cut = Instant::now();

        let watch_loss = async {
            guard.lost().await;
            (Instant::now(), guard.is_held())
        };
        // The rival waits for it (woken by the contender's deletion).
        let rival_takes = async {
            let taken = rival
                .lock(name.as_str())
                .acquire_timeout(Duration::from_secs(15))
                .await
                .unwrap_or_else(|e| panic!("round {round}: the rival is never granted it: {e}"));
            let at = Instant::now();
            assert!(
                taken.token() > guard.token(),
                "round {round}: the rival's token {} does not exceed the holder's {}",
                taken.token(),
                guard.token()
            );
            taken.release().await.unwrap();
            at
        };
        let (((lost_at, held_after_loss), freed_at), rival_at) =
            timeout(Duration::from_secs(20), async {
                tokio::join!(
                    async { tokio::join!(watch_loss, gone(&raw, &node)) },
                    rival_takes
                )
            })
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "round {round}: the loss, ZooKeeper freeing the lock and the rival's grant \
                     did not all happen within 20 s of the cut"
                )
            });
        assert!(!held_after_loss, "is_held() is false once lost() fired");
        assert!(
            lost_at < rival_at,
            "round {round}: the rival was granted the lock {:?} before the holder's lost() fired",
            lost_at - rival_at
        );
        let margin = freed_at.checked_duration_since(lost_at).unwrap_or_else(|| {
            panic!(
                "round {round}: lost() fired {:?} after the cut, {:?} AFTER ZooKeeper expired \
                 the session and freed the lock",
                lost_at - cut,
                lost_at - freed_at
            )
        });
        assert!(
            lost_at - cut < TTL,
            "round {round}: lost() fired {:?} after the cut: more than the session timeout \
             after the last heartbeat",
            lost_at - cut
        );
        assert!(
            freed_at - cut < FREED_WITHIN,
            "round {round}: ZooKeeper freed the lock only {:?} after the cut: is the session \
             timeout timeout=3?",
            freed_at - cut
        );
        assert!(
            rival_at - cut < RIVAL_WITHIN,
            "round {round}: the rival was granted the lock only {:?} after the cut",
            rival_at - cut
        );
        println!(
            "round {round}: lost {:?} after the cut, freed by ZooKeeper {:?} after it, rival \
             granted {:?} after it: margin {margin:?}",
            lost_at - cut,
            freed_at - cut,
            rival_at - cut
        );
        margins.push(margin);
        drop(guard);
        drop(holder);
        drop(proxy);
    }
    rival.stop().await.unwrap();
    margins.sort();
    println!(
        "loss before ZooKeeper freed the lock, {rounds} rounds: min margin {:?}, max {:?}",
        margins[0],
        margins[margins.len() - 1]
    );
}

/// The same for a membership and a leadership: once the heartbeats stop getting through, the
/// cut-off member must know it is out before a peer stops listing it, and the cut-off leader
/// that it leads no more before a peer is elected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_member_and_leader_know_it_before_their_peers_do() {
    if !have_zookeeper() {
        eprintln!("ZooKeeper is not installed: skipping (scripts/test installs it)");
        return;
    }
    let server = Server::start();
    let group = "g";
    let raw = raw_client(&server).await;
    let peer = Coordinator::connect(&server.url_with(TIMEOUT), "peer")
        .await
        .unwrap();
    peer.create_group(group).await.unwrap();

    for round in 0..2u64 {
        let proxy = FaultProxy::start(upstream(&server)).await;
        let member = MemberId::from(format!("member-{round}"));
        let coord = through(&proxy, member.clone()).await;
        let membership = coord.join_group(group, Capabilities::none()).await.unwrap();
        let leadership = coord
            .campaign_timeout(group, Duration::from_secs(10))
            .await
            .unwrap();
        assert!(peer.members(group).await.unwrap().contains(&member));
        assert_eq!(peer.leader(group).await.unwrap(), Some(member.clone()));
        // The member node and the leader contender are ephemeral nodes of one session.
        let member_node = format!("/tooz/{group}/member-{round}");
        let leader_node = contender(&raw, &format!("/tooz/{group}/leader")).await;
        let (member_stat, leader_stat) = (
            raw.check_stat(&member_node)
                .await
                .unwrap()
                .expect("the member node"),
            raw.check_stat(&leader_node)
                .await
                .unwrap()
                .expect("the leader contender"),
        );
        assert!(
            member_stat.ephemeral_owner != 0
                && member_stat.ephemeral_owner == leader_stat.ephemeral_owner,
            "round {round}: the member and the leader contender are the session's"
        );
        sleep(Duration::from_millis(450 * round)).await;
        proxy.set(Fault::Blackhole);
        let cut = Instant::now();

        let member_loss = async {
            membership.lost().await;
            (Instant::now(), membership.is_active())
        };
        let leader_loss = async {
            leadership.lost().await;
            (Instant::now(), leadership.is_held())
        };
        let peer_drops = async {
            loop {
                if !peer.members(group).await.unwrap().contains(&member) {
                    return Instant::now();
                }
                sleep(Duration::from_millis(5)).await;
            }
        };
        let peer_leads = async {
            let led = peer
                .campaign_timeout(group, Duration::from_secs(15))
                .await
                .unwrap_or_else(|e| panic!("round {round}: the peer is never elected: {e}"));
            let at = Instant::now();
            assert!(led.token() > leadership.token());
            led.resign().await.unwrap();
            at
        };
        let (((member_lost, active_after), (leader_lost, leads_after)), (dropped_at, led_at)) =
            timeout(Duration::from_secs(20), async {
                tokio::join!(async { tokio::join!(member_loss, leader_loss) }, async {
                    tokio::join!(peer_drops, peer_leads)
                })
            })
            .await
            .unwrap_or_else(|_| {
                panic!("round {round}: the losses and the peer's view did not all change in 20 s")
            });
        assert!(!active_after, "is_active() is false once lost() fired");
        assert!(!leads_after, "is_held() is false once lost() fired");
        assert!(
            member_lost < dropped_at,
            "round {round}: a peer stopped listing the member {:?} before its lost() fired",
            member_lost - dropped_at
        );
        assert!(
            leader_lost < led_at,
            "round {round}: a peer was elected {:?} before the cut-off leader's lost() fired",
            leader_lost - led_at
        );
        assert!(
            member_lost - cut < TTL && leader_lost - cut < TTL,
            "round {round}: losses reported {:?} and {:?} after the cut: past the session \
             timeout",
            member_lost - cut,
            leader_lost - cut
        );
        assert!(
            dropped_at - cut < FREED_WITHIN,
            "round {round}: the peer still listed the member {:?} after the cut",
            dropped_at - cut
        );
        println!(
            "round {round}: membership lost {:?} and leadership {:?} after the cut; the peer \
             dropped the member {:?} and was elected {:?} after it",
            member_lost - cut,
            leader_lost - cut,
            dropped_at - cut,
            led_at - cut
        );
        drop(membership);
        drop(leadership);
        drop(coord);
        drop(proxy);
    }
    assert!(
        peer.members(group).await.unwrap().is_empty(),
        "no cut-off member is listed any more"
    );
    peer.delete_group(group).await.unwrap();
    peer.stop().await.unwrap();
}

/// Latency well below the session timeout — every byte 150 ms late each way (a round trip a
/// tenth of the session timeout, or a fifth when bytes queue behind each other), for three
/// session timeouts — is no partition: heartbeats still renew in time, nothing is reported
/// lost, nobody else gets the lock or the leadership, and calls keep working. (The client
/// gives a connection up after 40% of the session timeout without an answer: latency near
/// that would be a partition of its own.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_below_the_session_timeout_loses_nothing() {
    if !have_zookeeper() {
        eprintln!("ZooKeeper is not installed: skipping (scripts/test installs it)");
        return;
    }
    let server = Server::start();
    let proxy = FaultProxy::start(upstream(&server)).await;
    let holder = through(&proxy, "slow").await;
    let rival = Coordinator::connect(&server.url_with(TIMEOUT), "rival")
        .await
        .unwrap();
    let membership = holder
        .join_group_create("g", Capabilities::none())
        .await
        .unwrap();
    let guard = holder.lock("l").try_acquire().await.unwrap().expect("free");
    let leadership = holder
        .campaign_timeout("g", Duration::from_secs(10))
        .await
        .unwrap();
    let watchers = [
        ("the lock", loss_watcher(guard.lost())),
        ("the leadership", loss_watcher(leadership.lost())),
        ("the membership", loss_watcher(membership.lost())),
    ];

    proxy.set(Fault::Delay(Duration::from_millis(150)));
    let slowed = Instant::now();
    // Calls work, slowly.
    let other = holder
        .lock("other")
        .acquire_timeout(Duration::from_secs(10))
        .await
        .unwrap();
    assert!(
        holder
            .members("g")
            .await
            .unwrap()
            .contains(&MemberId::from("slow"))
    );
    // Three session timeouts of slowness: nine heartbeats or so.
    while slowed.elapsed() < 3 * TTL {
        assert!(
            rival.lock("l").try_acquire().await.unwrap().is_none(),
            "a rival took the lock {:?} into the slowness",
            slowed.elapsed()
        );
        assert_eq!(
            rival.leader("g").await.unwrap(),
            Some(MemberId::from("slow")),
            "the leader changed {:?} into the slowness",
            slowed.elapsed()
        );
        for (what, watcher) in &watchers {
            assert!(
                !watcher.is_finished(),
                "{what} was reported lost {:?} into the slowness",
                slowed.elapsed()
            );
        }
        sleep(Duration::from_millis(500)).await;
    }
    assert!(guard.is_held() && other.is_held() && leadership.is_held() && membership.is_active());
    assert!(holder.is_live());
    assert!(
        rival
            .members("g")
            .await
            .unwrap()
            .contains(&MemberId::from("slow"))
    );

    // Back to normal: still all held.
    proxy.set(Fault::Forward);
    sleep(TTL / 2).await;
    for (what, watcher) in &watchers {
        assert!(!watcher.is_finished(), "{what} was reported lost");
    }
    other.release().await.unwrap();
    guard.release().await.unwrap();
    leadership.resign().await.unwrap();
    membership.leave().await.unwrap();
    holder.stop().await.unwrap();
    rival.stop().await.unwrap();
    drop(proxy);
}

/// A killed connection (every connection reset, as a restarted load balancer or a dropped
/// NAT entry does) is not a lost session: the client connects again and resumes the same
/// session, which ZooKeeper kept, with every node on it. Nothing is reported lost, and the
/// holder's contender is the same node afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_connection_resumes_the_session_and_loses_nothing() {
    if !have_zookeeper() {
        eprintln!("ZooKeeper is not installed: skipping (scripts/test installs it)");
        return;
    }
    let server = Server::start();
    let proxy = FaultProxy::start(upstream(&server)).await;
    let holder = through(&proxy, "reset").await;
    let rival = Coordinator::connect(&server.url_with(TIMEOUT), "rival")
        .await
        .unwrap();
    let raw = raw_client(&server).await;
    let membership = holder
        .join_group_create("g", Capabilities::none())
        .await
        .unwrap();
    let guard = holder.lock("l").try_acquire().await.unwrap().expect("free");
    let before = contender(&raw, "/tooz/locks/l").await;
    let watchers = [
        ("the lock", loss_watcher(guard.lost())),
        ("the membership", loss_watcher(membership.lost())),
    ];
    for _ in 0..3 {
        proxy.set(Fault::Reset);
        sleep(Duration::from_millis(200)).await;
        proxy.set(Fault::Forward);
        sleep(TTL).await;
    }
    for (what, watcher) in &watchers {
        assert!(!watcher.is_finished(), "{what} was reported lost");
    }
    assert!(guard.is_held());
    assert_eq!(
        contender(&raw, "/tooz/locks/l").await,
        before,
        "the same contender"
    );
    assert!(rival.lock("l").try_acquire().await.unwrap().is_none());
    assert!(
        rival
            .members("g")
            .await
            .unwrap()
            .contains(&MemberId::from("reset"))
    );
    guard.release().await.unwrap();
    membership.leave().await.unwrap();
    holder.stop().await.unwrap();
    rival.stop().await.unwrap();
}

/// A release that never reaches ZooKeeper (the partition swallows it; the session outlives
/// the partition) must not leave the holder's contender in the queue for as long as the
/// session lives — which, with heartbeats renewing it, would be for ever: nobody, Rust or
/// Python, could take the lock again. The next heartbeats withdraw it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_lost_in_a_partition_does_not_block_the_lock_for_ever() {
    if !have_zookeeper() {
        eprintln!("ZooKeeper is not installed: skipping (scripts/test installs it)");
        return;
    }
    // Sessions of at least 10 s, requests bounded by 3 s: the release times out while the
    // session survives the cut.
    let server = Server::start_with(&["minSessionTimeout=10000"]);
    let proxy = FaultProxy::start(upstream(&server)).await;
    let holder = through(&proxy, "holder").await;
    assert_eq!(holder.membership_timeout(), Duration::from_secs(10));
    let rival = Coordinator::connect(&server.url_with(TIMEOUT), "rival")
        .await
        .unwrap();
    let guard = holder.lock("l").try_acquire().await.unwrap().expect("free");
    proxy.set(Fault::Blackhole);
    let released = guard.release().await;
    assert!(
        released.is_err(),
        "the release cannot have been answered: {released:?}"
    );
    sleep(Duration::from_secs(1)).await;
    proxy.set(Fault::Forward);
    let healed = Instant::now();
    let taken = rival
        .lock("l")
        .acquire_timeout(Duration::from_secs(15))
        .await
        .expect("the lock is free again once the holder's heartbeats resume");
    eprintln!(
        "the rival took the lock {:?} after the heal",
        healed.elapsed()
    );
    taken.release().await.unwrap();
    holder.stop().await.unwrap();
    rival.stop().await.unwrap();
}
