//! The background task every coordinator runs: it heartbeats (unless heartbeats are manual)
//! and fires every loss signal the moment its local lease runs out.
//!
//! The deadline is watched *while* a beat is in flight: a beat stuck on a dead connection
//! (a partition drops every byte and no error comes back until a socket timeout) must not
//! delay a loss signal by a single millisecond past the local deadline.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::time::{sleep, sleep_until};
use tokio_util::sync::CancellationToken;

use tokio::sync::mpsc::UnboundedReceiver;

use crate::backend::Loss;
use crate::clock;
use crate::ids::MemberId;
use crate::session::Session;

/// What the task heartbeats: the coordinator, seen through the little the task needs.
pub(crate) trait Beats: Send + Sync + 'static {
    /// One heartbeat; whether it succeeded.
    fn beat(&self) -> Pin<Box<dyn Future<Output = bool> + Send + '_>>;
    /// For messages: the backend's name and our member id.
    fn who(&self) -> (&'static str, &MemberId);
}

/// When heartbeats fail, try again this often (bounded by the normal interval).
const RETRY_INTERVAL: Duration = Duration::from_millis(500);

type Beat = Pin<Box<dyn Future<Output = bool> + Send>>;

/// Runs until `stop` fires or the coordinator is dropped. Holds only a weak reference to the
/// coordinator between beats, so an abandoned coordinator is not kept alive by its own
/// heartbeat.
pub(crate) async fn run(
    inner: Weak<dyn Beats>,
    session: Arc<Session>,
    stop: CancellationToken,
    interval: Option<Duration>,
    mut pushed: UnboundedReceiver<Loss>,
) {
    let mut next_beat = interval.map(clock::instant_after);
    let mut in_flight: Option<Beat> = None;
    loop {
        // Deadlines are in boot time; nap towards them so a resume from suspend is noticed.
        let left = session
            .watch_next_deadline()
            .map(|d| d.saturating_sub(clock::now()));
        let beat_due = in_flight.is_none() && next_beat.is_some();
        tokio::select! {
            biased;
            () = stop.cancelled() => return,
            () = sleep(left.unwrap_or_default().min(clock::MAX_NAP)), if left.is_some() => {
                let Some(inner) = inner.upgrade() else { return };
                report_expiry(&*inner, &session);
            }
            () = session.deadline_moved() => {}
            Some(loss) = pushed.recv() => {
                if let Some(inner) = inner.upgrade() {
                    let (backend, member) = inner.who();
                    tracing::warn!(backend, member = %member, ?loss, "the backend reports a loss");
                }
                session.lose_pushed(loss);
            }
            ok = async { in_flight.as_mut().expect("guarded").await }, if in_flight.is_some() => {
                in_flight = None;
                let every = interval.unwrap_or(RETRY_INTERVAL);
                let wait = if ok { every } else { every.min(RETRY_INTERVAL) };
                next_beat = Some(clock::instant_after(wait));
            }
            () = sleep_until(next_beat.unwrap_or_else(|| clock::instant_after(Duration::MAX))), if beat_due => {
                let Some(inner) = inner.upgrade() else { return };
                in_flight = Some(Box::pin(async move { inner.beat().await }));
            }
        }
    }
}

fn report_expiry(inner: &dyn Beats, session: &Session) {
    let expired = session.expire_due(clock::now());
    let (backend, member) = inner.who();
    if expired.session {
        tracing::warn!(
            backend,
            member = %member,
            "local lease ran out before a heartbeat renewed it: memberships are reported lost"
        );
    }
    if expired.grants > 0 {
        tracing::warn!(
            backend,
            member = %member,
            grants = expired.grants,
            "locks or leaderships were not renewed in time: they are reported lost"
        );
    }
}
