//! The metrics a program's recorder receives (feature `metrics`), counted on `memory://`.

#![cfg(feature = "metrics")]

use std::collections::HashMap;
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use tooz::{Capabilities, Coordinator, GroupEvent};

/// Every metric by name and labels (`name{k=v,...}`), as the recorder saw it.
fn snapshot(recorder: &DebuggingRecorder) -> HashMap<String, DebugValue> {
    recorder
        .snapshotter()
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            (format!("{}{{{}}}", key.name(), labels.join(",")), value)
        })
        .collect()
}

fn counter(all: &HashMap<String, DebugValue>, key: &str) -> u64 {
    match all.get(key) {
        Some(DebugValue::Counter(n)) => *n,
        other => panic!("{key}: {other:?} in {:?}", all.keys()),
    }
}

fn histogram_len(all: &HashMap<String, DebugValue>, key: &str) -> usize {
    match all.get(key) {
        Some(DebugValue::Histogram(values)) => values.len(),
        other => panic!("{key}: {other:?} in {:?}", all.keys()),
    }
}

#[test]
fn locks_heartbeats_losses_and_group_sizes_are_counted() {
    let recorder = DebuggingRecorder::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // The recorder is this thread's; a current-thread runtime runs every task here.
    metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            let url = format!("memory://metrics-{}?timeout=1", std::process::id());
            let a = Coordinator::connect(&url, "a").await.unwrap();
            let b = Coordinator::builder(&url, "b")
                .manual_heartbeat()
                .connect()
                .await
                .unwrap();
            // Uncontended, then contended: b waits for a's release.
            let held = a.lock("l").acquire().await.unwrap();
            let lock = b.lock("l");
            let waiter = tokio::spawn(async move { lock.acquire().await });
            tokio::time::sleep(Duration::from_millis(50)).await;
            held.release().await.unwrap();
            let b_held = waiter.await.unwrap().unwrap();
            // b never heartbeats: its lock is lost when its lease runs out.
            tokio::time::timeout(Duration::from_secs(3), b_held.lost())
                .await
                .expect("lost without heartbeats");
            drop(b_held);
            a.heartbeat().await.unwrap();
            // A watch of a group of two.
            a.join_group_create("g", Capabilities::none())
                .await
                .unwrap();
            let mut watch = a.watch("g").await.unwrap();
            let c = Coordinator::connect(&url, "c").await.unwrap();
            c.join_group("g", Capabilities::none()).await.unwrap();
            let event = tokio::time::timeout(Duration::from_secs(5), watch.next())
                .await
                .expect("a watch event")
                .expect("the watch is open")
                .unwrap();
            assert!(matches!(event, GroupEvent::Joined { .. }), "{event:?}");
            c.stop().await.unwrap();
            a.stop().await.unwrap();
        });
    });
    let all = snapshot(&recorder);
    assert_eq!(
        counter(&all, "tooz_lock_acquisitions_total{backend=memory}"),
        2
    );
    assert_eq!(
        counter(&all, "tooz_lock_contended_total{backend=memory}"),
        1
    );
    assert_eq!(
        histogram_len(&all, "tooz_lock_wait_seconds{backend=memory}"),
        2
    );
    assert_eq!(
        histogram_len(&all, "tooz_lock_hold_seconds{backend=memory}"),
        2
    );
    assert_eq!(counter(&all, "tooz_losses_total{kind=lock}"), 1);
    assert!(histogram_len(&all, "tooz_heartbeat_seconds{backend=memory}") >= 1);
    assert!(counter(&all, "tooz_renewals_total{backend=memory}") >= 1);
    match all.get("tooz_group_members{group=g}") {
        Some(DebugValue::Gauge(n)) => assert_eq!(n.into_inner(), 2.0),
        other => panic!("group gauge: {other:?}"),
    }
}
