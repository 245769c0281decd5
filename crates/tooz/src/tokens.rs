//! The plain values a grant carries: how a lock is held, the owner token that names one grant
//! on the backend, and the fencing token handed out with it. Below the backend contract and
//! the handles alike, so that both import it and neither imports the other.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

/// A number handed out with every grant of a lock (or of a group's leadership), strictly
/// increasing per lock name across every holder. Pass it to the resource the lock protects and
/// have it refuse any token lower than the highest it has seen: then a holder that lost the
/// lock without knowing (a long pause, a partition) cannot do harm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FencingToken(u64);

impl FencingToken {
    /// A token with this value.
    pub fn new(value: u64) -> Self {
        Self(value)
    }

    /// The token's value.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for FencingToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// How a lock is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LockMode {
    /// One holder at a time.
    Exclusive,
    /// Any number of shared holders, excluding exclusive ones.
    Shared,
}

/// A unique token naming one grant (one acquire, one campaign), so that renewals and releases
/// compare on it and never touch someone else's grant.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OwnerToken(u128);

impl OwnerToken {
    /// A fresh token, unique within the process (a counter through a bijective mixer) and
    /// across processes (keyed by a per-process random seed). Cheap: no system call after the
    /// first. A process that `fork`s without `exec` must not use tokens in both halves.
    pub fn generate() -> Self {
        static SEED: OnceLock<(u64, u64)> = OnceLock::new();
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let (high, low) = *SEED.get_or_init(|| {
            let nanos = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let seed = |salt: u64| {
                let mut h = RandomState::new().build_hasher();
                h.write_u64(salt);
                h.write_u32(std::process::id());
                h.write_u128(nanos);
                h.finish()
            };
            (seed(1), seed(2))
        });
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        Self((u128::from(mix(high ^ n)) << 64) | u128::from(mix(low.wrapping_add(n))))
    }

    /// The token as 32 lowercase hex characters (the form redis-py's lock uses).
    pub fn to_hex(self) -> String {
        format!("{:032x}", self.0)
    }

    /// The token's raw value.
    pub fn as_u128(self) -> u128 {
        self.0
    }
}

impl fmt::Debug for OwnerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OwnerToken({})", self.to_hex())
    }
}

/// splitmix64's finalizer: a bijection on `u64` that scatters consecutive inputs.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
