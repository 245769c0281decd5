use std::time::Duration;

use serde_json::json;
use tokio::time::{sleep, timeout};
use tooz::{GroupEvent, GroupId, MemberId};

use crate::harness::{Harness, unique};

pub(crate) async fn exactly_one_leader(h: Harness) {
    let ids: Vec<String> = (0..4).map(|i| unique(&format!("m{i}"))).collect();
    let mut members = Vec::new();
    for id in &ids {
        members.push(h.member(id).await);
    }
    let g = unique("g");
    members[0].create_group(g.as_str()).await.unwrap();
    assert_eq!(
        members[0].leader(g.as_str()).await.unwrap(),
        None,
        "no leader yet"
    );
    let attempts = members.iter().map(|m| {
        let (m, g) = (m.clone(), g.clone());
        tokio::spawn(async move { m.try_campaign(g.as_str()).await })
    });
    let mut winners = Vec::new();
    for (i, attempt) in attempts.collect::<Vec<_>>().into_iter().enumerate() {
        if let Some(leadership) = attempt.await.unwrap().unwrap() {
            winners.push((i, leadership));
        }
    }
    assert_eq!(winners.len(), 1, "exactly one winner");
    let (winner, leadership) = winners.pop().unwrap();
    assert!(leadership.is_held());
    assert_eq!(leadership.group(), &GroupId::from(g.as_str()));
    for m in &members {
        let leader = m.leader(g.as_str()).await.unwrap();
        assert_eq!(leader, Some(MemberId::from(ids[winner].as_str())));
    }
    leadership.resign().await.unwrap();
    assert_eq!(members[0].leader(g.as_str()).await.unwrap(), None);
    for m in members {
        m.stop().await.unwrap();
    }
}

pub(crate) async fn resign_hands_over(h: Harness) {
    let (ia, ib) = (unique("a"), unique("b"));
    let (a, b) = (h.member(&ia).await, h.member(&ib).await);
    let g = unique("g");
    let first = a.campaign(g.as_str()).await.unwrap();
    let (b2, g2) = (b.clone(), g.clone());
    let waiter = tokio::spawn(async move { b2.campaign(g2.as_str()).await });
    sleep(Duration::from_millis(200)).await;
    assert!(!waiter.is_finished(), "b waits while a leads");
    let lost = first.lost();
    let first_token = first.token();
    first.resign().await.unwrap();
    timeout(Duration::from_millis(100), lost)
        .await
        .expect("resigning ends the term");
    let second = timeout(Duration::from_secs(5), waiter)
        .await
        .expect("b elected")
        .unwrap()
        .unwrap();
    assert!(second.token() > first_token, "terms are fenced");
    assert_eq!(
        a.leader(g.as_str()).await.unwrap(),
        Some(MemberId::from(ib.as_str()))
    );
    // Back again.
    let (a2, g2) = (a.clone(), g.clone());
    let waiter = tokio::spawn(async move { a2.campaign(g2.as_str()).await });
    let second_token = second.token();
    second.resign().await.unwrap();
    let third = timeout(Duration::from_secs(5), waiter)
        .await
        .expect("a again")
        .unwrap()
        .unwrap();
    assert!(third.token() > second_token);
    third.resign().await.unwrap();
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

pub(crate) async fn leader_stop_elects_another(h: Harness) {
    let (ia, ib) = (unique("a"), unique("b"));
    let (a, b) = (h.member(&ia).await, h.member(&ib).await);
    let g = unique("g");
    let lead = a.campaign(g.as_str()).await.unwrap();
    assert!(b.try_campaign(g.as_str()).await.unwrap().is_none());
    a.stop().await.unwrap();
    timeout(Duration::from_secs(1), lead.lost())
        .await
        .expect("stop ends the term");
    let next = b
        .campaign_timeout(g.as_str(), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(
        b.leader(g.as_str()).await.unwrap(),
        Some(MemberId::from(ib.as_str()))
    );
    next.resign().await.unwrap();
    b.stop().await.unwrap();
}

pub(crate) async fn leadership_is_lost_when_heartbeats_stop(h: Harness) {
    let a = h
        .builder(&unique("a"))
        .manual_heartbeat()
        .connect()
        .await
        .unwrap();
    let ib = unique("b");
    let b = h.member(&ib).await;
    let ttl = a.membership_timeout();
    let g = unique("g");
    let lead = a.campaign(g.as_str()).await.unwrap();
    while lead.is_held() {
        assert!(
            b.try_campaign(g.as_str()).await.unwrap().is_none(),
            "one leader at a time"
        );
        sleep(Duration::from_millis(50)).await;
    }
    timeout(Duration::from_millis(200), lead.lost())
        .await
        .expect("lost() fired");
    let next = b
        .campaign_timeout(g.as_str(), ttl * 3)
        .await
        .expect("b takes over");
    assert!(next.token() > lead.token());
    assert_eq!(
        b.leader(g.as_str()).await.unwrap(),
        Some(MemberId::from(ib.as_str()))
    );
    next.resign().await.unwrap();
    let _ = a.stop().await;
    b.stop().await.unwrap();
}

pub(crate) async fn watch_reports_leader(h: Harness) {
    let (ia, ib) = (unique("a"), unique("b"));
    let a = h
        .builder(&ia)
        .watch_interval(Duration::from_millis(100))
        .connect()
        .await
        .unwrap();
    let b = h.member(&ib).await;
    let g = unique("g");
    a.join_group_create(g.as_str(), json!({"role": "watcher"}))
        .await
        .unwrap();
    let mut watch = a.watch(g.as_str()).await.unwrap();
    let lead = b.campaign(g.as_str()).await.unwrap();
    let event = timeout(Duration::from_secs(5), watch.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let group = GroupId::from(g.as_str());
    assert_eq!(
        event,
        GroupEvent::LeaderElected {
            group,
            member: ib.as_str().into()
        }
    );
    lead.resign().await.unwrap();
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}
