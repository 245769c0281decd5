//! Network faults between one holder (and one member) and the server, through the fault proxy,
//! while a process on a healthy path competes for the lock:
//! * blackhole: everything dropped, connections kept open, longer than the lease;
//! * reset: every connection reset at once, then the path works again;
//! * delay: every chunk held back a quarter of the lease, for one and a half leases.
//!
//! Figures: double holders (the cut-off holder's command reached the fenced store after the
//! competitor was granted the lock), silent losses (the competitor was granted the lock before
//! the cut-off holder's `is_held()` turned false), and how long after the fault healed the
//! member was listed again (bound: two heartbeats, a third of the session timeout each).
//! A blackhole heals the way a firewall that dropped its connection state does: the old
//! connections are reset, new ones pass.

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
    let url = target.url_through(proxy.port());
    let lock = unique("partition");
    let group = unique("partition-group");
    let member = unique("partition-member");
    let mut holder = Worker::spawn(
        "hold",
        &[url.clone(), lock.clone(), store.port().to_string()],
    )?;
    let held = holder.expect("held", Duration::from_secs(30)).await?;
    let token = field(&held, "token")?;
    let ttl = Duration::from_millis(field(&held, "ttl_ms")?);
    let joiner_present = coord.supported().groups;
    let mut joiner = if joiner_present {
        let mut worker = Worker::spawn("member", &[url, group.clone(), member.clone()])?;
        worker.expect("joined", Duration::from_secs(30)).await?;
        Some(worker)
    } else {
        None
    };
    let competitor = coord.lock(lock.as_str());
    let (group_ref, member_ref) = (group.as_str(), member.as_str());
    let rejoined = |healed_at| async move {
        match joiner_present {
            true => Some(listed_after(coord, group_ref, member_ref, healed_at, ttl * 3).await),
            false => None,
        }
    };
    let (taken, back) = match kind {
        Kind::Blackhole => {
            proxy.set(Fault::Blackhole);
            let taken = competitor
                .acquire_timeout(ttl * 3 + Duration::from_secs(5))
                .await;
            let granted_at = monotonic_ns();
            if let Ok(guard) = &taken {
                store.write(&lock, guard.token().get());
            }
            // Heal only once the member's session has run out too, as a long partition would.
            if let Some(joiner) = &mut joiner {
                joiner.expect("member_lost", ttl * 3).await?;
            }
            heal(proxy).await;
            let back = rejoined(monotonic_ns()).await;
            (taken.map(|g| (g, granted_at)), back)
        }
        Kind::Reset => {
            heal(proxy).await;
            let back = rejoined(monotonic_ns()).await;
            let taken = competitor.acquire_timeout(ttl * 2).await;
            let granted_at = monotonic_ns();
            if let Ok(guard) = &taken {
                store.write(&lock, guard.token().get());
            }
            (taken.map(|g| (g, granted_at)), back)
        }
        Kind::Delay => {
            proxy.set(Fault::Delay(ttl / 4));
            let taken = competitor.acquire_timeout(ttl * 3 / 2).await;
            let granted_at = monotonic_ns();
            if let Ok(guard) = &taken {
                store.write(&lock, guard.token().get());
            }
            proxy.set(Fault::Forward);
            let back = rejoined(monotonic_ns()).await;
            (taken.map(|g| (g, granted_at)), back)
        }
    };
    let mut cell = format!("{kind:?}:");
    match taken {
        Ok((guard, granted_at)) => {
            // The holder must have seen its loss before the grant; give a late report a moment.
            let not_held = match holder.seen("not_held") {
                Some(line) => Some(line.clone()),
                None => holder.expect("not_held", Duration::from_secs(3)).await.ok(),
            };
            let silent = match &not_held {
                Some(line) => field(line, "at")? > granted_at,
                None => true,
            };
            let double = store
                .log(&lock)
                .iter()
                .filter(|w| w.token == token && w.at > granted_at)
                .count();
            row.require(!silent, || {
                format!(
                    "{kind:?}: the lock was granted before its cut-off holder knew it had lost it"
                )
            });
            row.require(double == 0, || {
                format!("{kind:?}: {double} commands of the cut-off holder reached the store after the next grant")
            });
            cell.push_str(&format!(
                " taken, double {double} silent {}",
                u8::from(silent)
            ));
            let _ = guard.release().await;
        }
        Err(tooz::Error::OperationTimedOut { .. }) => {
            // The holder kept its lock through the fault: it must still be running its command.
            let still = holder.seen("not_held").is_none();
            row.require(still, || {
                format!("{kind:?}: the holder lost its lock, yet nobody else could take it")
            });
            cell.push_str(" kept");
        }
        Err(e) => return Err(format!("competitor: {e}")),
    }
    if let Some(back) = back {
        let back = back?;
        let bound = (ttl / 3 * 2).as_nanos() as u64;
        row.require(back <= bound, || {
            format!(
                "{kind:?}: the member was listed again {} after the fault healed (bound {})",
                millis(back),
                millis(bound)
            )
        });
        cell.push_str(&format!(" member back {}", millis(back)));
    }
    holder.kill().await;
    if let Some(joiner) = joiner {
        joiner.finish().await?;
    }
    let _ = coord.delete_group(group.as_str()).await;
    Ok(cell)
}

/// Resets every connection through the proxy, then lets new ones through.
async fn heal(proxy: &FaultProxy) {
    proxy.set(Fault::Reset);
    tokio::time::sleep(Duration::from_millis(50)).await;
    proxy.set(Fault::Forward);
}

/// Nanoseconds from `since` until `member` is listed in `group`.
async fn listed_after(
    coord: &Coordinator,
    group: &str,
    member: &str,
    since: u64,
    give_up: Duration,
) -> Result<u64, String> {
    loop {
        let members = coord
            .members(group)
            .await
            .map_err(|e| format!("members: {e}"))?;
        let now = monotonic_ns();
        if members.iter().any(|m| m.as_bytes() == member.as_bytes()) {
            return Ok(now.saturating_sub(since));
        }
        if now - since > give_up.as_nanos() as u64 {
            return Err(format!(
                "member {member} not listed {give_up:?} after the fault healed"
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
