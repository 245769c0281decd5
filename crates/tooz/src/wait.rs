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
/// Where the hint sees every change, the poll is only a safeguard.
const MAX_PAUSE_COMPLETE_HINT: Duration = Duration::from_secs(30);

/// Calls `attempt` until it yields `Some`, the `deadline` passes (`Ok(None)`), the
/// coordinator stops (`Stopped`), or it fails. With no deadline it waits as long as it takes.
/// Every attempt is told whether its caller waits if refused
/// ([`crate::backend::LockRequest::wait`]): all of them when there is time to wait (so that a
/// queueing backend queues the very first refusal), none when the deadline is now. An attempt
/// may itself wait (a kernel wait): it is then cut at the deadline, and must finish in the
/// background. With a change hint there is no quick retry: the hint (which polls by itself
/// where releases can go unannounced) says when to look again; where it sees every change
/// (`complete_hints`, [`crate::backend::Started::complete_hints`]), nothing else does but a
/// rare safeguard.
pub(crate) async fn retry<T, F, Fut>(
    backend: &dyn Backend,
    stopped: &CancellationToken,
    topic: Topic<'_>,
    deadline: Option<Instant>,
    complete_hints: bool,
    mut attempt: F,
) -> Result<Option<T>>
where
    F: FnMut(bool) -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let waits = deadline.is_none_or(|d| d > Instant::now());
    let mut backoff = Backoff::new();
    loop {
        // Subscribed before the attempt it guards, so that a release between that attempt
        // and our wait still wakes us (a local registration: no round trip).
        let hint = if waits {
            backend.change_hint(topic)
        } else {
            None
        };
        // One attempt, cut at the deadline if it waits itself, and at the coordinator's stop.
        let attempt = async {
            match deadline {
                Some(deadline) if waits => tokio::time::timeout_at(deadline, attempt(true))
                    .await
                    .unwrap_or(Ok(None)),
                _ => attempt(waits).await,
            }
        };
        let taken = tokio::select! {
            taken = attempt => taken?,
            () = stopped.cancelled() => return Err(Error::Stopped),
        };
        if let Some(value) = taken {
            return Ok(Some(value));
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            return Ok(None);
        }
        let pause = match hint {
            Some(_) if complete_hints => backoff.jittered(MAX_PAUSE_COMPLETE_HINT),
            Some(_) => backoff.jittered(MAX_PAUSE_WITH_HINT),
            None => backoff.next(MAX_PAUSE_POLLING),
        };
        let wake = now + pause;
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
        // No attempt at or past the deadline: it would be cut at once, after its request
        // left, leaving a call (and perhaps a queue entry) behind for nobody.
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(None);
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
        let base = self.pause.min(cap);
        self.pause = (self.pause * 2).min(cap);
        self.jittered(base)
    }

    /// `base` with full jitter in its upper half.
    fn jittered(&mut self, base: Duration) -> Duration {
        // xorshift64: plenty for spreading waiters apart.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
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
