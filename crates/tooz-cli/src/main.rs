//! `tooz`: distributed coordination from the terminal. See `tooz --help`.

mod child;
mod cli;
mod failure;
mod logging;

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tooz::{Capabilities, Coordinator, GroupEvent, HashFunction, HashRing};

use child::Ended;
use cli::{Cli, Command, ElectArgs, GroupCommand, LockArgs, RingArgs};
use failure::{EXIT_LOST, EXIT_NOT_ACQUIRED, EXIT_USAGE, Failure};

/// Quiet grants stay silent: the waiting line appears only after this long.
const STATUS_DELAY: Duration = Duration::from_secs(1);

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    logging::init(cli.verbose, cli.quiet, cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return report(&Failure::error(format!("cannot start: {e}"))),
    };
    let run = async {
        child::watch_signals()?;
        run(cli).await
    };
    match runtime.block_on(run) {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(failure) => report(&failure),
    }
}

fn report(failure: &Failure) -> ExitCode {
    eprintln!("{failure}");
    ExitCode::from(u8::try_from(failure.code).unwrap_or(1))
}

/// clap's errors, cut to one line; help and version print as usual.
fn usage_error(e: &clap::Error) -> ExitCode {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    let invalid: Vec<String> = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => vec![s.clone()],
        Some(ContextValue::Strings(list)) => list.clone(),
        _ => Vec::new(),
    };
    let rendered = e.to_string();
    let first = rendered
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("invalid usage")
        .trim_start_matches("error: ")
        .trim_end_matches(':');
    let (line, hint) = match e.kind() {
        // A bare word where a flag or nothing was expected: the command lacks its `--`.
        ErrorKind::UnknownArgument if invalid.iter().any(|a| !a.starts_with('-')) => (
            first.to_owned(),
            "put `--` before the command to run, as in: tooz lock NAME -- CMD",
        ),
        ErrorKind::MissingRequiredArgument if invalid.iter().any(|a| a.contains("<CMD>")) => (
            "missing the command to run".to_owned(),
            "add `-- CMD [ARGS...]` after the options",
        ),
        ErrorKind::MissingRequiredArgument => {
            (format!("missing {}", invalid.join(", ")), "see tooz --help")
        }
        _ => (first.to_owned(), "see tooz --help"),
    };
    eprintln!("tooz: {line} ({hint})");
    ExitCode::from(EXIT_USAGE as u8)
}

async fn run(cli: Cli) -> Result<i32, Failure> {
    let url = cli.url.clone().unwrap_or_else(cli::default_url);
    let member = cli.member.clone().unwrap_or_else(cli::default_member);
    let connect = || async {
        Coordinator::connect(&url, member.as_str())
            .await
            .map_err(Failure::from)
    };
    match cli.command {
        Command::Ring(args) => ring(&args),
        Command::Lock(args) => lock(connect().await?, &args, cli.quiet).await,
        Command::Elect(args) => elect(connect().await?, &args, cli.quiet).await,
        Command::Leader { group } => {
            let coord = connect().await?;
            let leader = coord.leader(group.as_str()).await;
            let _ = coord.stop().await;
            match leader? {
                Some(leader) => {
                    println!("{leader}");
                    Ok(0)
                }
                None => Ok(1),
            }
        }
        Command::Group(command) => group(connect().await?, command).await,
        Command::Watch { group } => watch(connect().await?, &group).await,
        Command::Info => info(connect().await?, &url).await,
    }
}

fn parse_capabilities(json: Option<&str>) -> Result<Capabilities, Failure> {
    let Some(json) = json else {
        return Ok(Capabilities::none());
    };
    serde_json::from_str::<serde_json::Value>(json)
        .map(Capabilities::from)
        .map_err(|e| Failure::usage(format!("--capabilities is not valid JSON: {e}")))
}

/// Prints a waiting line on stderr if `wait` takes longer than a moment.
async fn with_status<T>(quiet: bool, what: String, wait: impl Future<Output = T>) -> T {
    if quiet {
        return wait.await;
    }
    tokio::pin!(wait);
    tokio::select! {
        done = &mut wait => return done,
        () = tokio::time::sleep(STATUS_DELAY) => {}
    }
    eprintln!("tooz: waiting for {what} (Ctrl-C to give up)...");
    wait.await
}

/// The time CMD gets between SIGTERM and SIGKILL once the grant is lost: `--grace`, or half
/// the backend's expiry margin, so that CMD is gone before the backend can hand the grant to
/// another holder, with room to spare for a slow kill.
fn grace_period(coord: &Coordinator, grace: Option<Duration>) -> Duration {
    grace.unwrap_or_else(|| coord.expiry_margin() / 2)
}

/// Runs CMD while `lost` has not fired; maps the outcome to an exit code.
async fn run_command(
    command: &[String],
    token: Option<tooz::FencingToken>,
    lost: impl Future<Output = ()>,
    grace: Duration,
    what: &str,
) -> Result<i32, Failure> {
    let env: Vec<(&str, String)> = token
        .map(|t| ("TOOZ_FENCING_TOKEN", t.to_string()))
        .into_iter()
        .collect();
    let child = child::spawn(command, &env)?;
    match child::supervise(child, lost, grace).await? {
        Ended::Exited(code) => Ok(code),
        Ended::Lost => {
            eprintln!("tooz: the {what} was lost while the command ran; it was stopped");
            Ok(EXIT_LOST)
        }
    }
}

/// Hands the grant back and ends the session, giving up after the membership timeout: what
/// the backend does not hear back about expires there on its own, and after a loss (most
/// likely a partition) every call would wait out its timeout, delaying the exit code for
/// nothing.
async fn hand_back<T>(coord: &Coordinator, give_back: impl Future<Output = T>) {
    let _ = tokio::time::timeout(coord.membership_timeout(), async {
        let _ = give_back.await;
        let _ = coord.stop().await;
    })
    .await;
}

async fn lock(coord: Coordinator, args: &LockArgs, quiet: bool) -> Result<i32, Failure> {
    let grace = grace_period(&coord, args.run.grace);
    let mut lock = coord.lock(args.name.as_str());
    if args.shared {
        lock = lock.shared();
    }
    let acquired = if args.no_wait {
        lock.try_acquire().await?
    } else {
        let what = format!("lock '{}'", args.name);
        let attempt = async {
            match args.timeout {
                Some(secs) => {
                    let wait = Duration::try_from_secs_f64(secs).map_err(|_| {
                        Failure::usage(format!("--timeout must be a number of seconds, not {secs}"))
                    })?;
                    match lock.acquire_timeout(wait).await {
                        Ok(guard) => Ok(Some(guard)),
                        Err(tooz::Error::OperationTimedOut { .. }) => Ok(None),
                        Err(e) => Err(Failure::from(e)),
                    }
                }
                None => Ok(Some(lock.acquire().await?)),
            }
        };
        tokio::select! {
            result = with_status(quiet, what, attempt) => result?,
            interrupted = child::interrupted() => {
                interrupted?;
                let _ = coord.stop().await;
                return Ok(130);
            }
        }
    };
    let Some(guard) = acquired else {
        let _ = coord.stop().await;
        if !quiet {
            eprintln!(
                "tooz: lock '{}' is held elsewhere; the command was not run",
                args.name
            );
        }
        return Ok(EXIT_NOT_ACQUIRED);
    };
    let code = run_command(
        &args.run.command,
        Some(guard.token()),
        guard.lost(),
        grace,
        "lock",
    )
    .await;
    hand_back(&coord, guard.release()).await;
    code
}

async fn elect(coord: Coordinator, args: &ElectArgs, quiet: bool) -> Result<i32, Failure> {
    let grace = grace_period(&coord, args.run.grace);
    let capabilities = parse_capabilities(args.capabilities.as_deref())?;
    let membership = coord
        .join_group_create(args.group.as_str(), capabilities)
        .await?;
    let what = format!("the leadership of '{}'", args.group);
    let campaign = coord.campaign(args.group.as_str());
    let leadership = tokio::select! {
        result = with_status(quiet, what, campaign) => result?,
        interrupted = child::interrupted() => {
            interrupted?;
            let _ = coord.stop().await;
            return Ok(130);
        }
    };
    let lost = {
        let (lead, member) = (leadership.lost(), membership.lost());
        async move {
            tokio::select! {
                () = lead => {}
                () = member => {}
            }
        }
    };
    let code = run_command(
        &args.run.command,
        Some(leadership.token()),
        lost,
        grace,
        "leadership",
    )
    .await;
    hand_back(&coord, leadership.resign()).await;
    code
}

async fn group(coord: Coordinator, command: GroupCommand) -> Result<i32, Failure> {
    let result = group_command(&coord, command).await;
    let _ = coord.stop().await;
    result
}

async fn group_command(coord: &Coordinator, command: GroupCommand) -> Result<i32, Failure> {
    match command {
        GroupCommand::Create { group } => coord.create_group(group.as_str()).await?,
        GroupCommand::Delete { group } => coord.delete_group(group.as_str()).await?,
        GroupCommand::List => {
            let mut groups = coord.groups().await?;
            groups.sort();
            let mut out = std::io::stdout().lock();
            for group in groups {
                let _ = writeln!(out, "{group}");
            }
        }
        GroupCommand::Members { group, json } => {
            let members = coord.members_with_capabilities(group.as_str()).await?;
            let mut out = std::io::stdout().lock();
            if json {
                let list: Vec<serde_json::Value> = members
                    .iter()
                    .map(|(m, caps)| {
                        serde_json::json!({"member": m.to_string(), "capabilities": caps.to_json()})
                    })
                    .collect();
                let _ = writeln!(out, "{}", serde_json::Value::Array(list));
            } else {
                for member in members.keys() {
                    let _ = writeln!(out, "{member}");
                }
            }
        }
        GroupCommand::Join {
            group,
            capabilities,
            grace,
            command,
        } => {
            let grace = grace_period(coord, grace);
            let capabilities = parse_capabilities(capabilities.as_deref())?;
            let membership = coord
                .join_group_create(group.as_str(), capabilities)
                .await?;
            if command.is_empty() {
                tokio::select! {
                    result = child::interrupted() => result?,
                    () = membership.lost() => {
                        eprintln!("tooz: the membership of '{group}' was lost");
                        return Ok(EXIT_LOST);
                    }
                }
            } else {
                let code =
                    run_command(&command, None, membership.lost(), grace, "membership").await;
                // `group` finds the session already stopped.
                hand_back(coord, coord.leave_group(group.as_str())).await;
                return code;
            }
            let _ = coord.leave_group(group.as_str()).await;
        }
    }
    Ok(0)
}

async fn watch(coord: Coordinator, group: &str) -> Result<i32, Failure> {
    let mut events = coord.watch(group).await?;
    loop {
        let event = tokio::select! {
            event = events.next() => event,
            result = child::interrupted() => {
                result?;
                break;
            }
        };
        let Some(event) = event else { break };
        let (kind, member) = match event? {
            GroupEvent::Joined { member, .. } => ("joined", member),
            GroupEvent::Left { member, .. } => ("left", member),
            GroupEvent::LeaderElected { member, .. } => ("leader", member),
            _ => continue,
        };
        let line = serde_json::json!({"event": kind, "group": group, "member": member.to_string()});
        let mut out = std::io::stdout().lock();
        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
            break; // the reader went away
        }
    }
    let _ = coord.stop().await;
    Ok(0)
}

async fn info(coord: Coordinator, url: &str) -> Result<i32, Failure> {
    let supported = coord.supported();
    let characteristics: Vec<String> = coord
        .characteristics()
        .iter()
        .map(|c| c.to_string())
        .collect();
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    println!("url:                {}", tooz::options::redact_str(url));
    println!("backend:            {}", coord.backend_name());
    println!("member:             {}", coord.member_id());
    println!("membership timeout: {:?}", coord.membership_timeout());
    println!("expiry margin:      {:?}", coord.expiry_margin());
    println!("characteristics:    {}", characteristics.join(", "));
    let fencing = if supported.durable_fencing {
        "fencing tokens strictly increasing"
    } else {
        "fencing tokens best effort: they may start over after an eviction or a server restart"
    };
    println!("locks:              yes ({fencing}; loss signals)");
    println!(
        "waiters queue:      {}",
        yes_no(supported.queued_lock_waits)
    );
    println!("shared locks:       {}", yes_no(supported.shared_locks));
    println!("groups:             {}", yes_no(supported.groups));
    println!("leader election:    {}", yes_no(supported.elections));
    println!(
        "locks outlive missed heartbeats: {}",
        yes_no(!supported.lease_bound_locks)
    );
    coord.stop().await?;
    Ok(0)
}

fn ring(args: &RingArgs) -> Result<i32, Failure> {
    let hash = HashFunction::from_name(&args.hash).map_err(|e| Failure::usage(e.to_string()))?;
    let mut ring: HashRing<String> =
        HashRing::with_options(args.partitions, hash).map_err(|e| Failure::usage(e.to_string()))?;
    for node in &args.nodes {
        let (name, weight) = match node.rsplit_once('=') {
            Some((name, weight)) => {
                let weight = weight.parse::<u32>().map_err(|_| {
                    Failure::usage(format!("--node {node}: the weight must be a whole number"))
                })?;
                (name, weight)
            }
            None => (node.as_str(), 1),
        };
        if name.is_empty() {
            return Err(Failure::usage(format!("--node {node}: the name is empty")));
        }
        ring.add_node(name.to_owned(), weight);
    }
    let mut out = std::io::stdout().lock();
    for key in &args.keys {
        let nodes = ring.get_nodes(key.as_bytes(), args.replicas, &args.ignore);
        let names: Vec<&str> = nodes.iter().map(|n| n.as_str()).collect();
        let line = if args.json {
            serde_json::json!({"key": key, "nodes": names}).to_string()
        } else {
            format!("{key}: {}", names.join(" "))
        };
        if writeln!(out, "{line}").is_err() {
            break;
        }
    }
    Ok(0)
}
