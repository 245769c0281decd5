//! Sharing work with a partitioner: three workers join a partitioned group and split twelve
//! jobs by the consistent hash ring (placements identical to Python tooz's). One worker dies
//! without a word; the others see it leave and take over exactly its jobs.
//!
//! ```text
//! cargo run --example partitioner [-- --url URL]
//! ```

#[path = "common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tooz::{Coordinator, MemberId, Partitioner};

const JOBS: u32 = 12;

#[tokio::main]
async fn main() {
    let url = common::ExampleUrl::from_args("partitioner", 2);
    common::finish(run(&url.url).await);
}

/// Which worker each job belongs to, as one worker's ring sees it.
fn assignment(part: &Partitioner) -> BTreeMap<u32, MemberId> {
    (0..JOBS)
        .filter_map(|job| {
            part.members_for(&format!("job-{job}"), 1, &[])
                .into_iter()
                .next()
                .map(|m| (job, m))
        })
        .collect()
}

fn show(label: &str, jobs: &BTreeMap<u32, MemberId>) {
    let mut by_worker: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for (job, worker) in jobs {
        by_worker.entry(worker.to_string()).or_default().push(*job);
    }
    println!("{label}:");
    for (worker, jobs) in by_worker {
        println!("  {worker:<8} jobs {jobs:?}");
    }
}

async fn run(url: &str) -> tooz::Result<()> {
    let mut workers = Vec::new();
    for name in ["north", "south", "west"] {
        let coord = Coordinator::builder(url, name)
            .watch_interval(Duration::from_millis(100))
            .connect()
            .await?;
        let part = coord.join_partitioned_group("jobs", 1, 32).await?;
        workers.push((coord, part));
    }
    // Every worker's ring follows the joins by itself.
    let deadline = Instant::now() + Duration::from_secs(5);
    while workers.iter().any(|(_, p)| p.ring().node_count() < 3) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = assignment(&workers[0].1);
    for (_, part) in &workers[1..] {
        assert_eq!(
            assignment(part),
            before,
            "every worker sees the same owners"
        );
    }
    show("three workers", &before);

    // "west" dies: its process ends without leaving, as a crash would.
    let (west, west_part) = workers.pop().expect("three workers");
    let dead = west.member_id().clone();
    drop(west_part);
    drop(west);
    println!("west dies without leaving the group");
    let deadline = Instant::now() + Duration::from_secs(10);
    while workers.iter().any(|(_, p)| p.ring().node_count() != 2) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after = assignment(&workers[0].1);
    show("after west died", &after);
    for job in 0..JOBS {
        let moved = before[&job] != after[&job];
        assert_eq!(
            moved,
            before[&job] == dead,
            "job {job}: only the dead worker's jobs move"
        );
    }
    println!("only west's jobs moved; the others stayed where they were");
    for (coord, part) in workers {
        part.leave().await?;
        coord.stop().await?;
    }
    Ok(())
}
