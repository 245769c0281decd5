//! Python tooz 9.1.0's etcd driver (etcd3gw, through etcd's JSON gateway) and ours (gRPC) on
//! one etcd: the same keys, so each sees the other's groups, members and capabilities, and
//! their locks exclude each other both ways; a release by either side frees the lock for the
//! other (ours is woken by a watch, at once; Python retries, backing off to once a second). A
//! Python member that stops heart-beating drops out of our listing when its lease runs out,
//! and ours lists groups and members without Python's two listing mistakes (members listed as
//! groups, group `a/b` listed as a member of `a`). Needs `TOOZ_PYTHON` and an `etcd3+http://`
//! URL in `TOOZ_TEST_URLS` (scripts/test sets both).

#![cfg(feature = "etcd")]

#[path = "support/etcd_url.rs"]
mod etcd_url;
#[path = "interop/peer.rs"]
mod peer;
#[path = "interop/python.rs"]
mod python;

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use etcd_url::{base, direct, etcd_url, group_key, key_lease, key_value, lock_key, member_key};
use peer::Peer;
use python::python;
use serde_json::{Value, json};
use tokio::time::{Instant, sleep, timeout};
use tooz::{Coordinator, Error, GroupId, MemberId};

/// This run's id, so that runs sharing a server never meet.
fn run_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{}-{}", std::process::id(), nanos % 1_000_000_000_000)
}

/// A JSON object from (key, value) pairs whose keys are computed.
fn object(pairs: &[(&str, Value)]) -> Value {
    Value::Object(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
    )
}

fn ids(names: &[&str]) -> BTreeSet<MemberId> {
    names.iter().map(|n| MemberId::from(*n)).collect()
}

/// Members and capabilities, both ways, on tooz's keys: Python creates a group and joins it
/// with capabilities, ours lists it and reads them; ours joins with capabilities, Python's
/// `get_members`, `get_members_with_capabilities` and `get_member_capabilities` see ours;
/// updates travel both ways; a leave is seen at once; and a group ours created is one Python
/// joins and ours will not delete while Python is in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_and_capabilities_both_ways() {
    let (Some(python), Some(url)) = (python(), etcd_url()) else {
        eprintln!(
            "TOOZ_PYTHON or an etcd3+http:// TOOZ_TEST_URLS is missing: skipping (scripts/test runs it)"
        );
        return;
    };
    let base = base(&url);
    let run = run_id();
    let (py_id, rs_id) = (format!("py-{run}"), format!("rs-{run}"));
    let group = format!("interop-{run}");
    let mut raw = direct(&base).await;
    let mut py = Peer::spawn(&python);
    py.call(json!({"op": "start", "url": base, "member": py_id}));
    let rust = Coordinator::connect(&url, rs_id.as_str()).await.unwrap();

    // Python creates the group and joins it with capabilities.
    py.call(json!({"op": "create", "group": group}));
    let py_caps = json!({"lang": "python", "weight": 2});
    py.call(json!({"op": "join", "group": group, "caps": py_caps}));
    // On tooz's keys: the group's, lease-less, holding its own bytes; the member's on a lease.
    let gk = group_key(group.as_bytes());
    assert_eq!(
        key_lease(&mut raw, &gk).await,
        Some(0),
        "Python's group key"
    );
    assert_eq!(
        key_value(&mut raw, &gk).await.as_deref(),
        Some(gk.as_slice())
    );
    let py_lease = key_lease(&mut raw, &member_key(group.as_bytes(), py_id.as_bytes()))
        .await
        .expect("Python's member key");
    assert_ne!(
        py_lease, 0,
        "Python's member key is on its membership lease"
    );

    // Ours sees the member and its capabilities, three ways.
    assert_eq!(
        rust.members(group.as_str()).await.unwrap(),
        ids(&[py_id.as_str()]),
        "ours lists Python's member"
    );
    let seen = rust
        .members_with_capabilities(group.as_str())
        .await
        .unwrap();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[&MemberId::from(py_id.as_str())].to_json(), py_caps);
    assert_eq!(
        rust.member_capabilities(group.as_str(), py_id.as_str())
            .await
            .unwrap()
            .to_json(),
        py_caps
    );
    // Python's group is one ours knows exists (and will not create again).
    let err = rust.create_group(group.as_str()).await.unwrap_err();
    assert!(
        matches!(err, Error::GroupAlreadyExist { .. }),
        "ours creating Python's group: {err:?}"
    );

    // Ours joins with capabilities: Python sees us, three ways.
    let rs_caps = json!({"lang": "rust", "tags": ["a", "b"], "weight": 1});
    let membership = rust
        .join_group(group.as_str(), rs_caps.clone())
        .await
        .unwrap();
    assert_eq!(
        py.call(json!({"op": "members", "group": group})),
        object(&[(py_id.as_str(), py_caps), (rs_id.as_str(), rs_caps.clone())]),
        "Python's get_members_with_capabilities"
    );
    assert_eq!(
        py.call(json!({"op": "member_ids", "group": group})),
        json!([py_id, rs_id]),
        "Python's get_members"
    );
    assert_eq!(
        py.call(json!({"op": "caps", "group": group, "member": rs_id})),
        rs_caps,
        "Python's get_member_capabilities"
    );

    // Updates, both ways.
    let rs_caps = json!({"lang": "rust", "v": 2});
    rust.update_capabilities(group.as_str(), rs_caps.clone())
        .await
        .unwrap();
    assert_eq!(
        py.call(json!({"op": "caps", "group": group, "member": rs_id})),
        rs_caps
    );
    let py_caps = json!({"lang": "python", "v": 3});
    py.call(json!({"op": "update", "group": group, "caps": py_caps}));
    assert_eq!(
        rust.member_capabilities(group.as_str(), py_id.as_str())
            .await
            .unwrap()
            .to_json(),
        py_caps
    );

    // Python leaves: gone from our listing at once (its key is deleted, not left to expire).
    py.call(json!({"op": "leave", "group": group}));
    assert_eq!(
        rust.members(group.as_str()).await.unwrap(),
        ids(&[rs_id.as_str()])
    );
    let err = rust
        .member_capabilities(group.as_str(), py_id.as_str())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::MemberNotJoined { .. }), "{err:?}");
    // Ours leaves; Python (whose delete refuses a group with any key under it) deletes it.
    membership.leave().await.unwrap();
    py.call(json!({"op": "delete", "group": group}));
    let err = rust.members(group.as_str()).await.unwrap_err();
    assert!(
        matches!(err, Error::GroupNotCreated { .. }),
        "ours sees Python's delete: {err:?}"
    );

    // The other way round: ours creates a group, Python joins it (its join_group_create finds
    // it), ours lists Python and does not delete a group Python is in.
    let group2 = format!("interop2-{run}");
    rust.create_group(group2.as_str()).await.unwrap();
    py.call(json!({"op": "join", "group": group2, "caps": {"x": 1}}));
    assert_eq!(
        rust.members(group2.as_str()).await.unwrap(),
        ids(&[py_id.as_str()])
    );
    let err = rust.delete_group(group2.as_str()).await.unwrap_err();
    assert!(
        matches!(err, Error::GroupNotEmpty { .. }),
        "ours deleted a group with Python in it: {err:?}"
    );
    py.call(json!({"op": "leave", "group": group2}));
    rust.delete_group(group2.as_str()).await.unwrap();
    let gone = py.try_call(json!({"op": "member_ids", "group": group2}));
    let err = gone.expect_err("Python lists a group ours deleted");
    assert!(err.starts_with("GroupNotCreated"), "{err}");

    py.call(json!({"op": "stop"}));
    rust.stop().await.unwrap();
}

/// Locks, both ways, on tooz's key `/tooz/locks<name>`: Python holds → ours is refused; Python
/// releases → ours is granted it; ours holds → Python is refused; ours releases → Python is
/// granted it. A waiting acquire of ours is woken by Python's release through a watch on the
/// key: within a second each time, and on average far sooner than any poll could (a waiter's
/// fallback poll comes every 250–500 ms, so polling alone would average about 200 ms after a
/// release). Python, waiting, is granted the lock soon after ours releases it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locks_exclude_each_other_both_ways() {
    let (Some(python), Some(url)) = (python(), etcd_url()) else {
        eprintln!(
            "TOOZ_PYTHON or an etcd3+http:// TOOZ_TEST_URLS is missing: skipping (scripts/test runs it)"
        );
        return;
    };
    let base = base(&url);
    let run = run_id();
    let mut raw = direct(&base).await;
    let mut py = Peer::spawn(&python);
    // Python's default timeout: its lock leases last 30 s, longer than anything here.
    py.call(json!({"op": "start", "url": base, "member": format!("py-{run}")}));
    let rust = Coordinator::connect(&url, format!("rs-{run}").as_str())
        .await
        .unwrap();
    let other = Coordinator::connect(&url, format!("other-{run}").as_str())
        .await
        .unwrap();

    // ASCII, UTF-8 beyond ASCII, and a '/' (a lock name is no path: Python's key is its bytes
    // after the prefix, ours too).
    let names = [format!("interop-{run}"), format!("ünï cödé/{run}")];
    for name in &names {
        let key = lock_key(name.as_bytes());
        // Python holds it: ours is refused, on Python's very key.
        assert_eq!(
            py.call(json!({"op": "lock", "name": name})),
            json!(true),
            "{name}: Python takes the free lock"
        );
        let python_lease = key_lease(&mut raw, &key)
            .await
            .unwrap_or_else(|| panic!("{name}: Python's lock key /tooz/locks<name> exists"));
        assert_ne!(python_lease, 0, "{name}: Python's lock key is on a lease");
        assert!(
            rust.lock(name.as_str())
                .try_acquire()
                .await
                .unwrap()
                .is_none(),
            "{name}: ours was granted a lock Python holds"
        );

        // Python lets go: ours is granted it, on that same key, on our own lease.
        assert_eq!(py.call(json!({"op": "unlock", "name": name})), json!(true));
        let guard = rust
            .lock(name.as_str())
            .try_acquire()
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{name}: not free after Python released it"));
        let ours = key_lease(&mut raw, &key).await;
        assert!(
            ours.is_some_and(|l| l != 0 && l != python_lease),
            "{name}: ours holds the key on a lease of its own ({ours:?}; Python's was \
             {python_lease:x})"
        );
        assert_eq!(
            key_value(&mut raw, &key).await.map(|v| v.len()),
            Some(16),
            "{name}: the value is a 16-byte owner token, as Python's uuid4 bytes"
        );
        // Ours holds it: Python is refused, and so is any other coordinator of ours.
        assert_eq!(
            py.call(json!({"op": "lock", "name": name})),
            json!(false),
            "{name}: Python was granted a lock ours holds"
        );
        assert!(
            other
                .lock(name.as_str())
                .try_acquire()
                .await
                .unwrap()
                .is_none(),
            "{name}: two of ours hold one lock"
        );
        guard.release().await.unwrap();
        assert_eq!(
            key_lease(&mut raw, &key).await,
            None,
            "{name}: our release deleted the key"
        );
        assert_eq!(
            py.call(json!({"op": "lock", "name": name})),
            json!(true),
            "{name}: Python takes it after ours released it"
        );
        assert_eq!(py.call(json!({"op": "unlock", "name": name})), json!(true));
    }

    // Ours waits while Python holds, and is woken by Python's release (a watch on the key's
    // deletion). Measured from before Python's release call (what the per-round bound uses)
    // and from its reply (what the average uses: Python's own round trip is not ours).
    const ROUNDS: u32 = 10;
    let name = format!("wait-{run}");
    let mut after_reply = Vec::new();
    for round in 0..ROUNDS {
        assert_eq!(py.call(json!({"op": "lock", "name": name})), json!(true));
        let lock = rust.lock(name.as_str());
        let waiter = tokio::spawn(async move {
            let guard = lock.acquire_timeout(Duration::from_secs(10)).await;
            (Instant::now(), guard)
        });
        sleep(Duration::from_millis(300)).await;
        assert!(
            !waiter.is_finished(),
            "round {round}: ours was granted a lock Python holds"
        );
        let released = Instant::now();
        assert_eq!(py.call(json!({"op": "unlock", "name": name})), json!(true));
        let replied = Instant::now();
        let (granted, guard) = timeout(Duration::from_secs(10), waiter)
            .await
            .expect("the waiter returns")
            .unwrap();
        let guard = guard.expect("ours is granted the lock Python released");
        let after = granted.saturating_duration_since(released);
        assert!(
            after < Duration::from_secs(1),
            "round {round}: ours was granted the lock only {after:?} after Python released it"
        );
        after_reply.push(granted.saturating_duration_since(replied));
        guard.release().await.unwrap();
    }
    let mean = after_reply.iter().sum::<Duration>() / ROUNDS;
    println!("ours granted after Python's release replied: {after_reply:?}, mean {mean:?}");
    assert!(
        mean < Duration::from_millis(100),
        "ours was granted a lock Python released {mean:?} after the release on average: no \
         watch woke the waiter (a poll alone averages about 200 ms)"
    );

    // Python waits (a blocking acquire: tooz retries, backing off to once a second) while
    // ours holds, and is granted the lock soon after ours lets go.
    let guard = rust
        .lock(name.as_str())
        .try_acquire()
        .await
        .unwrap()
        .expect("free");
    let waiting_name = name.clone();
    let python_waits = tokio::task::spawn_blocking(move || {
        let granted = py.call(json!({"op": "lock", "name": waiting_name, "blocking": true}));
        (Instant::now(), granted, py)
    });
    sleep(Duration::from_millis(1500)).await;
    assert!(
        !python_waits.is_finished(),
        "Python was granted a lock ours holds"
    );
    let released = Instant::now();
    guard.release().await.unwrap();
    let (granted_at, granted, mut py) = timeout(Duration::from_secs(10), python_waits)
        .await
        .expect("Python's blocking acquire returns once ours released")
        .unwrap();
    assert_eq!(granted, json!(true));
    let waited = granted_at - released;
    println!("Python granted {waited:?} after ours released");
    assert!(
        waited < Duration::from_secs(3),
        "Python waited {waited:?} after ours released (it retries about once a second)"
    );
    assert!(
        rust.lock(name.as_str())
            .try_acquire()
            .await
            .unwrap()
            .is_none(),
        "ours was granted a lock Python's blocking acquire took"
    );
    assert_eq!(py.call(json!({"op": "unlock", "name": name})), json!(true));

    py.call(json!({"op": "stop"}));
    other.stop().await.unwrap();
    rust.stop().await.unwrap();
}

/// A Python member and lock holder that stops heart-beating — its process SIGKILLed, so
/// nothing is revoked or deleted on the way out — is listed by ours until its lease runs out,
/// and then no more: within its TTL (Python's lease TTL is its `membership_timeout`, here 3 s)
/// of its last heartbeat, plus etcd's expiry granularity (it checks every 500 ms), and not
/// before. Its lock (on a lease of `lock_timeout`, 3 s, renewed by the same heartbeats) goes
/// with it, and a waiter of ours is granted it then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_member_that_stops_heartbeating_drops_out_within_its_ttl() {
    let (Some(python), Some(url)) = (python(), etcd_url()) else {
        eprintln!(
            "TOOZ_PYTHON or an etcd3+http:// TOOZ_TEST_URLS is missing: skipping (scripts/test runs it)"
        );
        return;
    };
    const TTL: Duration = Duration::from_secs(3);
    let base = base(&url);
    let run = run_id();
    let py_id = format!("py-{run}");
    let group = format!("heartbeat-{run}");
    let name = format!("heartbeat-{run}");
    let mut raw = direct(&base).await;
    let rust = Coordinator::connect(&url, format!("rs-{run}").as_str())
        .await
        .unwrap();
    let mut py = Peer::spawn(&python);
    py.call(json!({"op": "start", "url": format!("{base}?timeout=3"), "member": py_id}));
    py.call(json!({"op": "join", "group": group, "caps": {"lang": "python"}}));
    assert_eq!(py.call(json!({"op": "lock", "name": name})), json!(true));
    let py_member = MemberId::from(py_id.as_str());

    // Python's member key is on a lease of TTL 3 s.
    let lease = key_lease(&mut raw, &member_key(group.as_bytes(), py_id.as_bytes()))
        .await
        .expect("Python's member key");
    let granted = raw
        .lease_time_to_live(lease, None)
        .await
        .unwrap()
        .granted_ttl();
    assert_eq!(
        granted, 3,
        "Python's membership lease TTL is membership_timeout"
    );

    // Heart-beating keeps it listed past its TTL.
    let beating_until = Instant::now() + 2 * TTL;
    while Instant::now() < beating_until {
        py.call(json!({"op": "heartbeat"}));
        assert!(
            rust.members(group.as_str())
                .await
                .unwrap()
                .contains(&py_member),
            "a heart-beating Python member is listed"
        );
        sleep(Duration::from_millis(700)).await;
    }
    // One last beat right before the kill: the measures start there (the lease was renewed
    // between the request being sent and its reply).
    let last_sent = Instant::now();
    py.call(json!({"op": "heartbeat"}));
    let last_replied = Instant::now();

    // SIGKILL: no leave, no release, no revoke.
    let pid = py.call(json!({"op": "pid"})).as_u64().expect("a pid");
    let status = std::process::Command::new("kill")
        .arg("-KILL")
        .arg(pid.to_string())
        .status()
        .expect("kill");
    assert!(status.success(), "kill -KILL {pid}");
    assert!(
        rust.members(group.as_str())
            .await
            .unwrap()
            .contains(&py_member),
        "a killed Python member is listed until its lease runs out"
    );
    // A waiter of ours for Python's lock.
    let lock = rust.lock(name.as_str());
    let waiter = tokio::spawn(async move {
        let guard = lock.acquire_timeout(Duration::from_secs(15)).await;
        (Instant::now(), guard)
    });

    let dropped = timeout(Duration::from_secs(15), async {
        loop {
            if !rust
                .members(group.as_str())
                .await
                .unwrap()
                .contains(&py_member)
            {
                return Instant::now();
            }
            sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the killed Python member drops out within 15 s");
    let since_beat = dropped - last_sent;
    println!(
        "the killed Python member dropped out {since_beat:?} after its last heartbeat was sent"
    );
    assert!(
        since_beat < TTL + Duration::from_secs(2),
        "dropped out {since_beat:?} after its last heartbeat: not within its TTL ({TTL:?}) \
         plus etcd's expiry granularity"
    );
    assert!(
        dropped.saturating_duration_since(last_replied) >= TTL - Duration::from_millis(500),
        "dropped out {:?} after its last heartbeat's reply: before its lease could have run out",
        dropped.saturating_duration_since(last_replied)
    );
    // The group is still there (a group has no lease), empty of Python.
    assert_eq!(rust.members(group.as_str()).await.unwrap(), BTreeSet::new());

    let (granted_at, guard) = timeout(Duration::from_secs(15), waiter)
        .await
        .expect("the waiter returns")
        .unwrap();
    let guard = guard.expect("ours is granted the lock of the killed Python holder");
    let lock_after = granted_at - last_sent;
    println!("ours granted the killed Python holder's lock {lock_after:?} after its last beat");
    assert!(
        lock_after < TTL + Duration::from_secs(2),
        "ours was granted the killed holder's lock {lock_after:?} after its last heartbeat"
    );
    guard.release().await.unwrap();
    rust.delete_group(group.as_str()).await.unwrap();
    drop(py);
    rust.stop().await.unwrap();
}

/// Python's listing mistakes, which ours does not repeat: Python's `get_groups` cuts the last
/// byte off every key under `tooz/groups/`, members included (member `py-…` of group `g`
/// shows as group `g/py-…` minus a byte), and its `get_members` lists everything under a
/// group's key (sub-group `g/b`'s key as member `b/`, its members as `b/<m>`). Ours lists
/// exactly the groups and exactly the members, on the same keys, and deletes `g` while `g/b`
/// exists (a sub-group is no member), leaving `g/b` whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ours_lists_groups_and_members_without_pythons_mistakes() {
    let (Some(python), Some(url)) = (python(), etcd_url()) else {
        eprintln!(
            "TOOZ_PYTHON or an etcd3+http:// TOOZ_TEST_URLS is missing: skipping (scripts/test runs it)"
        );
        return;
    };
    let base = base(&url);
    let run = run_id();
    let (py_id, rs_id) = (format!("py-{run}"), format!("rs-{run}"));
    let group = format!("listing-{run}");
    let sub = format!("{group}/b");
    let mut py = Peer::spawn(&python);
    py.call(json!({"op": "start", "url": base, "member": py_id}));
    let rust = Coordinator::connect(&url, rs_id.as_str()).await.unwrap();

    // Python's member in `g`; a sub-group `g/b` (Python's), with our member in it.
    py.call(json!({"op": "join", "group": group, "caps": {"lang": "python"}}));
    py.call(json!({"op": "create", "group": sub}));
    let in_sub = rust
        .join_group(sub.as_str(), json!({"lang": "rust"}))
        .await
        .unwrap();

    // Python's view has the mistakes (so the hazard is real on these keys).
    let py_groups = py.call(json!({"op": "groups"}));
    let bogus = format!("{group}/{}", &py_id[..py_id.len() - 1]);
    assert!(
        py_groups
            .as_array()
            .unwrap()
            .contains(&Value::from(bogus.as_str())),
        "Python's get_groups lists its member as group {bogus:?}: {py_groups}"
    );
    let py_members = py.call(json!({"op": "member_ids", "group": group}));
    assert!(
        py_members.as_array().unwrap().contains(&Value::from("b/")),
        "Python's get_members lists sub-group {sub:?} as member \"b/\": {py_members}"
    );

    // Ours: exactly the two groups, exactly the members.
    let ours: BTreeSet<GroupId> = rust
        .groups()
        .await
        .unwrap()
        .into_iter()
        .filter(|g| g.as_bytes().starts_with(group.as_bytes()))
        .collect();
    assert_eq!(
        ours,
        BTreeSet::from([GroupId::from(group.as_str()), GroupId::from(sub.as_str())]),
        "ours lists groups, not members"
    );
    assert_eq!(
        rust.members(group.as_str()).await.unwrap(),
        ids(&[py_id.as_str()]),
        "ours lists neither the sub-group nor its members as members of {group}"
    );
    let with_caps = rust
        .members_with_capabilities(group.as_str())
        .await
        .unwrap();
    assert_eq!(
        with_caps.keys().cloned().collect::<BTreeSet<_>>(),
        ids(&[py_id.as_str()])
    );
    assert_eq!(
        rust.members(sub.as_str()).await.unwrap(),
        ids(&[rs_id.as_str()])
    );
    assert_eq!(
        py.call(json!({"op": "member_ids", "group": sub})),
        json!([rs_id]),
        "Python lists our member of the sub-group"
    );

    // `g` is not empty while Python is in it; once Python left, ours deletes it although
    // `g/b` (a group, with a member) is under its key, and `g/b` stays whole.
    let err = rust.delete_group(group.as_str()).await.unwrap_err();
    assert!(matches!(err, Error::GroupNotEmpty { .. }), "{err:?}");
    py.call(json!({"op": "leave", "group": group}));
    rust.delete_group(group.as_str()).await.unwrap();
    let err = rust.members(group.as_str()).await.unwrap_err();
    assert!(matches!(err, Error::GroupNotCreated { .. }), "{err:?}");
    assert_eq!(
        rust.members(sub.as_str()).await.unwrap(),
        ids(&[rs_id.as_str()])
    );
    assert!(in_sub.is_active());

    in_sub.leave().await.unwrap();
    rust.delete_group(sub.as_str()).await.unwrap();
    py.call(json!({"op": "stop"}));
    rust.stop().await.unwrap();
}
