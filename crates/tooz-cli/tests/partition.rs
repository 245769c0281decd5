//! A `tooz lock` holder cut off from Redis by a partition (a fault proxy that drops every byte
//! and keeps the connections open) must stop its command before the next holder starts:
//! commands that know nothing of fencing tokens keep their mutual exclusion.

mod common;
#[path = "../../tooz/tests/support/fault_proxy.rs"]
mod fault_proxy;

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// The redis server of TOOZ_TEST_URLS, reachable directly or through a proxy.
struct Redis {
    /// `user:password@`, or nothing.
    userinfo: String,
    /// HOST:PORT as the URL gives it.
    host_port: String,
    /// `/DB`, or nothing.
    path: String,
    addr: SocketAddr,
}

impl Redis {
    fn from_env() -> Option<Self> {
        let urls = std::env::var("TOOZ_TEST_URLS").ok()?;
        let url = urls
            .split_whitespace()
            .find(|u| u.starts_with("redis://"))?;
        let rest = url.split('?').next()?.strip_prefix("redis://")?;
        let (authority, path) = match rest.find('/') {
            Some(slash) => rest.split_at(slash),
            None => (rest, ""),
        };
        let (userinfo, host_port) = match authority.rsplit_once('@') {
            Some((user, host)) => (format!("{user}@"), host.to_owned()),
            None => (String::new(), authority.to_owned()),
        };
        let host_port = if host_port.ends_with(']') || !host_port.contains(':') {
            format!("{host_port}:6379")
        } else {
            host_port
        };
        let addr = host_port.to_socket_addrs().ok()?.next()?;
        Some(Self {
            userinfo,
            addr,
            host_port,
            path: path.to_owned(),
        })
    }

    /// A URL with 2-second leases, to the server or to whatever listens at `host_port`.
    fn url(&self, host_port: &str) -> String {
        format!(
            "redis://{}{host_port}{}?timeout=2&lock_timeout=2&namespace=_tooz_cli{}",
            self.userinfo,
            self.path,
            std::process::id()
        )
    }
}

/// When each of two processes exits, counted from `since`; kills whichever is still running at
/// `deadline`, and reports it as `None`.
fn exits(
    mut children: [&mut Child; 2],
    since: Instant,
    deadline: Instant,
) -> [Option<(std::process::ExitStatus, Duration)>; 2] {
    let mut ended = [None, None];
    while ended.iter().any(Option::is_none) && Instant::now() < deadline {
        for (child, end) in children.iter_mut().zip(&mut ended) {
            if end.is_none() {
                *end = child.try_wait().unwrap().map(|s| (s, since.elapsed()));
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    for (child, end) in children.into_iter().zip(&ended) {
        if end.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
    ended
}

/// The timestamps (ns) of `who`'s lines in a log of "WHO NANOSECONDS" lines.
fn stamps(log: &str, who: &str) -> Vec<u128> {
    log.lines()
        .filter_map(|l| l.strip_prefix(who)?.trim().parse().ok())
        .collect()
}

/// A holder cut off from redis by a silent partition must have stopped its command — the
/// whole process group, with the default grace — before the server lets another holder in.
#[test]
fn a_partitioned_holder_stops_its_command_before_another_holder_starts() {
    let Some(redis) = Redis::from_env() else {
        assert!(
            std::env::var_os("TOOZ_REQUIRE_INTEROP").is_none(),
            "TOOZ_REQUIRE_INTEROP is set but TOOZ_TEST_URLS names no redis:// server"
        );
        return eprintln!("no redis:// in TOOZ_TEST_URLS: skipping (scripts/test runs it)");
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let env = Env::new("partition");
    std::fs::create_dir_all(&env.dir).unwrap();
    let tooz = |url: &str, errors: &Path, args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tooz"));
        cmd.arg("--url")
            .arg(url)
            .args(args)
            .env_remove("TOOZ_MEMBER")
            .stdout(Stdio::null())
            .stderr(stderr_file(errors));
        cmd.spawn().unwrap()
    };
    for round in 0..5 {
        let proxy = runtime.block_on(fault_proxy::FaultProxy::start(redis.addr));
        let name = format!("partition-{}-{round}", std::process::id());
        let file = |what: &str| env.dir.join(format!("{what}-{round}"));
        let (log, a_pid, a_errors, b_errors) =
            (file("log"), file("a-pid"), file("a-err"), file("b-err"));
        // A's command is a shell (the leader of its process group) that starts a `date` and a
        // `sleep` every 20 ms: the whole group must be gone before B starts.
        let a_script = format!(
            "echo $$ > {}; while :; do echo A $(date +%s%N) >> {}; sleep 0.02; done",
            a_pid.display(),
            log.display()
        );
        let b_script = format!("echo B $(date +%s%N) >> {}", log.display());
        let a_url = redis.url(&format!("127.0.0.1:{}", proxy.port()));
        let mut a = tooz(
            &a_url,
            &a_errors,
            &["lock", &name, "--", "sh", "-c", &a_script],
        );
        assert!(
            eventually(Duration::from_secs(10), || std::fs::read_to_string(&log)
                .is_ok_and(|l| l.contains('A'))),
            "round {round}: A's command never ran"
        );
        let a_group = nix::unistd::Pid::from_raw(pid_in(&a_pid).unwrap());
        proxy.set(fault_proxy::Fault::Blackhole);
        let cut = Instant::now();
        let b_url = redis.url(&redis.host_port);
        let b_args = [
            "lock",
            &name,
            "--timeout",
            "10",
            "--",
            "sh",
            "-c",
            &b_script,
        ];
        let mut b = tooz(&b_url, &b_errors, &b_args);
        let [a_end, b_end] = exits([&mut a, &mut b], cut, cut + Duration::from_secs(15));
        drop(proxy);
        // Anything of A's still running would go on writing: give it the time to.
        std::thread::sleep(Duration::from_millis(200));
        let text = std::fs::read_to_string(&log).unwrap();
        let a_outlived = alive(a_group.as_raw());
        // Whatever the outcome, nothing of A's may outlast the test.
        let _ = nix::sys::signal::killpg(a_group, nix::sys::signal::Signal::SIGKILL);
        let a_err = std::fs::read_to_string(&a_errors).unwrap_or_default();
        let b_err = std::fs::read_to_string(&b_errors).unwrap_or_default();
        let (a_status, a_after) =
            a_end.unwrap_or_else(|| panic!("round {round}: A never exited: {a_err}"));
        let (b_status, b_after) =
            b_end.unwrap_or_else(|| panic!("round {round}: B never exited: {b_err}"));
        assert_eq!(b_status.code(), Some(0), "round {round}: B: {b_err}");
        assert_eq!(a_status.code(), Some(76), "round {round}: A: {a_err}");
        assert!(!a_outlived, "round {round}: A's command outlived A");
        let a_stamps = stamps(&text, "A");
        let b_stamps = stamps(&text, "B");
        assert_eq!(b_stamps.len(), 1, "round {round}: {text}");
        let (a_last, b_first) = (a_stamps.iter().max().unwrap(), b_stamps[0]);
        assert!(
            a_stamps.iter().all(|a| *a < b_first),
            "round {round}: A's command ran {} ms into B's turn",
            (a_last - b_first) / 1_000_000
        );
        eprintln!(
            "round {round}: margin {:.1} ms between A's last line and B's; A exited after {a_after:?}, B after {b_after:?}",
            (b_first - a_last) as f64 / 1e6
        );
        // Past the lease, A's leftovers (release, stop) must not hold it up for long either.
        assert!(
            a_after < Duration::from_secs(5),
            "round {round}: A exited {a_after:?} after the partition: {a_err}"
        );
    }
}
