//! What every clone of a [`Coordinator`](super::Coordinator) shares: the backend, the
//! session, and the machinery under the handles — bounded calls, heartbeats, and the
//! best-effort hand-backs of grants that nobody holds a handle to any more.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::backend::{Backend, BeatReport, Elections, Groups, OwnerToken, Started};
use crate::clock;
use crate::error::{Error, Result};
use crate::heartbeat;
use crate::ids::{GroupId, LockName, MemberId};
use crate::session::Session;
use crate::telemetry::Meters;

pub(crate) struct Inner {
    pub(crate) backend: Box<dyn Backend>,
    /// What the backend settled at connect.
    pub(crate) started: Started,
    pub(crate) member: MemberId,
    pub(crate) session: Arc<Session>,
    pub(crate) config: Config,
    pub(super) stopped: AtomicBool,
    pub(super) stop_heartbeat: CancellationToken,
    /// Serializes joins and leaves of this coordinator (and the hand-back of a join whose
    /// caller went away), so that leaving a stale membership never removes a newer one.
    pub(super) membership_ops: Arc<tokio::sync::Mutex<()>>,
    /// Metric handles (empty without the `metrics` feature).
    pub(crate) meters: Meters,
}

#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) operation_timeout: Duration,
    pub(crate) watch_interval: Duration,
}

/// A hand-back nobody waits for (stop, a caller that went away, a dropped handle) is best
/// effort: what it could not hand back expires on the backend by its own timeout.
pub(super) fn log_failure<T>(what: &str, result: Result<T>) {
    if let Err(e) = result {
        tracing::warn!(error = %e, "{what} failed; what it held expires on the backend");
    }
}

/// Bounds a backend call by the operation timeout.
pub(crate) async fn bounded<T>(
    operation: &str,
    timeout: Duration,
    call: impl Future<Output = Result<T>>,
) -> Result<T> {
    tokio::time::timeout(timeout, call)
        .await
        .unwrap_or_else(|_| {
            Err(Error::OperationTimedOut {
                operation: operation.to_owned(),
                after: timeout,
            })
        })
}

impl Inner {
    /// Fires when the coordinator stops (or is dropped): waits end with `Stopped`.
    pub(crate) fn stopped_token(&self) -> CancellationToken {
        self.stop_heartbeat.clone()
    }

    pub(crate) fn check_started(&self) -> Result<()> {
        if self.stopped.load(Ordering::Acquire) {
            Err(Error::Stopped)
        } else {
            Ok(())
        }
    }

    /// A backend call, refused after stop and bounded by the operation timeout.
    pub(crate) async fn call<T>(
        &self,
        operation: &str,
        call: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        self.check_started()?;
        bounded(operation, self.config.operation_timeout, call).await
    }

    pub(crate) fn groups(&self, operation: &'static str) -> Result<&dyn Groups> {
        self.backend.groups().ok_or(Error::Unsupported {
            operation,
            backend: self.backend.name(),
        })
    }

    pub(crate) fn elections(&self, operation: &'static str) -> Result<&dyn Elections> {
        self.backend.elections().ok_or(Error::Unsupported {
            operation,
            backend: self.backend.name(),
        })
    }

    /// Hands back a leadership nobody holds a handle to (best effort: it expires anyway).
    pub(crate) async fn resign_quietly(&self, group: &GroupId, owner: OwnerToken) {
        if let Some(elections) = self.backend.elections() {
            let timeout = self.hand_back_timeout();
            log_failure(
                "resign",
                bounded("resign", timeout, elections.resign(group, owner)).await,
            );
        }
    }

    /// Releases a lock nobody holds a handle to (best effort: it expires anyway).
    pub(crate) async fn release_quietly(&self, name: &LockName, owner: OwnerToken) {
        let timeout = self.hand_back_timeout();
        let release = self.backend.release(name, owner);
        log_failure("release", bounded("release", timeout, release).await);
    }

    /// Takes a waiter that gave up off the lock's queue (best effort: the entry expires).
    pub(crate) async fn stop_waiting_quietly(&self, name: &LockName, owner: OwnerToken) {
        let timeout = self.hand_back_timeout();
        let leave = self.backend.stop_waiting(name, owner);
        log_failure(
            "leaving a lock's queue",
            bounded("leave the queue", timeout, leave).await,
        );
    }

    /// Leaves a group whose membership nobody holds a handle to (best effort).
    pub(crate) async fn leave_quietly(&self, group: &GroupId) {
        log_failure("leave", self.leave_if_listed(group).await);
    }

    /// Leaves `group` if this member is listed there; not being listed (or no group) is what
    /// leaving wanted, not an error.
    pub(super) async fn leave_if_listed(&self, group: &GroupId) -> Result<()> {
        let Some(groups) = self.backend.groups() else {
            return Ok(());
        };
        match bounded("leave", self.hand_back_timeout(), groups.leave(group)).await {
            Ok(()) | Err(Error::MemberNotJoined { .. } | Error::GroupNotCreated { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// What a hand-back may take: what we fail to hand back expires on its own within the
    /// membership timeout.
    pub(crate) fn hand_back_timeout(&self) -> Duration {
        self.config
            .operation_timeout
            .min(self.started.membership_timeout)
    }

    /// Leaves, on the backend, the memberships given up locally (see
    /// [`Session::dropped`]), unless they were joined again meanwhile.
    async fn leave_dropped(&self) {
        if self.session.dropped().is_empty() {
            return;
        }
        let _ops = self.membership_ops.lock().await;
        for group in self.session.dropped() {
            match self.leave_if_listed(&group).await {
                Ok(()) => {
                    self.session.take_dropped(&group);
                }
                Err(e) => tracing::warn!(
                    backend = self.backend.name(),
                    group = %group,
                    error = %e,
                    "cannot yet leave a group whose membership was lost here; will retry"
                ),
            }
        }
    }

    /// One heartbeat: renew, then fire the loss signal of whatever the backend reports lost.
    /// Bounded by the membership timeout as well: a renewal that arrives later than that has
    /// renewed nothing.
    pub(crate) async fn beat(&self) -> Result<BeatReport> {
        self.check_started()?;
        let held = self.session.held();
        let sent = clock::now();
        let timeout = self.hand_back_timeout();
        let span = tracing::trace_span!(
            "tooz.heartbeat",
            backend = self.backend.name(),
            locks = held.locks.len(),
            leaderships = held.leaderships.len(),
            memberships = held.memberships.len(),
        );
        let result = bounded("heartbeat", timeout, self.backend.heartbeat(&held))
            .instrument(span)
            .await;
        let round_trip = clock::now().saturating_sub(sent);
        let renewed = result.as_ref().ok().map(|report| {
            let carried = held.locks.len() + held.leaderships.len() + held.memberships.len();
            let lost = report.lost_locks.len()
                + report.lost_leaderships.len()
                + report.lost_memberships.len();
            if report.session_restarted {
                0
            } else {
                carried.saturating_sub(lost)
            }
        });
        self.meters.heartbeat(round_trip, renewed);
        match &result {
            Ok(report) => {
                if report.session_restarted {
                    tracing::warn!(
                        backend = self.backend.name(),
                        member = %self.member,
                        "the backend had expired this member's session; a new one began and \
                         everything held before is reported lost"
                    );
                }
                self.session.renewed(sent, &held, report);
                self.leave_dropped().await;
            }
            Err(e) => tracing::warn!(
                backend = self.backend.name(),
                member = %self.member,
                error = %e,
                "heartbeat failed"
            ),
        }
        result
    }
}

impl heartbeat::Beats for Inner {
    fn beat(&self) -> std::pin::Pin<Box<dyn Future<Output = bool> + Send + '_>> {
        Box::pin(async move { Self::beat(self).await.is_ok() })
    }

    fn who(&self) -> (&'static str, &MemberId) {
        (self.backend.name(), &self.member)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop_heartbeat.cancel();
        self.session.lose_everything();
    }
}
