use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::{Instant, sleep, timeout};
use tooz::{Error, FencingToken, LockName};

use crate::harness::{Harness, unique};

pub(crate) async fn acquire_and_release(h: Harness) {
    let coord = h.member(&unique("m")).await;
    let name = unique("l");
    let guard = coord.lock(name.as_str()).acquire().await.unwrap();
    assert!(guard.is_held());
    assert_eq!(guard.name(), &LockName::from(name.as_str()));
    guard.release().await.expect("release of a held lock");
    let again = coord.lock(name.as_str()).try_acquire().await.unwrap();
    again
        .expect("free again after release")
        .release()
        .await
        .unwrap();
    coord.stop().await.unwrap();
}

pub(crate) async fn exclusive_across_coordinators(h: Harness) {
    let (a, b) = (h.member(&unique("a")).await, h.member(&unique("b")).await);
    let name = unique("l");
    let guard = a.lock(name.as_str()).acquire().await.unwrap();
    assert!(b.lock(name.as_str()).try_acquire().await.unwrap().is_none());
    guard.release().await.unwrap();
    let guard = b.lock(name.as_str()).try_acquire().await.unwrap();
    let guard = guard.expect("free after release");
    assert!(a.lock(name.as_str()).try_acquire().await.unwrap().is_none());
    guard.release().await.unwrap();
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

pub(crate) async fn not_reentrant_within_a_coordinator(h: Harness) {
    let coord = h.member(&unique("m")).await;
    let name = unique("l");
    let lock = coord.lock(name.as_str());
    let guard = lock.try_acquire().await.unwrap().expect("free");
    assert!(
        lock.try_acquire().await.unwrap().is_none(),
        "same handle, second grant"
    );
    let other = coord.lock(name.as_str()).try_acquire().await.unwrap();
    assert!(other.is_none(), "another handle of the same coordinator");
    guard.release().await.unwrap();
    coord.stop().await.unwrap();
}

pub(crate) async fn acquire_timeout_gives_up_in_time(h: Harness) {
    let (a, b) = (h.member(&unique("a")).await, h.member(&unique("b")).await);
    let name = unique("l");
    let guard = a.lock(name.as_str()).acquire().await.unwrap();
    let wait = Duration::from_millis(300);
    let started = Instant::now();
    let err = b
        .lock(name.as_str())
        .acquire_timeout(wait)
        .await
        .unwrap_err();
    let waited = started.elapsed();
    assert!(matches!(err, Error::OperationTimedOut { .. }), "{err:?}");
    assert!(waited >= wait, "gave up early: {waited:?}");
    assert!(
        waited < wait + Duration::from_secs(2),
        "gave up late: {waited:?}"
    );
    assert!(guard.is_held());
    guard.release().await.unwrap();
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

pub(crate) async fn waiter_wakes_on_release(h: Harness) {
    let (a, b) = (h.member(&unique("a")).await, h.member(&unique("b")).await);
    let name = unique("l");
    let guard = a.lock(name.as_str()).acquire().await.unwrap();
    let lock = b.lock(name.as_str());
    let waiter = tokio::spawn(async move { lock.acquire().await });
    sleep(Duration::from_millis(200)).await;
    assert!(
        !waiter.is_finished(),
        "the waiter must wait while the lock is held"
    );
    let released = Instant::now();
    guard.release().await.unwrap();
    let second = timeout(Duration::from_secs(5), waiter)
        .await
        .expect("waiter woke")
        .unwrap()
        .unwrap();
    assert!(
        released.elapsed() < Duration::from_secs(2),
        "slow wake: {:?}",
        released.elapsed()
    );
    second.release().await.unwrap();
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

pub(crate) async fn several_locks_on_one_coordinator(h: Harness) {
    let (a, b) = (h.member(&unique("a")).await, h.member(&unique("b")).await);
    let (one, two) = (unique("l1"), unique("l2"));
    let g1 = a.lock(one.as_str()).acquire().await.unwrap();
    let g2 = a.lock(two.as_str()).acquire().await.unwrap();
    g1.release().await.unwrap();
    // Releasing one lock must not release the other (tooz's per-connection DB rule).
    assert!(g2.is_held());
    assert!(b.lock(two.as_str()).try_acquire().await.unwrap().is_none());
    let g1b = b
        .lock(one.as_str())
        .try_acquire()
        .await
        .unwrap()
        .expect("released one is free");
    g1b.release().await.unwrap();
    g2.release().await.unwrap();
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

pub(crate) async fn fencing_tokens_strictly_increase(h: Harness) {
    let members = [
        h.member(&unique("a")).await,
        h.member(&unique("b")).await,
        h.member(&unique("c")).await,
    ];
    let name = unique("l");
    let mut last: Option<FencingToken> = None;
    for round in 0..24 {
        let coord = &members[round % members.len()];
        let guard = coord.lock(name.as_str()).acquire().await.unwrap();
        if let Some(last) = last {
            assert!(
                guard.token() > last,
                "round {round}: {} after {last}",
                guard.token()
            );
        }
        last = Some(guard.token());
        guard.release().await.unwrap();
    }
    // Another lock name has its own sequence and does not disturb this one.
    let other = members[0].lock(unique("l")).acquire().await.unwrap();
    other.release().await.unwrap();
    let next = members[1].lock(name.as_str()).acquire().await.unwrap();
    assert!(next.token() > last.unwrap());
    next.release().await.unwrap();
    for m in members {
        m.stop().await.unwrap();
    }
}

pub(crate) async fn mutual_exclusion_under_contention(h: Harness) {
    const TASKS_PER_MEMBER: usize = 3;
    const ROUNDS: u64 = 12;
    let name = unique("l");
    let counter = Arc::new(AtomicU64::new(0));
    let highest_token = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    let mut members = Vec::new();
    for m in 0..3 {
        let coord = h.member(&unique(&format!("m{m}"))).await;
        members.push(coord.clone());
        for _ in 0..TASKS_PER_MEMBER {
            let (coord, name) = (coord.clone(), name.clone());
            let (counter, highest) = (Arc::clone(&counter), Arc::clone(&highest_token));
            tasks.push(tokio::spawn(async move {
                for _ in 0..ROUNDS {
                    let guard = coord.lock(name.as_str()).acquire().await.unwrap();
                    // A fencing check as a protected resource would do it.
                    let token = guard.token().get();
                    let previous = highest.swap(token, Ordering::SeqCst);
                    assert!(token > previous, "token {token} after {previous}");
                    // A deliberately non-atomic read-modify-write: loses updates unless the
                    // lock excludes every other holder.
                    let value = counter.load(Ordering::SeqCst);
                    tokio::task::yield_now().await;
                    sleep(Duration::from_micros(200)).await;
                    counter.store(value + 1, Ordering::SeqCst);
                    guard.release().await.unwrap();
                }
            }));
        }
    }
    for task in tasks {
        task.await.expect("contender");
    }
    let expected = 3 * TASKS_PER_MEMBER as u64 * ROUNDS;
    assert_eq!(counter.load(Ordering::SeqCst), expected, "lost updates");
    for m in members {
        m.stop().await.unwrap();
    }
}

pub(crate) async fn dropped_guard_releases(h: Harness) {
    let (a, b) = (h.member(&unique("a")).await, h.member(&unique("b")).await);
    let name = unique("l");
    let guard = a.lock(name.as_str()).acquire().await.unwrap();
    let lost = guard.lost();
    drop(guard);
    timeout(Duration::from_secs(1), lost)
        .await
        .expect("a dropped guard no longer holds");
    let taken = b
        .lock(name.as_str())
        .acquire_timeout(Duration::from_secs(3))
        .await;
    taken
        .expect("dropped guard was released")
        .release()
        .await
        .unwrap();
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

pub(crate) async fn stop_releases_locks_and_signals_loss(h: Harness) {
    let (a, b) = (h.member(&unique("a")).await, h.member(&unique("b")).await);
    let name = unique("l");
    let guard = a.lock(name.as_str()).acquire().await.unwrap();
    a.stop().await.unwrap();
    timeout(Duration::from_secs(1), guard.lost())
        .await
        .expect("stop fires lost()");
    assert!(!guard.is_held());
    let taken = b.lock(name.as_str()).try_acquire().await.unwrap();
    taken
        .expect("stop released the lock")
        .release()
        .await
        .unwrap();
    assert!(matches!(guard.release().await, Err(Error::Stopped)));
    b.stop().await.unwrap();
}

pub(crate) async fn lock_is_lost_when_heartbeats_stop(h: Harness) {
    let a = h
        .builder(&unique("a"))
        .manual_heartbeat()
        .connect()
        .await
        .unwrap();
    let b = h.member(&unique("b")).await;
    let ttl = a.membership_timeout();
    let name = unique("l");
    let sent = Instant::now();
    let guard = a.lock(name.as_str()).acquire().await.unwrap();
    let first = guard.token();
    let lost = guard.lost();
    // Safety: for as long as the holder believes it holds the lock, nobody else gets it.
    while guard.is_held() {
        assert!(b.lock(name.as_str()).try_acquire().await.unwrap().is_none());
        sleep(Duration::from_millis(20)).await;
    }
    timeout(Duration::from_millis(200), lost)
        .await
        .expect("lost() fired with is_held() false");
    // The loss comes at the local deadline (counted from the acquire's request), strictly
    // before the backend can expire the grant: never after.
    let lost_after = sent.elapsed();
    let local_deadline = ttl - a.expiry_margin();
    assert!(
        lost_after < ttl && lost_after <= local_deadline + ttl / 20,
        "lost {lost_after:?} after the acquire was sent; local deadline {local_deadline:?}, \
         backend expiry {ttl:?}"
    );
    let second = b
        .lock(name.as_str())
        .acquire_timeout(ttl * 3)
        .await
        .expect("expired lock is free");
    assert!(second.token() > first);
    // The old guard cannot be released any more, and must not free the new holder's grant.
    assert!(matches!(
        guard.release().await,
        Err(Error::LockNotHeld { .. })
    ));
    assert!(second.is_held());
    // A heartbeat starts a new session for `a`; the lock is still b's.
    a.heartbeat().await.unwrap();
    assert!(a.is_live());
    assert!(a.lock(name.as_str()).try_acquire().await.unwrap().is_none());
    second.release().await.unwrap();
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

/// Where the kernel or a connection holds locks (`file://`), missed heartbeats cost the
/// membership but not the lock: it stays held, and excluded, for as long as the holder lives.
pub(crate) async fn held_lock_survives_missed_heartbeats(h: Harness) {
    let a = h
        .builder(&unique("a"))
        .manual_heartbeat()
        .connect()
        .await
        .unwrap();
    let b = h.member(&unique("b")).await;
    let ttl = a.membership_timeout();
    let name = unique("l");
    let g = unique("g");
    let membership = a
        .join_group_create(g.as_str(), tooz::Capabilities::none())
        .await
        .unwrap();
    let guard = a.lock(name.as_str()).acquire().await.unwrap();
    timeout(ttl * 2, membership.lost())
        .await
        .expect("the membership lapses");
    sleep(ttl / 2).await;
    assert!(
        guard.is_held(),
        "the lock does not depend on heartbeats here"
    );
    assert!(b.lock(name.as_str()).try_acquire().await.unwrap().is_none());
    guard.release().await.unwrap();
    let next = b
        .lock(name.as_str())
        .try_acquire()
        .await
        .unwrap()
        .expect("released");
    next.release().await.unwrap();
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

/// Any name is either a lock of its own or refused with `InvalidName` — never an error of
/// another kind, never the same lock as another name. Names without path syntax are accepted by
/// every backend; `file://` refuses path tricks (`..`, absolute paths, NUL, components over 255
/// bytes), names under its own entries (`groups/`, `tmp/`, `.driver_lock`, `.tooz-rs/`), and a
/// name whose path is taken by a lock file or a directory of locks (`x` once `x/a` exists),
/// because its locks are files named after the lock, as in tooz.
pub(crate) async fn names_are_data(h: Harness) {
    let (a, b) = (h.member(&unique("a")).await, h.member(&unique("b")).await);
    let base = unique("n");
    let portable: Vec<Vec<u8>> = vec![
        format!("{base}_a").into_bytes(),
        format!("{base}:ü").into_bytes(),
        format!("{base} with spaces").into_bytes(),
        [base.as_bytes(), &[0xff, 0xfe]].concat(),
        [base.as_bytes(), &[b'x'; 200][..]].concat(),
    ];
    let path_like: Vec<Vec<u8>> = vec![
        format!("{base}/a").into_bytes(),
        format!("../{base}").into_bytes(),
        format!("/{base}").into_bytes(),
        format!("{base}\0x").into_bytes(),
        vec![b'z'; tooz::MAX_NAME_LEN],
        format!("groups/{base}").into_bytes(),
        format!("tmp/{base}").into_bytes(),
        format!(".driver_lock/{base}").into_bytes(),
        format!(".tooz-rs/leaders/{base}").into_bytes(),
        // After `{base}/a` above: on file://, a directory of locks.
        base.clone().into_bytes(),
    ];
    let mut guards = Vec::new();
    for name in portable.iter().chain(&path_like) {
        let shown = String::from_utf8_lossy(name).into_owned();
        match a.lock(name.clone()).try_acquire().await {
            Ok(Some(guard)) => guards.push((name.clone(), guard)),
            Ok(None) => panic!("{shown:?}: distinct names must be distinct locks"),
            Err(Error::InvalidName { kind: "lock", .. }) if !portable.contains(name) => {}
            Err(e) => panic!("{shown:?}: {e}"),
        }
    }
    assert!(guards.len() >= portable.len());
    for (name, _) in &guards {
        assert!(b.lock(name.clone()).try_acquire().await.unwrap().is_none());
    }
    for (_, guard) in guards {
        guard.release().await.unwrap();
    }
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

pub(crate) async fn shared_holders_coexist(h: Harness) {
    let (a, b, c) = (
        h.member(&unique("a")).await,
        h.member(&unique("b")).await,
        h.member(&unique("c")).await,
    );
    let name = unique("l");
    let s1 = a
        .lock(name.as_str())
        .shared()
        .try_acquire()
        .await
        .unwrap()
        .expect("shared");
    let s2 = b
        .lock(name.as_str())
        .shared()
        .try_acquire()
        .await
        .unwrap()
        .expect("shared too");
    let s3 = b
        .lock(name.as_str())
        .shared()
        .try_acquire()
        .await
        .unwrap()
        .expect("and again");
    // Shared grants carry the epoch of the last exclusive grant; they never go back.
    assert!(s2.token() >= s1.token());
    assert!(
        c.lock(name.as_str()).try_acquire().await.unwrap().is_none(),
        "exclusive waits"
    );
    s1.release().await.unwrap();
    s2.release().await.unwrap();
    assert!(
        c.lock(name.as_str()).try_acquire().await.unwrap().is_none(),
        "one shared left"
    );
    s3.release().await.unwrap();
    let x = c
        .lock(name.as_str())
        .try_acquire()
        .await
        .unwrap()
        .expect("all shared released");
    x.release().await.unwrap();
    for m in [a, b, c] {
        m.stop().await.unwrap();
    }
}

pub(crate) async fn exclusive_and_shared_exclude(h: Harness) {
    let (a, b) = (h.member(&unique("a")).await, h.member(&unique("b")).await);
    let name = unique("l");
    let x = a
        .lock(name.as_str())
        .try_acquire()
        .await
        .unwrap()
        .expect("exclusive");
    assert!(
        b.lock(name.as_str())
            .shared()
            .try_acquire()
            .await
            .unwrap()
            .is_none()
    );
    x.release().await.unwrap();
    let s = b
        .lock(name.as_str())
        .shared()
        .try_acquire()
        .await
        .unwrap()
        .expect("shared");
    assert!(a.lock(name.as_str()).try_acquire().await.unwrap().is_none());
    s.release().await.unwrap();
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

/// Waiters are served in arrival order: a holder that releases and asks again at once queues
/// behind the process that was already waiting, rather than taking the lock straight back.
pub(crate) async fn a_releaser_does_not_take_the_lock_back_from_a_waiter(h: Harness) {
    let (a, b) = (h.member(&unique("a")).await, h.member(&unique("b")).await);
    let name = unique("l");
    let held = a.lock(name.as_str()).acquire().await.unwrap();
    let waiter = {
        let (b, name) = (b.clone(), name.clone());
        tokio::spawn(async move {
            let guard = b.lock(name.as_str()).acquire().await.unwrap();
            let token = guard.token();
            sleep(Duration::from_millis(20)).await;
            guard.release().await.unwrap();
            token
        })
    };
    // Let the waiter get in line (and fail its first attempts).
    sleep(Duration::from_millis(100)).await;
    held.release().await.unwrap();
    let again = a
        .lock(name.as_str())
        .acquire_timeout(Duration::from_secs(5))
        .await
        .unwrap();
    let waiter_token = waiter.await.unwrap();
    assert!(
        waiter_token < again.token(),
        "the waiter was served first (its token {waiter_token}, the releaser's next {})",
        again.token()
    );
    again.release().await.unwrap();
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

/// A waiter that gives up at its deadline leaves no place in line behind: once the lock is
/// released, anyone's single attempt gets it at once — or, where a waiter cannot be withdrawn
/// (`Supported::blocking_lock_waits`), as soon as the abandoned waiter has had its turn and
/// handed the lock straight back.
pub(crate) async fn a_timed_out_waiter_leaves_no_place_in_line(h: Harness) {
    let (a, b) = (h.member(&unique("a")).await, h.member(&unique("b")).await);
    let name = unique("l");
    let withdrawn = !a.supported().blocking_lock_waits;
    for _ in 0..5 {
        let held = a.lock(name.as_str()).acquire().await.unwrap();
        let gave_up = b
            .lock(name.as_str())
            .acquire_timeout(Duration::from_millis(60))
            .await;
        assert!(matches!(gave_up, Err(Error::OperationTimedOut { .. })));
        held.release().await.unwrap();
        let again = if withdrawn {
            a.lock(name.as_str()).try_acquire().await.unwrap()
        } else {
            let lock = a.lock(name.as_str());
            lock.acquire_timeout(Duration::from_millis(500)).await.ok()
        };
        let again = again.expect("no ghost of the timed-out waiter stands in line");
        again.release().await.unwrap();
    }
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}
