//! Network faults between one holder (and one member) and the server, through the fault proxy,
//! while a process on a healthy path competes for the lock:
//! * blackhole: everything dropped, connections kept open, longer than the lease;
//! * reset: every connection reset at once, then the path works again;
//! * delay: every chunk held back a quarter of the lease, for one and a half leases.
//!
//! Figures: double holders (the cut-off holder's command reached the fenced store after the
//! competitor was granted the lock), silent losses (the competitor was granted the lock while
//! the cut-off holder's `is_held()` still said yes), `lost()` fired, tokens growing, and the
//! member: kept through the fault (and still listed), or joined again within two heartbeats (a
//! third of the session timeout each) of the heal. A blackhole lasts until the server has
//! dropped the member, and heals the way a firewall that lost its connection state does: the
//! old connections are reset, new ones pass. A lease-bound holder cut off by a blackhole must
//! lose its lock to the rival; one that gave its lock up under a fault must let the rival have
//! it within two leases.

use std::time::Duration;

use tooz::Coordinator;

use crate::checks::{Row, millis, observer, unique};
use crate::fault_proxy::{Fault, FaultProxy};
use crate::fleet::{Worker, field};
use crate::monotonic_ns;
use crate::store::FencedStore;
use crate::target::Target;

#[derive(Debug, Clone, Copy)]
enum Kind {
    Blackhole,
    Reset,
    Delay,
}

pub(crate) async fn run(target: &Target, store: &FencedStore, row: &mut Row) {
    let Some(upstream) = target.upstream else {
        row.cell("faults", "n/a: no network");
        return;
    };
    let coord = match observer(target, "partition").await {
        Ok(coord) => coord,
        Err(e) => return row.broken("faults", e),
    };
    let mut cells = Vec::new();
    for kind in [Kind::Blackhole, Kind::Reset, Kind::Delay] {
        let proxy = FaultProxy::start(upstream).await;
        match once(target, &coord, &proxy, kind, store, row).await {
            Ok(cell) => cells.push(cell),
            Err(e) => {
                cells.push(format!("{kind:?} ERROR"));
                row.violations.push(format!("{kind:?}: {e}"));
            }
        }
    }
    row.cell("faults", cells.join("; "));
    let _ = coord.stop().await;
}

async fn once(
    target: &Target,
    coord: &Coordinator,
    proxy: &FaultProxy,
    kind: Kind,
    store: &FencedStore,
    row: &mut Row,
) -> Result<String, String> {
    let url = target.url_through(proxy.port())?;
    let lock = unique("partition");
    let group = unique("partition-group");
    let member = unique("partition-member");
    let args = [url.clone(), lock.clone(), store.port().to_string()];
    let mut holder = Worker::spawn("hold", &args)?;
    let held = holder.expect("held", Duration::from_secs(30)).await?;
    let token = field(&held, "token")?;
    let ttl = Duration::from_millis(field(&held, "ttl_ms")?);
    let lease_bound = held["lease_bound"].as_bool().unwrap_or(true);
    let mut joiner = if coord.supported().groups {
        let mut worker = Worker::spawn("member", &[url, group.clone(), member.clone()])?;
        worker.expect("joined", Duration::from_secs(30)).await?;
        Some(worker)
    } else {
        None
    };
    let competitor = coord.lock(lock.as_str());
    let grant = |taken: tooz::Result<tooz::LockGuard>| {
        let granted_at = monotonic_ns();
        if let Ok(guard) = &taken {
            store.write(&lock, guard.token().get());
        }
        taken.map(|guard| (guard, granted_at))
    };
    let (taken, healed_at) = match kind {
        Kind::Blackhole => {
            proxy.set(Fault::Blackhole);
            let taken = grant(
                competitor
                    .acquire_timeout(ttl * 3 + Duration::from_secs(5))
                    .await,
            );
            // Heal only once the server has dropped the member too, as after a long partition:
            // its return is then a join of its own, not a stale entry still listed.
            if let Some(joiner) = &mut joiner {
                joiner.expect("member_lost", ttl * 3).await?;
                unlisted(coord, &group, &member, ttl * 3).await?;
            }
            heal(proxy).await;
            (taken, monotonic_ns())
        }
        Kind::Reset => {
            heal(proxy).await;
            let healed_at = monotonic_ns();
            (grant(competitor.acquire_timeout(ttl * 2).await), healed_at)
        }
        Kind::Delay => {
            proxy.set(Fault::Delay(ttl / 4));
            let taken = grant(competitor.acquire_timeout(ttl * 3 / 2).await);
            proxy.set(Fault::Forward);
            (taken, monotonic_ns())
        }
    };
    // Everything the holder said so far, `lost()` included (it may trail `is_held()` by up to
    // a second, the clock's longest nap).
    holder.drain(Duration::from_millis(1200)).await;
    let mut cell = format!("{kind:?}:");
    // A holder that gave its lock up (a renewal came back too late) while the server kept it
    // (the late renewal did land) frees it within a lease: the rival asks once more.
    let taken = match taken {
        Err(tooz::Error::OperationTimedOut { .. }) if holder.seen("not_held").is_some() => {
            cell.push_str(" lost, then");
            grant(competitor.acquire_timeout(ttl * 2).await)
        }
        other => other,
    };
    match taken {
        Ok((guard, granted_at)) => {
            let silent = match holder.seen("not_held") {
                Some(line) => field(line, "last_held")? > granted_at,
                None => true,
            };
            let late = store
                .log(&lock)
                .into_iter()
                .filter(|w| w.token == token && w.at > granted_at)
                .count();
            let signalled = holder.seen("lost_signal").is_some();
            let next = guard.token().get();
            row.require(!silent, || {
                format!("{kind:?}: the lock was granted while its cut-off holder still believed it held it")
            });
            row.require(late == 0, || {
                format!("{kind:?}: {late} commands of the cut-off holder reached the store after the next grant")
            });
            row.require(signalled, || {
                format!("{kind:?}: lost() did not fire in the cut-off holder")
            });
            row.require(next > token, || {
                format!("{kind:?}: the next holder's token {next} is not above the cut-off one's {token}")
            });
            cell.push_str(&format!(
                " taken, double {late} silent {}",
                u8::from(silent)
            ));
            let _ = guard.release().await;
        }
        Err(tooz::Error::OperationTimedOut { .. }) => {
            let lost = holder.seen("not_held").is_some();
            row.require(!lost, || {
                format!("{kind:?}: the holder gave its lock up, yet the rival could not take it two leases later")
            });
            // Cut off for three leases, a lease-bound holder must have lost its lock to the rival.
            row.require(!(matches!(kind, Kind::Blackhole) && lease_bound), || {
                format!(
                    "{kind:?}: the rival never got the lock of a holder cut off for three leases"
                )
            });
            cell.push_str(" kept");
        }
        Err(e) => return Err(format!("rival: {e}")),
    }
    if let Some(joiner) = &mut joiner {
        cell.push_str(&rejoin(coord, joiner, &group, &member, healed_at, ttl, kind, row).await?);
    }
    holder.kill().await;
    if let Some(joiner) = joiner {
        joiner.finish().await?;
    }
    let _ = coord.delete_group(group.as_str()).await;
    Ok(cell)
}

/// The member after the fault: either never lost (and still listed), or joined again and
/// listed within two heartbeats (a third of the session timeout each) of the heal.
#[allow(clippy::too_many_arguments)]
async fn rejoin(
    coord: &Coordinator,
    joiner: &mut Worker,
    group: &str,
    member: &str,
    healed_at: u64,
    ttl: Duration,
    kind: Kind,
    row: &mut Row,
) -> Result<String, String> {
    joiner.drain(Duration::from_millis(200)).await;
    let Some(lost_at) = joiner
        .seen_all("member_lost")
        .last()
        .map(|l| field(l, "at"))
        .transpose()?
    else {
        let listed = is_listed(coord, group, member).await?;
        row.require(listed, || {
            format!("{kind:?}: the member was dropped without being told")
        });
        return Ok(" member kept".into());
    };
    let rejoined = loop {
        let joined = joiner
            .seen_all("joined")
            .map(|l| field(l, "at"))
            .find(|at| matches!(at, Ok(at) if *at > lost_at));
        if let Some(at) = joined {
            break at?;
        }
        joiner.expect("joined", ttl * 3).await?;
    };
    let back = rejoined.saturating_sub(healed_at);
    let listed = is_listed(coord, group, member).await?;
    let bound = (ttl / 3 * 2).as_nanos() as u64;
    row.require(listed, || {
        format!("{kind:?}: the member joined again but is not listed")
    });
    row.require(back <= bound, || {
        format!(
            "{kind:?}: the member joined again {} after the fault healed (bound: two heartbeats, {})",
            millis(back),
            millis(bound)
        )
    });
    Ok(format!(" member back {}", millis(back)))
}

async fn is_listed(coord: &Coordinator, group: &str, member: &str) -> Result<bool, String> {
    let members = coord
        .members(group)
        .await
        .map_err(|e| format!("members: {e}"))?;
    Ok(members.iter().any(|m| m.as_bytes() == member.as_bytes()))
}

/// Waits until the server no longer lists `member`.
async fn unlisted(
    coord: &Coordinator,
    group: &str,
    member: &str,
    give_up: Duration,
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + give_up;
    while is_listed(coord, group, member).await? {
        if tokio::time::Instant::now() > deadline {
            return Err(format!(
                "member {member} still listed {give_up:?} into a blackhole"
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Resets every connection through the proxy, then lets new ones through.
async fn heal(proxy: &FaultProxy) {
    proxy.set(Fault::Reset);
    tokio::time::sleep(Duration::from_millis(50)).await;
    proxy.set(Fault::Forward);
}
