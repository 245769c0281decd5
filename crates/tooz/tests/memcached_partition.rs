//! A memcached holder cut off by a partition (the fault proxy drops every byte and keeps the
//! connections open, as a real partition looks): its `lost()` must resolve, and `is_held()`
//! turn false, strictly before the server lets the key expire — watched over a direct
//! connection that the partition does not touch — and before a rival on a direct connection
//! is granted the lock. memcached expires with one-second precision (an item set with a TTL of
//! 2 s may go after 1 s), which the driver's lease accounts for. The same for a membership: the
//! member key, and a peer's view of the group. Needs a `memcached://` URL in `TOOZ_TEST_URLS`
//! (scripts/test sets it).

#![cfg(feature = "memcached")]

#[path = "support/fault_proxy.rs"]
mod fault_proxy;
#[path = "support/memcached_raw.rs"]
mod memcached_raw;
#[path = "support/memcached_url.rs"]
mod memcached_url;

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fault_proxy::{Fault, FaultProxy};
use memcached_raw::Raw;
use tokio::time::{Instant, sleep, timeout};
use tooz::{Capabilities, Coordinator, MemberId};

/// The server's `HOST:PORT`.
fn server() -> Option<String> {
    let url = url::Url::parse(&memcached_url::memcached_url()?).expect("a memcached URL");
    Some(format!(
        "{}:{}",
        url.host_str().unwrap_or("127.0.0.1"),
        url.port().unwrap_or(11211)
    ))
}

/// A prefix no other run on the shared server uses (memcached has no namespaces).
fn run_id(test: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "partition-{test}-{}-{}",
        std::process::id(),
        nanos % 1_000_000_000
    )
}

/// Both futures to completion (no extra dependency for `join!` on two futures).
async fn futures_join<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    tokio::join!(a, b)
}

/// Polls `key` over `raw` until it is gone; when.
async fn gone(raw: &mut Raw, key: &str) -> Instant {
    loop {
        if !raw.exists(key).await {
            return Instant::now();
        }
        sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_holder_knows_it_lost_the_lock_before_the_key_expires() {
    let Some(server) = server() else {
        eprintln!("no memcached:// URL in TOOZ_TEST_URLS: skipping (scripts/test runs it)");
        return;
    };
    let upstream: SocketAddr = server.parse().expect("a loopback address");
    let run = run_id("lock");
    let mut direct = Raw::connect_to(&server).await;
    // A rival on a connection the partition does not touch, trying all along.
    let rival_url = format!("memcached://{server}?timeout=2&lock_timeout=2");
    let rival = Coordinator::connect(&rival_url, format!("{run}-rival").as_str())
        .await
        .unwrap();

    let rounds = 5;
    let mut margins = Vec::new();
    for round in 0..rounds {
        let proxy = FaultProxy::start(upstream).await;
        let url = format!(
            "memcached://127.0.0.1:{}?timeout=2&lock_timeout=2",
            proxy.port()
        );
        let holder = Coordinator::connect(&url, format!("{run}-holder-{round}").as_str())
            .await
            .unwrap();
        let name = format!("{run}-l{round}");
        let guard = holder.lock(name.as_str()).acquire().await.unwrap();
        let key = format!("__TOOZ_LOCK_{name}");
        assert!(direct.exists(&key).await, "the lock key is on the server");
        // Cut at a different point of the heartbeat cycle (a third of a second) each round.
        sleep(Duration::from_millis(70 * round)).await;
        proxy.set(Fault::Blackhole);
        let cut = Instant::now();

        let watch_loss = async {
            guard.lost().await;
            let at = Instant::now();
            (at, guard.is_held())
        };
        let rival_takes = async {
            loop {
                if let Some(taken) = rival.lock(name.as_str()).try_acquire().await.unwrap() {
                    let at = Instant::now();
                    assert!(
                        taken.token() > guard.token(),
                        "round {round}: the rival's token {} does not exceed the holder's {}",
                        taken.token(),
                        guard.token()
                    );
                    taken.release().await.unwrap();
                    return at;
                }
                sleep(Duration::from_millis(2)).await;
            }
        };
        let (((lost_at, held_after_loss), expired_at), rival_at) = timeout(
            Duration::from_secs(10),
            futures_join(
                futures_join(watch_loss, gone(&mut direct, &key)),
                rival_takes,
            ),
        )
        .await
        .expect("the loss, the expiry and the rival's grant all happen within the lock timeout");
        assert!(!held_after_loss, "is_held() is false once lost() fired");
        assert!(
            lost_at < rival_at,
            "round {round}: the rival was granted the lock {:?} before the holder's lost() fired",
            lost_at - rival_at
        );
        let margin = expired_at
            .checked_duration_since(lost_at)
            .unwrap_or_else(|| {
                panic!(
                    "round {round}: lost() fired {:?} after the cut, {:?} AFTER the key expired",
                    lost_at - cut,
                    lost_at - expired_at
                )
            });
        println!(
            "round {round}: lost {:?} after the cut, key expired {:?} after the cut, \
             rival granted {:?} after the cut: margin {margin:?}",
            lost_at - cut,
            expired_at - cut,
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
        "loss before expiry, {rounds} rounds: min margin {:?}, max {:?}",
        margins[0],
        margins[margins.len() - 1]
    );
}

/// The same for a membership: the member key set by the heartbeats expires (up to a second
/// early) once they stop getting through; the cut-off member must know it is out before the
/// key goes, and so before any peer stops listing it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_member_knows_it_left_before_its_peers_drop_it() {
    let Some(server) = server() else {
        eprintln!("no memcached:// URL in TOOZ_TEST_URLS: skipping (scripts/test runs it)");
        return;
    };
    let upstream: SocketAddr = server.parse().expect("a loopback address");
    let run = run_id("member");
    let group = format!("{run}-g");
    let mut direct = Raw::connect_to(&server).await;
    let peer = Coordinator::connect(
        &format!("memcached://{server}?timeout=2"),
        format!("{run}-peer").as_str(),
    )
    .await
    .unwrap();
    peer.create_group(group.as_str()).await.unwrap();

    for round in 0..3u64 {
        let proxy = FaultProxy::start(upstream).await;
        let url = format!("memcached://127.0.0.1:{}?timeout=2", proxy.port());
        let member = MemberId::from(format!("{run}-member-{round}"));
        let coord = Coordinator::connect(&url, member.clone()).await.unwrap();
        let membership = coord
            .join_group(group.as_str(), Capabilities::none())
            .await
            .unwrap();
        assert!(
            peer.members(group.as_str())
                .await
                .unwrap()
                .contains(&member)
        );
        let key = format!("_TOOZ_MEMBER_{member}");
        sleep(Duration::from_millis(110 * round)).await;
        proxy.set(Fault::Blackhole);
        let cut = Instant::now();

        let watch_loss = async {
            membership.lost().await;
            let at = Instant::now();
            (at, membership.is_active())
        };
        let peer_drops = async {
            loop {
                if !peer
                    .members(group.as_str())
                    .await
                    .unwrap()
                    .contains(&member)
                {
                    return Instant::now();
                }
                sleep(Duration::from_millis(5)).await;
            }
        };
        let (((lost_at, active_after_loss), expired_at), dropped_at) = timeout(
            Duration::from_secs(10),
            futures_join(
                futures_join(watch_loss, gone(&mut direct, &key)),
                peer_drops,
            ),
        )
        .await
        .expect("the loss, the expiry and the peer's view all change within the timeout");
        assert!(!active_after_loss, "is_active() is false once lost() fired");
        assert!(
            lost_at < dropped_at,
            "round {round}: a peer stopped listing the member {:?} before its lost() fired",
            lost_at - dropped_at
        );
        assert!(
            lost_at < expired_at,
            "round {round}: lost() fired {:?} after the cut, {:?} AFTER the member key expired",
            lost_at - cut,
            lost_at - expired_at
        );
        println!(
            "round {round}: lost {:?} after the cut, member key expired {:?} after it, \
             peer dropped it {:?} after it",
            lost_at - cut,
            expired_at - cut,
            dropped_at - cut
        );
        drop(membership);
        drop(coord);
        drop(proxy);
    }
    // Every member's key expired: a peer lists none of them.
    assert_eq!(
        peer.members(group.as_str())
            .await
            .unwrap()
            .into_iter()
            .collect::<Vec<_>>(),
        Vec::<MemberId>::new()
    );
    // Cleanup only: the dead members' entries may still be in the group's map.
    if let Err(e) = peer.delete_group(group.as_str()).await {
        println!("group {group} left behind: {e}");
    }
    peer.stop().await.unwrap();
}
