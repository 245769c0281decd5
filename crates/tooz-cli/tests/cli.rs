//! End-to-end tests of the real `tooz` binary on a `file://` directory.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

#[test]
fn racing_no_wait_locks_run_the_command_exactly_once() {
    let env = Env::new("race");
    let marker = env.dir.join("ran");
    std::fs::create_dir_all(&env.dir).unwrap();
    let script = format!("echo $$ >> {}; sleep 1", marker.display());
    let racers: Vec<Child> = (0..4)
        .map(|_| env.spawn(&["lock", "race", "--no-wait", "--", "sh", "-c", &script]))
        .collect();
    let codes: Vec<i32> = racers
        .into_iter()
        .map(|c| c.wait_with_output().unwrap().status.code().unwrap())
        .collect();
    let runs = std::fs::read_to_string(&marker)
        .unwrap_or_default()
        .lines()
        .count();
    assert_eq!(
        runs, 1,
        "exactly one racer ran the command; codes {codes:?}"
    );
    assert_eq!(codes.iter().filter(|c| **c == 0).count(), 1, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| **c == 75).count(), 3, "{codes:?}");
}

#[test]
fn the_command_gets_the_token_and_its_exit_code_is_passed_on() {
    let env = Env::new("token");
    let out = env.run(&[
        "lock",
        "t",
        "--",
        "sh",
        "-c",
        "echo $TOOZ_FENCING_TOKEN; exit 7",
    ]);
    assert_eq!(out.status.code(), Some(7));
    let first: u64 = stdout(&out).trim().parse().unwrap();
    let out = env.run(&["lock", "t", "--", "sh", "-c", "echo $TOOZ_FENCING_TOKEN"]);
    let second: u64 = stdout(&out).trim().parse().unwrap();
    assert!(second > first, "tokens increase: {first} then {second}");
}

#[test]
fn a_sigkilled_holder_frees_the_lock() {
    let env = Env::new("kill");
    let mut holder = env.spawn(&["lock", "k", "--", "sleep", "10"]);
    assert!(
        eventually(Duration::from_secs(5), || {
            env.run(&["lock", "k", "--no-wait", "--", "true"])
                .status
                .code()
                == Some(75)
        }),
        "the holder took the lock"
    );
    holder.kill().unwrap(); // SIGKILL to tooz itself: no cleanup runs
    holder.wait().unwrap();
    let started = Instant::now();
    let out = env.run(&["lock", "k", "--timeout", "2", "--", "true"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[test]
fn sigterm_is_passed_to_the_command_and_the_lock_released() {
    let env = Env::new("term");
    let mut holder = env.spawn(&["lock", "s", "--", "sleep", "30"]);
    assert!(eventually(Duration::from_secs(5), || {
        env.run(&["lock", "s", "--no-wait", "--", "true"])
            .status
            .code()
            == Some(75)
    }));
    let pid = nix::unistd::Pid::from_raw(holder.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = holder.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(128 + 15),
        "sleep died of the forwarded SIGTERM"
    );
    let out = env.run(&["lock", "s", "--no-wait", "--", "true"]);
    assert_eq!(out.status.code(), Some(0), "released: {}", stderr(&out));
}

#[test]
fn a_joined_member_is_listed_and_watched() {
    let env = Env::new("join");
    env.run(&["group", "create", "workers"]);
    let mut watch = env.spawn(&["watch", "workers"]);
    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    std::thread::sleep(Duration::from_millis(300));
    let joined = env.spawn(&[
        "--member",
        "w-1",
        "group",
        "join",
        "workers",
        "--capabilities",
        r#"{"zone": "a"}"#,
        "--",
        "sleep",
        "2",
    ]);
    let listed = eventually(Duration::from_secs(5), || {
        let out = env.run(&["group", "members", "workers", "--json"]);
        let members: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap_or_default();
        members == serde_json::json!([{"member": "w-1", "capabilities": {"zone": "a"}}])
    });
    assert!(
        listed,
        "tooz group members --json lists the member with its capabilities"
    );
    let first: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(
        first,
        serde_json::json!({"event": "joined", "group": "workers", "member": "w-1"})
    );
    assert!(joined.wait_with_output().unwrap().status.success());
    let second: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(
        second,
        serde_json::json!({"event": "left", "group": "workers", "member": "w-1"})
    );
    watch.kill().unwrap();
    let _ = watch.wait();
}

#[test]
fn elect_runs_the_command_as_leader_and_leader_prints_it() {
    let env = Env::new("elect");
    let mut leader = env.spawn(&["--member", "boss", "elect", "g", "--", "sleep", "30"]);
    assert!(eventually(Duration::from_secs(5), || {
        stdout(&env.run(&["leader", "g"])).trim() == "boss"
    }));
    // A second campaigner waits while boss leads, then runs once boss is gone.
    let mut second = env.spawn(&[
        "--member",
        "second",
        "elect",
        "g",
        "--",
        "sh",
        "-c",
        "echo $TOOZ_FENCING_TOKEN",
    ]);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        second.try_wait().unwrap().is_none(),
        "waits while boss leads"
    );
    leader.kill().unwrap();
    let _ = leader.wait();
    let out = second.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let token: u64 = stdout(&out).trim().parse().unwrap();
    assert!(token >= 2, "a later term: {token}");
    assert!(eventually(Duration::from_secs(5), || env
        .run(&["leader", "g"])
        .status
        .code()
        == Some(1)));
}

#[test]
fn ring_agrees_with_the_library() {
    let env = Env::new("ring");
    let out = env.run(&[
        "ring",
        "--node",
        "node1",
        "--node",
        "node2",
        "--node",
        "node3",
        "--replicas",
        "2",
        "--json",
        "foo",
        "12345",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut ring: tooz::HashRing<String> = tooz::HashRing::new();
    for n in ["node1", "node2", "node3"] {
        ring.add_node(n.to_owned(), 1);
    }
    for (line, key) in stdout(&out).lines().zip(["foo", "12345"]) {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        let expected: Vec<&String> = ring.get_nodes(key.as_bytes(), 2, &[] as &[&str]).into_vec();
        assert_eq!(value["key"], key);
        assert_eq!(value["nodes"], serde_json::json!(expected));
    }
    let out = env.run(&["ring", "--node", "a", "--node", "b=x", "k"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("b=x"), "{}", stderr(&out));
}

#[test]
fn bad_input_gives_one_line_and_a_documented_code() {
    let env = Env::new("bad");
    for (args, code, needle) in [
        (vec!["frobnicate"], 2, "frobnicate"),
        (vec!["lock", "x", "--bogus", "--", "true"], 2, "--bogus"),
        (vec!["lock", "x", "true"], 2, "`--`"),
        (vec!["lock", "x"], 2, "missing the command"),
        (
            vec![
                "group",
                "join",
                "g",
                "--capabilities",
                "{nope",
                "--",
                "true",
            ],
            2,
            "JSON",
        ),
        (
            vec!["lock", "x", "--", "no-such-command-anywhere"],
            127,
            "not found",
        ),
        (vec!["--url", "gopher://x", "info"], 1, "gopher"),
        (
            vec!["--url", "redis://user:hunter2@127.0.0.1:1", "info"],
            1,
            "redis",
        ),
        (vec!["lock", "../escape", "--", "true"], 1, "../escape"),
    ] {
        let out = env.run(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        assert_eq!(
            err.trim().lines().count(),
            1,
            "{args:?}: one line, got {err:?}"
        );
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(
            !err.contains("hunter2") && !err.contains("panicked"),
            "{err}"
        );
    }
}

#[test]
fn a_lost_membership_stops_the_command_with_its_own_exit_code() {
    let env = Env::new("lost");
    let mut member = env.spawn(&[
        "--member", "m", "group", "join", "g", "--grace", "1", "--", "sleep", "30",
    ]);
    assert!(eventually(Duration::from_secs(5), || member_file(&env.dir).is_some()));
    // Someone removes the membership behind its back; the next heartbeat notices.
    std::fs::remove_file(member_file(&env.dir).unwrap()).unwrap();
    let started = Instant::now();
    let status = member.wait().unwrap();
    assert_eq!(status.code(), Some(76), "the documented 'lost' exit code");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_waiting_lock_says_so_after_a_moment_and_gives_up_with_75() {
    let env = Env::new("status");
    let mut holder = env.spawn(&["lock", "busy", "--", "sleep", "10"]);
    assert!(eventually(Duration::from_secs(5), || {
        env.run(&["lock", "busy", "--no-wait", "--", "true"])
            .status
            .code()
            == Some(75)
    }));
    let out = env.run(&["lock", "busy", "--timeout", "1.5", "--", "true"]);
    assert_eq!(out.status.code(), Some(75));
    assert!(
        stderr(&out).contains("waiting for lock 'busy'"),
        "{}",
        stderr(&out)
    );
    let quiet = env.run(&["--quiet", "lock", "busy", "--timeout", "1.5", "--", "true"]);
    assert_eq!(quiet.status.code(), Some(75));
    assert!(stderr(&quiet).is_empty(), "--quiet: {}", stderr(&quiet));
    holder.kill().unwrap();
    let _ = holder.wait();
}

/// A `redis://` URL from TOOZ_TEST_URLS (scripts/test sets it), with a 1-second TTL.
fn redis_url() -> Option<String> {
    let urls = std::env::var("TOOZ_TEST_URLS").ok()?;
    let url = urls
        .split_whitespace()
        .find(|u| u.starts_with("redis://"))?;
    let base = url.split('?').next()?;
    Some(format!(
        "{base}?timeout=1&namespace=_tooz_cli{}",
        std::process::id()
    ))
}

/// Four processes, 25 increments each, of a counter kept in a plain file and updated with a
/// deliberately non-atomic read–pause–write: any overlap of two holders loses an update.
fn no_lost_updates(url: &str, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let counter = dir.join("counter");
    std::fs::write(&counter, "0").unwrap();
    let script = format!(
        "for i in $(seq 25); do {} --url '{url}' lock torture -- sh -c 'n=$(cat {c}); sleep 0.002; echo $((n+1)) > {c}' || exit 1; done",
        env!("CARGO_BIN_EXE_tooz"),
        c = counter.display()
    );
    let workers: Vec<Child> = (0..4)
        .map(|_| Command::new("sh").arg("-c").arg(&script).spawn().unwrap())
        .collect();
    for mut worker in workers {
        assert!(worker.wait().unwrap().success());
    }
    let total: u32 = std::fs::read_to_string(&counter)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(total, 100, "lost updates under {url}");
}

#[test]
fn processes_contending_for_one_file_lock_lose_no_update() {
    let env = Env::new("torture-file");
    no_lost_updates(&env.url(), &env.dir.join("work"));
}

#[test]
fn processes_contending_for_one_redis_lock_lose_no_update() {
    let Some(url) = redis_url() else {
        return eprintln!("no redis:// in TOOZ_TEST_URLS: skipping (scripts/test runs it)");
    };
    let env = Env::new("torture-redis");
    no_lost_updates(&url, &env.dir.join("work"));
}

#[test]
fn a_holder_paused_past_its_ttl_loses_the_lock_and_stops_its_command() {
    let Some(url) = redis_url() else {
        return eprintln!("no redis:// in TOOZ_TEST_URLS: skipping (scripts/test runs it)");
    };
    let tooz = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tooz"));
        cmd.arg("--url").arg(&url).args(args);
        cmd
    };
    let holder = tooz(&["lock", "paused", "--grace", "1", "--", "sleep", "20"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(eventually(Duration::from_secs(5), || {
        tooz(&["lock", "paused", "--no-wait", "--", "true"])
            .output()
            .unwrap()
            .status
            .code()
            == Some(75)
    }));
    let pid = nix::unistd::Pid::from_raw(holder.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
    // While the holder is frozen its key expires, and someone else gets the lock.
    let taken = eventually(Duration::from_secs(5), || {
        tooz(&["lock", "paused", "--no-wait", "--", "true"])
            .output()
            .unwrap()
            .status
            .code()
            == Some(0)
    });
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).unwrap();
    assert!(taken, "the frozen holder's lock expired on the server");
    // Thawed, the holder notices its lease ran out: its command is stopped, exit code 76.
    let started = Instant::now();
    let out = holder.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(76), "{}", stderr(&out));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(stderr(&out).contains("lost"), "{}", stderr(&out));
}

#[test]
fn a_lost_membership_stops_the_commands_children_too() {
    let env = Env::new("lost-group");
    std::fs::create_dir_all(&env.dir).unwrap();
    let pid_file = env.dir.join("grandchild");
    // The shell waits for its child: signalling the shell alone would leave `sleep` running.
    let script = format!("sleep 30 & echo $! > {}; wait", pid_file.display());
    let errors = env.dir.join("stderr");
    let mut member = env
        .tooz(&[
            "--member", "m", "group", "join", "g", "--", "sh", "-c", &script,
        ])
        .env(
            "TOOZ_URL",
            format!("file://{}?timeout=1", env.dir.display()),
        )
        .stderr(stderr_file(&errors))
        .spawn()
        .unwrap();
    assert!(eventually(Duration::from_secs(5), || {
        member_file(&env.dir).is_some() && pid_in(&pid_file).is_some()
    }));
    let grandchild = pid_in(&pid_file).unwrap();
    assert!(alive(grandchild));
    std::fs::remove_file(member_file(&env.dir).unwrap()).unwrap();
    let status = member.wait().unwrap();
    let errors = std::fs::read_to_string(&errors).unwrap_or_default();
    assert_eq!(status.code(), Some(76), "{errors}");
    assert!(
        dies_within(Duration::from_secs(1), grandchild),
        "the command's child {grandchild} outlived the lost membership"
    );
}

#[test]
fn a_sigkilled_tooz_takes_its_command_with_it() {
    let env = Env::new("pdeathsig");
    std::fs::create_dir_all(&env.dir).unwrap();
    let pid_file = env.dir.join("cmd");
    let script = format!("echo $$ > {}; exec sleep 30", pid_file.display());
    let mut holder = env.spawn(&["lock", "orphan", "--", "sh", "-c", &script]);
    assert!(eventually(Duration::from_secs(5), || pid_in(&pid_file).is_some()));
    let command = pid_in(&pid_file).unwrap();
    holder.kill().unwrap(); // SIGKILL: tooz can pass nothing on
    holder.wait().unwrap();
    assert!(
        dies_within(Duration::from_secs(2), command),
        "the command {command} outlived its SIGKILLed tooz"
    );
}

#[test]
fn the_grace_help_warns_that_a_long_grace_gives_up_mutual_exclusion() {
    let env = Env::new("grace-help");
    for args in [
        &["lock", "--help"][..],
        &["lock", "-h"],
        &["elect", "--help"],
        &["group", "join", "--help"],
    ] {
        let out = env.run(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        // Help is wrapped to the terminal's width: compare words, not lines.
        let help = stdout(&out)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        assert!(help.contains("--grace"), "{args:?}: {help}");
        assert!(
            help.contains("expiry margin gives up mutual exclusion"),
            "{args:?}: {help}"
        );
    }
}

#[test]
fn a_bad_grace_is_a_usage_error() {
    let env = Env::new("bad-grace");
    for grace in ["-1", "nan", "inf", "1e300", "soon"] {
        let flag = format!("--grace={grace}");
        for args in [
            vec!["lock", "x", &flag, "--", "true"],
            vec!["lock", "x", "--grace", grace, "--", "true"],
            // Checked before anything is connected: no backend listens there.
            vec![
                "--url",
                "redis://127.0.0.1:1",
                "lock",
                "x",
                &flag,
                "--",
                "true",
            ],
            vec!["elect", "x", &flag, "--", "true"],
            vec!["group", "join", "x", &flag, "--", "true"],
        ] {
            let out = env.run(&args);
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
            assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err:?}");
            assert!(err.contains("--grace"), "{args:?}: {err}");
            assert!(!err.contains("panicked"), "{args:?}: {err}");
        }
    }
}
