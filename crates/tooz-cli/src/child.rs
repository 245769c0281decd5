//! Running CMD while a grant (lock, leadership, membership) holds: signals are passed on, and
//! a lost grant stops CMD — SIGTERM, then SIGKILL after the grace period.

use std::future::Future;
use std::io::ErrorKind;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio::signal::unix::{SignalKind, signal};

use crate::failure::{EXIT_CANNOT_EXECUTE, EXIT_NOT_FOUND, Failure};

/// How CMD ended.
#[derive(Debug)]
pub(crate) enum Ended {
    /// CMD exited on its own (or from a signal we passed on): its exit status, shell-style.
    Exited(i32),
    /// The grant was lost and CMD was stopped.
    Lost,
}

/// Starts CMD. CMD runs in its own process group, so a terminal's Ctrl-C reaches it once,
/// through us, rather than twice.
pub(crate) fn spawn(command: &[String], env: &[(&str, String)]) -> Result<Child, Failure> {
    let (program, args) = command
        .split_first()
        .ok_or_else(|| Failure::usage("no command given after `--`"))?;
    let mut cmd = Command::new(program);
    cmd.args(args).process_group(0);
    for (key, value) in env {
        cmd.env(key, value);
    }
    cmd.spawn().map_err(|e| match e.kind() {
        ErrorKind::NotFound => Failure::with_code(
            EXIT_NOT_FOUND,
            format!("cannot run '{program}': command not found"),
        ),
        ErrorKind::PermissionDenied => Failure::with_code(
            EXIT_CANNOT_EXECUTE,
            format!("cannot run '{program}': permission denied"),
        ),
        _ => Failure::with_code(EXIT_CANNOT_EXECUTE, format!("cannot run '{program}': {e}")),
    })
}

fn send(child: &Child, signal: Signal) {
    if let Some(pid) = child.id().and_then(|id| i32::try_from(id).ok()) {
        let _ = kill(Pid::from_raw(pid), signal);
    }
}

fn status_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1)
}

/// Waits for CMD, passing SIGINT, SIGTERM and SIGHUP on, and stopping it if `lost` resolves.
pub(crate) async fn supervise(
    mut child: Child,
    lost: impl Future<Output = ()>,
    grace: Duration,
) -> Result<Ended, Failure> {
    let io = |e: std::io::Error| Failure::error(format!("cannot watch the command: {e}"));
    let mut interrupt = signal(SignalKind::interrupt()).map_err(io)?;
    let mut terminate = signal(SignalKind::terminate()).map_err(io)?;
    let mut hangup = signal(SignalKind::hangup()).map_err(io)?;
    tokio::pin!(lost);
    loop {
        tokio::select! {
            status = child.wait() => return Ok(Ended::Exited(status_code(status.map_err(io)?))),
            _ = interrupt.recv() => send(&child, Signal::SIGINT),
            _ = terminate.recv() => send(&child, Signal::SIGTERM),
            _ = hangup.recv() => send(&child, Signal::SIGHUP),
            () = &mut lost => break,
        }
    }
    send(&child, Signal::SIGTERM);
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        send(&child, Signal::SIGKILL);
        let _ = child.wait().await;
    }
    Ok(Ended::Lost)
}

/// Resolves on SIGINT, SIGTERM or SIGHUP (to stop waiting or a bare membership).
pub(crate) async fn interrupted() -> Result<(), Failure> {
    let io = |e: std::io::Error| Failure::error(format!("cannot watch signals: {e}"));
    let mut interrupt = signal(SignalKind::interrupt()).map_err(io)?;
    let mut terminate = signal(SignalKind::terminate()).map_err(io)?;
    let mut hangup = signal(SignalKind::hangup()).map_err(io)?;
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
        _ = hangup.recv() => {}
    }
    Ok(())
}
