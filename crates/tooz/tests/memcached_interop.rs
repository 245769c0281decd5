//! Python tooz 9.1.0 and this crate on one memcached server, in tooz's key layout: members and
//! capabilities both ways, a group created by either side listed by the other, a dead member
//! (its `_TOOZ_MEMBER_` key gone) dropped by both, lock exclusion both ways, and who leads
//! (`leader()` and Python's `get_leader` read the leader lock's value). memcached has no
//! namespace, so every name carries this run's id. Needs `TOOZ_PYTHON` and a `memcached://`
//! URL in `TOOZ_TEST_URLS` (scripts/test sets both).

#![cfg(feature = "memcached")]

#[path = "support/memcached_raw.rs"]
mod memcached_raw;
#[path = "support/memcached_url.rs"]
mod memcached_url;
#[path = "interop/peer.rs"]
mod peer;
#[path = "interop/python.rs"]
mod python;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use memcached_raw::Raw;
use memcached_url::memcached_url;
use peer::Peer;
use python::python;
use serde_json::json;
use tooz::{Coordinator, GroupId, MemberId};

/// This run's id, so that runs sharing a server never meet.
fn run_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{}-{}", std::process::id(), nanos % 1_000_000_000_000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_and_rust_share_a_memcached_server() {
    let (Some(python), Some(base)) = (python(), memcached_url()) else {
        eprintln!(
            "TOOZ_PYTHON or a memcached:// TOOZ_TEST_URLS is missing: skipping (scripts/test runs it)"
        );
        return;
    };
    let base = base.split('?').next().unwrap().to_owned();
    let server = url::Url::parse(&base).unwrap();
    let addr = format!(
        "{}:{}",
        server.host_str().unwrap_or("127.0.0.1"),
        server.port().unwrap_or(11211)
    );
    let run = run_id();
    let (py_id, py2_id, rs_id) = (
        format!("py-{run}"),
        format!("py2-{run}"),
        format!("rs-{run}"),
    );
    let group = format!("shared-{run}");
    // Python heartbeats only when told to (start_heart=False): a 30 s membership keeps it
    // alive for the whole test. Ours heartbeat by themselves, on 2-second timeouts.
    let py_url = format!("{base}?timeout=30");
    let rs_url = format!("{base}?timeout=2");
    let mut py = Peer::spawn(&python);
    py.call(json!({"op": "start", "url": py_url, "member": py_id}));
    let rust = Coordinator::connect(&rs_url, rs_id.as_str()).await.unwrap();
    let mut raw = Raw::connect_to(&addr).await;

    // A group Python creates (joining it, with capabilities) is listed and read by ours.
    py.call(json!({"op": "join", "group": group, "caps": {"lang": "python", "weight": 2}}));
    assert!(
        rust.groups()
            .await
            .unwrap()
            .contains(&GroupId::from(&group)),
        "ours lists the group Python created"
    );
    rust.join_group(group.as_str(), json!({"lang": "rust"}))
        .await
        .unwrap();
    let seen = rust
        .members_with_capabilities(group.as_str())
        .await
        .unwrap();
    assert_eq!(
        seen.keys().cloned().collect::<Vec<_>>(),
        vec![MemberId::from(&py_id), MemberId::from(&rs_id)]
    );
    assert_eq!(
        seen[&MemberId::from(&py_id)].to_json(),
        json!({"lang": "python", "weight": 2})
    );
    assert_eq!(
        rust.member_capabilities(group.as_str(), py_id.as_str())
            .await
            .unwrap()
            .to_json(),
        json!({"lang": "python", "weight": 2})
    );
    // Ours as Python reads it, then after an update.
    assert_eq!(
        py.call(json!({"op": "members", "group": group})),
        json!({py_id.clone(): {"lang": "python", "weight": 2}, rs_id.clone(): {"lang": "rust"}})
    );
    rust.update_capabilities(group.as_str(), json!({"lang": "rust", "v": 2}))
        .await
        .unwrap();
    assert_eq!(
        py.call(json!({"op": "caps", "group": group, "member": rs_id})),
        json!({"lang": "rust", "v": 2})
    );
    // Our member key is the one Python checks for liveness, with tooz's value and flags.
    let member_key = raw.get(&format!("_TOOZ_MEMBER_{rs_id}")).await;
    assert_eq!(
        member_key,
        Some((1, b"It's alive!".to_vec())),
        "our member key as tooz writes it"
    );

    // A member whose `_TOOZ_MEMBER_` key is gone (expired: its process died without leaving)
    // is dropped by both sides, though its entry is still in the group's map.
    let mut py2 = Peer::spawn(&python);
    py2.call(json!({"op": "start", "url": py_url, "member": py2_id}));
    py2.call(json!({"op": "join", "group": group, "caps": null}));
    assert!(
        rust.members(group.as_str())
            .await
            .unwrap()
            .contains(&MemberId::from(&py2_id)),
        "a live Python member with no capabilities is listed"
    );
    drop(py2);
    assert!(raw.delete(&format!("_TOOZ_MEMBER_{py2_id}")).await);
    assert_eq!(
        rust.members(group.as_str())
            .await
            .unwrap()
            .into_iter()
            .collect::<Vec<_>>(),
        vec![MemberId::from(&py_id), MemberId::from(&rs_id)],
        "ours drops a member whose member key is gone"
    );
    let py_seen = py.call(json!({"op": "members", "group": group}));
    assert!(py_seen.get(&py2_id).is_none(), "{py_seen}");
    assert!(py_seen.get(&rs_id).is_some(), "{py_seen}");

    // A group ours creates is listed by Python; each side deletes the other's.
    let ours = format!("rs-made-{run}");
    let theirs = format!("py-made-{run}");
    rust.create_group(ours.as_str()).await.unwrap();
    py.call(json!({"op": "create", "group": theirs}));
    let py_groups = py.call(json!({"op": "groups"}));
    let py_groups: Vec<&str> = py_groups
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|g| g.as_str())
        .collect();
    assert!(
        py_groups.contains(&ours.as_str()) && py_groups.contains(&theirs.as_str()),
        "python lists both new groups: {py_groups:?}"
    );
    let groups = rust.groups().await.unwrap();
    assert!(groups.contains(&GroupId::from(&ours)) && groups.contains(&GroupId::from(&theirs)));
    py.call(json!({"op": "delete", "group": ours}));
    rust.delete_group(theirs.as_str()).await.unwrap();
    let groups = rust.groups().await.unwrap();
    assert!(!groups.contains(&GroupId::from(&ours)) && !groups.contains(&GroupId::from(&theirs)));
    let py_groups = py.call(json!({"op": "groups"})).to_string();
    assert!(
        !py_groups.contains(&ours) && !py_groups.contains(&theirs),
        "{py_groups}"
    );
    assert!(groups.contains(&GroupId::from(&group)));

    // Locks exclude both ways.
    let lock = format!("nightly-{run}");
    assert_eq!(py.call(json!({"op": "lock", "name": lock})), json!(true));
    assert!(
        rust.lock(lock.as_str())
            .try_acquire()
            .await
            .unwrap()
            .is_none(),
        "python holds it"
    );
    assert_eq!(py.call(json!({"op": "unlock", "name": lock})), json!(true));
    let guard = rust
        .lock(lock.as_str())
        .try_acquire()
        .await
        .unwrap()
        .expect("free once Python released it");
    assert_eq!(
        raw.get(&format!("__TOOZ_LOCK_{lock}")).await,
        Some((1, rs_id.as_bytes().to_vec())),
        "our lock key holds our member id, as tooz's does"
    );
    assert_eq!(
        py.call(json!({"op": "lock", "name": lock})),
        json!(false),
        "rust holds it"
    );
    guard.release().await.unwrap();
    assert!(!raw.exists(&format!("__TOOZ_LOCK_{lock}")).await);
    assert_eq!(py.call(json!({"op": "lock", "name": lock})), json!(true));
    assert_eq!(py.call(json!({"op": "unlock", "name": lock})), json!(true));

    // Who leads: one leader lock for both, its value the leader's member id.
    assert_eq!(rust.leader(group.as_str()).await.unwrap(), None);
    assert_eq!(
        py.call(json!({"op": "leader", "group": group})),
        json!(null)
    );
    let lead = rust.campaign(group.as_str()).await.unwrap();
    assert_eq!(
        py.call(json!({"op": "leader", "group": group})),
        json!(rs_id),
        "python's get_leader names us"
    );
    assert_eq!(
        py.call(json!({"op": "campaign", "group": group})),
        json!(false)
    );
    lead.resign().await.unwrap();
    assert_eq!(
        py.call(json!({"op": "campaign", "group": group})),
        json!(true)
    );
    assert_eq!(
        rust.leader(group.as_str()).await.unwrap(),
        Some(MemberId::from(&py_id)),
        "our leader() names the Python leader"
    );
    assert!(
        rust.try_campaign(group.as_str()).await.unwrap().is_none(),
        "python leads"
    );

    // Python leaves and stops (releasing its leader lock): ours is alone and can lead.
    py.call(json!({"op": "leave", "group": group}));
    assert_eq!(
        rust.members(group.as_str())
            .await
            .unwrap()
            .into_iter()
            .collect::<Vec<_>>(),
        vec![MemberId::from(&rs_id)]
    );
    py.call(json!({"op": "stop"}));
    let lead = rust
        .campaign_timeout(group.as_str(), Duration::from_secs(3))
        .await
        .unwrap();
    assert_eq!(
        rust.leader(group.as_str()).await.unwrap(),
        Some(MemberId::from(&rs_id))
    );
    lead.resign().await.unwrap();
    assert_eq!(rust.leader(group.as_str()).await.unwrap(), None);

    rust.leave_group(group.as_str()).await.unwrap();
    rust.delete_group(group.as_str()).await.unwrap();
    assert!(
        !rust
            .groups()
            .await
            .unwrap()
            .contains(&GroupId::from(&group))
    );
    rust.stop().await.unwrap();
    assert!(
        !raw.exists(&format!("_TOOZ_MEMBER_{rs_id}")).await,
        "stop deletes our member key, as tooz's stop does"
    );
}
