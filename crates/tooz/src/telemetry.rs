//! Metrics, through the `metrics` facade when the `metrics` feature is on (any recorder the
//! program installs — Prometheus, StatsD, … — receives them); without it every function here
//! is empty and compiles away. Spans and events are `tracing`'s, written where the work is.
//!
//! The metrics are listed in the crate docs (*Observability*).
//!
//! Lock names are not labels: a program may use millions of them.

use std::time::Duration;

use crate::ids::GroupId;

/// A coordinator's metric handles, registered once when it connects (so install a recorder
/// before connecting): recording on the lock path is then an atomic add, not a lookup of
/// names and labels. Empty without the `metrics` feature.
#[derive(Default)]
pub(crate) struct Meters {
    #[cfg(feature = "metrics")]
    handles: Option<Handles>,
}

#[cfg(feature = "metrics")]
struct Handles {
    acquisitions: metrics::Counter,
    contended: metrics::Counter,
    wait: metrics::Histogram,
    hold: metrics::Histogram,
    heartbeat: metrics::Histogram,
    renewals: metrics::Counter,
    renewal_failures: metrics::Counter,
}

impl std::fmt::Debug for Meters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meters").finish_non_exhaustive()
    }
}

impl Meters {
    #[allow(unused_variables)]
    pub(crate) fn new(backend: &'static str) -> Self {
        #[cfg(feature = "metrics")]
        {
            let label = [("backend", backend)];
            Self {
                handles: Some(Handles {
                    acquisitions: metrics::counter!("tooz_lock_acquisitions_total", &label),
                    contended: metrics::counter!("tooz_lock_contended_total", &label),
                    wait: metrics::histogram!("tooz_lock_wait_seconds", &label),
                    hold: metrics::histogram!("tooz_lock_hold_seconds", &label),
                    heartbeat: metrics::histogram!("tooz_heartbeat_seconds", &label),
                    renewals: metrics::counter!("tooz_renewals_total", &label),
                    renewal_failures: metrics::counter!("tooz_renewal_failures_total", &label),
                }),
            }
        }
        #[cfg(not(feature = "metrics"))]
        Self::default()
    }

    /// Whether anything wants timings: metrics built in, or a subscriber listening at DEBUG.
    /// Without either, the lock path reads no clock for them.
    pub(crate) fn timed(&self) -> bool {
        cfg!(feature = "metrics") || tracing::enabled!(tracing::Level::DEBUG)
    }

    /// A grant: how long it was waited for, and whether another holder made it wait.
    #[allow(unused_variables)]
    pub(crate) fn lock_acquired(&self, waited: Duration, contended: bool) {
        #[cfg(feature = "metrics")]
        if let Some(h) = &self.handles {
            h.acquisitions.increment(1);
            if contended {
                h.contended.increment(1);
            }
            h.wait.record(waited);
        }
    }

    /// A lock given back (released, dropped or lost) after `held`.
    #[allow(unused_variables)]
    pub(crate) fn lock_held(&self, held: Duration) {
        #[cfg(feature = "metrics")]
        if let Some(h) = &self.handles {
            h.hold.record(held);
        }
    }

    /// One heartbeat: its round trip, and how many grants it renewed (`None`: it failed).
    #[allow(unused_variables)]
    pub(crate) fn heartbeat(&self, round_trip: Duration, renewed: Option<usize>) {
        #[cfg(feature = "metrics")]
        if let Some(h) = &self.handles {
            h.heartbeat.record(round_trip);
            match renewed {
                Some(n) => h.renewals.increment(n as u64),
                None => h.renewal_failures.increment(1),
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
