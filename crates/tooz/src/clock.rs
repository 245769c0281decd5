//! The clock local leases run on.
//!
//! `CLOCK_BOOTTIME` keeps counting while the machine is suspended; `CLOCK_MONOTONIC` (Rust's
//! `Instant`, tokio's timers) does not. A lease measured on the monotonic clock would survive a
//! laptop lid closed for an hour, while the server's TTL ran out long ago and the lock went to
//! someone else (reliability.md R1). So deadlines are kept in boot time, and waits are cut into
//! naps short enough to notice a resume.

use std::time::Duration;

use nix::time::{ClockId, clock_gettime};

/// The longest nap between two looks at the boot-time clock: after a resume, `is_held()` is
/// false at once (it reads the clock) and `lost()` fires within this.
pub(crate) const MAX_NAP: Duration = Duration::from_secs(1);

/// Time since boot, suspend included. Falls back to the monotonic clock where the kernel has
/// no boot-time clock.
pub(crate) fn now() -> Duration {
    let spec = clock_gettime(ClockId::CLOCK_BOOTTIME)
        .or_else(|_| clock_gettime(ClockId::CLOCK_MONOTONIC))
        .expect("CLOCK_MONOTONIC is always available on Linux");
    Duration::new(spec.tv_sec().max(0) as u64, spec.tv_nsec().max(0) as u32)
}

/// `now + after` on tokio's clock, for timers and deadlines given by callers: saturates about
/// thirty years out (as tokio's own `sleep` does) instead of overflowing for any duration.
pub(crate) fn instant_after(after: Duration) -> tokio::time::Instant {
    const FAR: Duration = Duration::from_secs(86_400 * 365 * 30);
    let now = tokio::time::Instant::now();
    now.checked_add(after.min(FAR)).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_time_advances_with_real_time() {
        let start = now();
        std::thread::sleep(Duration::from_millis(20));
        let elapsed = now() - start;
        assert!(
            elapsed >= Duration::from_millis(20) && elapsed < Duration::from_secs(1),
            "{elapsed:?}"
        );
    }

    #[test]
    fn instants_saturate_for_any_duration() {
        let far = instant_after(Duration::MAX);
        assert!(far > tokio::time::Instant::now() + Duration::from_secs(86_400 * 365));
        assert!(instant_after(Duration::ZERO) <= tokio::time::Instant::now());
    }
}
