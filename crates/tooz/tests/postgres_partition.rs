//! A PostgreSQL holder cut off by a partition (the fault proxy drops every byte and keeps the
//! connections open, as a real partition looks: no FIN, no RST). The server bounds the cut-off
//! session itself — `idle_session_timeout` = `lock_timeout` ends it, and its advisory locks with
//! it, about `lock_timeout` after the last statement that reached it — so the holder's `lost()`
//! must resolve, and `is_held()` turn false, strictly before the server ends that session
//! (watched over a direct connection the partition does not touch) and before a rival on a
//! direct connection is granted the lock; and the rival must be granted it (the server did
//! bound the session) within a few seconds. The same for a membership and a peer's view of the
//! group. Needs a `postgresql://` URL in `TOOZ_TEST_URLS` (scripts/test sets it).

#![cfg(feature = "postgres")]

#[path = "support/fault_proxy.rs"]
mod fault_proxy;
#[path = "support/postgres_url.rs"]
mod postgres_url;

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fault_proxy::{Fault, FaultProxy};
use postgres_url::{base, direct, direct_config, host_port, postgres_url};
use tokio::time::{Instant, sleep, timeout};
use tooz::{Capabilities, Coordinator, MemberId};

/// The rival must be granted the lock within this of the cut: `lock_timeout` (2 s) after the
/// last heartbeat that got through, plus slack for a loaded machine.
const RIVAL_WITHIN: Duration = Duration::from_secs(6);

/// The shared server: (its URL without options, its address).
fn server() -> Option<(String, SocketAddr)> {
    let url = postgres_url()?;
    let addr = host_port(&url)
        .to_socket_addrs()
        .expect("the server's address")
        .next()
        .expect("an address");
    Some((base(&url), addr))
}

/// `base` (a direct URL) with the proxy's port in place of the server's.
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

/// Both futures to completion (no extra dependency for `join!` on two futures).
async fn futures_join<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    tokio::join!(a, b)
}

/// The server processes serving `member`'s sessions (the driver names them `tooz:<member>`).
async fn sessions_of(admin: &tokio_postgres::Client, member: &str) -> Vec<i32> {
    admin
        .query(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1",
            &[&format!("tooz:{member}")],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// Polls until none of `pids` is on the server any more; when.
async fn sessions_gone(admin: &tokio_postgres::Client, pids: &[i32]) -> Instant {
    loop {
        let left: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1)",
                &[&pids],
            )
            .await
            .unwrap()
            .get(0);
        if left == 0 {
            return Instant::now();
        }
        sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_holder_knows_it_lost_the_lock_before_the_server_frees_it() {
    let Some((base, upstream)) = server() else {
        eprintln!("no postgresql:// URL in TOOZ_TEST_URLS: skipping (scripts/test runs it)");
        return;
    };
    let run = run_id("lock");
    let admin = direct(&direct_config(&base)).await;
    // A rival on a connection the partition does not touch, trying all along.
    let rival = Coordinator::connect(
        &format!("{base}?timeout=2&lock_timeout=2"),
        format!("{run}-rival").as_str(),
    )
    .await
    .unwrap();

    let rounds = 4;
    let mut margins = Vec::new();
    for round in 0..rounds {
        let proxy = FaultProxy::start(upstream).await;
        let url = format!("{}?timeout=2&lock_timeout=2", through(&base, &proxy));
        let member = format!("{run}-holder-{round}");
        let holder = Coordinator::connect(&url, member.as_str()).await.unwrap();
        let name = format!("{run}-l{round}");
        let guard = holder.lock(name.as_str()).acquire().await.unwrap();
        assert!(
            rival
                .lock(name.as_str())
                .try_acquire()
                .await
                .unwrap()
                .is_none(),
            "round {round}: the lock is held"
        );
        let pids = sessions_of(&admin, &member).await;
        assert!(
            !pids.is_empty(),
            "round {round}: the holder's session is listed"
        );
        // Cut at a different point of the heartbeat cycle each round.
        sleep(Duration::from_millis(170 * round)).await;
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
            futures_join(
                futures_join(watch_loss, sessions_gone(&admin, &pids)),
                rival_takes,
            ),
        )
        .await
        .unwrap_or_else(|_| {
            panic!(
                "round {round}: the loss, the end of the session on the server and the rival's \
                 grant did not all happen within 15 s of the cut"
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
                "round {round}: lost() fired {:?} after the cut, {:?} AFTER the server ended the \
                 session",
                lost_at - cut,
                lost_at - freed_at
            )
        });
        assert!(
            rival_at - cut < RIVAL_WITHIN,
            "round {round}: the rival was granted the lock only {:?} after the cut: the server \
             did not bound the cut-off session by idle_session_timeout",
            rival_at - cut
        );
        println!(
            "round {round}: lost {:?} after the cut, session ended on the server {:?} after it, \
             rival granted {:?} after it: margin {margin:?}",
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
        eprintln!("no postgresql:// URL in TOOZ_TEST_URLS: skipping (scripts/test runs it)");
        return;
    };
    let run = run_id("member");
    let group = format!("{run}-g");
    let peer = Coordinator::connect(&format!("{base}?timeout=2"), format!("{run}-peer").as_str())
        .await
        .unwrap();
    peer.create_group(group.as_str()).await.unwrap();

    for round in 0..3u64 {
        let proxy = FaultProxy::start(upstream).await;
        let url = format!("{}?timeout=2", through(&base, &proxy));
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
        let ((lost_at, active_after_loss), dropped_at) = timeout(
            Duration::from_secs(15),
            futures_join(watch_loss, peer_drops),
        )
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
