//! Python tooz 9.1.0's ZooKeeper driver (kazoo 2.11) and ours on one ZooKeeper, in tooz's
//! kazoo layout (`/tooz/<group>` persistent, `/tooz/<group>/<member>` ephemeral with msgpack
//! capabilities, locks as kazoo's recipe under `/tooz/locks/<name>`, elections as a kazoo lock
//! on `/tooz/<group>/leader`): each sees the other's groups, members and capabilities (bytes
//! kept apart from text, both ways); their locks exclude each other both ways (a waiter of
//! ours, queued behind Python's contender, is woken by a watch on it, and a blocking Python
//! waiter queued behind ours likewise); they name the same leader; and fencing tokens (the
//! contender node's czxid) grow across holders of either kind. Ours lists groups and members
//! without tooz's bookkeeping, which Python's listings show (a group's `leader` node as a
//! member, `locks` as a group), and deletes a group that only its leftover `leader` node keeps
//! Python from deleting.
//!
//! Not shared with Python, by design: names that cannot be one ZooKeeper node name (holding
//! '/', not UTF-8, `.`, `..`, characters ZooKeeper refuses). Python joins them into paths as
//! they come — its lock `a/b` is node `b` under its lock `a`, and a crafted name escapes the
//! namespace — while ours writes such a name as one node, `~tooz-hex:<its bytes in hex>`. So
//! our lock `a/b` and Python's lock `a/b` are two locks that do not exclude each other (and a
//! group or member of such a name is not one Python can see by that name); a test pins this
//! down, along with Python's nested lock not blocking our lock `a`.
//!
//! Needs `TOOZ_PYTHON` and a `zookeeper://` URL in `TOOZ_TEST_URLS` (scripts/test sets both).
//! What is on the server is read through kazoo, Python's ZooKeeper client (the peer's
//! `zk_children` and `zk_node`), not through ours.

#![cfg(feature = "zookeeper")]

#[path = "interop/peer.rs"]
mod peer;
#[path = "interop/python.rs"]
mod python;
#[path = "support/zookeeper_url.rs"]
mod zookeeper_url;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use peer::Peer;
use python::python;
use serde_json::{Value, json};
use tokio::time::{Instant, sleep, timeout};
use tooz::{Capabilities, Coordinator, Error, GroupId, MemberId, MsgpackValue};
use zookeeper_url::{
    LOCKS, NAMESPACE, group_path, hex_name, is_contender, leader_path, lock_path, member_path,
    zookeeper_url,
};

/// The Python interpreter and the ZooKeeper URL, or `None`: the test skips (and says so).
fn setup() -> Option<(String, String)> {
    let (Some(python), Some(url)) = (python(), zookeeper_url()) else {
        eprintln!(
            "TOOZ_PYTHON or a zookeeper:// TOOZ_TEST_URLS is missing: skipping (scripts/test runs it)"
        );
        return None;
    };
    Some((python, url))
}

/// A name used by no other test and no other run sharing the server: `kind`, this process's
/// id, when this run began (a process id comes back in later runs, and group and lock nodes
/// outlive their run), and a counter.
fn unique(kind: &str) -> String {
    static RUN: OnceLock<String> = OnceLock::new();
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let run = RUN.get_or_init(|| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        format!("{}-{}", std::process::id(), nanos % 1_000_000_000_000)
    });
    format!("{kind}-{run}-{}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// A started Python tooz coordinator, member `member`, on `url` (the same URL as ours: tooz
/// reads its `timeout` too).
fn python_peer(python: &str, url: &str, member: &str) -> Peer {
    let mut py = Peer::spawn(python);
    py.call(json!({"op": "start", "url": url, "member": member}));
    py
}

fn ids(names: &[&str]) -> BTreeSet<MemberId> {
    names.iter().map(|n| MemberId::from(*n)).collect()
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

/// Capabilities that are a map with text keys, as a sorted map (the key order is the writer's,
/// and JSON on the way to Python may have changed it: it is not compared).
fn entries(caps: &Capabilities) -> BTreeMap<String, MsgpackValue> {
    let map = caps
        .value()
        .as_map()
        .unwrap_or_else(|| panic!("capabilities that are a map: {caps:?}"));
    map.iter()
        .map(|(k, v)| {
            let key = k
                .as_str()
                .unwrap_or_else(|| panic!("a text key (not bytes): {k:?}"));
            (key.to_owned(), v.clone())
        })
        .collect()
}

/// kazoo's listing of the children of `path`; `None` if there is no such node.
fn children(py: &mut Peer, path: &str) -> Option<Vec<String>> {
    let listed = py.call(json!({"op": "zk_children", "path": path}));
    serde_json::from_value(listed.clone())
        .unwrap_or_else(|e| panic!("kazoo's children of {path}: {listed}: {e}"))
}

/// The lock contenders kazoo lists under lock node `path`, in queue order (by sequence: the
/// first holds the lock); none if there is no such node.
fn contenders(py: &mut Peer, path: &str) -> Vec<String> {
    let mut found: Vec<String> = children(py, path)
        .unwrap_or_default()
        .into_iter()
        .filter(|c| is_contender(c))
        .collect();
    found.sort_by_key(|c| c[c.len() - 10..].to_owned());
    found
}

/// A znode as kazoo reads it.
#[derive(Debug)]
struct Znode {
    /// Its data, as text.
    data: String,
    ephemeral: bool,
    czxid: u64,
    /// How many times its children changed.
    cversion: i64,
}

/// kazoo's reading of node `path` (which must exist).
fn node(py: &mut Peer, path: &str) -> Znode {
    let read = py.call(json!({"op": "zk_node", "path": path}));
    assert!(!read.is_null(), "kazoo finds no node {path}");
    Znode {
        data: read["data"].as_str().expect("data").to_owned(),
        ephemeral: read["ephemeral"].as_bool().expect("ephemeral"),
        czxid: read["czxid"].as_u64().expect("czxid"),
        cversion: read["cversion"].as_i64().expect("cversion"),
    }
}

/// The first (holding) contender's node under lock node `path`, as kazoo reads it.
fn holder(py: &mut Peer, path: &str) -> Znode {
    let queue = contenders(py, path);
    let first = queue
        .first()
        .unwrap_or_else(|| panic!("no contender under {path}"));
    node(py, &format!("{path}/{first}"))
}

/// kazoo's contenders under lock node `path` once there are `n` of them, polled every 20 ms
/// for at most 5 s.
async fn queued(py: &mut Peer, path: &str, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let found = contenders(py, path);
        if found.len() == n {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "not {n} contenders under {path} within 5 s: {found:?}"
        );
        sleep(Duration::from_millis(20)).await;
    }
}

/// Members and capabilities, both ways, on tooz's nodes: Python creates a group and joins it
/// with capabilities (bytes beside text, integers of several widths and signs), ours lists it
/// and reads them exactly; ours joins with capabilities, Python's `get_members`,
/// `get_members_with_capabilities` and `get_member_capabilities` see ours exactly; updates
/// travel both ways; a leave is seen at once both ways; and a group ours created is one Python
/// joins and ours will not delete while Python is in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_and_capabilities_both_ways() {
    let Some((python, url)) = setup() else {
        return;
    };
    let (py_id, rs_id) = (unique("py"), unique("rs"));
    let group = unique("members");
    let mut py = python_peer(&python, &url, &py_id);
    let rust = Coordinator::connect(&url, rs_id.as_str()).await.unwrap();

    // Python creates the group and joins it.
    py.call(json!({"op": "create", "group": group}));
    let big: u64 = 1 << 40;
    let py_caps = json!({
        "lang": "python",
        "blob": {"$bytes": "00ff10"},
        "weight": 2,
        "big": big,
        "neg": -5,
        "tags": ["a", {"$bytes": "01"}]
    });
    py.call(json!({"op": "join", "group": group, "caps": py_caps, "tagged": true}));
    // On tooz's nodes: the group's persistent, the member's ephemeral (its session's).
    assert!(
        !node(&mut py, &group_path(&group)).ephemeral,
        "Python's group node is persistent"
    );
    let member = node(&mut py, &member_path(&group, &py_id));
    assert!(member.ephemeral, "Python's member node is ephemeral");

    // Ours lists the member and reads its capabilities: bytes as bytes, text as text.
    let expected = BTreeMap::from([
        ("big".to_owned(), MsgpackValue::from(big)),
        (
            "blob".to_owned(),
            MsgpackValue::Binary(vec![0x00, 0xff, 0x10]),
        ),
        ("lang".to_owned(), MsgpackValue::from("python")),
        ("neg".to_owned(), MsgpackValue::from(-5_i64)),
        (
            "tags".to_owned(),
            MsgpackValue::Array(vec![
                MsgpackValue::from("a"),
                MsgpackValue::Binary(vec![0x01]),
            ]),
        ),
        ("weight".to_owned(), MsgpackValue::from(2_u64)),
    ]);
    assert_eq!(
        rust.members(group.as_str()).await.unwrap(),
        ids(&[py_id.as_str()]),
        "ours lists Python's member"
    );
    let caps = rust
        .member_capabilities(group.as_str(), py_id.as_str())
        .await
        .unwrap();
    assert_eq!(entries(&caps), expected, "ours reads Python's capabilities");
    let seen = rust
        .members_with_capabilities(group.as_str())
        .await
        .unwrap();
    assert_eq!(
        seen.keys().cloned().collect::<BTreeSet<_>>(),
        ids(&[py_id.as_str()])
    );
    assert_eq!(entries(&seen[&MemberId::from(py_id.as_str())]), expected);
    // Python's group is one ours knows exists.
    let err = rust.create_group(group.as_str()).await.unwrap_err();
    assert!(
        matches!(err, Error::GroupAlreadyExist { .. }),
        "ours creating Python's group: {err:?}"
    );

    // Ours joins with capabilities: Python sees us, three ways, bytes as bytes.
    let rs_caps = MsgpackValue::Map(vec![
        (MsgpackValue::from("lang"), MsgpackValue::from("rust")),
        (
            MsgpackValue::from("blob"),
            MsgpackValue::Binary(vec![0xde, 0xad, 0x00]),
        ),
        (MsgpackValue::from("weight"), MsgpackValue::from(1_u64)),
        (MsgpackValue::from("neg"), MsgpackValue::from(-7_i64)),
    ]);
    let rs_tagged = json!({"lang": "rust", "blob": {"$bytes": "dead00"}, "weight": 1, "neg": -7});
    let membership = rust
        .join_group(group.as_str(), Capabilities::new(rs_caps))
        .await
        .unwrap();
    let ours = node(&mut py, &member_path(&group, &rs_id));
    assert!(ours.ephemeral, "our member node is ephemeral");
    assert_eq!(
        py.call(json!({"op": "member_ids", "group": group})),
        json!([py_id, rs_id]),
        "Python's get_members"
    );
    assert_eq!(
        py.call(json!({"op": "members", "group": group, "tagged": true})),
        object(&[
            (py_id.as_str(), py_caps),
            (rs_id.as_str(), rs_tagged.clone())
        ]),
        "Python's get_members_with_capabilities"
    );
    assert_eq!(
        py.call(json!({"op": "caps", "group": group, "member": rs_id, "tagged": true})),
        rs_tagged,
        "Python's get_member_capabilities"
    );

    // Updates, both ways.
    let rs_caps = MsgpackValue::Map(vec![
        (MsgpackValue::from("lang"), MsgpackValue::from("rust")),
        (MsgpackValue::from("v"), MsgpackValue::from(2_u64)),
        (
            MsgpackValue::from("key"),
            MsgpackValue::Binary(vec![0xff; 3]),
        ),
    ]);
    rust.update_capabilities(group.as_str(), Capabilities::new(rs_caps))
        .await
        .unwrap();
    assert_eq!(
        py.call(json!({"op": "caps", "group": group, "member": rs_id, "tagged": true})),
        json!({"lang": "rust", "v": 2, "key": {"$bytes": "ffffff"}}),
        "Python reads our update"
    );
    py.call(json!({
        "op": "update",
        "group": group,
        "caps": {"lang": "python", "v": 3, "raw": {"$bytes": "7f80"}},
        "tagged": true
    }));
    let caps = rust
        .member_capabilities(group.as_str(), py_id.as_str())
        .await
        .unwrap();
    assert_eq!(
        entries(&caps),
        BTreeMap::from([
            ("lang".to_owned(), MsgpackValue::from("python")),
            ("raw".to_owned(), MsgpackValue::Binary(vec![0x7f, 0x80])),
            ("v".to_owned(), MsgpackValue::from(3_u64)),
        ]),
        "ours reads Python's update"
    );

    // Ours leaves: Python no longer lists us, nor reads our capabilities.
    membership.leave().await.unwrap();
    assert_eq!(
        py.call(json!({"op": "member_ids", "group": group})),
        json!([py_id]),
        "Python sees our leave"
    );
    let err = py
        .try_call(json!({"op": "caps", "group": group, "member": rs_id}))
        .expect_err("Python read the capabilities of a member that left");
    assert!(err.starts_with("MemberNotJoined"), "{err}");
    // Python leaves: gone from our listing at once (its node deleted, not left to expire).
    py.call(json!({"op": "leave", "group": group}));
    assert_eq!(rust.members(group.as_str()).await.unwrap(), BTreeSet::new());
    let err = rust
        .member_capabilities(group.as_str(), py_id.as_str())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::MemberNotJoined { .. }), "{err:?}");
    // Python deletes the empty group: ours sees it gone.
    py.call(json!({"op": "delete", "group": group}));
    let err = rust.members(group.as_str()).await.unwrap_err();
    assert!(
        matches!(err, Error::GroupNotCreated { .. }),
        "ours sees Python's delete: {err:?}"
    );

    // The other way round: ours creates a group (persistent, as Python's), Python joins it
    // (its join_group_create finds it), ours lists Python and does not delete a group Python
    // is in; once Python left, ours deletes it and Python sees it gone.
    let group2 = unique("members");
    rust.create_group(group2.as_str()).await.unwrap();
    assert!(
        !node(&mut py, &group_path(&group2)).ephemeral,
        "our group node is persistent"
    );
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
    let err = py
        .try_call(json!({"op": "member_ids", "group": group2}))
        .expect_err("Python lists a group ours deleted");
    assert!(err.starts_with("GroupNotCreated"), "{err}");

    py.call(json!({"op": "stop"}));
    rust.stop().await.unwrap();
}

/// Locks, both ways, through kazoo's recipe on `/tooz/locks/<name>`: Python holds → ours is
/// refused (and takes its refused contender away again); Python releases → ours is granted it,
/// on a contender of its own holding our member id, its czxid our fencing token; ours holds →
/// Python is refused; ours releases → Python is granted it. A waiting acquire of ours queues
/// behind Python's contender and is woken by Python's release through a watch: within a second
/// each time, and on average far sooner than a poll would. A blocking Python acquire queues
/// behind ours and is granted the lock soon after ours lets go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locks_exclude_each_other_both_ways() {
    let Some((python, url)) = setup() else {
        return;
    };
    let (py_id, rs_id) = (unique("py"), unique("rs"));
    let mut py = python_peer(&python, &url, &py_id);
    let rust = Coordinator::connect(&url, rs_id.as_str()).await.unwrap();
    let other = Coordinator::connect(&url, unique("other").as_str())
        .await
        .unwrap();

    // ASCII, and UTF-8 beyond it with a space: one node name either way, the same for both.
    let names = [unique("lock"), format!("ünï cödé {}", unique("lock"))];
    for name in &names {
        let path = lock_path(name);
        // Python holds it: one contender, kazoo's, holding Python's member id.
        assert_eq!(
            py.call(json!({"op": "lock", "name": name})),
            json!(true),
            "{name}: Python takes the free lock"
        );
        let held = contenders(&mut py, &path);
        assert_eq!(held.len(), 1, "{name}: Python's contender under {path}");
        let python_holder = node(&mut py, &format!("{path}/{}", held[0]));
        assert_eq!(python_holder.data, py_id, "{name}: kazoo's contender data");
        assert!(python_holder.ephemeral);
        // Ours is refused, and leaves nothing in the queue.
        assert!(
            rust.lock(name.as_str())
                .try_acquire()
                .await
                .unwrap()
                .is_none(),
            "{name}: ours was granted a lock Python holds"
        );
        assert_eq!(
            contenders(&mut py, &path),
            held,
            "{name}: a refused try of ours left its contender behind"
        );

        // Python lets go: ours is granted it.
        assert_eq!(py.call(json!({"op": "unlock", "name": name})), json!(true));
        let guard = rust
            .lock(name.as_str())
            .try_acquire()
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{name}: not free after Python released it"));
        let ours = contenders(&mut py, &path);
        assert_eq!(ours.len(), 1, "{name}: our contender under {path}");
        assert_ne!(ours, held);
        let our_holder = node(&mut py, &format!("{path}/{}", ours[0]));
        assert_eq!(
            our_holder.data, rs_id,
            "{name}: our contender holds our member id, as kazoo's holds Python's"
        );
        assert!(our_holder.ephemeral, "{name}: our contender is ephemeral");
        assert_eq!(
            guard.token().get(),
            our_holder.czxid,
            "{name}: our fencing token is our contender's czxid"
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
            contenders(&mut py, &path),
            Vec::<String>::new(),
            "{name}: our release deleted our contender"
        );
        assert_eq!(
            py.call(json!({"op": "lock", "name": name})),
            json!(true),
            "{name}: Python takes it after ours released it"
        );
        assert_eq!(py.call(json!({"op": "unlock", "name": name})), json!(true));
    }

    // Ours waits while Python holds — queued behind Python's contender, watching it — and is
    // woken by Python's release. Measured from before Python's release call (what the
    // per-round bound uses) and from its reply (what the average uses: Python's own round
    // trip is not ours).
    const ROUNDS: u32 = 5;
    let name = unique("wait");
    let path = lock_path(&name);
    let mut after_reply = Vec::new();
    for round in 0..ROUNDS {
        assert_eq!(py.call(json!({"op": "lock", "name": name})), json!(true));
        let lock = rust.lock(name.as_str());
        let waiter = tokio::spawn(async move {
            let guard = lock.acquire_timeout(Duration::from_secs(10)).await;
            (Instant::now(), guard)
        });
        let queue = queued(&mut py, &path, 2).await;
        assert_eq!(
            node(&mut py, &format!("{path}/{}", queue[1])).data,
            rs_id,
            "round {round}: ours waits second in the queue, behind Python"
        );
        // (Time to settle on its watch; it is still waiting then.)
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
         watch woke the waiter"
    );

    // A blocking Python acquire (another Python coordinator: this one reads the queue
    // meanwhile) queues behind ours, and is granted the lock soon after ours lets go.
    let waiting_id = unique("py");
    let mut waiting = python_peer(&python, &url, &waiting_id);
    let guard = rust
        .lock(name.as_str())
        .try_acquire()
        .await
        .unwrap()
        .expect("free");
    let waiting_name = name.clone();
    let python_waits = tokio::task::spawn_blocking(move || {
        let granted = waiting.call(json!({"op": "lock", "name": waiting_name, "blocking": true}));
        (Instant::now(), granted, waiting)
    });
    let queue = queued(&mut py, &path, 2).await;
    assert_eq!(
        node(&mut py, &format!("{path}/{}", queue[1])).data,
        waiting_id,
        "Python's blocking acquire waits second in the queue, behind ours"
    );
    sleep(Duration::from_millis(300)).await;
    assert!(
        !python_waits.is_finished(),
        "Python was granted a lock ours holds"
    );
    let released = Instant::now();
    guard.release().await.unwrap();
    let (granted_at, granted, mut waiting) = timeout(Duration::from_secs(10), python_waits)
        .await
        .expect("Python's blocking acquire returns once ours released")
        .unwrap();
    assert_eq!(granted, json!(true));
    let waited = granted_at.saturating_duration_since(released);
    println!("Python granted {waited:?} after ours released");
    assert!(
        waited < Duration::from_secs(2),
        "Python waited {waited:?} after ours released (kazoo watches its predecessor)"
    );
    assert!(
        rust.lock(name.as_str())
            .try_acquire()
            .await
            .unwrap()
            .is_none(),
        "ours was granted a lock Python's blocking acquire took"
    );
    assert_eq!(
        waiting.call(json!({"op": "unlock", "name": name})),
        json!(true)
    );

    waiting.call(json!({"op": "stop"}));
    py.call(json!({"op": "stop"}));
    other.stop().await.unwrap();
    rust.stop().await.unwrap();
}

/// Names that are not one node name do not interoperate, by design (see the module's notes):
/// our lock `<p>/b` is one node `/tooz/locks/~tooz-hex:<hex>`, nothing under `/tooz/locks/<p>`;
/// Python's lock `<p>/b` is node `b` under `/tooz/locks/<p>` — another lock, which Python is
/// granted while ours holds ours. Python's nested node does not block our lock `<p>` (kazoo's
/// `b` is no contender), and our lock `<p>` and Python's still exclude each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_that_is_no_node_name_is_one_node_of_ours() {
    let Some((python, url)) = setup() else {
        return;
    };
    let (py_id, rs_id) = (unique("py"), unique("rs"));
    let mut py = python_peer(&python, &url, &py_id);
    let rust = Coordinator::connect(&url, rs_id.as_str()).await.unwrap();
    let parent = unique("nest");
    let nested = format!("{parent}/b");

    // Ours holds `<p>/b`: one node under the locks' root, written in hex.
    let guard = rust
        .lock(nested.as_str())
        .try_acquire()
        .await
        .unwrap()
        .expect("free");
    let encoded = hex_name(nested.as_bytes());
    let encoded_path = lock_path(&encoded);
    let ours = contenders(&mut py, &encoded_path);
    assert_eq!(ours.len(), 1, "our contender under {encoded_path}");
    let our_holder = node(&mut py, &format!("{encoded_path}/{}", ours[0]));
    assert_eq!(our_holder.data, rs_id);
    assert_eq!(our_holder.czxid, guard.token().get());
    let locks = children(&mut py, LOCKS).expect("the locks' root");
    assert!(
        locks.contains(&encoded),
        "{encoded} under {LOCKS}: {locks:?}"
    );
    assert!(
        !locks.contains(&parent),
        "our lock {nested:?} made a node {LOCKS}/{parent}"
    );
    assert_eq!(
        children(&mut py, &lock_path(&parent)),
        None,
        "our lock {nested:?} made a node {LOCKS}/{parent}"
    );

    // Python's lock of the same name is another lock: granted while ours holds ours.
    assert_eq!(
        py.call(json!({"op": "lock", "name": nested})),
        json!(true),
        "Python's {nested:?} is not ours (names that are no node name are not shared)"
    );
    assert_eq!(
        children(&mut py, &lock_path(&parent)),
        Some(vec!["b".to_owned()]),
        "Python's lock {nested:?} is node b under {LOCKS}/{parent}"
    );

    // Python's nested lock does not block our lock `<p>`...
    let parent_guard = rust
        .lock(parent.as_str())
        .try_acquire()
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("Python's lock {nested:?} blocked our lock {parent:?}"));
    assert_eq!(holder(&mut py, &lock_path(&parent)).data, rs_id);
    // ...which is shared with Python as any plain name is: Python is refused it.
    assert_eq!(
        py.call(json!({"op": "lock", "name": parent})),
        json!(false),
        "Python was granted {parent:?}, which ours holds"
    );
    parent_guard.release().await.unwrap();
    assert_eq!(
        py.call(json!({"op": "lock", "name": parent})),
        json!(true),
        "Python takes {parent:?} once ours released it"
    );
    assert_eq!(
        py.call(json!({"op": "unlock", "name": parent})),
        json!(true)
    );
    assert_eq!(
        py.call(json!({"op": "unlock", "name": nested})),
        json!(true)
    );
    guard.release().await.unwrap();
    assert_eq!(
        contenders(&mut py, &encoded_path),
        Vec::<String>::new(),
        "our release of {nested:?} deleted our contender"
    );

    py.call(json!({"op": "stop"}));
    rust.stop().await.unwrap();
}

/// The same leader both ways, tooz's election being a kazoo lock on `/tooz/<group>/leader`
/// whose first contender's data names the leader: Python elected (through
/// `watch_elected_as_leader` and `run_watchers`) → ours names it and is not elected; a
/// campaign of ours waiting meanwhile is elected soon after Python stands down, and Python's
/// `get_leader` names ours (on a contender whose czxid is the term's token) while Python is
/// not elected; after ours resigns, Python is elected again and ours names it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_leader_both_ways() {
    let Some((python, url)) = setup() else {
        return;
    };
    let (py_id, rs_id) = (unique("py"), unique("rs"));
    let group = unique("leader");
    let path = leader_path(&group);
    let mut py = python_peer(&python, &url, &py_id);
    let rust = Coordinator::connect(&url, rs_id.as_str()).await.unwrap();
    py.call(json!({"op": "create", "group": group}));

    // Python is elected: one contender under the group's leader node, with its member id.
    assert_eq!(
        py.call(json!({"op": "campaign", "group": group})),
        json!(true),
        "Python is elected in a group without a leader"
    );
    let queue = contenders(&mut py, &path);
    assert_eq!(queue.len(), 1, "Python's contender under {path}");
    let python_holder = node(&mut py, &format!("{path}/{}", queue[0]));
    assert_eq!(python_holder.data, py_id);
    assert!(python_holder.ephemeral);
    assert_eq!(
        rust.leader(group.as_str()).await.unwrap(),
        Some(MemberId::from(py_id.as_str())),
        "ours names Python's leader"
    );
    assert!(
        rust.try_campaign(group.as_str()).await.unwrap().is_none(),
        "ours was elected while Python leads"
    );
    assert_eq!(
        contenders(&mut py, &path),
        queue,
        "a refused campaign of ours left its contender behind"
    );
    assert_eq!(
        py.call(json!({"op": "leader", "group": group})),
        json!(py_id)
    );

    // Python stands down: a campaign of ours, waiting meanwhile, is elected soon after.
    let campaigner = rust.clone();
    let waiting_group = group.clone();
    let campaign = tokio::spawn(async move {
        let elected = campaigner
            .campaign_timeout(waiting_group, Duration::from_secs(10))
            .await;
        (Instant::now(), elected)
    });
    sleep(Duration::from_millis(300)).await;
    assert!(
        !campaign.is_finished(),
        "ours was elected while Python leads"
    );
    let resigned = Instant::now();
    assert_eq!(
        py.call(json!({"op": "resign", "group": group})),
        json!(true)
    );
    let (elected_at, leadership) = timeout(Duration::from_secs(10), campaign)
        .await
        .expect("the campaign returns")
        .unwrap();
    let leadership = leadership.expect("ours is elected once Python stood down");
    let after = elected_at.saturating_duration_since(resigned);
    println!("ours elected {after:?} after Python stood down");
    assert!(
        after < Duration::from_secs(1),
        "ours was elected only {after:?} after Python stood down"
    );

    // Ours leads: Python's get_leader names ours, and Python is not elected.
    assert_eq!(
        py.call(json!({"op": "leader", "group": group})),
        json!(rs_id),
        "Python's get_leader names ours"
    );
    assert_eq!(
        rust.leader(group.as_str()).await.unwrap(),
        Some(MemberId::from(rs_id.as_str()))
    );
    let our_holder = holder(&mut py, &path);
    assert_eq!(our_holder.data, rs_id);
    assert!(our_holder.ephemeral);
    assert_eq!(
        our_holder.czxid,
        leadership.token().get(),
        "the term's token is our contender's czxid"
    );
    assert_eq!(
        py.call(json!({"op": "campaign", "group": group})),
        json!(false),
        "Python was elected while ours leads"
    );

    // Ours resigns: no leader; Python is elected again, and ours names it.
    leadership.resign().await.unwrap();
    assert_eq!(
        py.call(json!({"op": "leader", "group": group})),
        Value::Null
    );
    assert_eq!(rust.leader(group.as_str()).await.unwrap(), None);
    assert_eq!(
        py.call(json!({"op": "campaign", "group": group})),
        json!(true),
        "Python is elected once ours resigned"
    );
    assert_eq!(
        rust.leader(group.as_str()).await.unwrap(),
        Some(MemberId::from(py_id.as_str()))
    );
    assert_eq!(
        py.call(json!({"op": "resign", "group": group})),
        json!(true)
    );
    assert_eq!(rust.leader(group.as_str()).await.unwrap(), None);

    // Only the leftover leader node is in the group: ours deletes it (Python could not; see
    // below).
    rust.delete_group(group.as_str()).await.unwrap();
    py.call(json!({"op": "stop"}));
    rust.stop().await.unwrap();
}

/// A campaign of ours that waits while Python leads watches the leader lock's contenders
/// rather than trying again and again: each try adds and withdraws a contender (two changes
/// to the leader node's children, which its `cversion` counts), and over a second of waiting
/// there are a few tries at most, not hundreds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_campaign_of_ours_does_not_spin() {
    let Some((python, url)) = setup() else {
        return;
    };
    let (py_id, rs_id) = (unique("py"), unique("rs"));
    let group = unique("spin");
    let path = leader_path(&group);
    let mut py = python_peer(&python, &url, &py_id);
    let rust = Coordinator::connect(&url, rs_id.as_str()).await.unwrap();
    py.call(json!({"op": "create", "group": group}));
    assert_eq!(
        py.call(json!({"op": "campaign", "group": group})),
        json!(true)
    );
    // (Ours reads the leader first, as a user would.)
    assert_eq!(
        rust.leader(group.as_str()).await.unwrap(),
        Some(MemberId::from(py_id.as_str()))
    );

    let before = node(&mut py, &path).cversion;
    let campaigner = rust.clone();
    let waiting_group = group.clone();
    let campaign = tokio::spawn(async move {
        campaigner
            .campaign_timeout(waiting_group, Duration::from_secs(10))
            .await
    });
    sleep(Duration::from_secs(1)).await;
    let after = node(&mut py, &path).cversion;
    assert!(
        !campaign.is_finished(),
        "ours was elected while Python leads"
    );
    let tries = (after - before) / 2;
    println!("a campaign of ours waiting for a second tried {tries} times");
    assert!(
        tries <= 10,
        "a campaign of ours waiting for a second tried {tries} times: it spins instead of \
         waiting for the leader lock's contenders to change"
    );

    assert_eq!(
        py.call(json!({"op": "resign", "group": group})),
        json!(true)
    );
    let leadership = timeout(Duration::from_secs(10), campaign)
        .await
        .expect("the campaign returns")
        .unwrap()
        .expect("ours is elected once Python stood down");
    leadership.resign().await.unwrap();
    rust.delete_group(group.as_str()).await.unwrap();
    py.call(json!({"op": "stop"}));
    rust.stop().await.unwrap();
}

/// Python's listings show tooz's bookkeeping; ours do not (both asserted, so that the
/// divergence is on record): after an election in a group, Python's `get_members` lists the
/// group's persistent `leader` node as a member (and `get_members_with_capabilities` with no
/// capabilities), and after a lock its `get_groups` lists `locks` as a group. Ours lists
/// exactly the members and the groups. And a group whose only child is that leftover `leader`
/// node is one Python cannot delete (`GroupNotEmpty`, for ever) and ours can — though not
/// while someone contends for its leadership.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ours_lists_without_tooz_bookkeeping() {
    let Some((python, url)) = setup() else {
        return;
    };
    let (py_id, rs_id) = (unique("py"), unique("rs"));
    let group = unique("listing");
    let name = unique("listing");
    let mut py = python_peer(&python, &url, &py_id);
    let rust = Coordinator::connect(&url, rs_id.as_str()).await.unwrap();
    py.call(json!({"op": "join", "group": group, "caps": {"lang": "python"}}));
    let membership = rust
        .join_group(group.as_str(), json!({"lang": "rust"}))
        .await
        .unwrap();

    // Python runs an election in the group and stands down (its `leader` node stays), and
    // takes a lock (so `/tooz/locks` exists, if no lock had made it yet).
    assert_eq!(
        py.call(json!({"op": "campaign", "group": group})),
        json!(true)
    );
    assert_eq!(
        py.call(json!({"op": "resign", "group": group})),
        json!(true)
    );
    assert_eq!(py.call(json!({"op": "lock", "name": name})), json!(true));
    assert_eq!(py.call(json!({"op": "unlock", "name": name})), json!(true));
    assert!(
        !node(&mut py, &leader_path(&group)).ephemeral,
        "the leader lock's node is persistent"
    );

    // Python's listings show them...
    assert_eq!(
        py.call(json!({"op": "member_ids", "group": group})),
        json!(["leader", py_id, rs_id]),
        "Python's get_members lists the leader lock's node as a member"
    );
    let py_members = py.call(json!({"op": "members", "group": group}));
    assert_eq!(
        py_members.get("leader"),
        Some(&Value::Null),
        "Python's get_members_with_capabilities lists the leader node: {py_members}"
    );
    // (Python's get_groups fails outright where a node under /tooz has a name beyond ASCII,
    // which another test sharing this server may have made: it encodes each name as ASCII.
    // Then kazoo's listing, which it encodes, stands in for it.)
    let py_groups = match py.try_call(json!({"op": "groups"})) {
        Ok(groups) => groups,
        Err(e) if e.starts_with("UnicodeEncodeError") => {
            json!(children(&mut py, NAMESPACE).expect("the namespace node"))
        }
        Err(e) => panic!("Python's get_groups: {e}"),
    };
    let py_groups = py_groups.as_array().expect("a list");
    assert!(
        py_groups.contains(&json!("locks")),
        "Python's get_groups lists the locks' root as a group"
    );
    assert!(py_groups.contains(&json!(group)));
    // ...and ours do not.
    assert_eq!(
        rust.members(group.as_str()).await.unwrap(),
        ids(&[py_id.as_str(), rs_id.as_str()]),
        "ours lists the leader lock's node as a member"
    );
    let with_caps = rust
        .members_with_capabilities(group.as_str())
        .await
        .unwrap();
    assert_eq!(
        with_caps.keys().cloned().collect::<BTreeSet<_>>(),
        ids(&[py_id.as_str(), rs_id.as_str()])
    );
    let ours: BTreeSet<GroupId> = rust.groups().await.unwrap().into_iter().collect();
    assert!(ours.contains(&GroupId::from(group.as_str())));
    assert!(
        !ours.contains(&GroupId::from("locks")),
        "ours lists the locks' root as a group"
    );

    // Both leave: only the leader node is left in the group.
    membership.leave().await.unwrap();
    py.call(json!({"op": "leave", "group": group}));
    assert_eq!(
        py.call(json!({"op": "member_ids", "group": group})),
        json!(["leader"])
    );
    assert_eq!(rust.members(group.as_str()).await.unwrap(), BTreeSet::new());
    assert_eq!(
        children(&mut py, &group_path(&group)),
        Some(vec!["leader".to_owned()])
    );

    // While Python contends for (holds) the leadership, ours does not delete the group.
    assert_eq!(
        py.call(json!({"op": "campaign", "group": group})),
        json!(true)
    );
    let err = rust.delete_group(group.as_str()).await.unwrap_err();
    assert!(
        matches!(err, Error::GroupNotEmpty { .. }),
        "ours deleted a group under a leader: {err:?}"
    );
    assert_eq!(
        py.call(json!({"op": "leader", "group": group})),
        json!(py_id),
        "Python still leads"
    );
    assert_eq!(
        py.call(json!({"op": "resign", "group": group})),
        json!(true)
    );

    // Nobody contends: Python cannot delete the group (its delete refuses any child), ours
    // deletes the leader node and the group together.
    let err = py
        .try_call(json!({"op": "delete", "group": group}))
        .expect_err("Python deleted a group with its leader node in it");
    assert!(err.starts_with("GroupNotEmpty"), "{err}");
    rust.delete_group(group.as_str()).await.unwrap();
    assert_eq!(
        children(&mut py, &group_path(&group)),
        None,
        "the group's node is gone"
    );
    let err = py
        .try_call(json!({"op": "member_ids", "group": group}))
        .expect_err("Python lists a group ours deleted");
    assert!(err.starts_with("GroupNotCreated"), "{err}");

    py.call(json!({"op": "stop"}));
    rust.stop().await.unwrap();
}

/// Fencing tokens grow across holders of either kind: two successive grants of one lock to
/// ours, with a Python holder between them, have strictly increasing tokens — and Python's
/// contender's czxid lies between them (ours are czxids too, on the one zxid sequence).
/// Likewise leadership terms, with a Python term between two of ours.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fencing_tokens_grow_across_python_holders() {
    let Some((python, url)) = setup() else {
        return;
    };
    let (py_id, rs_id) = (unique("py"), unique("rs"));
    let mut py = python_peer(&python, &url, &py_id);
    let rust = Coordinator::connect(&url, rs_id.as_str()).await.unwrap();

    let name = unique("fence");
    let path = lock_path(&name);
    let first = rust
        .lock(name.as_str())
        .try_acquire()
        .await
        .unwrap()
        .expect("free");
    let t1 = first.token();
    first.release().await.unwrap();
    assert_eq!(py.call(json!({"op": "lock", "name": name})), json!(true));
    let python_grant = holder(&mut py, &path);
    assert_eq!(python_grant.data, py_id);
    assert!(
        python_grant.czxid > t1.get(),
        "Python's grant (czxid {}) is not after ours (token {t1})",
        python_grant.czxid
    );
    assert_eq!(py.call(json!({"op": "unlock", "name": name})), json!(true));
    let second = rust
        .lock(name.as_str())
        .try_acquire()
        .await
        .unwrap()
        .expect("free after Python released it");
    let t2 = second.token();
    println!(
        "lock tokens: ours {t1}, Python's contender {}, ours {t2}",
        python_grant.czxid
    );
    assert!(t2 > t1, "our second token {t2} is not above our first {t1}");
    assert!(
        t2.get() > python_grant.czxid,
        "our token {t2} is not above Python's grant in between ({})",
        python_grant.czxid
    );
    second.release().await.unwrap();

    let group = unique("fence");
    let path = leader_path(&group);
    py.call(json!({"op": "create", "group": group}));
    let term = rust
        .try_campaign(group.as_str())
        .await
        .unwrap()
        .expect("elected in a group without a leader");
    let l1 = term.token();
    term.resign().await.unwrap();
    assert_eq!(
        py.call(json!({"op": "campaign", "group": group})),
        json!(true)
    );
    let python_term = holder(&mut py, &path);
    assert_eq!(python_term.data, py_id);
    assert!(
        python_term.czxid > l1.get(),
        "Python's term (czxid {}) is not after ours (token {l1})",
        python_term.czxid
    );
    assert_eq!(
        py.call(json!({"op": "resign", "group": group})),
        json!(true)
    );
    let term = rust
        .try_campaign(group.as_str())
        .await
        .unwrap()
        .expect("elected once Python stood down");
    let l2 = term.token();
    assert!(l2 > l1, "our second term's token {l2} is not above {l1}");
    assert!(
        l2.get() > python_term.czxid,
        "our term's token {l2} is not above Python's term in between ({})",
        python_term.czxid
    );
    term.resign().await.unwrap();
    rust.delete_group(group.as_str()).await.unwrap();

    py.call(json!({"op": "stop"}));
    rust.stop().await.unwrap();
}
