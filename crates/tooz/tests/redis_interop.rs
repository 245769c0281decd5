//! Python tooz 9.1.0 and this crate on one Redis server: members and capabilities both ways,
//! lock exclusion both ways, and who leads. Needs `TOOZ_PYTHON` and a `redis://` URL in
//! `TOOZ_TEST_URLS` (scripts/test sets both).

#![cfg(feature = "redis")]

#[path = "interop/peer.rs"]
mod peer;
#[path = "interop/python.rs"]
mod python;
#[path = "support/redis_url.rs"]
mod redis_url;
#[path = "interop/waiting.rs"]
mod waiting;

use std::time::Duration;

use peer::Peer;
use python::python;
use redis_url::redis_url;
use serde_json::json;
use tooz::drivers::redis::UNKNOWN_LEADER;
use tooz::{Coordinator, MemberId};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_and_rust_share_a_redis_server() {
    let (Some(python), Some(base)) = (python(), redis_url()) else {
        eprintln!(
            "TOOZ_PYTHON or a redis:// TOOZ_TEST_URLS is missing: skipping (scripts/test runs it)"
        );
        return;
    };
    // A namespace of our own, and 2-second timeouts, on the shared server.
    let base = base.split('?').next().unwrap().to_owned();
    let url = format!("{base}?timeout=2&namespace=_tooz_it{}", std::process::id());
    let mut py = Peer::spawn(&python);
    py.call(json!({"op": "start", "url": url, "member": "py-1"}));
    let rust = Coordinator::connect(&url, "rs-1").await.unwrap();

    // Members and capabilities, both ways.
    py.call(json!({"op": "join", "group": "shared", "caps": {"lang": "python", "weight": 2}}));
    rust.join_group("shared", json!({"lang": "rust"}))
        .await
        .unwrap();
    let seen = rust.members_with_capabilities("shared").await.unwrap();
    assert_eq!(
        seen[&MemberId::from("py-1")].to_json(),
        json!({"lang": "python", "weight": 2})
    );
    let py_seen = py.call(json!({"op": "members", "group": "shared"}));
    assert_eq!(
        py_seen,
        json!({"py-1": {"lang": "python", "weight": 2}, "rs-1": {"lang": "rust"}})
    );
    rust.update_capabilities("shared", json!({"lang": "rust", "v": 2}))
        .await
        .unwrap();
    let caps = py.call(json!({"op": "caps", "group": "shared", "member": "rs-1"}));
    assert_eq!(caps, json!({"lang": "rust", "v": 2}));

    // Locks exclude both ways.
    assert_eq!(
        py.call(json!({"op": "lock", "name": "nightly"})),
        json!(true)
    );
    assert!(
        rust.lock("nightly").try_acquire().await.unwrap().is_none(),
        "python holds it"
    );
    assert_eq!(
        py.call(json!({"op": "unlock", "name": "nightly"})),
        json!(true)
    );
    let guard = rust
        .lock("nightly")
        .try_acquire()
        .await
        .unwrap()
        .expect("free");
    assert_eq!(
        py.call(json!({"op": "lock", "name": "nightly"})),
        json!(false),
        "rust holds it"
    );
    guard.release().await.unwrap();
    assert_eq!(
        py.call(json!({"op": "lock", "name": "nightly"})),
        json!(true)
    );
    assert_eq!(
        py.call(json!({"op": "unlock", "name": "nightly"})),
        json!(true)
    );

    // Who leads: one election lock for both.
    let lead = rust.campaign("shared").await.unwrap();
    assert_eq!(
        py.call(json!({"op": "campaign", "group": "shared"})),
        json!(false)
    );
    lead.resign().await.unwrap();
    assert_eq!(
        py.call(json!({"op": "campaign", "group": "shared"})),
        json!(true)
    );
    assert!(
        rust.try_campaign("shared").await.unwrap().is_none(),
        "python leads"
    );
    assert_eq!(
        rust.leader("shared").await.unwrap(),
        Some(MemberId::from(UNKNOWN_LEADER))
    );

    // Python stops heart-beating: its beat key expires and it drops out for both sides, and
    // its election lock expires too, so we can lead.
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let members = rust.members("shared").await.unwrap();
    assert_eq!(
        members.into_iter().collect::<Vec<_>>(),
        vec![MemberId::from("rs-1")]
    );
    let py_seen = py.call(json!({"op": "members", "group": "shared"}));
    assert!(
        py_seen.get("rs-1").is_some(),
        "python still sees us: {py_seen}"
    );
    let lead = rust
        .campaign_timeout("shared", Duration::from_secs(3))
        .await
        .unwrap();
    assert_eq!(
        rust.leader("shared").await.unwrap(),
        Some(MemberId::from("rs-1"))
    );
    lead.resign().await.unwrap();

    rust.leave_group("shared").await.unwrap();
    rust.delete_group("shared").await.unwrap();
    rust.stop().await.unwrap();
    let _ = py.try_call(json!({"op": "stop"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_on_either_side_get_the_lock_the_other_releases() {
    let (Some(python), Some(base)) = (python(), redis_url()) else {
        eprintln!(
            "TOOZ_PYTHON or a redis:// TOOZ_TEST_URLS is missing: skipping (scripts/test runs it)"
        );
        return;
    };
    let base = base.split('?').next().unwrap().to_owned();
    let url = format!("{base}?namespace=_tooz_itw{}", std::process::id());
    let mut py = Peer::spawn(&python);
    py.call(json!({"op": "start", "url": url, "member": "py-waits"}));
    let rust = Coordinator::connect(&url, "rs-waits").await.unwrap();
    // Python's release announces nothing: ours finds the lock free by its jittered poll (at
    // most half a second apart), and takes it as the head of the queue. Python's blocking
    // acquire polls every 100 ms (redis-py's lock).
    let bounds = waiting::Bounds {
        ours: Duration::from_millis(1500),
        python: Duration::from_secs(2),
    };
    let mut py =
        waiting::waiters_get_what_the_other_side_releases(&rust, py, "waited", bounds).await;
    rust.stop().await.unwrap();
    let _ = py.try_call(json!({"op": "stop"}));
}
