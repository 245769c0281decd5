//! Python tooz 9.1.0 and this crate on one `file://` directory: each sees the other's members
//! and capabilities, locks exclude in both directions, and a member that stops heart-beating
//! drops out for both. Needs `TOOZ_PYTHON` (see hashring_interop.rs); scripts/test sets it.

#![cfg(feature = "file")]

#[path = "interop/peer.rs"]
mod peer;
#[path = "interop/python.rs"]
mod python;
#[path = "interop/waiting.rs"]
mod waiting;

use std::time::Duration;

use peer::Peer;
use python::python;
use serde_json::json;
use tooz::{Coordinator, MemberId};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_and_rust_share_a_directory() {
    let Some(python) = python() else {
        eprintln!(
            "TOOZ_PYTHON is not set: skipping the Python interop check (scripts/test runs it)"
        );
        return;
    };
    let dir = std::env::temp_dir().join(format!("tooz-file-interop-{}", std::process::id()));
    let url = format!("file://{}?timeout=2", dir.display());
    let mut py = Peer::spawn(&python);
    py.call(json!({"op": "start", "url": url, "member": "py-1"}));
    let rust = Coordinator::connect(&url, "rs-1").await.unwrap();

    // Groups and members, with capabilities, seen from both sides.
    py.call(json!({"op": "join", "group": "shared", "caps": {"lang": "python", "weight": 2}}));
    assert!(rust.groups().await.unwrap().contains(&"shared".into()));
    rust.join_group("shared", json!({"lang": "rust", "zones": ["a", "b"]}))
        .await
        .unwrap();
    let seen = rust.members_with_capabilities("shared").await.unwrap();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(
        seen[&MemberId::from("py-1")].to_json(),
        json!({"lang": "python", "weight": 2})
    );
    let py_seen = py.call(json!({"op": "members", "group": "shared"}));
    assert_eq!(
        py_seen,
        json!({"py-1": {"lang": "python", "weight": 2}, "rs-1": {"lang": "rust", "zones": ["a", "b"]}})
    );
    rust.update_capabilities("shared", json!({"lang": "rust", "v": 2}))
        .await
        .unwrap();
    let caps = py.call(json!({"op": "caps", "group": "shared", "member": "rs-1"}));
    assert_eq!(caps, json!({"lang": "rust", "v": 2}));
    rust.create_group("made-in-rust").await.unwrap();
    let groups = py.call(json!({"op": "groups"}));
    assert!(
        groups.as_array().unwrap().contains(&json!("made-in-rust")),
        "{groups}"
    );

    // Locks exclude both ways.
    let name = "jobs/nightly";
    assert_eq!(py.call(json!({"op": "lock", "name": name})), json!(true));
    assert!(
        rust.lock(name).try_acquire().await.unwrap().is_none(),
        "python holds it"
    );
    assert_eq!(py.call(json!({"op": "unlock", "name": name})), json!(true));
    let guard = rust
        .lock(name)
        .try_acquire()
        .await
        .unwrap()
        .expect("free after python's release");
    assert_eq!(
        py.call(json!({"op": "lock", "name": name})),
        json!(false),
        "rust holds it"
    );
    let first = guard.token();
    guard.release().await.unwrap();
    assert_eq!(py.call(json!({"op": "lock", "name": name})), json!(true));
    assert_eq!(py.call(json!({"op": "unlock", "name": name})), json!(true));
    let again = rust.lock(name).try_acquire().await.unwrap().expect("free");
    assert!(
        again.token() > first,
        "python's grants do not disturb the counter's order"
    );
    again.release().await.unwrap();

    // Python never heartbeats: after the 2 s timeout it is gone for both, while we (heart-
    // beating in the background) stay.
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let members = rust.members("shared").await.unwrap();
    assert_eq!(
        members.into_iter().collect::<Vec<_>>(),
        vec![MemberId::from("rs-1")]
    );
    let py_seen = py.call(json!({"op": "members", "group": "shared"}));
    assert_eq!(py_seen, json!({"rs-1": {"lang": "rust", "v": 2}}));

    // A group where we campaigned can still be deleted by Python (leader files live apart).
    rust.create_group("elected").await.unwrap();
    let lead = rust.campaign("elected").await.unwrap();
    lead.resign().await.unwrap();
    py.call(json!({"op": "delete", "group": "elected"}));

    // A Python partitioner and ours in one group agree on the owner of every object.
    py.call(json!({"op": "heartbeat"}));
    py.call(json!({"op": "partition", "group": "jobs", "weight": 3}));
    let part = rust.join_partitioned_group("jobs", 2, 32).await.unwrap();
    part.refresh().await.unwrap();
    let names: Vec<String> = (0..500).map(|i| format!("job-{i}")).collect();
    let mut objects: Vec<serde_json::Value> = names.iter().map(|n| json!(n)).collect();
    objects.extend((0..200).map(|i| json!(i)));
    let owners = py.call(json!({"op": "owners", "objects": objects}));
    let owners = owners.as_object().unwrap();
    assert_eq!(part.ring().node_count(), 2, "{:?}", part.ring());
    assert_eq!(
        part.ring().weight("py-1"),
        Some(3),
        "we read python's weight"
    );
    let mut agreed = 0;
    for name in &names {
        let ours: Vec<String> = part
            .members_for(name, 1, &[])
            .iter()
            .map(|m| m.to_string())
            .collect();
        assert_eq!(json!(ours), owners[name.as_str()], "{name}");
        agreed += 1;
    }
    for i in 0..200u32 {
        let ours: Vec<String> = part
            .members_for(&i, 1, &[])
            .iter()
            .map(|m| m.to_string())
            .collect();
        assert_eq!(json!(ours), owners[&i.to_string()], "{i}");
        agreed += 1;
    }
    assert_eq!(agreed, 700);
    part.leave().await.unwrap();

    rust.stop().await.unwrap();
    let _ = py.try_call(json!({"op": "stop"}));
    drop(py);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_on_either_side_get_the_lock_the_other_releases() {
    let Some(python) = python() else {
        eprintln!("TOOZ_PYTHON is not set: skipping (scripts/test runs it)");
        return;
    };
    let dir = std::env::temp_dir().join(format!("tooz-file-waiting-{}", std::process::id()));
    let url = format!("file://{}", dir.display());
    let mut py = Peer::spawn(&python);
    py.call(json!({"op": "start", "url": url, "member": "py-waits"}));
    let rust = Coordinator::connect(&url, "rs-waits").await.unwrap();
    // Ours waits in the kernel, which wakes it at Python's release as at anyone's; Python's
    // blocking acquire polls (fasteners: every 10 ms, backing off to 100 ms).
    let bounds = waiting::Bounds {
        ours: Duration::from_millis(500),
        python: Duration::from_secs(2),
    };
    let mut py =
        waiting::waiters_get_what_the_other_side_releases(&rust, py, "jobs/waited", bounds).await;
    rust.stop().await.unwrap();
    let _ = py.try_call(json!({"op": "stop"}));
    drop(py);
    let _ = std::fs::remove_dir_all(&dir);
}
