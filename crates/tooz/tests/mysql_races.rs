//! MySQL: what a reviewer found a coordinator could get wrong when callers give up early or
//! an operator edits the tables, each first seen failing on the code before its fix.
//!
//! * A statement cut short by its caller (a `timeout` around `members()`, a dropped watch)
//!   leaves its answer unread on the connection: the next statement would read that answer as
//!   its own — an acquire of a free lock answered "refused" (while the server granted it), an
//!   acquire of a held lock answered "granted". The connection must go instead.
//! * A waiter that gives up before its wait on the server began must not begin it.
//! * Fencing tokens keep rising over a truncated counter table.

#![cfg(feature = "mysql")]

#[path = "support/fault_proxy.rs"]
mod fault_proxy;
#[path = "support/mysql_url.rs"]
mod mysql_url;

use std::net::ToSocketAddrs;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fault_proxy::{Fault, FaultProxy};
use mysql_async::prelude::Queryable;
use mysql_url::{base, direct, execute, host_port, lock_holder, mysql_url};
use tokio::time::{sleep, timeout};
use tooz::Coordinator;

fn run_id(test: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "races-{test}-{}-{}",
        std::process::id(),
        nanos % 1_000_000_000
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_cut_short_never_answers_the_next_one() {
    let Some(url) = mysql_url() else {
        eprintln!("no mysql:// URL in TOOZ_TEST_URLS: skipping (scripts/test runs it)");
        return;
    };
    let base = base(&url);
    let upstream = host_port(&url).to_socket_addrs().unwrap().next().unwrap();
    let proxy = FaultProxy::start(upstream).await;
    let mut through = url::Url::parse(&base).unwrap();
    through.set_host(Some("127.0.0.1")).unwrap();
    through.set_port(Some(proxy.port())).unwrap();
    let run = run_id("cut");
    let coord = Coordinator::builder(&format!("{through}?timeout=5"), format!("{run}-a").as_str())
        .manual_heartbeat()
        .connect()
        .await
        .unwrap();
    let rival = Coordinator::connect(&format!("{base}?timeout=5"), format!("{run}-b").as_str())
        .await
        .unwrap();
    let mut admin = direct(&base).await;
    let (free, held) = (format!("{run}-free"), format!("{run}-held"));
    let rival_guard = rival
        .lock(held.as_str())
        .try_acquire()
        .await
        .unwrap()
        .expect("free");
    let group = format!("{run}-g");
    coord.create_group(group.as_str()).await.unwrap();
    // (Its statements prepared already: the cut falls on their execution.)
    coord.members(group.as_str()).await.unwrap();
    coord
        .lock(free.as_str())
        .try_acquire()
        .await
        .unwrap()
        .unwrap()
        .release()
        .await
        .unwrap();

    // A read whose answer is slow, given up after it was sent.
    proxy.set(Fault::Delay(Duration::from_millis(400)));
    let cut = timeout(Duration::from_millis(150), coord.members(group.as_str())).await;
    assert!(cut.is_err(), "the read was meant to be cut short");
    proxy.set(Fault::Forward);
    sleep(Duration::from_millis(600)).await;

    // The next statements get their own answers (on a new session if need be).
    let got = coord.lock(free.as_str()).try_acquire().await;
    let ours = lock_holder(&mut admin, &free).await;
    match got {
        Ok(Some(guard)) => {
            assert!(ours.is_some(), "granted, and held on the server");
            guard.release().await.unwrap();
        }
        other => {
            assert!(
                ours.is_none(),
                "answered {other:?} for a free lock, yet the server gave it to us"
            );
        }
    }
    let stolen = coord.lock(held.as_str()).try_acquire().await;
    assert!(
        !matches!(stolen, Ok(Some(_))),
        "granted a lock the rival holds: {stolen:?}"
    );
    assert!(rival_guard.is_held());
    rival_guard.release().await.unwrap();
    coord.stop().await.unwrap();
    rival.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_that_give_up_leave_no_wait_on_the_server() {
    let Some(url) = mysql_url() else {
        eprintln!("no mysql:// URL in TOOZ_TEST_URLS: skipping (scripts/test runs it)");
        return;
    };
    let base = base(&url);
    let run = run_id("gaveup");
    // A table prefix of this test's own, to find its statements in the process list.
    let prefix = format!("r{}_", std::process::id());
    let url = format!("{base}?timeout=30&table_prefix={prefix}");
    let holder = Coordinator::connect(&url, format!("{run}-h").as_str())
        .await
        .unwrap();
    let waiter = Coordinator::connect(&url, format!("{run}-w").as_str())
        .await
        .unwrap();
    let name = format!("{run}-l");
    let guard = holder
        .lock(name.as_str())
        .try_acquire()
        .await
        .unwrap()
        .expect("free");
    // Deadlines that fall before, during and after the wait on the server began.
    for ms in [1, 3, 10, 30, 100, 300] {
        let gave_up = waiter
            .lock(name.as_str())
            .acquire_timeout(Duration::from_millis(ms))
            .await;
        assert!(gave_up.is_err(), "granted a held lock");
    }
    sleep(Duration::from_millis(500)).await;
    let mut admin = direct(&base).await;
    let waits: u64 = admin
        .exec_first(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE ?",
            (format!("%{prefix}locks%"),),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        waits, 0,
        "waits left on the server for waiters that gave up"
    );
    guard.release().await.unwrap();
    holder.stop().await.unwrap();
    waiter.stop().await.unwrap();
    for table in ["locks", "groups", "beats", "members", "leaders"] {
        execute(&mut admin, &format!("DROP TABLE IF EXISTS {prefix}{table}")).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_keep_rising_over_a_truncated_counter_table() {
    let Some(url) = mysql_url() else {
        eprintln!("no mysql:// URL in TOOZ_TEST_URLS: skipping (scripts/test runs it)");
        return;
    };
    let base = base(&url);
    let run = run_id("truncate");
    let prefix = format!("t{}_", std::process::id());
    let url = format!("{base}?timeout=5&table_prefix={prefix}");
    let coord = Coordinator::connect(&url, format!("{run}-a").as_str())
        .await
        .unwrap();
    let name = format!("{run}-l");
    let first = coord.lock(name.as_str()).acquire().await.unwrap();
    let before = first.token();
    first.release().await.unwrap();
    let mut admin = direct(&base).await;
    execute(&mut admin, &format!("TRUNCATE TABLE {prefix}locks")).await;
    let second = coord.lock(name.as_str()).acquire().await.unwrap();
    assert!(
        second.token() > before,
        "token {:?} after the truncation, {before:?} before",
        second.token()
    );
    second.release().await.unwrap();
    coord.stop().await.unwrap();
    for table in ["locks", "groups", "beats", "members", "leaders"] {
        execute(&mut admin, &format!("DROP TABLE IF EXISTS {prefix}{table}")).await;
    }
}
