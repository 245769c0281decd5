//! The command line, as clap reads it.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

const AFTER_HELP: &str = "\
Exit codes:
  0      success (or CMD's own exit code, when tooz runs a command)
  1      an error (unreachable backend, refused name, ...), or `tooz leader`: no leader
  2      bad usage: unknown flag, malformed JSON, missing `--` before CMD
  75     the lock or leadership was not acquired; CMD was not run
  76     the lock, leadership or membership was lost while CMD ran; CMD's process group got
         SIGTERM (and SIGKILL after the grace period)
  126    CMD could not be executed         127  CMD was not found
  128+N  CMD was killed by signal N

Logging:
  The library's warnings (a member file skipped, a failed heartbeat, ...) go to stderr as
  log lines; -v, -vv, -vvv show info, debug, trace; -q shows errors only. RUST_LOG, when set,
  overrides these (an invalid RUST_LOG is ignored with a warning). --log-format json writes
  one JSON object per line.

Examples:
  tooz lock nightly-report --no-wait -- ./report.sh
  tooz lock db-migrate --timeout 30 -- sh -c 'echo token $TOOZ_FENCING_TOKEN; ./migrate'
  tooz elect schedulers -- ./scheduler --serve
  tooz group join workers --capabilities '{\"zone\": \"a\"}' -- ./worker
  tooz group members workers --json
  tooz watch workers
  tooz ring --node a --node b=2 --replicas 2 job-1 job-2
  TOOZ_URL=file:///var/lib/app/tooz tooz info
  tooz -v --log-format json group members workers";

/// Distributed coordination from the terminal: locks around commands, leader-only commands,
/// group membership, hash-ring placements. Interoperable with Python tooz on the same backend.
#[derive(Debug, Parser)]
#[command(name = "tooz", version, after_help = AFTER_HELP)]
pub(crate) struct Cli {
    /// Backend URL. Default: a file:// directory under the user's state directory (or the
    /// temp dir), so two terminals on one host coordinate with no flags.
    #[arg(long, env = "TOOZ_URL", global = true)]
    pub(crate) url: Option<String>,

    /// This process's member id. Default: HOSTNAME-PID.
    #[arg(long, env = "TOOZ_MEMBER", global = true)]
    pub(crate) member: Option<String>,

    /// No status lines on stderr, and only errors logged (unless -v is given too).
    #[arg(long, short, global = true)]
    pub(crate) quiet: bool,

    /// Log more on stderr: -v info, -vv debug, -vvv trace (default: warnings). RUST_LOG, when
    /// set, takes precedence, as in `RUST_LOG=tooz=debug`.
    #[arg(long, short, action = ArgAction::Count, global = true)]
    pub(crate) verbose: u8,

    /// How log lines on stderr are written: text, or one JSON object per line.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = LogFormat::Text, global = true)]
    pub(crate) log_format: LogFormat,

    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The format of log lines (the library's warnings and, with -v, more) on stderr. Errors that
/// end the command stay one plain `tooz: ...` line in either format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// `LEVEL target: message fields`, coloured when stderr is a terminal.
    Text,
    /// One JSON object per line, with `level`, `target`, `timestamp` and the event's fields.
    Json,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run CMD while holding a lock, like flock(1). CMD gets TOOZ_FENCING_TOKEN.
    Lock(LockArgs),
    /// Campaign for a group's leadership and run CMD while leader.
    Elect(ElectArgs),
    /// Print the leader of a group (exit 1 if there is none).
    Leader {
        /// The group.
        group: String,
    },
    /// Create, delete, list, join groups and list their members.
    #[command(subcommand)]
    Group(GroupCommand),
    /// Print a group's joins, leaves and leader changes, one JSON object per line.
    Watch {
        /// The group.
        group: String,
    },
    /// Where keys land on a hash ring, placed exactly as Python tooz's HashRing places them.
    Ring(RingArgs),
    /// Show the backend, its characteristics and what it supports.
    Info,
}

#[derive(Debug, Args)]
pub(crate) struct LockArgs {
    /// The lock's name.
    pub(crate) name: String,
    /// Wait as long as it takes (the default).
    #[arg(long, conflicts_with_all = ["no_wait", "timeout"])]
    pub(crate) wait: bool,
    /// Give up at once if the lock is held (exit 75).
    #[arg(long, short = 'n', conflicts_with = "timeout")]
    pub(crate) no_wait: bool,
    /// Give up after SECS seconds (exit 75).
    #[arg(long, short = 'w', value_name = "SECS")]
    pub(crate) timeout: Option<f64>,
    /// Take the lock shared (readers), where the backend offers it.
    #[arg(long, short = 's')]
    pub(crate) shared: bool,
    #[command(flatten)]
    pub(crate) run: RunArgs,
}

#[derive(Debug, Args)]
pub(crate) struct ElectArgs {
    /// The group.
    pub(crate) group: String,
    /// Join the group with these capabilities (JSON) while campaigning.
    #[arg(long, value_name = "JSON")]
    pub(crate) capabilities: Option<String>,
    #[command(flatten)]
    pub(crate) run: RunArgs,
}

/// One paragraph, so that `-h` shows the caveat as well as `--help`.
const GRACE_HELP: &str = "Seconds between SIGTERM and SIGKILL when CMD must stop because the \
    grant was lost. Default: half the backend's expiry margin (shown by `tooz info`), the least \
    time between tooz noticing the loss and the backend expiring the grant, so that CMD is gone \
    before anyone else can get it. A grace longer than the expiry margin gives up mutual \
    exclusion: another holder may start before CMD is killed.";

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    #[arg(long, value_name = "SECS", help = GRACE_HELP, value_parser = seconds, allow_negative_numbers = true)]
    pub(crate) grace: Option<Duration>,
    /// The command to run, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub(crate) command: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum GroupCommand {
    /// Create a group.
    Create {
        /// The group.
        group: String,
    },
    /// Delete an empty group.
    Delete {
        /// The group.
        group: String,
    },
    /// List groups.
    List,
    /// Join a group (creating it if needed) while CMD runs, or until interrupted.
    Join {
        /// The group.
        group: String,
        /// Capabilities, as JSON.
        #[arg(long, value_name = "JSON")]
        capabilities: Option<String>,
        #[arg(long, value_name = "SECS", help = GRACE_HELP, value_parser = seconds, allow_negative_numbers = true)]
        grace: Option<Duration>,
        /// The command to run while a member, after `--` (optional).
        #[arg(last = true, value_name = "CMD")]
        command: Vec<String>,
    },
    /// List a group's live members.
    Members {
        /// The group.
        group: String,
        /// One JSON array of {"member": ..., "capabilities": ...}.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub(crate) struct RingArgs {
    /// A node, NAME or NAME=WEIGHT (weight 1 by default); repeat for each node.
    #[arg(long = "node", value_name = "NAME[=WEIGHT]", required = true)]
    pub(crate) nodes: Vec<String>,
    /// How many distinct nodes per key.
    #[arg(long, default_value_t = 1)]
    pub(crate) replicas: usize,
    /// Ring positions per unit of weight (tooz's default: 32).
    #[arg(long, default_value_t = 32)]
    pub(crate) partitions: u32,
    /// Hash function (tooz's hashlib name).
    #[arg(long, default_value = "md5")]
    pub(crate) hash: String,
    /// A node to skip; repeatable.
    #[arg(long = "ignore", value_name = "NAME")]
    pub(crate) ignore: Vec<String>,
    /// One JSON object per key: {"key": ..., "nodes": [...]}.
    #[arg(long)]
    pub(crate) json: bool,
    /// The keys (placed by their UTF-8 bytes, as tooz places a str).
    #[arg(required = true, value_name = "KEY")]
    pub(crate) keys: Vec<String>,
}

/// A number of seconds, as a `Duration`, checked before anything is connected or run.
fn seconds(arg: &str) -> Result<Duration, String> {
    let secs: f64 = arg
        .parse()
        .map_err(|_| "not a number of seconds".to_owned())?;
    Duration::try_from_secs_f64(secs).map_err(|_| "seconds must be from 0 to 1e19".to_owned())
}

/// The default URL: a directory private to this user on this host.
pub(crate) fn default_url() -> String {
    let dir = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/state")))
        .map(|state| state.join("tooz"))
        .unwrap_or_else(|| std::env::temp_dir().join(format!("tooz-{}", nix::unistd::getuid())));
    format!("file://{}", dir.display())
}

/// The default member id: HOSTNAME-PID.
pub(crate) fn default_member() -> String {
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{host}-{}", std::process::id())
}
