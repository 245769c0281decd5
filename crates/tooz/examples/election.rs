//! Leader election: three candidates campaign for one group. Each leads in turn, works for a
//! moment and steps down — two by resigning, the last by stopping its coordinator — and every
//! term carries a higher fencing token than the one before. A watcher prints every event.
//!
//! ```text
//! cargo run --example election [-- --url URL]
//! ```

#[path = "common/mod.rs"]
mod common;

use std::time::Duration;

use tokio::sync::mpsc;
use tooz::{Capabilities, Coordinator, GroupEvent};

#[tokio::main]
async fn main() {
    let url = common::ExampleUrl::from_args("election", 10);
    common::finish(run(&url.url).await);
}

async fn run(url: &str) -> tooz::Result<()> {
    let watcher = Coordinator::builder(url, "watcher")
        .watch_interval(Duration::from_millis(100))
        .connect()
        .await?;
    watcher
        .join_group_create("schedulers", Capabilities::none())
        .await?;
    let mut events = watcher.watch("schedulers").await?;
    let printer = tokio::spawn(async move {
        while let Some(Ok(event)) = events.next().await {
            match event {
                GroupEvent::LeaderElected { member, .. } => {
                    println!("  [watch] {member} is leader")
                }
                GroupEvent::Joined { member, .. } => println!("  [watch] {member} joined"),
                GroupEvent::Left { member, .. } => println!("  [watch] {member} left"),
                _ => {}
            }
        }
    });

    let (terms, mut elected) = mpsc::unbounded_channel();
    let mut candidates = Vec::new();
    for (name, stops) in [("alpha", false), ("beta", false), ("gamma", true)] {
        let coord = Coordinator::connect(url, name).await?;
        coord.join_group("schedulers", Capabilities::none()).await?;
        let terms = terms.clone();
        candidates.push(tokio::spawn(async move {
            let leadership = coord.campaign("schedulers").await?;
            let _ = terms.send((coord.member_id().to_string(), leadership.token()));
            tokio::time::sleep(Duration::from_millis(300)).await;
            if stops {
                // Its term ends with its coordinator (stop leaves, resigns, releases).
                coord.stop().await
            } else {
                leadership.resign().await?;
                coord.stop().await
            }
        }));
    }
    drop(terms);

    let mut last = None;
    while let Some((member, token)) = elected.recv().await {
        println!("{member} leads with term token {token}, then steps down");
        assert!(
            last.is_none_or(|l| token > l),
            "terms are fenced: {token} after {last:?}"
        );
        last = Some(token);
    }
    for candidate in candidates {
        candidate.await.expect("candidate task")?;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let leader = watcher.leader("schedulers").await?;
    println!(
        "every candidate has stepped down; leader now: {}",
        leader.map_or("nobody".into(), |m| m.to_string())
    );
    printer.abort();
    watcher.stop().await
}
