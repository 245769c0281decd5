//! A process SIGKILLed while holding a lock and a membership on `file://` frees both at once:
//! the kernel drops its lock, and its member file's liveness lock with it, so nobody waits for
//! the 10-second membership timeout.

#![cfg(feature = "file")]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tooz::{Capabilities, Coordinator, MemberId};

const CHILD_ENV: &str = "TOOZ_CRASH_CHILD_URL";

/// In the child: take the lock and the membership, say so, and wait to be killed.
async fn child(url: &str) {
    let coord = Coordinator::connect(url, "doomed").await.unwrap();
    coord
        .join_group_create("crash", Capabilities::none())
        .await
        .unwrap();
    let guard = coord.lock("crash-lock").acquire().await.unwrap();
    println!("ready {}", guard.token());
    tokio::time::sleep(Duration::from_secs(120)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_holder_frees_its_lock_and_membership_at_once() {
    if let Ok(url) = std::env::var(CHILD_ENV) {
        return child(&url).await;
    }
    let dir = std::env::temp_dir().join(format!("tooz-crash-{}", std::process::id()));
    let url = format!("file://{}", dir.display());
    let mut process = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_killed_holder_frees_its_lock_and_membership_at_once",
            "--nocapture",
        ])
        .env(CHILD_ENV, &url)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(process.stdout.take().unwrap()).lines();
    let token: u64 = loop {
        let line = lines.next().expect("child output").unwrap();
        if let Some(token) = line.strip_prefix("ready ") {
            break token.parse().unwrap();
        }
    };

    let survivor = Coordinator::connect(&url, "survivor").await.unwrap();
    assert!(
        survivor
            .lock("crash-lock")
            .try_acquire()
            .await
            .unwrap()
            .is_none()
    );
    let members = survivor.members("crash").await.unwrap();
    assert!(members.contains(&MemberId::from("doomed")));

    process.kill().unwrap(); // SIGKILL: no cleanup of any kind runs in the child
    process.wait().unwrap();
    let killed = Instant::now();
    let guard = survivor
        .lock("crash-lock")
        .acquire_timeout(Duration::from_secs(2))
        .await
        .expect("the lock is free once its holder is dead");
    let freed_after = killed.elapsed();
    assert!(guard.token().get() > token, "fencing token moved on");
    assert!(
        freed_after < Duration::from_millis(500),
        "lock freed after {freed_after:?}"
    );
    let members = survivor.members("crash").await.unwrap();
    assert!(
        !members.contains(&MemberId::from("doomed")),
        "dead member seen at once"
    );
    // Its file was collected: the same id can join again right away (tooz's bug).
    let reborn = Coordinator::connect(&url, "doomed").await.unwrap();
    reborn
        .join_group("crash", Capabilities::none())
        .await
        .expect("re-join");
    eprintln!("lock free {freed_after:?} after SIGKILL; membership gone at once");
    guard.release().await.unwrap();
    reborn.stop().await.unwrap();
    survivor.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
