//! What the logs and counters say about one run.

use super::fleet::Grant;

/// Everything one workload run produced.
#[derive(Debug)]
pub(super) struct Run {
    /// Every grant logged, sorted by acquire time.
    pub(super) grants: Vec<Grant>,
    pub(super) workers: usize,
    pub(super) start: u64,
    pub(super) end: u64,
    /// The storm's counter file at the end.
    pub(super) counter: u64,
    /// Acquire attempts and server commands counted by Redis during the run.
    pub(super) server: Option<ServerCounts>,
}

#[derive(Clone, Debug)]
pub(super) struct ServerCounts {
    pub(super) attempts: u64,
    pub(super) commands: u64,
    /// The commands the server ran most, with their calls.
    pub(super) busiest: Vec<(String, u64)>,
}

impl Run {
    fn in_window(&self) -> Vec<Grant> {
        self.grants
            .iter()
            .copied()
            .filter(|g| (self.start..self.end).contains(&g.acquired))
            .collect()
    }

    fn seconds(&self) -> f64 {
        (self.end - self.start) as f64 / 1e9
    }

    /// Grants acquired before the previous grant's release was called: two holders.
    fn overlaps(&self) -> usize {
        self.grants
            .windows(2)
            .filter(|w| w[1].acquired < w[0].released)
            .count()
    }
}

#[derive(Debug)]
pub(super) struct HandOffs {
    pub(super) count: usize,
    pub(super) per_second: f64,
    pub(super) share: f64,
    pub(super) median_ms: Option<f64>,
    pub(super) p99_ms: Option<f64>,
    pub(super) overlaps: usize,
}

pub(super) fn hand_offs(run: &Run) -> HandOffs {
    let grants = run.in_window();
    let mut wake_ms: Vec<f64> = grants
        .windows(2)
        .filter(|w| w[0].worker != w[1].worker)
        .map(|w| (w[1].acquired as f64 - w[0].released as f64) / 1e6)
        .collect();
    wake_ms.sort_by(f64::total_cmp);
    let transitions = grants.len().saturating_sub(1);
    HandOffs {
        count: wake_ms.len(),
        per_second: wake_ms.len() as f64 / run.seconds(),
        share: wake_ms.len() as f64 / transitions.max(1) as f64,
        median_ms: percentile(&wake_ms, 0.5),
        p99_ms: percentile(&wake_ms, 0.99),
        overlaps: run.overlaps(),
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    let rank = ((q * sorted.len() as f64).ceil() as usize).max(1);
    sorted.get(rank - 1).copied()
}

#[derive(Debug)]
pub(super) struct Storm {
    pub(super) per_second: f64,
    pub(super) min: usize,
    pub(super) max: usize,
    pub(super) lost_updates: i64,
    /// Median time a grant was held (the counter's read-modify-write), ms.
    pub(super) hold_median_ms: Option<f64>,
    /// Median time from one grant's release call to the next grant, ms: the hand-off's cost,
    /// which with a fair lock bounds grants per second with the hold.
    pub(super) gap_median_ms: Option<f64>,
    pub(super) attempts_per_grant: Option<f64>,
    pub(super) commands_per_grant: Option<f64>,
    pub(super) busiest_per_grant: Vec<(String, f64)>,
    pub(super) overlaps: usize,
}

impl Storm {
    /// Per-process max/min grants; infinite if a process got none.
    pub(super) fn spread(&self) -> f64 {
        self.max as f64 / self.min as f64
    }
}

pub(super) fn storm(run: &Run) -> Storm {
    let grants = run.in_window();
    let mut per_worker = vec![0usize; run.workers];
    for g in &grants {
        per_worker[g.worker] += 1;
    }
    let all = run.grants.len() as f64;
    let mut holds: Vec<f64> = grants
        .iter()
        .map(|g| (g.released as f64 - g.acquired as f64) / 1e6)
        .collect();
    holds.sort_by(f64::total_cmp);
    let mut gaps: Vec<f64> = grants
        .windows(2)
        .map(|w| (w[1].acquired as f64 - w[0].released as f64) / 1e6)
        .collect();
    gaps.sort_by(f64::total_cmp);
    Storm {
        per_second: grants.len() as f64 / run.seconds(),
        min: per_worker.iter().copied().min().unwrap_or(0),
        max: per_worker.iter().copied().max().unwrap_or(0),
        lost_updates: run.grants.len() as i64 - run.counter as i64,
        hold_median_ms: percentile(&holds, 0.5),
        gap_median_ms: percentile(&gaps, 0.5),
        attempts_per_grant: run.server.as_ref().map(|s| s.attempts as f64 / all),
        commands_per_grant: run.server.as_ref().map(|s| s.commands as f64 / all),
        busiest_per_grant: run
            .server
            .iter()
            .flat_map(|s| &s.busiest)
            .map(|(name, calls)| (name.clone(), *calls as f64 / all))
            .collect(),
        overlaps: run.overlaps(),
    }
}
