//! A MySQL holder cut off by a partition (the fault proxy drops every byte and keeps the
//! connections open, as a real partition looks: no FIN, no RST). The server bounds the cut-off
//! connection itself — the driver sets its `wait_timeout` to `lock_timeout`, so the server
//! ends it, and frees its `GET_LOCK` locks, `lock_timeout` after the last statement that
//! reached it — so the holder's `lost()` must resolve, and `is_held()` turn false, strictly
//! before the server frees the lock (watched over a direct connection the partition does not
//! touch) and before a rival on a direct connection is granted it; and the rival must be
//! granted it (the server did bound the connection) within a few seconds. Both for a lock held
//! by the holder's main connection (taken without waiting) and for one held by a spare
//! connection (granted to a waiting acquire, kept alive by the heartbeats' pings). The same for
//! a membership and a peer's view of the group (a beat row, expired by the server's clock).
//! Needs a `mysql://` URL in `TOOZ_TEST_URLS` (scripts/test sets it).

#![cfg(feature = "mysql")]

#[path = "support/fault_proxy.rs"]
mod fault_proxy;
#[path = "support/mysql_url.rs"]
mod mysql_url;

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fault_proxy::{Fault, FaultProxy};
use mysql_url::{base, direct, host_port, lock_holder, mysql_url};
use tokio::time::{Instant, sleep, timeout};
use tooz::{Capabilities, Coordinator, MemberId};

/// `timeout=3`: `lock_timeout` and `membership_timeout` 3 s (the server's `wait_timeout` for
/// our connections is 3 s), heartbeats every second.
const TIMEOUT: &str = "timeout=3";

/// The rival must be granted the lock within this of the cut: `lock_timeout` (3 s) after the
/// last statement that got through, plus slack for a loaded machine.
const RIVAL_WITHIN: Duration = Duration::from_secs(7);

/// The shared server: (its URL without options, its address).
fn server() -> Option<(String, SocketAddr)> {
    let url = mysql_url()?;
    let addr = host_port(&url)
        .to_socket_addrs()
        .expect("the server's address")
        .next()
        .expect("an address");
    Some((base(&url), addr))
}

/// `base` (a direct URL) with the proxy's address in place of the server's.
fn through(base: &str, proxy: &FaultProxy) -> String {
    let mut url = url::Url::parse(base).unwrap();
    url.set_host(Some("127.0.0.1")).unwrap();
    url.set_port(Some(proxy.port())).unwrap();
    url.to_string()
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

/// Polls (on a direct connection of its own) until connection `holder` no longer holds
/// `name` on the server; when.
async fn freed(admin: &mut mysql_async::Conn, name: &str, holder: u64) -> Instant {
    loop {
        if lock_holder(admin, name).await != Some(holder) {
            return Instant::now();
        }
        sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_holder_knows_it_lost_the_lock_before_the_server_frees_it() {
    let Some((base, upstream)) = server() else {
        eprintln!("no mysql:// URL in TOOZ_TEST_URLS: skipping (scripts/test runs it)");
        return;
    };
    let run = run_id("lock");
    let mut admin = direct(&base).await;
    // A rival on a connection the partition does not touch, trying all along.
    let rival = Coordinator::connect(
        &format!("{base}?{TIMEOUT}"),
        format!("{run}-rival").as_str(),
    )
    .await
    .unwrap();

    let rounds = 4u32;
    let mut margins = Vec::new();
    for round in 0..rounds {
        // Even rounds: the lock is on the holder's main connection (taken without waiting).
        // Odd rounds: on a spare connection (the rival holds it first, the holder waits for
        // it on the server and is granted it there).
        let on_spare = round % 2 == 1;
        let proxy = FaultProxy::start(upstream).await;
        let url = format!("{}?{TIMEOUT}", through(&base, &proxy));
        let member = format!("{run}-holder-{round}");
        let holder = Coordinator::connect(&url, member.as_str()).await.unwrap();
        let name = format!("{run}-l{round}");
        let guard = if on_spare {
            let first = rival
                .lock(name.as_str())
                .try_acquire()
                .await
                .unwrap()
                .expect("free");
            let lock = holder.lock(name.as_str());
            let waiter =
                tokio::spawn(async move { lock.acquire_timeout(Duration::from_secs(10)).await });
            sleep(Duration::from_millis(300)).await;
            first.release().await.unwrap();
            timeout(Duration::from_secs(10), waiter)
                .await
                .expect("the holder is granted the lock the rival released")
                .unwrap()
                .unwrap()
        } else {
            holder
                .lock(name.as_str())
                .try_acquire()
                .await
                .unwrap()
                .expect("free")
        };
        assert!(
            rival
                .lock(name.as_str())
                .try_acquire()
                .await
                .unwrap()
                .is_none(),
            "round {round}: the lock is held"
        );
        let held_by = lock_holder(&mut admin, &name)
            .await
            .unwrap_or_else(|| panic!("round {round}: the holder's connection holds the lock"));
        // Cut at a different point of the heartbeat cycle each round.
        sleep(Duration::from_millis(170 * u64::from(round))).await;
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
                sleep(Duration::from_millis(5)).await;
            }
        };
        let (((lost_at, held_after_loss), freed_at), rival_at) = timeout(
            Duration::from_secs(15),
            async {
                tokio::join!(
                    async { tokio::join!(watch_loss, freed(&mut admin, &name, held_by)) },
                    rival_takes
                )
            },
        )
        .await
        .unwrap_or_else(|_| {
            panic!(
                "round {round}: the loss, the server freeing the lock and the rival's grant did \
                 not all happen within 15 s of the cut"
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
                "round {round}: lost() fired {:?} after the cut, {:?} AFTER the server freed \
                 the lock",
                lost_at - cut,
                lost_at - freed_at
            )
        });
        assert!(
            rival_at - cut < RIVAL_WITHIN,
            "round {round}: the rival was granted the lock only {:?} after the cut: the server \
             did not bound the cut-off connection by wait_timeout",
            rival_at - cut
        );
        println!(
            "round {round} ({}): lost {:?} after the cut, freed on the server {:?} after it, \
             rival granted {:?} after it: margin {margin:?}",
            if on_spare { "spare" } else { "main" },
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
        "loss before the server freed the lock, {rounds} rounds: min margin {:?}, max {:?}",
        margins[0],
        margins[margins.len() - 1]
    );
}

/// The same for a membership: once the heartbeats stop getting through, the cut-off member
/// must know it is out before any peer stops listing it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_member_knows_it_left_before_its_peers_drop_it() {
    let Some((base, upstream)) = server() else {
        eprintln!("no mysql:// URL in TOOZ_TEST_URLS: skipping (scripts/test runs it)");
        return;
    };
    let run = run_id("member");
    let group = format!("{run}-g");
    let peer = Coordinator::connect(&format!("{base}?{TIMEOUT}"), format!("{run}-peer").as_str())
        .await
        .unwrap();
    peer.create_group(group.as_str()).await.unwrap();

    for round in 0..3u64 {
        let proxy = FaultProxy::start(upstream).await;
        let url = format!("{}?{TIMEOUT}", through(&base, &proxy));
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
        sleep(Duration::from_millis(230 * round)).await;
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
        let ((lost_at, active_after_loss), dropped_at) = timeout(Duration::from_secs(15), async {
            tokio::join!(watch_loss, peer_drops)
        })
        .await
        .unwrap_or_else(|_| {
            panic!("round {round}: the loss and the peer's view did not both change within 15 s")
        });
        assert!(!active_after_loss, "is_active() is false once lost() fired");
        assert!(
            lost_at < dropped_at,
            "round {round}: a peer stopped listing the member {:?} before its lost() fired",
            lost_at - dropped_at
        );
        println!(
            "round {round}: lost {:?} after the cut, peer dropped it {:?} after it",
            lost_at - cut,
            dropped_at - cut
        );
        drop(membership);
        drop(coord);
        drop(proxy);
    }
    assert_eq!(
        peer.members(group.as_str())
            .await
            .unwrap()
            .into_iter()
            .collect::<Vec<_>>(),
        Vec::<MemberId>::new(),
        "no cut-off member is listed any more"
    );
    if let Err(e) = peer.delete_group(group.as_str()).await {
        println!("group {group} left behind: {e}");
    }
    peer.stop().await.unwrap();
}
