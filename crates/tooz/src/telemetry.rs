//! Metrics, through the `metrics` facade when the `metrics` feature is on (any recorder the
//! program installs — Prometheus, StatsD, … — receives them); without it every function here
//! is empty and compiles away. Spans and events are `tracing`'s, written where the work is.
//!
//! The metrics are listed in the crate docs (*Observability*).
//!
//! Lock names are not labels: a program may use millions of them.

use std::time::Duration;

use crate::ids::GroupId;

/// A grant: how long it was waited for, and whether another holder made it wait.
#[allow(unused_variables)]
pub(crate) fn lock_acquired(backend: &'static str, waited: Duration, contended: bool) {
    #[cfg(feature = "metrics")]
    {
        metrics::counter!("tooz_lock_acquisitions_total", "backend" => backend).increment(1);
        if contended {
            metrics::counter!("tooz_lock_contended_total", "backend" => backend).increment(1);
        }
        metrics::histogram!("tooz_lock_wait_seconds", "backend" => backend).record(waited);
    }
}

/// A lock given back (released, dropped or lost) after `held`.
#[allow(unused_variables)]
pub(crate) fn lock_held(backend: &'static str, held: Duration) {
    #[cfg(feature = "metrics")]
    metrics::histogram!("tooz_lock_hold_seconds", "backend" => backend).record(held);
}

/// One heartbeat: its round trip, and how many grants it renewed (`None`: it failed).
#[allow(unused_variables)]
pub(crate) fn heartbeat(backend: &'static str, round_trip: Duration, renewed: Option<usize>) {
    #[cfg(feature = "metrics")]
    {
        metrics::histogram!("tooz_heartbeat_seconds", "backend" => backend).record(round_trip);
        match renewed {
            Some(n) => {
                metrics::counter!("tooz_renewals_total", "backend" => backend).increment(n as u64)
            }
            None => {
                metrics::counter!("tooz_renewal_failures_total", "backend" => backend).increment(1);
            }
        }
    }
}

/// A grant lost (expired, taken, reported by the backend), by kind.
#[allow(unused_variables)]
pub(crate) fn lost(kind: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!("tooz_losses_total", "kind" => kind).increment(1);
}

/// The members a watch last saw in `group`.
#[allow(unused_variables)]
pub(crate) fn group_members(group: &GroupId, members: usize) {
    #[cfg(feature = "metrics")]
    metrics::gauge!("tooz_group_members", "group" => group.to_string()).set(members as f64);
}
