//! Crashes: SIGKILL a lock holder, a member and a leader, again and again, and time how long the
//! backend takes to free the lock, drop the member and elect the waiting candidate. Each must
//! happen within the backend's bound: the session timeout every target is given (plus one second
//! for the observer's own round trips and polling, and for servers that count TTLs in whole
//! seconds) where locks and memberships are leases, one second where the kernel frees them.

use std::time::Duration;

use nix::sys::signal::Signal;
use tooz::Coordinator;

use crate::checks::{Row, Scale, millis, observer, unique};
use crate::fleet::Worker;
use crate::monotonic_ns;
use crate::store::FencedStore;
use crate::target::{TIMEOUT_SECS, Target};

const SLACK: Duration = Duration::from_secs(1);

pub(crate) async fn run(target: &Target, scale: &Scale, store: &FencedStore, row: &mut Row) {
    if !target.is_shared() {
        row.cell("crash", "n/a: one process");
        return;
    }
    let coord = match observer(target, "crash").await {
        Ok(coord) => coord,
        Err(e) => return row.broken("crash", e),
    };
    let bound = bound(&coord);
    let mut cells = Vec::new();
    for kind in [Kind::Holder, Kind::Member, Kind::Leader] {
        let mut worst = 0;
        for _ in 0..scale.crashes {
            match once(target, &coord, kind, bound, store).await {
                Ok(Some(took)) => worst = worst.max(took),
                Ok(None) => {
                    cells.push(format!("{} n/a", kind.name()));
                    break;
                }
                Err(e) => {
                    row.violations.push(format!("crash {}: {e}", kind.name()));
                    worst = u64::MAX;
                    break;
                }
            }
        }
        if worst == u64::MAX {
            cells.push(format!("{} ERROR", kind.name()));
        } else if worst > 0 {
            cells.push(format!("{} {}", kind.name(), millis(worst)));
            row.require(worst <= bound.as_nanos() as u64, || {
                format!(
                    "crash {}: freed after {} (bound {})",
                    kind.name(),
                    millis(worst),
                    millis(bound.as_nanos() as u64)
                )
            });
        }
    }
    cells.push(format!("bound {}", millis(bound.as_nanos() as u64)));
    row.cell("crash", format!("x{} {}", scale.crashes, cells.join(" ")));
    let _ = coord.stop().await;
}

fn bound(coord: &Coordinator) -> Duration {
    if coord.supported().lease_bound_locks {
        Duration::from_secs(TIMEOUT_SECS) + SLACK
    } else {
        SLACK
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Holder,
    Member,
    Leader,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::Holder => "lock",
            Self::Member => "member",
            Self::Leader => "leader",
        }
    }
}

/// One crash: nanoseconds from the SIGKILL until the observer saw the effect; `None` where the
/// backend has no groups (or elections).
async fn once(
    target: &Target,
    coord: &Coordinator,
    kind: Kind,
    bound: Duration,
    store: &FencedStore,
) -> Result<Option<u64>, String> {
    let supported = coord.supported();
    let ready = Duration::from_secs(30);
    let give_up = bound * 3;
    match kind {
        Kind::Holder => {
            let lock = unique("crash-lock");
            let args = [target.url.clone(), lock.clone(), store.port().to_string()];
            let mut worker = Worker::spawn("hold", &args)?;
            let held = worker.expect("held", ready).await?;
            let killed_token = crate::fleet::field(&held, "token")?;
            worker.signal(Signal::SIGKILL)?;
            let killed = monotonic_ns();
            let guard = coord
                .lock(lock.as_str())
                .acquire_timeout(give_up)
                .await
                .map_err(|e| format!("lock of a killed holder not free: {e}"))?;
            let took = monotonic_ns() - killed;
            let next = guard.token().get();
            let _ = guard.release().await;
            worker.kill().await;
            if next <= killed_token {
                return Err(format!(
                    "the next holder's token {next} is not above the killed one's {killed_token}"
                ));
            }
            Ok(Some(took))
        }
        Kind::Member if supported.groups => {
            let group = unique("crash-group");
            let member = unique("crash-member");
            let args = [target.url.clone(), group.clone(), member.clone()];
            let mut worker = Worker::spawn("member", &args)?;
            worker.expect("joined", ready).await?;
            let listed = |members: &std::collections::BTreeSet<tooz::MemberId>| {
                members.iter().any(|m| m.as_bytes() == member.as_bytes())
            };
            let before = coord
                .members(group.as_str())
                .await
                .map_err(|e| e.to_string())?;
            if !listed(&before) {
                return Err(format!("joined member {member} not listed"));
            }
            worker.signal(Signal::SIGKILL)?;
            let killed = monotonic_ns();
            loop {
                let members = coord
                    .members(group.as_str())
                    .await
                    .map_err(|e| e.to_string())?;
                if !listed(&members) {
                    break;
                }
                if monotonic_ns() - killed > give_up.as_nanos() as u64 {
                    return Err(format!("killed member still listed after {give_up:?}"));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let took = monotonic_ns() - killed;
            worker.kill().await;
            let _ = coord.delete_group(group.as_str()).await;
            Ok(Some(took))
        }
        Kind::Leader if supported.elections => {
            let group = unique("crash-election");
            let args = [target.url.clone(), group.clone(), unique("crash-leader")];
            let mut worker = Worker::spawn("leader", &args)?;
            worker.expect("leader", ready).await?;
            let campaign = {
                let coord = coord.clone();
                let group = group.clone();
                tokio::spawn(
                    async move { coord.campaign_timeout(group.as_str(), give_up * 2).await },
                )
            };
            // Let the campaign reach the backend before the leader dies.
            tokio::time::sleep(Duration::from_millis(100)).await;
            if campaign.is_finished() {
                return Err("elected while the leader was alive".into());
            }
            worker.signal(Signal::SIGKILL)?;
            let killed = monotonic_ns();
            let leadership = campaign
                .await
                .map_err(|e| format!("campaign task: {e}"))?
                .map_err(|e| format!("no new leader after the leader's death: {e}"))?;
            let took = monotonic_ns() - killed;
            let _ = leadership.resign().await;
            worker.kill().await;
            Ok(Some(took))
        }
        Kind::Member | Kind::Leader => Ok(None),
    }
}
