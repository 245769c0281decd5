use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::json;
use tokio::time::{Instant, timeout};
use tooz::{Capabilities, Error, GroupEvent, GroupId, MemberId, MsgpackValue};

use crate::harness::{Harness, unique};

fn none() -> Capabilities {
    Capabilities::none()
}

fn set(ids: &[&str]) -> BTreeSet<MemberId> {
    ids.iter().map(|id| MemberId::from(*id)).collect()
}

pub(crate) async fn create_list_delete(h: Harness) {
    let coord = h.member(&unique("m")).await;
    let names: Vec<String> = (0..5).map(|_| unique("g")).collect();
    for g in &names {
        coord.create_group(g.as_str()).await.unwrap();
    }
    let listed = coord.groups().await.unwrap();
    for g in &names {
        assert!(listed.contains(&GroupId::from(g.as_str())), "{g} listed");
    }
    let err = coord.create_group(names[0].as_str()).await.unwrap_err();
    assert!(matches!(err, Error::GroupAlreadyExist { .. }), "{err:?}");
    coord.delete_group(names[0].as_str()).await.unwrap();
    assert!(
        !coord
            .groups()
            .await
            .unwrap()
            .contains(&GroupId::from(names[0].as_str()))
    );
    let err = coord.delete_group(names[0].as_str()).await.unwrap_err();
    assert!(matches!(err, Error::GroupNotCreated { .. }), "{err:?}");
    let err = coord
        .join_group(names[0].as_str(), none())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::GroupNotCreated { .. }), "{err:?}");
    coord.stop().await.unwrap();
}

pub(crate) async fn delete_non_empty_group(h: Harness) {
    let coord = h.member(&unique("m")).await;
    let g = unique("g");
    coord.join_group_create(g.as_str(), none()).await.unwrap();
    let err = coord.delete_group(g.as_str()).await.unwrap_err();
    assert!(matches!(err, Error::GroupNotEmpty { .. }), "{err:?}");
    coord.leave_group(g.as_str()).await.unwrap();
    coord.delete_group(g.as_str()).await.unwrap();
    coord.stop().await.unwrap();
}

pub(crate) async fn join_missing_group(h: Harness) {
    let coord = h.member(&unique("m")).await;
    let err = coord
        .join_group(unique("g").as_str(), none())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::GroupNotCreated { .. }), "{err:?}");
    coord.stop().await.unwrap();
}

pub(crate) async fn join_group_create(h: Harness) {
    let id = unique("m");
    let coord = h.member(&id).await;
    let g = unique("g");
    let membership = coord.join_group_create(g.as_str(), none()).await.unwrap();
    assert!(membership.is_active());
    assert_eq!(membership.group(), &GroupId::from(g.as_str()));
    assert_eq!(coord.members(g.as_str()).await.unwrap(), set(&[&id]));
    let err = coord
        .join_group_create(g.as_str(), none())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::MemberAlreadyExist { .. }), "{err:?}");
    coord.stop().await.unwrap();
}

pub(crate) async fn same_member_id_cannot_join_twice(h: Harness) {
    let id = unique("m");
    let (a, twin) = (h.member(&id).await, h.member(&id).await);
    let g = unique("g");
    a.join_group_create(g.as_str(), none()).await.unwrap();
    let err = twin
        .join_group(g.as_str(), json!({"other": true}))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::MemberAlreadyExist { .. }), "{err:?}");
    // The failed join must not have overwritten anything (tooz's Redis driver does).
    assert!(
        a.member_capabilities(g.as_str(), id.as_str())
            .await
            .unwrap()
            .is_none()
    );
    a.stop().await.unwrap();
    twin.stop().await.unwrap();
}

pub(crate) async fn leave_errors(h: Harness) {
    let (a, b) = (h.member(&unique("a")).await, h.member(&unique("b")).await);
    let err = a.leave_group(unique("g").as_str()).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::GroupNotCreated { .. } | Error::MemberNotJoined { .. }
        ),
        "{err:?}"
    );
    let g = unique("g");
    a.join_group_create(g.as_str(), none()).await.unwrap();
    let err = b.leave_group(g.as_str()).await.unwrap_err();
    assert!(matches!(err, Error::MemberNotJoined { .. }), "{err:?}");
    a.leave_group(g.as_str()).await.unwrap();
    assert!(a.members(g.as_str()).await.unwrap().is_empty());
    let err = a.leave_group(g.as_str()).await.unwrap_err();
    assert!(matches!(err, Error::MemberNotJoined { .. }), "{err:?}");
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

pub(crate) async fn members_and_capabilities(h: Harness) {
    let (ia, ib) = (unique("a"), unique("b"));
    let (a, b) = (h.member(&ia).await, h.member(&ib).await);
    let g = unique("g");
    let caps_a = json!({"type": "a", "zones": ["z1", "z2"], "nested": {"n": 1, "f": 1.5}});
    a.join_group_create(g.as_str(), caps_a.clone())
        .await
        .unwrap();
    b.join_group(g.as_str(), json!({"type": "b"}))
        .await
        .unwrap();
    assert_eq!(a.members(g.as_str()).await.unwrap(), set(&[&ia, &ib]));
    assert_eq!(b.members(g.as_str()).await.unwrap(), set(&[&ia, &ib]));
    let with_caps = b.members_with_capabilities(g.as_str()).await.unwrap();
    let expected: BTreeMap<MemberId, Capabilities> = [
        (
            MemberId::from(ia.as_str()),
            Capabilities::from(caps_a.clone()),
        ),
        (
            MemberId::from(ib.as_str()),
            Capabilities::from(json!({"type": "b"})),
        ),
    ]
    .into();
    assert_eq!(with_caps, expected);
    let read = b
        .member_capabilities(g.as_str(), ia.as_str())
        .await
        .unwrap();
    assert_eq!(read.to_json(), caps_a);
    let err = a
        .member_capabilities(g.as_str(), unique("nobody").as_str())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::MemberNotJoined { .. }), "{err:?}");
    let err = a
        .member_capabilities(unique("g").as_str(), ia.as_str())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::GroupNotCreated { .. } | Error::MemberNotJoined { .. }
        ),
        "{err:?}"
    );
    let err = a.members(unique("g").as_str()).await.unwrap_err();
    assert!(matches!(err, Error::GroupNotCreated { .. }), "{err:?}");
    let err = a
        .members_with_capabilities(unique("g").as_str())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::GroupNotCreated { .. }), "{err:?}");
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

pub(crate) async fn capabilities_edge_cases(h: Harness) {
    let coord = h.member(&unique("m")).await;
    let empty = unique("g");
    coord.create_group(empty.as_str()).await.unwrap();
    assert!(
        coord
            .members_with_capabilities(empty.as_str())
            .await
            .unwrap()
            .is_empty()
    );
    // Joined without capabilities: tooz's None.
    let g = unique("g");
    coord.join_group_create(g.as_str(), none()).await.unwrap();
    let caps = coord.members_with_capabilities(g.as_str()).await.unwrap();
    assert!(caps.values().all(Capabilities::is_none), "{caps:?}");
    // Bytes, text, ints of every width, floats, an oslo datetime: all round-trip exactly.
    let value = MsgpackValue::Map(vec![
        (
            MsgpackValue::from("bin"),
            MsgpackValue::Binary(vec![0, 0xff, 7]),
        ),
        (MsgpackValue::from("str"), MsgpackValue::from("ü")),
        (MsgpackValue::from("neg"), MsgpackValue::from(i64::MIN)),
        (MsgpackValue::from("big"), MsgpackValue::from(u64::MAX)),
        (MsgpackValue::from("f"), MsgpackValue::F64(0.25)),
        (
            MsgpackValue::from("when"),
            tooz::OsloDateTime::naive(2024, 1, 2, 3, 4, 5).to_value(),
        ),
    ]);
    coord
        .update_capabilities(g.as_str(), value.clone())
        .await
        .unwrap();
    let read = coord
        .member_capabilities(g.as_str(), coord.member_id())
        .await
        .unwrap();
    assert_eq!(read.value(), &value);
    coord.stop().await.unwrap();
}

pub(crate) async fn update_capabilities(h: Harness) {
    let (ia, ib) = (unique("a"), unique("b"));
    let (a, b) = (h.member(&ia).await, h.member(&ib).await);
    let g = unique("g");
    a.join_group_create(g.as_str(), json!({"version": 1}))
        .await
        .unwrap();
    a.update_capabilities(g.as_str(), json!({"version": 2}))
        .await
        .unwrap();
    let read = b
        .member_capabilities(g.as_str(), ia.as_str())
        .await
        .unwrap();
    assert_eq!(read.to_json(), json!({"version": 2}));
    let err = b.update_capabilities(g.as_str(), none()).await.unwrap_err();
    assert!(matches!(err, Error::MemberNotJoined { .. }), "{err:?}");
    let err = a
        .update_capabilities(unique("g").as_str(), none())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::GroupNotCreated { .. } | Error::MemberNotJoined { .. }
        ),
        "{err:?}"
    );
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

pub(crate) async fn oversized_capabilities_write_nothing(h: Harness) {
    let coord = h.member(&unique("m")).await;
    let g = unique("g");
    coord.create_group(g.as_str()).await.unwrap();
    let big = Capabilities::new(MsgpackValue::Binary(vec![7; tooz::MAX_CAPABILITIES_LEN]));
    let err = coord.join_group(g.as_str(), big.clone()).await.unwrap_err();
    assert!(matches!(err, Error::CapabilitiesTooLarge { .. }), "{err:?}");
    assert!(
        coord.members(g.as_str()).await.unwrap().is_empty(),
        "nothing joined"
    );
    coord
        .join_group(g.as_str(), json!({"small": 1}))
        .await
        .unwrap();
    let err = coord
        .update_capabilities(g.as_str(), big)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::CapabilitiesTooLarge { .. }), "{err:?}");
    let read = coord
        .member_capabilities(g.as_str(), coord.member_id())
        .await
        .unwrap();
    assert_eq!(read.to_json(), json!({"small": 1}), "old capabilities kept");
    coord.stop().await.unwrap();
}

pub(crate) async fn stop_leaves_groups(h: Harness) {
    let (ia, ib) = (unique("a"), unique("b"));
    let (a, b) = (h.member(&ia).await, h.member(&ib).await);
    let g = unique("g");
    a.join_group_create(g.as_str(), none()).await.unwrap();
    let membership = b.join_group(g.as_str(), none()).await.unwrap();
    b.stop().await.unwrap();
    timeout(Duration::from_secs(1), membership.lost())
        .await
        .expect("stop ends memberships");
    assert!(!membership.is_active());
    assert_eq!(a.members(g.as_str()).await.unwrap(), set(&[&ia]));
    a.stop().await.unwrap();
}

async fn next_event(watch: &mut tooz::GroupWatch, within: Duration) -> GroupEvent {
    timeout(within, watch.next())
        .await
        .expect("an event in time")
        .expect("watch open")
        .expect("no watch error")
}

pub(crate) async fn watch_reports_join_and_leave(h: Harness) {
    let (ia, ib) = (unique("a"), unique("b"));
    let a = h
        .builder(&ia)
        .watch_interval(Duration::from_millis(100))
        .connect()
        .await
        .unwrap();
    let b = h.member(&ib).await;
    let g = unique("g");
    a.join_group_create(g.as_str(), none()).await.unwrap();
    let mut watch = a.watch(g.as_str()).await.unwrap();
    let within = Duration::from_secs(5);
    b.join_group(g.as_str(), none()).await.unwrap();
    let group = GroupId::from(g.as_str());
    let joined = GroupEvent::Joined {
        group: group.clone(),
        member: ib.as_str().into(),
    };
    assert_eq!(next_event(&mut watch, within).await, joined);
    b.leave_group(g.as_str()).await.unwrap();
    let left = GroupEvent::Left {
        group,
        member: ib.as_str().into(),
    };
    assert_eq!(next_event(&mut watch, within).await, left);
    // Nothing else happened, so nothing else is reported.
    assert!(
        timeout(Duration::from_millis(400), watch.next())
            .await
            .is_err()
    );
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

pub(crate) async fn watch_missing_group(h: Harness) {
    let coord = h.member(&unique("m")).await;
    let err = coord.watch(unique("g").as_str()).await.unwrap_err();
    assert!(matches!(err, Error::GroupNotCreated { .. }), "{err:?}");
    coord.stop().await.unwrap();
}

pub(crate) async fn member_expires_without_heartbeat(h: Harness) {
    let (ia, ib) = (unique("a"), unique("b"));
    let a = h
        .builder(&ia)
        .watch_interval(Duration::from_millis(100))
        .connect()
        .await
        .unwrap();
    let b = h.builder(&ib).manual_heartbeat().connect().await.unwrap();
    let ttl = b.membership_timeout();
    let g = unique("g");
    a.join_group_create(g.as_str(), none()).await.unwrap();
    let mut watch = a.watch(g.as_str()).await.unwrap();
    let membership = b.join_group(g.as_str(), none()).await.unwrap();
    let started = Instant::now();
    let within = ttl * 4 + Duration::from_secs(2);
    let joined = next_event(&mut watch, within).await;
    assert_eq!(joined.member(), &MemberId::from(ib.as_str()));
    // b never heartbeats: it must drop out, and know it first.
    timeout(within, membership.lost())
        .await
        .expect("b's membership is lost");
    assert!(
        started.elapsed() < ttl + Duration::from_millis(200),
        "{:?}",
        started.elapsed()
    );
    let left = next_event(&mut watch, within).await;
    let group = GroupId::from(g.as_str());
    assert_eq!(
        left,
        GroupEvent::Left {
            group,
            member: ib.as_str().into()
        }
    );
    assert_eq!(
        a.members(g.as_str()).await.unwrap(),
        set(&[&ia]),
        "a heart-beats and stays"
    );
    a.stop().await.unwrap();
    // The expired member's coordinator still stops cleanly.
    let _ = b.stop().await;
}

pub(crate) async fn booted_out_member_is_told(h: Harness) {
    let id = unique("m");
    let a = h.builder(&id).manual_heartbeat().connect().await.unwrap();
    let twin = h.member(&id).await;
    let g = unique("g");
    let membership = a.join_group_create(g.as_str(), none()).await.unwrap();
    // Another coordinator with the same member id leaves the group on a's behalf.
    twin.leave_group(g.as_str()).await.unwrap();
    a.heartbeat().await.unwrap();
    timeout(Duration::from_secs(1), membership.lost())
        .await
        .expect("a learns it was removed");
    assert!(!membership.is_active());
    a.stop().await.unwrap();
    twin.stop().await.unwrap();
}

/// Group names are data: names that collide with each other in tooz's layouts
/// (reliability.md §3.2) stay distinct groups, or are refused with `InvalidName` where the
/// backend must keep tooz's keys (Redis) — never a corruption of another key. Locks named like
/// group keys, election locks or the file layout's own files likewise.
pub(crate) async fn names_are_data(h: Harness) {
    let id = unique("m");
    let coord = h.member(&id).await;
    let base = unique("n");
    let portable: Vec<Vec<u8>> = vec![
        base.clone().into_bytes(),
        format!("{base}/sub").into_bytes(),
        format!("../{base}").into_bytes(),
        [base.as_bytes(), &[0, 0xff]].concat(),
    ];
    let risky: Vec<Vec<u8>> = vec![
        format!("{base}_lock").into_bytes(),
        format!("group:{base}").into_bytes(),
        format!("leader_of_{base}").into_bytes(),
    ];
    let mut groups = portable.clone();
    for g in &risky {
        match coord.create_group(g.clone()).await {
            Ok(()) => groups.push(g.clone()),
            Err(Error::InvalidName { kind: "group", .. }) => {}
            Err(e) => panic!("{:?}: {e}", String::from_utf8_lossy(g)),
        }
    }
    for g in &portable {
        coord.create_group(g.clone()).await.unwrap();
    }
    coord
        .join_group(portable[1].clone(), json!({"in": "sub"}))
        .await
        .unwrap();
    layout_locks_harm_nothing(&coord, &portable[1], &id).await;
    let lock = match coord.lock(format!("group:{base}_lock")).try_acquire().await {
        Ok(lock) => Some(lock.expect("a lock named like a group key is just a lock")),
        Err(Error::InvalidName { kind: "lock", .. }) => None,
        Err(e) => panic!("{e}"),
    };
    for g in &groups {
        let members = coord.members(g.clone()).await.unwrap();
        let expect_member = g == &portable[1];
        assert_eq!(
            !members.is_empty(),
            expect_member,
            "{:?}",
            String::from_utf8_lossy(g)
        );
    }
    if coord.supported().elections {
        assert_eq!(coord.leader(base.as_str()).await.unwrap(), None);
        match coord.lock(format!("leader_of_{base}")).try_acquire().await {
            Ok(held) => {
                assert_eq!(
                    coord.leader(base.as_str()).await.unwrap(),
                    None,
                    "a lock is not a leader"
                );
                drop(held);
            }
            Err(Error::InvalidName { kind: "lock", .. }) => {}
            Err(e) => panic!("{e}"),
        }
    }
    if let Some(lock) = lock {
        lock.release().await.unwrap();
    }
    coord.leave_group(portable[1].clone()).await.unwrap();
    for g in &groups {
        coord.delete_group(g.clone()).await.unwrap();
    }
    coord.stop().await.unwrap();
}

fn sha1_hex(bytes: &[u8]) -> String {
    use sha1::{Digest, Sha1};
    Sha1::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Lock names that are paths of `file://`'s own files (research/tooz.md §3.1) for `group`
/// and `member`: its metadata, the member's record (whose kernel lock is the liveness lock),
/// the scratch directory, the driver lock and the leader file.
fn layout_lock_names(group: &[u8], member: &str) -> Vec<String> {
    let (g, m) = (sha1_hex(group), sha1_hex(member.as_bytes()));
    vec![
        format!("groups/{g}/.metadata"),
        format!("groups/{g}/{m}.raw"),
        format!("tmp/tmp{}tooz", &g[..8]),
        ".driver_lock".to_owned(),
        format!(".tooz-rs/leaders/{g}"),
    ]
}

/// Each such lock is refused with `InvalidName` or is just a lock: taken (which writes its
/// fencing counter on `file://`) and released, the group and its member stay listed.
async fn layout_locks_harm_nothing(coord: &tooz::Coordinator, group: &[u8], member: &str) {
    let mut held = Vec::new();
    for name in layout_lock_names(group, member) {
        match coord.lock(name.as_str()).try_acquire().await {
            Ok(Some(guard)) => held.push(guard),
            Ok(None) => panic!("{name:?}: nobody holds it, yet it is not free"),
            Err(Error::InvalidName { kind: "lock", .. }) => {}
            Err(e) => panic!("{name:?}: {e}"),
        }
    }
    assert_group_intact(coord, group, member).await;
    for guard in held {
        guard.release().await.unwrap();
    }
    assert_group_intact(coord, group, member).await;
}

async fn assert_group_intact(coord: &tooz::Coordinator, group: &[u8], member: &str) {
    let shown = String::from_utf8_lossy(group);
    let groups = coord.groups().await.unwrap();
    assert!(groups.contains(&GroupId::from(group)), "{shown:?} listed");
    let members = coord.members_with_capabilities(group).await.unwrap();
    assert_eq!(
        members
            .get(&MemberId::from(member))
            .map(Capabilities::to_json),
        Some(json!({"in": "sub"})),
        "{shown:?}: its member and capabilities"
    );
}
