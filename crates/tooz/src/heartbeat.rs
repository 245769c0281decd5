//! The background task every coordinator runs: it heartbeats (unless heartbeats are manual)
//! and fires every loss signal the moment the local lease runs out.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::time::{Instant, sleep, sleep_until};
use tokio_util::sync::CancellationToken;

use crate::clock;
use crate::coordinator::Inner;
use crate::session::Session;

/// When heartbeats fail, try again this often (bounded by the normal interval).
const RETRY_INTERVAL: Duration = Duration::from_millis(500);

/// Runs until `stop` fires or the coordinator is dropped. Holds only a weak reference to the
/// coordinator, so an abandoned coordinator is not kept alive by its own heartbeat.
pub(crate) async fn run(
    inner: Weak<Inner>,
    session: Arc<Session>,
    stop: CancellationToken,
    interval: Option<Duration>,
) {
    let mut next_beat = interval.map(|i| Instant::now() + i);
    loop {
        // The deadline is in boot time; nap towards it so a resume from suspend is noticed.
        let left = session.deadline().map(|d| d.saturating_sub(clock::now()));
        tokio::select! {
            () = stop.cancelled() => return,
            () = session.deadline_moved() => {}
            () = sleep_until(next_beat.unwrap_or_else(far_future)), if next_beat.is_some() => {
                let Some(inner) = inner.upgrade() else { return };
                // A heartbeat stuck on a dead connection must not hold back the deadline.
                let beat = tokio::time::timeout(left.unwrap_or(FOREVER), inner.beat());
                let ok = match beat.await {
                    Ok(result) => result.is_ok(),
                    Err(_) => {
                        expire(&inner, &session);
                        false
                    }
                };
                let every = interval.unwrap_or(RETRY_INTERVAL);
                let wait = if ok { every } else { every.min(RETRY_INTERVAL) };
                next_beat = Some(Instant::now() + wait);
            }
            () = sleep(left.unwrap_or(FOREVER).min(clock::MAX_NAP)), if left.is_some() => {
                if session.deadline().is_some_and(|d| d <= clock::now()) {
                    let Some(inner) = inner.upgrade() else { return };
                    expire(&inner, &session);
                }
            }
        }
    }
}

fn expire(inner: &Inner, session: &Session) {
    tracing::warn!(
        backend = inner.backend.name(),
        member = %inner.member,
        "local lease ran out before a heartbeat renewed it: what depended on it is reported lost"
    );
    session.expire();
}

const FOREVER: Duration = Duration::from_secs(86_400 * 365);

fn far_future() -> Instant {
    Instant::now() + FOREVER
}
