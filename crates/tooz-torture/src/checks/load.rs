//! Load: many members of one group from several processes, listed exactly; and a soak, one
//! process doing a service's usual round (lock, join, list, leave) over and over, its resident
//! memory and open descriptors sampled after a warm-up and at the end. The soaks of all backends
//! run at once, after the other checks (their figures do not depend on timing).

use std::collections::BTreeSet;
use std::time::Duration;

use crate::checks::{Row, Scale, observer, unique};
use crate::fleet::Worker;
use crate::target::Target;

/// Growth of resident memory allowed over the soak (issue 17: flat, < 5%).
const RSS_GROWTH: f64 = 0.05;

pub(crate) async fn run(target: &Target, scale: &Scale, row: &mut Row) {
    if !target.is_shared() {
        row.cell("members", "n/a: one process");
        return;
    }
    match members(target, scale, row).await {
        Ok(cell) => row.cell("members", cell),
        Err(e) => row.broken("members", e),
    }
}

/// The soak of one backend, into a row of its own (merged into the backend's by the caller).
pub(crate) async fn soak_row(target: Target, scale: Scale) -> Row {
    let mut row = Row::default();
    if !target.is_shared() {
        row.cell("soak", "n/a: one process");
        return row;
    }
    match soak(&target, &scale, &mut row).await {
        Ok(cell) => row.cell("soak", cell),
        Err(e) => row.broken("soak", e),
    }
    row
}

async fn members(target: &Target, scale: &Scale, row: &mut Row) -> Result<String, String> {
    let coord = observer(target, "load").await?;
    if !coord.supported().groups {
        return Ok("n/a: no groups".into());
    }
    let group = unique("load");
    let per_process = scale.members / scale.member_processes;
    let mut expected = BTreeSet::new();
    let mut fleet = Vec::new();
    for p in 0..scale.member_processes {
        let prefix = format!("{group}-p{p}");
        expected.extend((0..per_process).map(|i| format!("{prefix}-{i}")));
        let args = [
            target.url.clone(),
            group.clone(),
            prefix,
            per_process.to_string(),
        ];
        fleet.push(Worker::spawn("members", &args)?);
    }
    let started = std::time::Instant::now();
    for worker in &mut fleet {
        worker.expect("ready", Duration::from_secs(300)).await?;
    }
    let joined_in = started.elapsed();
    let listed: BTreeSet<String> = coord
        .members(group.as_str())
        .await
        .map_err(|e| format!("members: {e}"))?
        .iter()
        .map(|m| m.to_string_lossy().into_owned())
        .collect();
    let missing = expected.difference(&listed).count();
    let extra = listed.difference(&expected).count();
    row.require(missing == 0 && extra == 0, || {
        format!("members: {missing} joined members not listed, {extra} listed that never joined")
    });
    for worker in fleet {
        worker.finish().await?;
    }
    let _ = coord.delete_group(group.as_str()).await;
    let _ = coord.stop().await;
    Ok(format!(
        "{} from {} procs in {:.1}s: missing {missing} extra {extra}",
        expected.len(),
        scale.member_processes,
        joined_in.as_secs_f64()
    ))
}

async fn soak(target: &Target, scale: &Scale, row: &mut Row) -> Result<String, String> {
    let mut worker = Worker::spawn("soak", &[target.url.clone(), unique("soak")])?;
    worker.expect("ready", Duration::from_secs(30)).await?;
    let pid = worker.pid().ok_or("soak worker gone")?;
    // Connection pools, caches and the allocator settle in the first part of the run.
    // Its reports are read all along: a full pipe would stall it.
    let warm_up = scale.soak / 5;
    worker.drain(warm_up).await;
    if let Some(error) = worker.seen("error") {
        return Err(format!("soak worker: {}", error["message"]));
    }
    let before = sample(pid.as_raw())?;
    let (rounds_at_warm_up, _) = latest_rounds(&worker);
    worker.drain(scale.soak - warm_up).await;
    if let Some(error) = worker.seen("error") {
        return Err(format!("soak worker: {}", error["message"]));
    }
    let after = sample(pid.as_raw())?;
    let (rounds, failed) = latest_rounds(&worker);
    if let Some(error) = worker
        .seen_all("rounds")
        .last()
        .and_then(|l| l["first_error"].as_str())
    {
        // Rounds that fail on a busy server (2 s timeouts, every backend soaking at once) are
        // counted, not judged: the soak looks for leaks.
        eprintln!(
            "tooz-torture: soak on {}: first failed round: {error}",
            target.name
        );
    }
    worker.finish().await?;
    let rss_growth = after.rss_kib as f64 / before.rss_kib.max(1) as f64 - 1.0;
    let fd_growth = after.fds as i64 - before.fds as i64;
    // Over a short soak only descriptors are judged: memory needs minutes to show a trend.
    if scale.long {
        row.require(rss_growth < RSS_GROWTH, || {
            format!(
                "soak: resident memory grew {:.1}% ({} -> {} KiB)",
                rss_growth * 100.0,
                before.rss_kib,
                after.rss_kib
            )
        });
    }
    // Slow is not stuck (a busy server, a debug build): no round at all after the warm-up is.
    row.require(rounds > rounds_at_warm_up, || {
        format!("soak: no round finished after the warm-up ({rounds} in all): stuck")
    });
    row.require(fd_growth <= 2, || {
        format!(
            "soak: open descriptors grew from {} to {}",
            before.fds, after.fds
        )
    });
    Ok(format!(
        "{}s {} rounds ({failed} failed): rss {}->{} KiB ({:+.1}%) fds {}->{}",
        scale.soak.as_secs(),
        rounds,
        before.rss_kib,
        after.rss_kib,
        rss_growth * 100.0,
        before.fds,
        after.fds
    ))
}

/// The latest counts of rounds and failed rounds the soak worker reported.
fn latest_rounds(worker: &Worker) -> (u64, u64) {
    let latest = worker.seen_all("rounds").last();
    let count = |name: &str| latest.and_then(|l| l[name].as_u64()).unwrap_or(0);
    (count("rounds"), count("failed"))
}

struct Sample {
    rss_kib: u64,
    fds: usize,
}

fn sample(pid: i32) -> Result<Sample, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or("no VmRSS")?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map_err(|e| format!("/proc/{pid}/fd: {e}"))?
        .count();
    Ok(Sample { rss_kib, fds })
}
