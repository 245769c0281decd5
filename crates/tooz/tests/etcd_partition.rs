//! An etcd holder cut off by a partition: it talks to etcd (gRPC over HTTP/2) through the fault
//! proxy, which then drops every byte and keeps the connections open, as a real partition
//! looks (no FIN, no RST). etcd bounds the cut-off session itself: its lease expires `TTL`
//! after the last keep-alive that reached it, deleting the lock key (and the member and leader
//! keys) on it. So the holder's `lost()` must resolve, and `is_held()` turn false, strictly
//! before etcd deletes the key (watched by a raw client of the test's, which the partition
//! does not touch: that is the lease's TTL counted from the holder's last heartbeat that got
//! through) and before a rival connected directly is granted the lock (no overlap); and the
//! rival must be granted it — woken by the key's deletion — within about the TTL of the cut.
//! The same for a membership (a peer's listing) and a leadership (a peer's campaign). Needs an
//! `etcd3+http://` URL in `TOOZ_TEST_URLS` (scripts/test sets it).

#![cfg(feature = "etcd")]

#[path = "support/etcd_url.rs"]
mod etcd_url;
#[path = "support/fault_proxy.rs"]
mod fault_proxy;

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use etcd_client::Client;
use etcd_url::{base, direct, etcd_url, host_port, key_lease, leader_key, lock_key, member_key};
use fault_proxy::{Fault, FaultProxy};
use tokio::time::{Instant, sleep, timeout};
use tooz::{Capabilities, Coordinator, MemberId};

/// `timeout=3`: a session lease of 3 s, heartbeats every second, local leases of 2.7 s.
const TIMEOUT: &str = "timeout=3";
const TTL: Duration = Duration::from_secs(3);

/// etcd must free what the holder held within this of the cut: the TTL after the last
/// keep-alive that got through (at most a heartbeat interval before the cut), plus etcd's
/// expiry granularity (it looks for expired leases every 500 ms) and slack for a loaded
/// machine.
const FREED_WITHIN: Duration = Duration::from_secs(5);
/// The rival must be granted the lock within this of the cut.
const RIVAL_WITHIN: Duration = Duration::from_secs(7);

/// The shared server: (its URL without options, its address).
fn server() -> Option<(String, SocketAddr)> {
    let url = etcd_url()?;
    let addr = host_port(&url)
        .to_socket_addrs()
        .expect("the server's address")
        .next()
        .expect("an address");
    Some((base(&url), addr))
}

/// An id no other run on the shared server uses.
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

/// Polls (on the raw client, which the partition does not touch) until `key` is no longer on
/// `lease`; when.
async fn freed(raw: &mut Client, key: &[u8], lease: i64) -> Instant {
    loop {
        if key_lease(raw, key).await != Some(lease) {
            return Instant::now();
        }
        sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_holder_knows_it_lost_the_lock_before_etcd_frees_it() {
    let Some((base, upstream)) = server() else {
        eprintln!("no etcd3+http:// URL in TOOZ_TEST_URLS: skipping (scripts/test runs it)");
        return;
    };
    let run = run_id("lock");
    let mut raw = direct(&base).await;
    // A rival on a connection the partition does not touch.
    let rival = Coordinator::connect(
        &format!("{base}?{TIMEOUT}"),
        format!("{run}-rival").as_str(),
    )
    .await
    .unwrap();

    let rounds = 3u32;
    let mut margins = Vec::new();
    for round in 0..rounds {
        let proxy = FaultProxy::start(upstream).await;
        let url = format!("etcd3+http://127.0.0.1:{}?{TIMEOUT}", proxy.port());
        let holder = Coordinator::connect(&url, format!("{run}-holder-{round}").as_str())
            .await
            .unwrap();
        let name = format!("{run}-l{round}");
        let key = lock_key(name.as_bytes());
        let guard = holder
            .lock(name.as_str())
            .try_acquire()
            .await
            .unwrap()
            .expect("free");
        let lease = key_lease(&mut raw, &key)
            .await
            .unwrap_or_else(|| panic!("round {round}: the lock key exists"));
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
        // The rival waits for it (woken by the key's deletion).
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
                    async { tokio::join!(watch_loss, freed(&mut raw, &key, lease)) },
                    rival_takes
                )
            })
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "round {round}: the loss, etcd freeing the lock and the rival's grant did not \
                 all happen within 20 s of the cut"
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
                "round {round}: lost() fired {:?} after the cut, {:?} AFTER etcd's lease (TTL \
                 from the last heartbeat that got through) freed the lock",
                lost_at - cut,
                lost_at - freed_at
            )
        });
        assert!(
            lost_at - cut < TTL,
            "round {round}: lost() fired {:?} after the cut: more than the TTL after the last \
             heartbeat",
            lost_at - cut
        );
        assert!(
            freed_at - cut < FREED_WITHIN,
            "round {round}: etcd freed the lock only {:?} after the cut: is the lease's TTL \
             timeout=3?",
            freed_at - cut
        );
        assert!(
            rival_at - cut < RIVAL_WITHIN,
            "round {round}: the rival was granted the lock only {:?} after the cut",
            rival_at - cut
        );
        println!(
            "round {round}: lost {:?} after the cut, freed by etcd {:?} after it, rival granted \
             {:?} after it: margin {margin:?}",
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
        "loss before etcd freed the lock, {rounds} rounds: min margin {:?}, max {:?}",
        margins[0],
        margins[margins.len() - 1]
    );
}

/// The same for a membership and a leadership: once the heartbeats stop getting through, the
/// cut-off member must know it is out before a peer stops listing it, and the cut-off leader
/// that it leads no more before a peer is elected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_member_and_leader_know_it_before_their_peers_do() {
    let Some((base, upstream)) = server() else {
        eprintln!("no etcd3+http:// URL in TOOZ_TEST_URLS: skipping (scripts/test runs it)");
        return;
    };
    let run = run_id("member");
    let group = format!("{run}-g");
    let mut raw = direct(&base).await;
    let peer = Coordinator::connect(&format!("{base}?{TIMEOUT}"), format!("{run}-peer").as_str())
        .await
        .unwrap();
    peer.create_group(group.as_str()).await.unwrap();

    for round in 0..2u64 {
        let proxy = FaultProxy::start(upstream).await;
        let url = format!("etcd3+http://127.0.0.1:{}?{TIMEOUT}", proxy.port());
        let member = MemberId::from(format!("{run}-member-{round}"));
        let coord = Coordinator::connect(&url, member.clone()).await.unwrap();
        let membership = coord
            .join_group(group.as_str(), Capabilities::none())
            .await
            .unwrap();
        let leadership = coord
            .campaign_timeout(group.as_str(), Duration::from_secs(10))
            .await
            .unwrap();
        assert!(
            peer.members(group.as_str())
                .await
                .unwrap()
                .contains(&member)
        );
        assert_eq!(
            peer.leader(group.as_str()).await.unwrap(),
            Some(member.clone())
        );
        let lease = key_lease(&mut raw, &member_key(group.as_bytes(), member.as_bytes()))
            .await
            .expect("the member key");
        assert_eq!(
            key_lease(&mut raw, &leader_key(group.as_bytes())).await,
            Some(lease),
            "the leader key is on the member's session lease"
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
        let peer_leads = async {
            let led = peer
                .campaign_timeout(group.as_str(), Duration::from_secs(15))
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
        peer.members(group.as_str()).await.unwrap().is_empty(),
        "no cut-off member is listed any more"
    );
    peer.delete_group(group.as_str()).await.unwrap();
    peer.stop().await.unwrap();
}

/// A lock taken late in the session lease's life, then cut off: a put does not renew the
/// lease it rides on, so without a renewal before the put etcd would delete the key one TTL
/// after the *last renewal* — before the holder's local lease (counted from the acquire) ran
/// out. Heartbeats are manual here, so the lease is half a TTL old when the lock is taken.
/// The holder must know before etcd frees the key (seen first-hand by a raw client).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_taken_late_in_the_lease_is_lost_before_etcd_frees_it() {
    let Some((base, upstream)) = server() else {
        eprintln!("no etcd3+http:// URL in TOOZ_TEST_URLS: skipping (scripts/test runs it)");
        return;
    };
    let run = run_id("late");
    let mut raw = direct(&base).await;
    let proxy = FaultProxy::start(upstream).await;
    let url = format!("etcd3+http://127.0.0.1:{}?{TIMEOUT}", proxy.port());
    let holder = Coordinator::builder(&url, format!("{run}-holder").as_str())
        .manual_heartbeat()
        .connect()
        .await
        .unwrap();
    sleep(TTL / 2).await;
    let name = format!("{run}-l");
    let key = lock_key(name.as_bytes());
    let guard = holder
        .lock(name.as_str())
        .try_acquire()
        .await
        .unwrap()
        .expect("free");
    let lease = key_lease(&mut raw, &key)
        .await
        .expect("the lock key exists");
    proxy.set(Fault::Blackhole);
    let lost = guard.lost();
    let freed_at = timeout(TTL * 3, freed(&mut raw, &key, lease))
        .await
        .expect("etcd frees the key of a holder cut off");
    assert!(
        timeout(Duration::ZERO, lost).await.is_ok() || !guard.is_held(),
        "etcd freed the key at {freed_at:?} while its holder still believed it held it"
    );
    drop(guard);
    drop(holder);
}
