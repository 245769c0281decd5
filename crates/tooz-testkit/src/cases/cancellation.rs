//! A caller that stops waiting — a `select!`, a timeout, a dropped task — or a `stop()` that
//! races a grant must never leave a lock, leadership or membership held with no handle: what
//! the backend granted meanwhile is handed back by itself, and nothing stays immortal.

use std::future::Future;
use std::time::Duration;

use tokio::time::{Instant, sleep, timeout};
use tooz::{Capabilities, Coordinator, Error};

use crate::harness::{Harness, unique};

/// Cuts a call short at many points of its flight, from before the request leaves to after
/// the answer is in.
const CUTS_MICROS: &[u64] = &[0, 10, 50, 100, 200, 300, 500, 800, 1_000, 2_000, 5_000];

/// Waits until `free` answers true; the hand-back of a cancelled call runs in the background,
/// but well within a second, not at the backend's expiry.
async fn becomes_free<F, Fut>(what: &str, mut free: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_millis(1_000);
    while !free().await {
        assert!(
            Instant::now() < deadline,
            "{what}: still held a second after the caller went away"
        );
        sleep(Duration::from_millis(10)).await;
    }
}

/// Whether `b` can take lock `name` now (handed straight back).
async fn lock_is_free(b: &Coordinator, name: &str) -> bool {
    match b.lock(name).try_acquire().await.unwrap() {
        Some(guard) => {
            guard.release().await.unwrap();
            true
        }
        None => false,
    }
}

/// Whether `b` can become the leader of `group` now (and resigns at once).
async fn leadership_is_free(b: &Coordinator, group: &str) -> bool {
    match b.try_campaign(group).await.unwrap() {
        Some(leadership) => {
            leadership.resign().await.unwrap();
            true
        }
        None => false,
    }
}

pub(crate) async fn a_cancelled_acquire_hands_back_what_it_took(h: Harness) {
    let (a, b) = (h.member(&unique("a")).await, h.member(&unique("b")).await);
    let name = unique("l");
    for cut in CUTS_MICROS {
        let lock = a.lock(name.as_str());
        let attempt = lock.acquire();
        if let Ok(Ok(guard)) = timeout(Duration::from_micros(*cut), attempt).await {
            guard.release().await.unwrap();
        }
        becomes_free(&format!("lock cut after {cut} µs"), || {
            lock_is_free(&b, &name)
        })
        .await;
    }
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

pub(crate) async fn a_cancelled_campaign_hands_back_the_leadership(h: Harness) {
    let (a, b) = (h.member(&unique("a")).await, h.member(&unique("b")).await);
    let group = unique("g");
    a.create_group(group.as_str()).await.ok();
    for cut in CUTS_MICROS {
        let campaign = a.campaign(group.as_str());
        if let Ok(Ok(leadership)) = timeout(Duration::from_micros(*cut), campaign).await {
            leadership.resign().await.unwrap();
        }
        becomes_free(&format!("leadership cut after {cut} µs"), || {
            leadership_is_free(&b, &group)
        })
        .await;
    }
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

pub(crate) async fn a_cancelled_join_leaves_no_member_behind(h: Harness) {
    let b = h.member(&unique("b")).await;
    let group = unique("g");
    b.create_group(group.as_str()).await.unwrap();
    for cut in CUTS_MICROS {
        let member = unique("a");
        let a = h.member(&member).await;
        let join = a.join_group(group.as_str(), Capabilities::none());
        let joined = timeout(Duration::from_micros(*cut), join).await;
        let kept = matches!(joined, Ok(Ok(_)));
        if !kept {
            // Nobody holds a membership handle: it must not stay listed (nor block a rejoin).
            becomes_free(&format!("membership cut after {cut} µs"), || async {
                !b.members(group.as_str())
                    .await
                    .unwrap()
                    .contains(&member.as_str().into())
            })
            .await;
            let rejoined = a.join_group(group.as_str(), Capabilities::none()).await;
            assert!(rejoined.is_ok(), "rejoin after a cut join: {rejoined:?}");
        }
        a.stop().await.unwrap();
    }
    b.delete_group(group.as_str()).await.unwrap();
    b.stop().await.unwrap();
}

/// How a call cut off by `stop()` may fail: refused after stop, or told by the backend that
/// the session it ran in has ended.
fn ended(error: &Error) -> bool {
    matches!(error, Error::Stopped | Error::SessionLost { .. })
}

/// `stop()` racing an acquire, a campaign and a join: each ends handed back — either the
/// call fails with `Stopped`, or its handle reports the loss at once — and another member
/// can take it right away.
pub(crate) async fn stop_racing_grants_leaves_nothing_immortal(h: Harness) {
    let b = h.member(&unique("b")).await;
    let group = unique("g");
    b.create_group(group.as_str()).await.unwrap();
    let supported = b.supported();
    for delay in CUTS_MICROS {
        let member = unique("a");
        let a: Coordinator = h.member(&member).await;
        let name = unique("l");
        let lock = a.lock(name.as_str());
        let (lock_result, lead_result, join_result, ()) = tokio::join!(
            lock.acquire(),
            async {
                if supported.elections {
                    Some(a.campaign(group.as_str()).await)
                } else {
                    None
                }
            },
            a.join_group(group.as_str(), Capabilities::none()),
            async {
                sleep(Duration::from_micros(*delay)).await;
                a.stop().await.unwrap();
            },
        );
        match lock_result {
            Ok(guard) => {
                timeout(Duration::from_secs(1), guard.lost())
                    .await
                    .expect("a lock granted to a stopped coordinator reports its loss");
                assert!(!guard.is_held());
            }
            Err(e) => assert!(ended(&e), "{e}"),
        }
        match lead_result {
            Some(Ok(leadership)) => {
                timeout(Duration::from_secs(1), leadership.lost())
                    .await
                    .expect("a leadership won by a stopped coordinator reports its loss");
            }
            Some(Err(e)) => assert!(ended(&e), "{e}"),
            None => {}
        }
        match join_result {
            Ok(membership) => {
                timeout(Duration::from_secs(1), membership.lost())
                    .await
                    .expect("a membership of a stopped coordinator reports its loss");
            }
            Err(e) => assert!(ended(&e), "{e}"),
        }
        becomes_free("lock after stop", || lock_is_free(&b, &name)).await;
        if supported.elections {
            becomes_free("leadership after stop", || leadership_is_free(&b, &group)).await;
        }
        becomes_free("membership after stop", || async {
            !b.members(group.as_str())
                .await
                .unwrap()
                .contains(&member.as_str().into())
        })
        .await;
    }
    b.delete_group(group.as_str()).await.unwrap();
    b.stop().await.unwrap();
}
