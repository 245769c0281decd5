//! Worker processes: this binary run again as `tooz-torture worker ROLE ARGS...`, one JSON
//! object per line on its stdout, commands on its stdin, killed, stopped and continued by
//! signal like any process an operator runs.

use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// Where a worker finds its backend's URL.
pub(crate) const URL_ENV: &str = "TOOZ_TORTURE_URL";

/// Panics reported by workers (a panic hook in each prints a `panic` line), and by this
/// process's own tasks: every one is a violation.
pub(crate) static PANICS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// One worker process.
pub(crate) struct Worker {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Lines<BufReader<ChildStdout>>,
    label: String,
    /// Every line read so far, for events a check looks for after the fact.
    seen: Vec<Value>,
}

/// What a worker may be told to run under (the clock-jump check preloads libfaketime).
#[derive(Default)]
pub(crate) struct Launch {
    pub(crate) env: Vec<(String, String)>,
}

impl Worker {
    pub(crate) fn spawn(role: &str, args: &[String]) -> Result<Self, String> {
        Self::spawn_with(role, args, &Launch::default())
    }

    /// `args[0]` is always the backend's URL: it travels in the worker's environment
    /// ([`URL_ENV`]), not in its argv, where any local user could read a password in it.
    pub(crate) fn spawn_with(role: &str, args: &[String], launch: &Launch) -> Result<Self, String> {
        let (url, rest) = args.split_first().ok_or("a worker needs a URL")?;
        let exe = std::env::current_exe().map_err(|e| format!("own path: {e}"))?;
        let mut command = Command::new(exe);
        command
            .arg("worker")
            .arg(role)
            .args(rest)
            .env(URL_ENV, url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        for (key, value) in &launch.env {
            command.env(key, value);
        }
        let mut child = command
            .spawn()
            .map_err(|e| format!("spawn worker {role}: {e}"))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or("worker without stdout")?;
        Ok(Self {
            child,
            stdin,
            lines: BufReader::new(stdout).lines(),
            label: format!("worker {role}"),
            seen: Vec::new(),
        })
    }

    pub(crate) fn pid(&self) -> Option<Pid> {
        self.child.id().map(|id| Pid::from_raw(id as i32))
    }

    /// The next line, parsed; an error after `within`, at EOF or on a line that is not JSON.
    pub(crate) async fn next(&mut self, within: Duration) -> Result<Value, String> {
        let line = tokio::time::timeout(within, self.lines.next_line())
            .await
            .map_err(|_| format!("{}: silent for {within:?}", self.label))?
            .map_err(|e| format!("{}: stdout: {e}", self.label))?
            .ok_or_else(|| format!("{}: exited early", self.label))?;
        let value: Value = serde_json::from_str(&line)
            .map_err(|e| format!("{}: bad line {line:?}: {e}", self.label))?;
        if value["ev"] == "panic" {
            PANICS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            eprintln!(
                "tooz-torture: {} panicked: {}",
                self.label, value["message"]
            );
        }
        self.seen.push(value.clone());
        Ok(value)
    }

    /// Every line read so far whose `ev` is `event`.
    pub(crate) fn seen_all<'a>(&'a self, event: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.seen.iter().filter(move |line| line["ev"] == event)
    }

    /// The first line read so far whose `ev` is `event`.
    pub(crate) fn seen(&self, event: &str) -> Option<&Value> {
        self.seen.iter().find(|line| line["ev"] == event)
    }

    /// Skips lines until one whose `ev` is `event`.
    pub(crate) async fn expect(&mut self, event: &str, within: Duration) -> Result<Value, String> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let line = self
                .next(left)
                .await
                .map_err(|e| format!("{e} (waiting for {event:?})"))?;
            if line["ev"] == event {
                return Ok(line);
            }
            if line["ev"] == "error" {
                return Err(format!("{}: {}", self.label, line["message"]));
            }
        }
    }

    /// Lines until EOF or `within`, whichever comes first.
    pub(crate) async fn drain(&mut self, within: Duration) -> Vec<Value> {
        let mut lines = Vec::new();
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Ok(line) => lines.push(line),
                Err(_) => return lines,
            }
        }
    }

    pub(crate) async fn say(&mut self, line: &str) -> Result<(), String> {
        let stdin = self.stdin.as_mut().ok_or("stdin closed")?;
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .map_err(|e| format!("{}: stdin: {e}", self.label))
    }

    pub(crate) fn signal(&self, signal: Signal) -> Result<(), String> {
        let pid = self.pid().ok_or("worker already reaped")?;
        kill(pid, signal).map_err(|e| format!("{}: {signal}: {e}", self.label))
    }

    /// Closes stdin (the worker's cue to stop its coordinator and exit) and waits for the exit;
    /// a worker that hangs is killed.
    pub(crate) async fn finish(mut self) -> Result<(), String> {
        self.stdin.take();
        // Read to the end: a panic while stopping is reported on stdout too.
        self.drain(Duration::from_secs(20)).await;
        match tokio::time::timeout(Duration::from_secs(20), self.child.wait()).await {
            Ok(Ok(status)) if status.success() => Ok(()),
            Ok(Ok(status)) => Err(match self.seen("error") {
                Some(error) => format!("{} exited with {status}: {}", self.label, error["message"]),
                None => format!("{} exited with {status}", self.label),
            }),
            Ok(Err(e)) => Err(format!("{}: wait: {e}", self.label)),
            Err(_) => {
                let _ = self.child.kill().await;
                Err(format!("{} did not exit within 20 s of EOF", self.label))
            }
        }
    }

    /// SIGKILL, and reap (reading what it printed before, for a panic line).
    pub(crate) async fn kill(mut self) {
        let _ = self.child.kill().await;
        self.drain(Duration::from_secs(2)).await;
    }
}

/// Reads a u64 field of a worker's line.
pub(crate) fn field(line: &Value, name: &str) -> Result<u64, String> {
    line[name]
        .as_u64()
        .ok_or_else(|| format!("line {line} has no integer {name:?}"))
}
