//! Pauses: SIGSTOP a holder past its lease, let another process take the lock and write to the
//! fenced store, then SIGCONT. The resumed holder must find `is_held()` false, `lost()` must
//! fire, and its writes under the stale token must be refused.
//! Where locks are not leases (`file://`: the kernel holds them), nobody else may get the lock
//! while the holder is paused, and the holder still holds it when it resumes.

use std::time::Duration;

use nix::sys::signal::Signal;

use crate::checks::{Row, Scale, observer, unique};
use crate::fleet::{Worker, field};
use crate::monotonic_ns;
use crate::store::FencedStore;
use crate::target::Target;

pub(crate) async fn run(target: &Target, scale: &Scale, store: &FencedStore, row: &mut Row) {
    if !target.is_shared() {
        row.cell("pause", "n/a: one process");
        return;
    }
    let mut outcomes = Vec::new();
    for _ in 0..scale.pauses {
        match once(target, store, row).await {
            Ok(outcome) => outcomes.push(outcome),
            Err(e) => return row.broken("pause", e),
        }
    }
    outcomes.dedup();
    row.cell(
        "pause",
        format!("x{} {}", scale.pauses, outcomes.join("; ")),
    );
}

async fn once(target: &Target, store: &FencedStore, row: &mut Row) -> Result<String, String> {
    let coord = observer(target, "pause").await?;
    let lock = unique("pause");
    let args = [target.url.clone(), lock.clone(), store.port().to_string()];
    let mut holder = Worker::spawn("hold", &args)?;
    let held = holder.expect("held", Duration::from_secs(30)).await?;
    let first = field(&held, "token")?;
    let ttl = Duration::from_millis(field(&held, "ttl_ms")?);
    let lease_bound = held["lease_bound"].as_bool().unwrap_or(true);
    holder.signal(Signal::SIGSTOP)?;
    let wait = if lease_bound {
        ttl * 3
    } else {
        Duration::from_secs(3)
    };
    let taken = coord.lock(lock.as_str()).acquire_timeout(wait).await;
    let granted_at = monotonic_ns();
    let outcome = match taken {
        Ok(guard) if lease_bound => {
            let second = guard.token().get();
            row.require(second > first, || {
                format!(
                    "pause: the next holder's token {second} is not above the paused one's {first}"
                )
            });
            row.require(store.write(&lock, second), || {
                "pause: the new holder's write was refused".into()
            });
            holder.signal(Signal::SIGCONT)?;
            holder.expect("not_held", Duration::from_secs(5)).await?;
            holder.say("probe").await?;
            let stale = holder.expect("stale_write", Duration::from_secs(5)).await?;
            // lost() may fire up to a second (the clock's longest nap) after is_held() reads false.
            holder.drain(Duration::from_millis(1500)).await;
            let signalled = holder.seen("lost_signal").is_some();
            // A holder stopped between its `is_held()` check and its write sends that write
            // when it resumes, after the next grant: no client can close that window, which is
            // why the store is fenced. Such writes are counted; one accepted is a violation.
            let late: Vec<_> = store
                .log(&lock)
                .into_iter()
                .filter(|w| w.token == first && w.at > granted_at)
                .collect();
            let late_accepted = late.iter().filter(|w| w.accepted).count();
            let stale_accepted = stale["accepted"].as_bool() != Some(false);
            // One write may have been on its way when the process stopped; a second means
            // `is_held()` said yes after the resume.
            row.require(late.len() <= 1, || {
                format!(
                    "pause: the resumed holder ran {} commands after the next grant",
                    late.len()
                )
            });
            row.require(late_accepted == 0, || {
                format!("pause: {late_accepted} writes of the paused holder were accepted after the next grant")
            });
            row.require(signalled, || {
                "pause: lost() did not fire in the resumed holder".into()
            });
            row.require(!stale_accepted, || {
                "pause: the stale token's write was accepted".into()
            });
            let _ = guard.release().await;
            format!(
                "lost()={} late-writes {} accepted {late_accepted}, stale-write {}",
                if signalled { "fired" } else { "SILENT" },
                late.len(),
                if stale_accepted {
                    "ACCEPTED"
                } else {
                    "refused"
                }
            )
        }
        Ok(guard) => {
            row.violations.push(
                "pause: a lock the kernel holds was granted while its holder was paused".into(),
            );
            let _ = guard.release().await;
            holder.signal(Signal::SIGCONT)?;
            "DOUBLE GRANT".into()
        }
        Err(tooz::Error::OperationTimedOut { .. }) if !lease_bound => {
            holder.signal(Signal::SIGCONT)?;
            holder.say("release").await?;
            let released = holder.expect("released", Duration::from_secs(5)).await?;
            row.require(released["ok"] == true, || {
                "pause: the resumed kernel-lock holder could not release".into()
            });
            "kept by the paused holder (kernel lock)".into()
        }
        Err(e) => {
            holder.signal(Signal::SIGCONT)?;
            return Err(format!("the lock of a paused holder was not granted: {e}"));
        }
    };
    holder.finish().await?;
    let _ = coord.stop().await;
    Ok(outcome)
}
