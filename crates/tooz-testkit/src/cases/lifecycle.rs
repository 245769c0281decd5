use tooz::{Capabilities, Characteristic, Coordinator, Error};

use crate::harness::{Harness, unique};

pub(crate) async fn stop_ends_the_coordinator(h: Harness) {
    let coord = h.member(&unique("m")).await;
    assert!(coord.is_started());
    assert!(coord.is_live());
    coord.stop().await.expect("first stop");
    assert!(!coord.is_started());
    assert!(!coord.is_live());
    assert!(
        matches!(coord.stop().await, Err(Error::Stopped)),
        "second stop"
    );
    let after = coord.lock(unique("l")).try_acquire().await;
    assert!(matches!(after, Err(Error::Stopped)), "{after:?}");
    assert!(matches!(coord.heartbeat().await, Err(Error::Stopped)));
}

pub(crate) async fn unknown_option_lists_valid_ones(h: Harness) {
    let url = h.url_with("no_such_option=1");
    let err = Coordinator::connect(&url, "m").await.unwrap_err();
    let Error::UnknownOption { option, valid, .. } = &err else {
        panic!("expected UnknownOption, got {err:?}");
    };
    assert_eq!(option, "no_such_option");
    assert!(valid.contains(&"timeout"), "{err}");
    assert!(err.to_string().contains("valid options are"), "{err}");
}

pub(crate) async fn missing_characteristics_are_refused(h: Harness) {
    let all = [
        Characteristic::DistributedAcrossThreads,
        Characteristic::DistributedAcrossProcesses,
        Characteristic::DistributedAcrossHosts,
        Characteristic::NonTimeoutBased,
        Characteristic::Linearizable,
        Characteristic::Sequential,
        Characteristic::Causal,
        Characteristic::Serializable,
        Characteristic::SameViewUnderPartitions,
        Characteristic::SameViewAcrossClients,
    ];
    let probe = h.member(&unique("m")).await;
    let declared = probe.characteristics();
    probe.stop().await.unwrap();
    let have: Vec<_> = declared.iter().collect();
    let ok = h.builder(&unique("m")).require(&have).connect().await;
    ok.expect("requiring what is declared succeeds")
        .stop()
        .await
        .unwrap();
    let err = h
        .builder(&unique("m"))
        .require(&all)
        .connect()
        .await
        .unwrap_err();
    let Error::CharacteristicsNotMet { missing, .. } = err else {
        panic!("expected CharacteristicsNotMet, got {err:?}");
    };
    assert_eq!(missing, declared.missing(&all));
    assert!(!missing.is_empty());
}

pub(crate) async fn bad_names_are_refused(h: Harness) {
    let err = h.builder("").connect().await.unwrap_err();
    assert!(
        matches!(err, Error::InvalidName { kind: "member", .. }),
        "{err:?}"
    );
    let coord = h.member(&unique("m")).await;
    let long = "x".repeat(tooz::MAX_NAME_LEN + 1);
    let err = coord.lock(long.as_str()).try_acquire().await.unwrap_err();
    assert!(
        matches!(err, Error::InvalidName { kind: "lock", .. }),
        "{err:?}"
    );
    let err = coord.lock("").try_acquire().await.unwrap_err();
    assert!(
        matches!(err, Error::InvalidName { kind: "lock", .. }),
        "{err:?}"
    );
    if coord.supported().groups {
        let err = coord.create_group(long.as_str()).await.unwrap_err();
        assert!(
            matches!(err, Error::InvalidName { kind: "group", .. }),
            "{err:?}"
        );
        let err = coord.member_capabilities("g", "").await.unwrap_err();
        assert!(
            matches!(err, Error::InvalidName { kind: "member", .. }),
            "{err:?}"
        );
    }
    coord.stop().await.unwrap();
}

fn assert_unsupported<T: std::fmt::Debug>(what: &str, result: tooz::Result<T>) {
    match result {
        Err(Error::Unsupported { .. }) => {}
        other => panic!("{what}: expected Unsupported, got {other:?}"),
    }
}

pub(crate) async fn unsupported_operations_say_so(h: Harness) {
    let coord = h.member(&unique("m")).await;
    let supported = coord.supported();
    let g = unique("g");
    if !supported.groups {
        assert_unsupported("create_group", coord.create_group(g.as_str()).await);
        assert_unsupported("delete_group", coord.delete_group(g.as_str()).await);
        assert_unsupported("groups", coord.groups().await);
        assert_unsupported(
            "join_group",
            coord.join_group(g.as_str(), Capabilities::none()).await,
        );
        assert_unsupported(
            "join_group_create",
            coord
                .join_group_create(g.as_str(), Capabilities::none())
                .await,
        );
        assert_unsupported("leave_group", coord.leave_group(g.as_str()).await);
        assert_unsupported("members", coord.members(g.as_str()).await);
        assert_unsupported(
            "members_with_capabilities",
            coord.members_with_capabilities(g.as_str()).await,
        );
        assert_unsupported(
            "member_capabilities",
            coord.member_capabilities(g.as_str(), "m").await,
        );
        assert_unsupported(
            "update_capabilities",
            coord
                .update_capabilities(g.as_str(), Capabilities::none())
                .await,
        );
        assert_unsupported("watch", coord.watch(g.as_str()).await);
    }
    if !supported.elections {
        assert_unsupported("campaign", coord.try_campaign(g.as_str()).await);
        assert_unsupported("leader", coord.leader(g.as_str()).await);
    }
    if !supported.shared_locks {
        assert_unsupported(
            "shared lock",
            coord.lock(unique("l")).shared().try_acquire().await,
        );
    }
    // Exclusive locks are universal: they still work.
    let guard = coord.lock(unique("l")).try_acquire().await.unwrap();
    guard.expect("free lock").release().await.unwrap();
    coord.stop().await.unwrap();
}
