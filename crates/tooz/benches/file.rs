//! `scripts/bench file`: the file backend against Python tooz 9.1.0's file driver and against
//! the physical floor, on one directory, in one run.
//!
//! Workloads (as research/backends.md's tooz_bench.py): lock acquire+release pairs per second
//! with one coordinator; mean time of one `join_group` over 100 members; `members()` of a group
//! of 100 and of 1,000 live members (median of 20); heartbeat calls per second. The floor for
//! a lock pair is an OFD lock, a fencing counter read and written with pread/pwrite, and an
//! unlock on a descriptor kept open (and the same without the counter). The member groups are
//! populated by our coordinators, which stay alive while Python lists them too.

#[path = "common/blocking.rs"]
mod blocking;
#[path = "common/mod.rs"]
mod common;

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::time::Instant;

use nix::fcntl::{FcntlArg, fcntl};
use tooz::{Capabilities, Coordinator};

/// Calls per second of `op` over about `seconds` (best of three rounds).
async fn rate<F, Fut>(seconds: f64, mut op: F) -> f64
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut best: f64 = 0.0;
    for _ in 0..3 {
        let start = Instant::now();
        let mut count = 0u64;
        while start.elapsed().as_secs_f64() < seconds {
            for _ in 0..100 {
                op().await;
            }
            count += 100;
        }
        best = best.max(count as f64 / start.elapsed().as_secs_f64());
    }
    best
}

fn ofd(file: &std::fs::File, l_type: libc::c_int) {
    let flock = libc::flock {
        l_type: l_type as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    };
    fcntl(file, FcntlArg::F_OFD_SETLK(&flock)).expect("ofd lock");
}

async fn floor(dir: &std::path::Path, counter: bool) -> f64 {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join(if counter { "floor-counter" } else { "floor" }))
        .unwrap();
    rate(1.0, || {
        ofd(&file, libc::F_WRLCK);
        if counter {
            let mut buf = [0u8; 8];
            let _ = file.read_at(&mut buf, 0).unwrap();
            let next = u64::from_le_bytes(buf) + 1;
            file.write_all_at(&next.to_le_bytes(), 0).unwrap();
        }
        ofd(&file, libc::F_UNLCK);
        std::future::ready(())
    })
    .await
}

async fn populate(url: &str, group: &str, count: usize) -> Vec<Coordinator> {
    let first = Coordinator::connect(url, format!("{group}-0"))
        .await
        .unwrap();
    first.create_group(group).await.unwrap();
    let mut members = vec![first];
    for i in 1..count {
        members.push(
            Coordinator::connect(url, format!("{group}-{i}"))
                .await
                .unwrap(),
        );
    }
    for m in &members {
        m.join_group(group, serde_json::json!({"weight": 1}))
            .await
            .unwrap();
    }
    members
}

async fn median_ms(coord: &Coordinator, group: &str, expect: usize, caps: bool) -> f64 {
    let mut times = Vec::new();
    for _ in 0..20 {
        let start = Instant::now();
        let seen = if caps {
            coord.members_with_capabilities(group).await.unwrap().len()
        } else {
            coord.members(group).await.unwrap().len()
        };
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(seen, expect);
    }
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn python(url: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    common::python_figures(&["file", url, "members-100", "members-1000"])
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = std::env::temp_dir().join(format!("tooz-bench-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A long membership timeout: members must stay alive while Python lists them.
    let url = format!("file://{}?timeout=3600", dir.display());

    let floor_counter = floor(&dir, true).await;
    let floor_bare = floor(&dir, false).await;
    let coord = Coordinator::builder(&url, "bench")
        .manual_heartbeat()
        .connect()
        .await
        .unwrap();
    let lock = coord.lock("bench-lock-rust");
    let pairs = rate(1.0, || async {
        lock.acquire().await.unwrap().release().await.unwrap();
    })
    .await;
    let side_lock = coord.lock("bench-lock-compared");
    let (async_pairs, blocking_pairs) =
        blocking::compare(&url, "bench-blocking", "bench-lock-blocking", || {
            blocking::async_round(|| async {
                side_lock.acquire().await.unwrap().release().await.unwrap();
            })
        })
        .await;

    let join_group = "rust-join-bench";
    coord.create_group(join_group).await.unwrap();
    let mut joiners = Vec::new();
    for i in 0..100 {
        joiners.push(
            Coordinator::connect(&url, format!("joiner-{i}"))
                .await
                .unwrap(),
        );
    }
    let start = Instant::now();
    for j in &joiners {
        j.join_group(join_group, Capabilities::none())
            .await
            .unwrap();
    }
    let join_ms = start.elapsed().as_secs_f64() * 1000.0 / joiners.len() as f64;

    let hundred = populate(&url, "members-100", 100).await;
    let thousand = populate(&url, "members-1000", 1000).await;
    let members_100 = median_ms(&coord, "members-100", 100, false).await;
    let members_1000 = median_ms(&coord, "members-1000", 1000, false).await;
    let members_caps_1000 = median_ms(&coord, "members-1000", 1000, true).await;

    coord
        .join_group(join_group, Capabilities::none())
        .await
        .unwrap();
    let beats = rate(1.0, || async { coord.heartbeat().await.unwrap() }).await;

    let py = python(&url);
    let py_get = |workload: &str, field: &str| {
        py.as_ref()
            .and_then(|p| p.get(workload))
            .and_then(|w| w[field].as_f64())
    };

    println!(
        "file:// backend, {} (2 cores), ours vs Python tooz 9.1.0, same directory, one run",
        std::env::consts::ARCH
    );
    println!(
        "{:<34} {:>14} {:>14} {:>9}",
        "workload", "ours", "python", "ratio"
    );
    let row = |name: &str, ours: f64, py: Option<f64>, higher_is_better: bool| {
        let (py_text, ratio) = match py {
            Some(py) if higher_is_better => (format!("{py:.0}"), format!("{:.1}x", ours / py)),
            Some(py) => (format!("{py:.3}"), format!("{:.1}x", py / ours)),
            None => ("-".to_owned(), "-".to_owned()),
        };
        let ours_text = if higher_is_better {
            format!("{ours:.0}")
        } else {
            format!("{ours:.3}")
        };
        println!("{name:<34} {ours_text:>14} {py_text:>14} {ratio:>9}");
    };
    row(
        "lock pairs/s (1 coordinator)",
        pairs,
        py_get("lock_pairs", "per_second"),
        true,
    );
    row(
        "join_group ms (mean of 100)",
        join_ms,
        py_get("join", "mean_ms"),
        false,
    );
    row(
        "members() ms, 100 members",
        members_100,
        py_get("members_100", "ms"),
        false,
    );
    row(
        "members() ms, 1,000 members",
        members_1000,
        py_get("members_1000", "ms"),
        false,
    );
    row(
        "with capabilities ms, 1,000",
        members_caps_1000,
        py_get("members_caps_1000", "ms"),
        false,
    );
    row(
        "heartbeat calls/s",
        beats,
        py_get("heartbeat", "per_second"),
        true,
    );
    println!(
        "floor: OFD lock + pread/pwrite counter + unlock: {floor_counter:.0} pairs/s; without the counter: {floor_bare:.0} pairs/s"
    );
    println!("ours / floor (with counter): {:.2}x", pairs / floor_counter);
    blocking::print_blocking(async_pairs, blocking_pairs);
    if py.is_none() {
        println!("python tooz: not measured (set TOOZ_PYTHON; scripts/bench does)");
    }

    for c in joiners.iter().chain(&hundred).chain(&thousand) {
        let _ = c.stop().await;
    }
    let _ = coord.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
