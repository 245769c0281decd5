//! Running CMD while a grant (lock, leadership, membership) holds: signals are passed on, and
//! a lost grant stops CMD — SIGTERM, then SIGKILL after the grace period.
//!
//! CMD runs in a process group of its own, and every signal goes to that whole group: a shell
//! script's children are stopped with it, as a terminal would stop them.

use std::future::Future;
use std::io::ErrorKind;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
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
///
/// CMD's death signal (`die_with_parent`) fires when the *thread* that forked it ends, not the
/// process: call this from a thread that lives as long as we do — the one running `block_on`
/// (where `run_command` runs today) or a runtime worker — never from `spawn_blocking`, whose
/// threads end after a few idle seconds and would take CMD with them.
pub(crate) fn spawn(command: &[String], env: &[(&str, String)]) -> Result<Child, Failure> {
    let (program, args) = command
        .split_first()
        .ok_or_else(|| Failure::usage("no command given after `--`"))?;
    let mut cmd = Command::new(program);
    cmd.args(args).process_group(0);
    for (key, value) in env {
        cmd.env(key, value);
    }
    die_with_parent(&mut cmd);
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

/// Has the kernel SIGKILL CMD when we die, even of SIGKILL, so that CMD never runs on without
/// the grant we held for it. This covers CMD's own process only: when we die with no chance to
/// signal CMD's group, its children (a shell script's commands) are reparented, not killed, and
/// may run on past the grant's expiry. The kernel also clears the setting when CMD execs a
/// set-user-id or set-group-id program.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[allow(unsafe_code)]
fn die_with_parent(cmd: &mut Command) {
    let parent = nix::unistd::getpid();
    // SAFETY: the closure runs in the forked child of a multi-threaded process, where only
    // async-signal-safe calls are allowed. It makes two syscalls, prctl(PR_SET_PDEATHSIG) and
    // getppid(), and allocates nothing: both errors are plain OS error codes.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
            // We may have died between fork and prctl; then nothing would kill CMD later.
            if nix::unistd::getppid() != parent {
                return Err(nix::errno::Errno::ESRCH.into());
            }
            Ok(())
        });
    }
}

/// Elsewhere there is no death signal: CMD outlives a SIGKILLed `tooz`.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn die_with_parent(_cmd: &mut Command) {}

/// CMD's process group, whose id is CMD's pid (`process_group(0)`).
fn group_of(child: &Child) -> Option<Pid> {
    child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .map(Pid::from_raw)
}

fn send(group: Option<Pid>, signal: Signal) {
    if let Some(group) = group {
        let _ = killpg(group, signal);
    }
}

fn status_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1)
}

/// SIGINT, SIGTERM and SIGHUP, watched from the start of the run: a signal that comes while
/// the lock is being taken or CMD started is kept for whoever watches next, instead of
/// killing `tooz` by the default action before it could pass it on (and leaving CMD behind).
pub(crate) struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
}

static SIGNALS: std::sync::Mutex<Option<Signals>> = std::sync::Mutex::new(None);

/// Starts watching the signals (inside the runtime, before anything else).
pub(crate) fn watch_signals() -> Result<(), Failure> {
    let io = |e: std::io::Error| Failure::error(format!("cannot watch signals: {e}"));
    let signals = Signals {
        interrupt: signal(SignalKind::interrupt()).map_err(io)?,
        terminate: signal(SignalKind::terminate()).map_err(io)?,
        hangup: signal(SignalKind::hangup()).map_err(io)?,
    };
    *SIGNALS.lock().unwrap_or_else(|e| e.into_inner()) = Some(signals);
    Ok(())
}

/// The watched signals, for one watcher at a time (handed back when dropped).
struct Watching(Option<Signals>);

impl Watching {
    fn take() -> Result<Self, Failure> {
        let signals = SIGNALS.lock().unwrap_or_else(|e| e.into_inner()).take();
        signals
            .map(|s| Self(Some(s)))
            .ok_or_else(|| Failure::error("signals are not watched".to_owned()))
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        *SIGNALS.lock().unwrap_or_else(|e| e.into_inner()) = self.0.take();
    }
}

impl std::ops::Deref for Watching {
    type Target = Signals;
    fn deref(&self) -> &Signals {
        self.0.as_ref().expect("present until dropped")
    }
}

impl std::ops::DerefMut for Watching {
    fn deref_mut(&mut self) -> &mut Signals {
        self.0.as_mut().expect("present until dropped")
    }
}

/// Waits for CMD, passing SIGINT, SIGTERM and SIGHUP on, and stopping it if `lost` resolves.
pub(crate) async fn supervise(
    mut child: Child,
    lost: impl Future<Output = ()>,
    grace: Duration,
) -> Result<Ended, Failure> {
    let io = |e: std::io::Error| Failure::error(format!("cannot watch the command: {e}"));
    let mut watching = Watching::take()?;
    let Signals {
        interrupt,
        terminate,
        hangup,
    } = &mut *watching;
    // Kept past CMD's own end: the group may outlive its leader.
    let group = group_of(&child);
    tokio::pin!(lost);
    loop {
        tokio::select! {
            // A loss that comes with CMD's exit is still a loss: report it (exit 76).
            biased;
            () = &mut lost => break,
            status = child.wait() => return Ok(Ended::Exited(status_code(status.map_err(io)?))),
            _ = interrupt.recv() => send(group, Signal::SIGINT),
            _ = terminate.recv() => send(group, Signal::SIGTERM),
            _ = hangup.recv() => send(group, Signal::SIGHUP),
        }
    }
    send(group, Signal::SIGTERM);
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        send(group, Signal::SIGKILL);
        let _ = child.wait().await;
    }
    // Whatever CMD left behind in its group had its SIGTERM too, but must not run on past the
    // backend's expiry of the grant, when another holder may start.
    send(group, Signal::SIGKILL);
    Ok(Ended::Lost)
}

/// Resolves on SIGINT, SIGTERM or SIGHUP (to stop waiting or a bare membership).
pub(crate) async fn interrupted() -> Result<(), Failure> {
    let mut watching = Watching::take()?;
    let Signals {
        interrupt,
        terminate,
        hangup,
    } = &mut *watching;
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
        _ = hangup.recv() => {}
    }
    Ok(())
}
