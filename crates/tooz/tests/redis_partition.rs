//! A Redis holder cut off by a partition (the fault proxy drops every byte and keeps the
//! connections open, as a real partition looks): its `lost()` must resolve, and `is_held()`
//! turn false, strictly before the server lets the lock key expire — watched through a direct
//! connection that the partition does not touch. And a membership lost here must not live on
//! as a ghost on the server. Needs a `redis://` URL in `TOOZ_TEST_URLS` (scripts/test sets it).

#![cfg(feature = "redis")]

#[path = "support/fault_proxy.rs"]
mod fault_proxy;
#[path = "support/redis_url.rs"]
mod redis_url;

use std::time::Duration;

use fault_proxy::{Fault, FaultProxy};
use tokio::time::{Instant, sleep, timeout};
use tooz::{Capabilities, Coordinator, Error};

fn redis_url() -> Option<url::Url> {
    redis_url::redis_url().map(|u| url::Url::parse(&u).expect("a redis URL"))
}

fn namespace(test: &str) -> String {
    format!("partition-{test}-{}", std::process::id())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_holder_knows_it_lost_the_lock_before_the_key_expires() {
    let Some(server) = redis_url() else {
        eprintln!("no redis:// URL in TOOZ_TEST_URLS: skipping (scripts/test runs it)");
        return;
    };
    let host = server.host_str().unwrap_or("127.0.0.1").to_owned();
    let port = server.port().unwrap_or(6379);
    let upstream = format!("{host}:{port}")
        .parse()
        .expect("a loopback address");
    let ns = namespace("lock");
    let client = redis::Client::open(format!("redis://{host}:{port}")).unwrap();
    let mut direct = client.get_multiplexed_async_connection().await.unwrap();
    // A rival on a connection the partition does not touch, trying all along.
    let rival_url = format!("redis://{host}:{port}?timeout=2&lock_timeout=2&namespace={ns}");
    let rival = Coordinator::connect(&rival_url, "rival").await.unwrap();

    let mut margins = Vec::new();
    for round in 0..5 {
        let proxy = FaultProxy::start(upstream).await;
        let url = format!(
            "redis://127.0.0.1:{}?timeout=2&lock_timeout=2&namespace={ns}",
            proxy.port()
        );
        let holder = Coordinator::connect(&url, format!("holder-{round}").as_str())
            .await
            .unwrap();
        let name = format!("l{round}");
        let guard = holder.lock(name.as_str()).acquire().await.unwrap();
        let key = format!("{ns}_{name}_lock");
        // Cut at a different point of the heartbeat cycle each round.
        sleep(Duration::from_millis(150 * round)).await;
        proxy.set(Fault::Blackhole);
        let cut = Instant::now();

        let watch_expiry = async {
            loop {
                let exists: bool = redis::cmd("EXISTS")
                    .arg(&key)
                    .query_async(&mut direct)
                    .await
                    .unwrap();
                if !exists {
                    return Instant::now();
                }
                sleep(Duration::from_millis(2)).await;
            }
        };
        let watch_loss = async {
            guard.lost().await;
            let at = Instant::now();
            (at, guard.is_held())
        };
        let rival_takes = async {
            loop {
                if let Some(taken) = rival.lock(name.as_str()).try_acquire().await.unwrap() {
                    let at = Instant::now();
                    assert!(taken.token() > guard.token());
                    taken.release().await.unwrap();
                    return at;
                }
                sleep(Duration::from_millis(2)).await;
            }
        };
        let (((lost_at, held_after_loss), expired_at), rival_at) = timeout(
            Duration::from_secs(10),
            futures_join(futures_join(watch_loss, watch_expiry), rival_takes),
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
            "round {round}: lost {:?} after the cut, key expired {:?} after the cut: margin {margin:?}",
            lost_at - cut,
            expired_at - cut
        );
        margins.push(margin);
        drop(guard);
        drop(holder);
        drop(proxy);
    }
    rival.stop().await.unwrap();
    margins.sort();
    println!(
        "loss before expiry, 5 rounds: min margin {:?}, max {:?}",
        margins[0], margins[4]
    );
}

/// Both futures to completion (no extra dependency for `join!` on two futures).
async fn futures_join<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    tokio::join!(a, b)
}

/// A membership lost locally while the server still lists it is left on the next round
/// trip; a later heartbeat must not keep it listed for everyone forever, and re-joining works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_membership_lost_here_does_not_linger_as_a_ghost() {
    let Some(server) = redis_url() else {
        eprintln!("no redis:// URL in TOOZ_TEST_URLS: skipping (scripts/test runs it)");
        return;
    };
    let host = server.host_str().unwrap_or("127.0.0.1");
    let port = server.port().unwrap_or(6379);
    let url = format!(
        "redis://{host}:{port}?timeout=1&namespace={}",
        namespace("ghost")
    );
    let peer = Coordinator::connect(&url, "peer").await.unwrap();
    peer.create_group("g").await.unwrap();

    // Case 1: the local lease (0.9 s) runs out, the server's beat key (1 s) not yet; the next
    // heartbeat gets through in that window.
    let member = Coordinator::builder(&url, "m")
        .manual_heartbeat()
        .connect()
        .await
        .unwrap();
    let membership = member.join_group("g", Capabilities::none()).await.unwrap();
    timeout(Duration::from_millis(1500), membership.lost())
        .await
        .expect("the membership is lost when the local lease runs out");
    member.heartbeat().await.unwrap();
    assert!(
        !peer.members("g").await.unwrap().contains(&"m".into()),
        "a member that believes it left is not listed by its peers"
    );
    let again = member.join_group("g", Capabilities::none()).await;
    assert!(again.is_ok(), "re-joining after a loss works: {again:?}");
    member.stop().await.unwrap();

    // Case 2: the beat key expires on the server too; the heartbeat that comes afterwards
    // begins a new session, and must not bring the old membership back to life.
    let member = Coordinator::builder(&url, "m2")
        .manual_heartbeat()
        .connect()
        .await
        .unwrap();
    let membership = member.join_group("g", Capabilities::none()).await.unwrap();
    sleep(Duration::from_millis(1300)).await;
    assert!(!membership.is_active());
    member.heartbeat().await.unwrap();
    assert!(
        !peer.members("g").await.unwrap().contains(&"m2".into()),
        "a restarted session does not revive the old membership"
    );
    match member.join_group("g", Capabilities::none()).await {
        Ok(_) => {}
        Err(Error::MemberAlreadyExist { .. }) => panic!("the ghost blocks re-joining"),
        Err(e) => panic!("re-join failed: {e}"),
    }
    assert!(peer.members("g").await.unwrap().contains(&"m2".into()));
    member.stop().await.unwrap();
    peer.delete_group("g").await.unwrap();
    peer.stop().await.unwrap();
}
