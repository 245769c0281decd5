//! The README's first command: three members join a group with capabilities, one is elected
//! leader, a lock is taken with its fencing token, and a member that stops heart-beating times
//! out — seen both by itself (its loss signal) and by the others (a `Left` event).
//!
//! ```text
//! cargo run --release --example quickstart [-- --url URL]
//! ```
//! The default URL is `file://` on a fresh temporary directory with a 2-second membership
//! timeout (the embedded default backend; a Python tooz process could share the directory).

use std::time::{Duration, Instant};

use serde_json::json;
use tooz::{Coordinator, GroupEvent};

#[path = "common/mod.rs"]
mod common;

#[tokio::main]
async fn main() {
    let url = common::ExampleUrl::from_args("quickstart", 2);
    common::finish(run(&url.url).await);
}

async fn run(url: &str) -> tooz::Result<()> {
    let started = Instant::now();
    let say = |what: String| println!("[{:>5.2}s] {what}", started.elapsed().as_secs_f64());

    let alice = Coordinator::connect(url, "alice").await?;
    let bob = Coordinator::connect(url, "bob").await?;
    // Carol heartbeats only when told to, and will not be told: she is going to time out.
    let carol = Coordinator::builder(url, "carol")
        .manual_heartbeat()
        .connect()
        .await?;
    say(format!(
        "connected alice, bob and carol to {} (membership timeout {:?})",
        alice.backend_name(),
        alice.membership_timeout()
    ));

    alice
        .join_group_create("workers", json!({"weight": 2, "zone": "a"}))
        .await?;
    bob.join_group("workers", json!({"weight": 1, "zone": "b"}))
        .await?;
    let carol_membership = carol
        .join_group("workers", json!({"weight": 1, "zone": "c"}))
        .await?;
    for (member, caps) in alice.members_with_capabilities("workers").await? {
        say(format!("member {member} joined with capabilities {caps}"));
    }

    let mut events = alice.watch("workers").await?;

    let leadership = bob.campaign("workers").await?;
    say(format!(
        "bob is elected leader of 'workers' (term token {}); alice sees leader = {}",
        leadership.token(),
        display(alice.leader("workers").await?)
    ));

    let guard = alice.lock("nightly-report").acquire().await?;
    say(format!(
        "alice holds lock 'nightly-report' with fencing token {}",
        guard.token()
    ));
    let bob_try = bob.lock("nightly-report").try_acquire().await?;
    say(format!(
        "bob tries the same lock: {}",
        if bob_try.is_some() {
            "granted (wrong!)"
        } else {
            "busy, as it should be"
        }
    ));
    guard.release().await?;
    let guard = bob.lock("nightly-report").acquire().await?;
    say(format!(
        "alice released it; bob takes it with fencing token {} (higher: stale holders are fenced off)",
        guard.token()
    ));
    guard.release().await?;

    say("carol stops heart-beating...".to_owned());
    carol_membership.lost().await;
    say("carol's own loss signal fired: she knows she is no longer a member".to_owned());
    loop {
        match tokio::time::timeout(Duration::from_secs(30), events.next()).await {
            Ok(Some(Ok(GroupEvent::Left { member, .. }))) => {
                say(format!("alice sees {member} leave the group (timed out)"));
                break;
            }
            Ok(Some(Ok(GroupEvent::LeaderElected { member, .. }))) => {
                say(format!("alice sees {member} elected leader"));
            }
            Ok(Some(Ok(other))) => say(format!("alice sees {other:?}")),
            Ok(Some(Err(e))) => return Err(e),
            Ok(None) | Err(_) => {
                say("no Left event within 30 s".to_owned());
                break;
            }
        }
    }
    let members: Vec<String> = alice
        .members("workers")
        .await?
        .iter()
        .map(ToString::to_string)
        .collect();
    say(format!("members now: {}", members.join(", ")));

    leadership.resign().await?;
    alice.stop().await?;
    bob.stop().await?;
    let _ = carol.stop().await;
    say("everyone stopped: groups left, locks released".to_owned());
    Ok(())
}

fn display(member: Option<tooz::MemberId>) -> String {
    member.map_or_else(|| "nobody".to_owned(), |m| m.to_string())
}
