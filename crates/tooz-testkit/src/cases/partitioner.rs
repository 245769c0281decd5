use std::time::Duration;

use tokio::time::{Instant, sleep};
use tooz::{Coordinator, MemberId, Partitioner};

use crate::harness::{Harness, unique};

/// Waits until the partitioner's ring has exactly these members and weights.
async fn ring_settles(part: &Partitioner, expected: &[(&MemberId, u32)]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut want: Vec<(MemberId, u32)> = expected.iter().map(|(m, w)| ((*m).clone(), *w)).collect();
    want.sort();
    loop {
        let mut have: Vec<(MemberId, u32)> =
            part.ring().nodes().map(|(m, w)| (m.clone(), w)).collect();
        have.sort();
        if have == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "ring stuck at {have:?}, want {want:?}"
        );
        sleep(Duration::from_millis(50)).await;
    }
}

async fn fast_member(h: &Harness, id: &str) -> Coordinator {
    let builder = h.builder(id).watch_interval(Duration::from_millis(100));
    builder.connect().await.unwrap()
}

pub(crate) async fn ring_follows_membership(h: Harness) {
    let ids: Vec<MemberId> = (0..4).map(|i| unique(&format!("p{i}")).into()).collect();
    let g = unique("g");
    let first = fast_member(&h, &ids[0].to_string()).await;
    let part = first
        .join_partitioned_group(g.as_str(), 5, 32)
        .await
        .unwrap();
    ring_settles(&part, &[(&ids[0], 5)]).await;
    assert_eq!(part.ring().len(), 5 * 32);
    let mut others = Vec::new();
    for (i, id) in ids.iter().enumerate().skip(1) {
        let coord = fast_member(&h, &id.to_string()).await;
        let weight = if i == 1 { 10 } else { 1 };
        others.push((
            coord.clone(),
            coord
                .join_partitioned_group(g.as_str(), weight, 32)
                .await
                .unwrap(),
        ));
    }
    // Nobody calls anything: the rings follow the joins by themselves.
    let all = [(&ids[0], 5), (&ids[1], 10), (&ids[2], 1), (&ids[3], 1)];
    ring_settles(&part, &all).await;
    for (_, other) in &others {
        ring_settles(other, &all).await;
    }
    // Every member places every object on the same single owner.
    for object in ["чупакабра", "job-1", "job-2", "42"] {
        let owners = part.members_for(&object, 1, &[]);
        assert_eq!(owners.len(), 1);
        for (_, other) in &others {
            assert_eq!(other.members_for(&object, 1, &[]), owners, "{object}");
        }
        assert!(part.belongs_to_member(&object, &owners[0], 1));
        let unknown = MemberId::from(unique("nobody"));
        assert!(!part.belongs_to_member(&object, &unknown, 1));
        assert_eq!(part.belongs_to_self(&object), owners[0] == ids[0]);
    }
    // Leaves shrink every ring back.
    for (coord, p) in others {
        p.leave().await.unwrap();
        coord.stop().await.unwrap();
    }
    ring_settles(&part, &[(&ids[0], 5)]).await;
    assert!(part.belongs_to_self(&"anything"));
    part.leave().await.unwrap();
    first.stop().await.unwrap();
}
