//! Waiters on each side of a Python tooz peer: ours gets a lock Python releases (Python
//! announces nothing, so it is the fall-back that finds it, or the kernel's wait on
//! `file://`), and Python's blocking acquire gets one ours releases.

use std::time::Duration;

use serde_json::json;
use tokio::time::{Instant, sleep, timeout};
use tooz::Coordinator;

use super::peer::Peer;

/// How long after the release each side may take to be granted.
pub(crate) struct Bounds {
    /// Ours, after Python released.
    pub(crate) ours: Duration,
    /// Python's blocking acquire (it polls), after ours released.
    pub(crate) python: Duration,
}

/// Runs both waits on lock `name` (fresh to both sides); gives the peer back.
pub(crate) async fn waiters_get_what_the_other_side_releases(
    rust: &Coordinator,
    mut py: Peer,
    name: &str,
    bounds: Bounds,
) -> Peer {
    // Ours waits while Python holds.
    assert_eq!(py.call(json!({"op": "lock", "name": name})), json!(true));
    let lock = rust.lock(name);
    let waiter = tokio::spawn(async move {
        let guard = lock.acquire_timeout(Duration::from_secs(20)).await;
        (Instant::now(), guard)
    });
    sleep(Duration::from_millis(800)).await;
    assert!(
        !waiter.is_finished(),
        "ours was granted a lock Python holds"
    );
    let released = Instant::now();
    assert_eq!(py.call(json!({"op": "unlock", "name": name})), json!(true));
    let (granted_at, guard) = timeout(Duration::from_secs(25), waiter)
        .await
        .expect("our waiter returns")
        .unwrap();
    let guard = guard.expect("ours is granted the lock Python released");
    let after = granted_at - released;
    println!("ours granted {after:?} after Python released");
    assert!(
        after < bounds.ours,
        "ours was granted the lock {after:?} after Python released it (bound {:?})",
        bounds.ours
    );
    assert_eq!(
        py.call(json!({"op": "lock", "name": name})),
        json!(false),
        "Python was granted a lock ours holds"
    );

    // Python waits (a blocking acquire, which polls) while ours holds.
    let waiting_name = name.to_owned();
    let python_waits = tokio::task::spawn_blocking(move || {
        let granted = py.call(json!({"op": "lock", "name": waiting_name, "blocking": true}));
        (Instant::now(), granted, py)
    });
    sleep(Duration::from_millis(800)).await;
    assert!(
        !python_waits.is_finished(),
        "Python was granted a lock ours holds"
    );
    let released = Instant::now();
    guard.release().await.unwrap();
    let (granted_at, granted, mut py) = timeout(Duration::from_secs(25), python_waits)
        .await
        .expect("Python's blocking acquire returns once ours released")
        .unwrap();
    assert_eq!(granted, json!(true));
    let after = granted_at - released;
    println!("Python granted {after:?} after ours released");
    assert!(
        after < bounds.python,
        "Python was granted the lock {after:?} after ours released it (bound {:?})",
        bounds.python
    );
    assert!(
        rust.lock(name).try_acquire().await.unwrap().is_none(),
        "ours was granted a lock Python's blocking acquire took"
    );
    assert_eq!(py.call(json!({"op": "unlock", "name": name})), json!(true));
    py
}
