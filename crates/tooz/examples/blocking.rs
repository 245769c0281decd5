//! The blocking API (`tooz::blocking`) in a plain synchronous program, without an async
//! runtime of its own: two members join a group, one takes a lock and shows its fencing token,
//! the other is elected leader, and a watch reports the join.
//!
//! ```text
//! cargo run --release --features blocking --example blocking
//! ```
//! It runs on `file://` in a fresh temporary directory, removed at the end.

use std::time::{Duration, Instant};

use serde_json::json;
use tooz::GroupEvent;
use tooz::blocking::Coordinator;

fn main() {
    let dir = std::env::temp_dir().join(format!("tooz-blocking-example-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("cannot create {}: {e}", dir.display());
        std::process::exit(1);
    }
    let url = format!("file://{}?timeout=2", dir.display());
    let result = run(&url);
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = result {
        eprintln!("example failed: {e}");
        std::process::exit(1);
    }
}

fn run(url: &str) -> tooz::Result<()> {
    let started = Instant::now();
    let say = |what: String| println!("[{:>5.2}s] {what}", started.elapsed().as_secs_f64());

    // Alice polls the group often, so that the watch below reports quickly.
    let alice = Coordinator::builder(url, "alice")
        .watch_interval(Duration::from_millis(100))
        .connect()?;
    let bob = Coordinator::connect(url, "bob")?;
    say(format!(
        "connected alice and bob to {} (membership timeout {:?}); heartbeats run on a \
         thread of each coordinator's own",
        alice.backend_name(),
        alice.membership_timeout()
    ));

    let _alice_membership = alice.join_group_create("workers", json!({"weight": 2}))?;
    let mut events = alice.watch("workers")?;
    let bob_membership = bob.join_group("workers", json!({"weight": 1}))?;
    for (member, caps) in alice.members_with_capabilities("workers")? {
        say(format!("member {member} joined with capabilities {caps}"));
    }

    let guard = alice.lock("nightly-report").acquire()?;
    say(format!(
        "alice holds lock 'nightly-report' with fencing token {}",
        guard.token()
    ));
    let busy = bob.lock("nightly-report").try_acquire()?.is_none();
    say(format!(
        "bob tries the same lock: {}",
        if busy {
            "busy, as it should be"
        } else {
            "granted (wrong!)"
        }
    ));
    let first = guard.token();
    guard.release()?;
    let guard = bob.lock("nightly-report").acquire()?;
    say(format!(
        "alice released it; bob takes it with fencing token {} (higher than {first})",
        guard.token()
    ));
    drop(guard);
    say("bob dropped his guard: the lock was released before `drop` returned".to_owned());

    let leadership = bob.campaign("workers")?;
    let leader = alice.leader("workers")?;
    say(format!(
        "bob is elected leader of 'workers' (term token {}); alice sees leader = {}",
        leadership.token(),
        leader.map_or_else(|| "nobody".to_owned(), |m| m.to_string())
    ));

    // The watch has been polling on alice's runtime thread all along: the events are waiting.
    let deadline = Instant::now() + Duration::from_secs(2);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match events.recv_timeout(left)? {
            Some(GroupEvent::Joined { member, .. }) if member.as_str() == Some("bob") => {
                say("alice's watch saw bob join".to_owned());
                break;
            }
            Some(event) => say(format!("alice's watch saw {event:?}")),
            None => {
                say("no join event within 2 s".to_owned());
                break;
            }
        }
    }

    leadership.resign()?;
    bob_membership.leave()?;
    alice.stop()?;
    bob.stop()?;
    say("everyone stopped: groups left, locks released".to_owned());
    Ok(())
}
