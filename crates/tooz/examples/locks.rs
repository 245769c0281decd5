//! Fenced locks: three workers take turns on one lock and write to a "storage" that, like any
//! resource guarded by a fencing token, refuses writes carrying a token lower than the highest
//! it has seen. A worker that stalls while holding the lock (a GC pause, a swapped-out VM) and
//! writes afterwards is refused rather than corrupting the data.
//!
//! ```text
//! cargo run --example locks [-- --url URL]
//! ```

#[path = "common/mod.rs"]
mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tooz::{Coordinator, FencingToken};

/// A resource that checks fencing tokens, as a database or object store would.
#[derive(Default)]
struct Storage {
    highest: Option<FencingToken>,
    log: Vec<String>,
}

impl Storage {
    fn write(&mut self, token: FencingToken, entry: String) -> Result<(), String> {
        if self.highest.is_some_and(|h| token < h) {
            return Err(format!(
                "refused: token {token} is older than {}",
                self.highest.unwrap()
            ));
        }
        self.highest = Some(token);
        self.log.push(entry);
        Ok(())
    }
}

#[tokio::main]
async fn main() {
    let url = common::ExampleUrl::from_args("locks", 10);
    common::finish(run(&url.url).await);
}

async fn run(url: &str) -> tooz::Result<()> {
    let storage = Arc::new(Mutex::new(Storage::default()));
    let mut workers = Vec::new();
    for name in ["ann", "ben", "cat"] {
        workers.push(Coordinator::connect(url, name).await?);
    }

    // Each worker takes the lock three times, writing under its token.
    for round in 1..=3 {
        for worker in &workers {
            let guard = worker.lock("ledger").acquire().await?;
            let entry = format!("round {round} by {}", worker.member_id());
            let result = storage.lock().unwrap().write(guard.token(), entry.clone());
            println!(
                "{} holds 'ledger' with token {}: write '{entry}' -> {result:?}",
                worker.member_id(),
                guard.token()
            );
            guard.release().await?;
        }
    }

    // A stale holder: ann takes the lock, is "paused" while ben is granted it after her
    // release is forced by a drop; her late write carries the old token and is refused.
    let ann = &workers[0];
    let stale = ann.lock("ledger").acquire().await?;
    let stale_token = stale.token();
    drop(stale); // ann's process believes nothing happened; the lock is gone
    tokio::time::sleep(Duration::from_millis(50)).await;
    let ben = workers[1].lock("ledger").acquire().await?;
    storage
        .lock()
        .unwrap()
        .write(ben.token(), "ben's fresh write".into())
        .map_err(tooz_error)?;
    println!("ben holds 'ledger' with token {} and writes", ben.token());
    let late = storage
        .lock()
        .unwrap()
        .write(stale_token, "ann's late write".into());
    println!("ann wakes up and writes with token {stale_token}: {late:?}");
    assert!(late.is_err(), "the storage must refuse a stale token");
    ben.release().await?;

    println!("ledger: {:?}", storage.lock().unwrap().log);
    for worker in workers {
        worker.stop().await?;
    }
    Ok(())
}

fn tooz_error(reason: String) -> tooz::Error {
    tooz::Error::Serialization { reason }
}
