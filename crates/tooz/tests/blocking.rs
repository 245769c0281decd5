//! The blocking API (`tooz::blocking`) through representative cases of the conformance suite,
//! on `memory://`, on `file://` (a temporary directory) and, where `TOOZ_TEST_URLS` names a
//! `redis://` server, on Redis: locks (exclusion, fencing, timeouts, waiters woken in other
//! threads, dropped guards), loss signals, groups and capabilities, watches, elections and
//! partitioners; calls from inside an async runtime are refused without a panic, and clones
//! share one session. Every test uses names of its own, so they run in parallel, on one Redis
//! server too.

#![cfg(feature = "blocking")]

#[path = "support/redis_url.rs"]
mod redis_url;

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;
use tooz::blocking::Coordinator;
use tooz::{Capabilities, Error, GroupEvent, GroupId, LockName, MemberId};

/// One backend for one test: a URL nobody else uses.
struct Target {
    name: &'static str,
    /// The URL without the test's own options.
    base: String,
    /// Whether `base` has a query already (Redis: the namespace).
    has_query: bool,
    /// A `file://` directory, removed at the end.
    scratch: Option<PathBuf>,
}

impl Target {
    /// The URL with more options (`"timeout=2"`), or none (`""`).
    fn url(&self, options: &str) -> String {
        match (options.is_empty(), self.has_query) {
            (true, _) => self.base.clone(),
            (false, false) => format!("{}?{options}", self.base),
            (false, true) => format!("{}&{options}", self.base),
        }
    }

    fn connect(&self, member: &str) -> Coordinator {
        Coordinator::connect(&self.url(""), member)
            .unwrap_or_else(|e| panic!("{}: connecting {member}: {e}", self.name))
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Some(dir) = &self.scratch {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A name no other test (and no other run on the same Redis server) uses.
fn unique(test: &str) -> String {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("blocking-{test}-{}-{n}", std::process::id())
}

fn memory(test: &str) -> Target {
    Target {
        name: "memory",
        base: format!("memory://{}", unique(test)),
        has_query: false,
        scratch: None,
    }
}

/// Every backend this build and environment offer, each with a namespace of `test`'s own.
fn targets(test: &str) -> Vec<Target> {
    let mut targets = vec![memory(test)];
    if cfg!(feature = "file") {
        let dir = std::env::temp_dir().join(format!("tooz-{}", unique(test)));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        targets.push(Target {
            name: "file",
            base: format!("file://{}", dir.display()),
            has_query: false,
            scratch: Some(dir),
        });
    }
    // Asked even without the feature: where TOOZ_REQUIRE_INTEROP is set, a missing server
    // must fail the run rather than pass it untested.
    if let Some(server) = redis_url::redis_url() {
        if cfg!(feature = "redis") {
            let mut url = url::Url::parse(&server).expect("a redis URL");
            url.query_pairs_mut()
                .append_pair("namespace", &unique(test));
            targets.push(Target {
                name: "redis",
                base: url.to_string(),
                has_query: true,
                scratch: None,
            });
        } else {
            eprintln!("TOOZ_TEST_URLS names a redis:// server, but the redis feature is off");
        }
    }
    targets
}

fn assert_refused<T: Debug>(result: tooz::Result<T>, operation: &str) {
    match result {
        Err(Error::BlockingInsideRuntime { operation: refused }) => {
            assert_eq!(refused, operation, "the error names the call");
        }
        other => {
            panic!("{operation} inside a runtime: expected BlockingInsideRuntime, got {other:?}")
        }
    }
}

// ----- locks -----

#[test]
fn a_lock_excludes_other_coordinators_and_its_tokens_increase() {
    for t in targets("exclusion") {
        let a = t.connect("a");
        let b = t.connect("b");
        let guard = a.lock("l").acquire().unwrap();
        assert!(guard.is_held(), "{}", t.name);
        assert_eq!(guard.name(), &LockName::from("l"));
        assert!(
            b.lock("l").try_acquire().unwrap().is_none(),
            "{}: granted while held elsewhere",
            t.name
        );
        let first = guard.token();
        guard.release().unwrap();

        let guard = b.lock("l").try_acquire().unwrap();
        let guard = guard.unwrap_or_else(|| panic!("{}: not granted after release", t.name));
        assert!(guard.token() > first, "{}: tokens must increase", t.name);
        assert!(a.lock("l").try_acquire().unwrap().is_none(), "{}", t.name);
        let second = guard.token();
        guard.release().unwrap();

        let guard = a.lock("l").acquire().unwrap();
        assert!(guard.token() > second, "{}: tokens must increase", t.name);
        guard.release().unwrap();
        a.stop().unwrap();
        b.stop().unwrap();
    }
}

#[test]
fn acquire_timeout_gives_up_in_time() {
    for t in targets("timeout") {
        let a = t.connect("a");
        let b = t.connect("b");
        let guard = a.lock("l").acquire().unwrap();
        let wait = Duration::from_millis(400);
        let started = Instant::now();
        let refused = b.lock("l").acquire_timeout(wait);
        let took = started.elapsed();
        assert!(
            matches!(refused, Err(Error::OperationTimedOut { .. })),
            "{}: expected OperationTimedOut, got {refused:?}",
            t.name
        );
        assert!(
            took >= wait / 2 && took <= wait * 3,
            "{}: gave up after {took:?}, asked for {wait:?}",
            t.name
        );
        assert!(guard.is_held(), "{}", t.name);
        guard.release().unwrap();
        a.stop().unwrap();
        b.stop().unwrap();
    }
}

#[test]
fn a_waiter_in_another_thread_wakes_on_release() {
    for t in targets("waiter") {
        let a = t.connect("a");
        let b = t.connect("b");
        let guard = a.lock("l").acquire().unwrap();
        let lock = b.lock("l");
        let waiter = thread::spawn(move || {
            let granted = lock.acquire_timeout(Duration::from_secs(10));
            let at = Instant::now();
            let token = granted.map(|guard| guard.token());
            (token, at)
        });
        thread::sleep(Duration::from_millis(200));
        assert!(!waiter.is_finished(), "{}: granted while held", t.name);
        let held = guard.token();
        let released = Instant::now();
        guard.release().unwrap();
        let (token, woke) = waiter.join().unwrap();
        let token = token.unwrap_or_else(|e| panic!("{}: the waiter failed: {e}", t.name));
        assert!(token > held, "{}: tokens must increase", t.name);
        let after = woke.duration_since(released);
        assert!(
            after < Duration::from_secs(2),
            "{}: woke {after:?} after the release",
            t.name
        );
        a.stop().unwrap();
        b.stop().unwrap();
    }
}

#[test]
fn a_dropped_guard_releases_the_lock() {
    for t in targets("dropped") {
        let a = t.connect("a");
        let b = t.connect("b");
        let guard = a.lock("l").acquire().unwrap();
        let first = guard.token();
        drop(guard);
        // Released before `drop` returned: free at once, not after a background task ran.
        let guard = b.lock("l").try_acquire().unwrap();
        let guard = guard.unwrap_or_else(|| panic!("{}: still held after drop", t.name));
        assert!(guard.token() > first, "{}", t.name);
        drop(guard);
        let guard = a.lock("l").acquire_timeout(Duration::from_secs(2));
        assert!(guard.is_ok(), "{}: {guard:?}", t.name);
        drop(guard);
        a.stop().unwrap();
        b.stop().unwrap();
    }
}

#[test]
fn wait_lost_waits_while_held_and_answers_once_stopped() {
    for t in targets("lost") {
        let a = t.connect("a");
        let guard = a.lock("l").acquire().unwrap();
        let membership = a.join_group_create("g", Capabilities::none()).unwrap();
        let leadership = a.campaign("g").unwrap();
        let started = Instant::now();
        assert!(!guard.wait_lost(Duration::from_millis(200)), "{}", t.name);
        assert!(
            started.elapsed() >= Duration::from_millis(150),
            "{}: did not wait",
            t.name
        );
        assert!(
            !membership.wait_lost(Duration::from_millis(10)),
            "{}",
            t.name
        );
        assert!(
            !leadership.wait_lost(Duration::from_millis(10)),
            "{}",
            t.name
        );
        assert!(guard.is_held() && membership.is_active() && leadership.is_held());

        // Stopped through a clone: every handle learns it.
        a.clone().stop().unwrap();
        assert!(guard.wait_lost(Duration::from_secs(2)), "{}", t.name);
        assert!(membership.wait_lost(Duration::from_secs(2)), "{}", t.name);
        assert!(leadership.wait_lost(Duration::from_secs(2)), "{}", t.name);
        assert!(!guard.is_held() && !membership.is_active() && !leadership.is_held());
        assert!(matches!(guard.release(), Err(Error::Stopped)), "{}", t.name);
        // Dropped after stop: nothing left to hand back, and no error.
        drop(leadership);
    }
}

#[test]
fn a_membership_without_heartbeats_is_lost() {
    for t in targets("expiry") {
        let url = t.url("timeout=2");
        let quiet = Coordinator::builder(&url, "quiet")
            .manual_heartbeat()
            .connect()
            .unwrap();
        quiet.heartbeat().unwrap();
        let membership = quiet.join_group_create("g", Capabilities::none()).unwrap();
        assert!(membership.is_active(), "{}", t.name);
        assert!(
            !membership.wait_lost(Duration::from_millis(100)),
            "{}",
            t.name
        );
        // The local lease (90% of the 2 s timeout) runs out without a heartbeat.
        assert!(
            membership.wait_lost(Duration::from_secs(5)),
            "{}: still a member without heartbeats",
            t.name
        );
        assert!(!membership.is_active(), "{}", t.name);
        assert!(!quiet.is_live(), "{}", t.name);
        let _ = quiet.stop();
    }
}

// ----- groups -----

#[test]
fn groups_members_and_capabilities() {
    for t in targets("groups") {
        let a = t.connect("a");
        let b = t.connect("b");
        let ma = a.join_group_create("g", json!({"weight": 2})).unwrap();
        assert_eq!(ma.group(), &GroupId::from("g"));
        let mb = b.join_group("g", json!({"zone": "b"})).unwrap();
        assert!(
            a.groups().unwrap().contains(&GroupId::from("g")),
            "{}",
            t.name
        );
        let both = BTreeSet::from([MemberId::from("a"), MemberId::from("b")]);
        assert_eq!(a.members("g").unwrap(), both, "{}", t.name);
        assert_eq!(
            a.member_capabilities("g", "b").unwrap(),
            Capabilities::from(json!({"zone": "b"})),
            "{}",
            t.name
        );

        b.update_capabilities("g", json!({"zone": "c"})).unwrap();
        let all = a.members_with_capabilities("g").unwrap();
        assert_eq!(
            all.get(&MemberId::from("b")),
            Some(&Capabilities::from(json!({"zone": "c"}))),
            "{}",
            t.name
        );
        assert_eq!(
            all.get(&MemberId::from("a")),
            Some(&Capabilities::from(json!({"weight": 2}))),
            "{}",
            t.name
        );

        assert!(mb.is_active(), "{}", t.name);
        mb.leave().unwrap();
        let only_a = BTreeSet::from([MemberId::from("a")]);
        assert_eq!(a.members("g").unwrap(), only_a, "{}", t.name);
        a.leave_group("g").unwrap();
        assert!(ma.wait_lost(Duration::from_secs(1)), "{}", t.name);
        assert!(a.members("g").unwrap().is_empty(), "{}", t.name);

        a.delete_group("g").unwrap();
        assert!(
            !a.groups().unwrap().contains(&GroupId::from("g")),
            "{}",
            t.name
        );
        a.create_group("h").unwrap();
        assert!(
            matches!(a.create_group("h"), Err(Error::GroupAlreadyExist { .. })),
            "{}",
            t.name
        );
        a.delete_group("h").unwrap();
        a.stop().unwrap();
        b.stop().unwrap();
    }
}

#[test]
fn a_watch_iterates_over_joins_and_leaves() {
    for t in targets("watch") {
        let a = Coordinator::builder(&t.url(""), "a")
            .watch_interval(Duration::from_millis(50))
            .connect()
            .unwrap();
        let b = t.connect("b");
        let _ma = a.join_group_create("g", Capabilities::none()).unwrap();
        let mut watch = a.watch("g").unwrap();
        // Members present before the watch are not reported.
        let quiet = watch.recv_timeout(Duration::from_millis(200)).unwrap();
        assert_eq!(quiet, None, "{}", t.name);

        let mb = b.join_group("g", Capabilities::none()).unwrap();
        let joined = watch.next().expect("the watch goes on").unwrap();
        let expected = GroupEvent::Joined {
            group: "g".into(),
            member: "b".into(),
        };
        assert_eq!(joined, expected, "{}", t.name);

        mb.leave().unwrap();
        let left = watch.recv_timeout(Duration::from_secs(5)).unwrap();
        let expected = GroupEvent::Left {
            group: "g".into(),
            member: "b".into(),
        };
        assert_eq!(left, Some(expected), "{}", t.name);

        // The watch ends with the coordinator (after any poll that was under way fails).
        a.stop().unwrap();
        let ended = (0..5).find_map(|_| match watch.recv_timeout(Duration::from_secs(5)) {
            Err(Error::Stopped) => Some(true),
            Ok(None) => Some(false),
            Ok(Some(_)) | Err(_) => None,
        });
        assert_eq!(ended, Some(true), "{}: the watch did not end", t.name);
        assert!(watch.next().is_none(), "{}", t.name);
        b.stop().unwrap();
    }
}

// ----- elections -----

#[test]
fn resigning_hands_the_leadership_over() {
    for t in targets("election") {
        let a = t.connect("a");
        let b = t.connect("b");
        let _ma = a.join_group_create("g", Capabilities::none()).unwrap();
        let leadership = a.campaign("g").unwrap();
        assert!(leadership.is_held(), "{}", t.name);
        assert_eq!(leadership.group(), &GroupId::from("g"));
        assert_eq!(b.leader("g").unwrap(), Some("a".into()), "{}", t.name);
        assert!(b.try_campaign("g").unwrap().is_none(), "{}", t.name);

        let campaigner = b.clone();
        let waiter =
            thread::spawn(move || campaigner.campaign_timeout("g", Duration::from_secs(10)));
        thread::sleep(Duration::from_millis(200));
        assert!(!waiter.is_finished(), "{}: elected while a leads", t.name);
        let first = leadership.token();
        leadership.resign().unwrap();
        let leadership = waiter.join().unwrap();
        let leadership = leadership.unwrap_or_else(|e| panic!("{}: b not elected: {e}", t.name));
        assert!(
            leadership.token() > first,
            "{}: terms must increase",
            t.name
        );
        assert_eq!(a.leader("g").unwrap(), Some("b".into()), "{}", t.name);

        // A dropped leadership resigns before `drop` returns.
        let second = leadership.token();
        drop(leadership);
        let leadership = a.try_campaign("g").unwrap();
        let leadership = leadership.unwrap_or_else(|| panic!("{}: still led after drop", t.name));
        assert!(leadership.token() > second, "{}", t.name);
        leadership.resign().unwrap();
        a.stop().unwrap();
        b.stop().unwrap();
    }
}

// ----- partitioner -----

#[test]
fn partitioners_share_the_objects() {
    for t in targets("partitioner") {
        let a = t.connect("a");
        let b = t.connect("b");
        let pa = a.join_partitioned_group("p", 1, 32).unwrap();
        assert_eq!(pa.group(), &GroupId::from("p"));
        assert!(
            pa.belongs_to_self(&"job-1"),
            "{}: alone, it owns all",
            t.name
        );
        let pb = b.join_partitioned_group("p", 1, 32).unwrap();
        pa.refresh().unwrap();
        pb.refresh().unwrap();
        assert_eq!(pa.ring().node_count(), 2, "{}", t.name);
        assert_eq!(pa.members_for(&"job-1", 2, &[]).len(), 2, "{}", t.name);
        for job in 0..50u32 {
            let owner = pa.members_for(&job, 1, &[]);
            assert_eq!(
                owner,
                pb.members_for(&job, 1, &[]),
                "{}: they disagree",
                t.name
            );
            assert!(pb.belongs_to_member(&job, &owner[0], 1));
            assert_ne!(pa.belongs_to_self(&job), pb.belongs_to_self(&job));
        }
        pb.leave().unwrap();
        pa.refresh().unwrap();
        assert_eq!(pa.ring().node_count(), 1, "{}", t.name);
        pa.leave().unwrap();
        a.stop().unwrap();
        b.stop().unwrap();
    }
}

// ----- the coordinator -----

#[test]
fn clones_share_one_session() {
    for t in targets("clones") {
        let a = t.connect("a");
        let clone = a.clone();
        let membership = a.join_group_create("g", Capabilities::none()).unwrap();
        assert_eq!(clone.member_id(), &MemberId::from("a"));
        assert!(clone.members("g").unwrap().contains(&MemberId::from("a")));
        assert!(a.is_started() && a.is_live(), "{}", t.name);

        clone.stop().unwrap();
        assert!(!a.is_started(), "{}", t.name);
        assert!(!a.async_coordinator().is_started(), "{}", t.name);
        assert!(matches!(a.members("g"), Err(Error::Stopped)), "{}", t.name);
        assert!(matches!(a.stop(), Err(Error::Stopped)), "{}", t.name);
        assert!(membership.wait_lost(Duration::from_secs(1)), "{}", t.name);

        let b = t.connect("b");
        let members = b.members("g").unwrap();
        assert!(
            !members.contains(&MemberId::from("a")),
            "{}: {members:?}",
            t.name
        );
        b.stop().unwrap();
    }
}

#[test]
fn calls_inside_a_runtime_are_refused_and_drops_hand_back_in_the_background() {
    let t = memory("inside");
    let coord = t.connect("a");
    let other = t.connect("b");
    let guard = coord.lock("l").acquire().unwrap();
    let membership = coord.join_group_create("g", Capabilities::none()).unwrap();
    let leadership = coord.campaign("g").unwrap();
    let mut watch = coord.watch("g").unwrap();
    let url = t.url("");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let coord = runtime.block_on(async move {
        assert_refused(Coordinator::connect(&url, "c"), "connect");
        assert_refused(Coordinator::builder(&url, "c").connect(), "connect");
        assert_refused(coord.heartbeat(), "heartbeat");
        assert_refused(coord.members("g"), "members");
        assert_refused(coord.join_group("g", Capabilities::none()), "join_group");
        assert_refused(coord.lock("m").try_acquire(), "try_acquire");
        assert_refused(coord.lock("m").acquire(), "acquire");
        assert_refused(coord.campaign("h"), "campaign");
        assert_refused(coord.leader("g"), "leader");
        assert_refused(watch.recv_timeout(Duration::from_secs(10)), "recv_timeout");
        assert!(matches!(
            watch.next(),
            Some(Err(Error::BlockingInsideRuntime { .. }))
        ));
        // What needs no blocking still answers; `wait_lost` without waiting.
        assert!(coord.is_started() && guard.is_held() && membership.is_active());
        let started = Instant::now();
        assert!(!guard.wait_lost(Duration::from_secs(10)));
        assert!(!leadership.wait_lost(Duration::from_secs(10)));
        assert!(started.elapsed() < Duration::from_secs(1));
        // Refused, and handed back in the background as if dropped.
        assert_refused(guard.release(), "release");
        drop(leadership);
        assert_refused(membership.leave(), "leave");
        assert_refused(coord.stop(), "stop");
        drop(watch);
        coord
    });
    drop(runtime);

    // Out of the runtime: what was dropped there was handed back, and the coordinator works.
    let guard = other.lock("l").acquire_timeout(Duration::from_secs(2));
    assert!(guard.is_ok(), "the lock was not released: {guard:?}");
    let leadership = other.campaign_timeout("g", Duration::from_secs(2));
    assert!(
        leadership.is_ok(),
        "the leadership was not resigned: {leadership:?}"
    );
    assert!(coord.members("g").unwrap().contains(&MemberId::from("a")));
    coord.stop().unwrap();
    drop((guard, leadership));
    other.stop().unwrap();
}

#[tokio::test]
async fn dropping_blocking_handles_inside_a_runtime_does_not_panic() {
    let t = memory("drop-inside");
    let url = t.url("");
    assert_refused(Coordinator::connect(&url, "a"), "connect");
    // Made where blocking is allowed: a plain thread.
    let made = thread::spawn(move || -> tooz::Result<_> {
        let coord = Coordinator::connect(&url, "a")?;
        let guard = coord.lock("l").acquire()?;
        let membership = coord.join_group_create("g", Capabilities::none())?;
        let leadership = coord.campaign("g")?;
        let watch = coord.watch("g")?;
        let partitioner = coord.join_partitioned_group("p", 1, 32)?;
        let clone = coord.clone();
        Ok((
            coord,
            clone,
            guard,
            membership,
            leadership,
            watch,
            partitioner,
        ))
    });
    let (coord, clone, guard, membership, leadership, watch, partitioner) =
        made.join().unwrap().unwrap();
    assert_refused(coord.stop(), "stop");
    assert!(partitioner.belongs_to_self(&"anything"));
    drop(guard);
    drop(leadership);
    drop(membership);
    drop(watch);
    drop(partitioner);
    drop(clone);
    // The last handle: the coordinator's runtime shuts down here, inside this runtime.
    drop(coord);
    tokio::time::sleep(Duration::from_millis(10)).await;
}
