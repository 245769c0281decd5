//! Waiting for something held elsewhere: one loop for locks and elections, woken by the
//! backend's change hint where it has one and by jittered exponential back-off otherwise —
//! never a fixed sleep that makes every waiter retry in step.

use std::future::Future;
use std::time::Duration;

use tokio::time::{Instant, sleep_until};

use tokio_util::sync::CancellationToken;

use crate::backend::{Backend, OwnerToken, Topic};
use crate::error::{Error, Result};

const FIRST_PAUSE: Duration = Duration::from_millis(5);
/// With a change hint the poll only catches what the hint cannot see (expiry), so it can be
/// slower; without one it is the only way to notice a release.
const MAX_PAUSE_WITH_HINT: Duration = Duration::from_millis(500);
const MAX_PAUSE_POLLING: Duration = Duration::from_millis(250);

/// Calls `attempt` until it yields `Some`, the `deadline` passes (`Ok(None)`), the
/// coordinator stops (`Stopped`), or it fails. With no deadline it waits as long as it takes.
/// The first attempt is told it is not waiting (so that it neither queues nor jumps a queue);
/// every later one that it is ([`crate::backend::LockRequest::wait`]). An attempt may itself
/// wait (a kernel wait): it is then cut at the deadline, and must finish in the background.
pub(crate) async fn retry<T, F, Fut>(
    backend: &dyn Backend,
    stopped: &CancellationToken,
    topic: Topic<'_>,
    deadline: Option<Instant>,
    mut attempt: F,
) -> Result<Option<T>>
where
    F: FnMut(bool) -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    // The uncontended case pays for nothing but the attempt.
    if let Some(value) = attempt(false).await? {
        return Ok(Some(value));
    }
    let mut backoff = Backoff::new();
    loop {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(None);
        }
        // Subscribe before trying again, so a release between that attempt and our wait
        // still wakes us.
        let hint = backend.change_hint(topic);
        let waiting = async {
            match deadline {
                Some(deadline) => tokio::time::timeout_at(deadline, attempt(true))
                    .await
                    .unwrap_or(Ok(None)),
                None => attempt(true).await,
            }
        };
        let taken = tokio::select! {
            taken = waiting => taken?,
            () = stopped.cancelled() => return Err(Error::Stopped),
        };
        if let Some(value) = taken {
            return Ok(Some(value));
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            return Ok(None);
        }
        let cap = if hint.is_some() {
            MAX_PAUSE_WITH_HINT
        } else {
            MAX_PAUSE_POLLING
        };
        let wake = now + backoff.next(cap);
        let wake = deadline.map_or(wake, |d| d.min(wake));
        let pause = async {
            match hint {
                Some(hint) => {
                    tokio::select! {
                        () = hint => {}
                        () = sleep_until(wake) => {}
                    }
                }
                None => sleep_until(wake).await,
            }
        };
        tokio::select! {
            () = pause => {}
            () = stopped.cancelled() => return Err(Error::Stopped),
        }
    }
}

/// Exponential back-off with full jitter in the upper half.
struct Backoff {
    pause: Duration,
    rng: u64,
}

impl Backoff {
    fn new() -> Self {
        // Seeded from a fresh owner token: random per process and per waiter.
        let seed = OwnerToken::generate().as_u128() as u64;
        Self {
            pause: FIRST_PAUSE,
            rng: seed | 1,
        }
    }

    fn next(&mut self, cap: Duration) -> Duration {
        // xorshift64: plenty for spreading waiters apart.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let base = self.pause.min(cap);
        self.pause = (self.pause * 2).min(cap);
        let fraction = (self.rng % 1000) as u32;
        base / 2 + base / 2 * fraction / 1000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_the_cap_and_stays_jittered() {
        let mut b = Backoff::new();
        let cap = Duration::from_millis(100);
        let pauses: Vec<Duration> = (0..20).map(|_| b.next(cap)).collect();
        assert!(pauses.iter().all(|p| *p <= cap));
        assert!(pauses[0] <= FIRST_PAUSE);
        assert!(pauses[19] >= cap / 2);
        let distinct: std::collections::BTreeSet<_> = pauses[10..].iter().collect();
        assert!(
            distinct.len() > 1,
            "pauses at the cap must still vary: {pauses:?}"
        );
    }
}
