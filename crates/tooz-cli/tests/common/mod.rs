//! What the end-to-end tests of the `tooz` binary share: a private directory and URL per
//! test, running the binary, and watching the processes it starts.

// Shared by several test binaries, each of which uses only part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub(crate) struct Env {
    pub(crate) dir: PathBuf,
}

impl Env {
    pub(crate) fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("tooz-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Self { dir }
    }

    pub(crate) fn url(&self) -> String {
        format!("file://{}?timeout=2", self.dir.display())
    }

    pub(crate) fn tooz(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tooz"));
        // The tests' own RUST_LOG would override the level flags whose effect they check.
        cmd.args(args)
            .env("TOOZ_URL", self.url())
            .env_remove("TOOZ_MEMBER")
            .env_remove("RUST_LOG");
        cmd
    }

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.tooz(args).output().expect("run tooz")
    }

    pub(crate) fn spawn(&self, args: &[&str]) -> Child {
        self.tooz(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tooz")
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Polls `check` until it holds or `within` passes.
pub(crate) fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Whether `pid` still runs: a zombie does not (nothing may reap orphans in a container).
pub(crate) fn alive(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the command name, which is in parentheses and may hold anything.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, Some('Z' | 'X') | None)
}

/// The pid a command wrote to `file`, once it has.
pub(crate) fn pid_in(file: &Path) -> Option<i32> {
    std::fs::read_to_string(file).ok()?.trim().parse().ok()
}

/// Waits for `pid` to be gone; SIGKILLs it if not, so that a failure leaves nothing behind.
pub(crate) fn dies_within(within: Duration, pid: i32) -> bool {
    let died = eventually(within, || !alive(pid));
    if !died {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    died
}

/// A file to take a process's stderr: unlike a pipe, it never keeps a reader waiting for
/// whatever inherited it and lives on.
pub(crate) fn stderr_file(path: &Path) -> Stdio {
    Stdio::from(std::fs::File::create(path).unwrap())
}

/// The file of the one member of the one group under a `file://` directory.
pub(crate) fn member_file(dir: &Path) -> Option<PathBuf> {
    let group = std::fs::read_dir(dir.join("groups"))
        .ok()?
        .next()?
        .ok()?
        .path();
    std::fs::read_dir(group)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "raw"))
}
