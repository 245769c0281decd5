//! The checks, one file each. A check fills cells of its backend's row and lists violations;
//! a check that cannot apply to a backend says why in its cell (`n/a: ...`), it is never left
//! out silently.

use std::time::Duration;

use tooz::Coordinator;

use crate::target::Target;

pub(crate) mod clock;
pub(crate) mod crash;
pub(crate) mod exclusion;
pub(crate) mod load;
pub(crate) mod partition;
pub(crate) mod pause;

/// How hard each check pushes: the short run (part of `scripts/test`) or `--long`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scale {
    pub(crate) long: bool,
    pub(crate) exclusion_workers: usize,
    pub(crate) exclusion_grants: usize,
    /// The lock storm: exclusion workers for a time rather than a count (`--long` only).
    pub(crate) storm: Option<Duration>,
    pub(crate) crashes: usize,
    pub(crate) pauses: usize,
    pub(crate) member_processes: usize,
    pub(crate) members: usize,
    pub(crate) soak: Duration,
}

impl Scale {
    pub(crate) fn short() -> Self {
        Self {
            long: false,
            exclusion_workers: 4,
            exclusion_grants: 25,
            storm: None,
            crashes: 1,
            pauses: 1,
            member_processes: 10,
            members: 100,
            soak: Duration::from_secs(10),
        }
    }

    pub(crate) fn long() -> Self {
        Self {
            long: true,
            exclusion_workers: 8,
            exclusion_grants: 500,
            storm: Some(Duration::from_secs(60)),
            crashes: 20,
            pauses: 5,
            member_processes: 10,
            members: 1000,
            soak: Duration::from_secs(600),
        }
    }
}

/// One backend's figures.
#[derive(Debug, Default)]
pub(crate) struct Row {
    pub(crate) cells: Vec<(&'static str, String)>,
    pub(crate) violations: Vec<String>,
}

impl Row {
    pub(crate) fn cell(&mut self, column: &'static str, value: impl Into<String>) {
        self.cells.push((column, value.into()));
    }

    /// Records a violation when `ok` is false.
    pub(crate) fn require(&mut self, ok: bool, violation: impl FnOnce() -> String) {
        if !ok {
            self.violations.push(violation());
        }
    }

    /// A check that could not run to its end: the failure is a violation, and its cell says so.
    pub(crate) fn broken(&mut self, column: &'static str, error: String) {
        self.cell(column, "ERROR");
        self.violations.push(format!("{column}: {error}"));
    }
}

/// A coordinator of the parent's own, to observe and to compete with the workers.
pub(crate) async fn observer(target: &Target, role: &str) -> Result<Coordinator, String> {
    let member = format!("torture-observer-{role}-{}", std::process::id());
    Coordinator::connect(&target.url, member)
        .await
        .map_err(|e| format!("observer connect: {e}"))
}

pub(crate) fn millis(nanos: u64) -> String {
    format!("{:.0}ms", nanos as f64 / 1e6)
}

/// A name no other run (nor an earlier check of this one) uses.
pub(crate) fn unique(what: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "torture-{what}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
