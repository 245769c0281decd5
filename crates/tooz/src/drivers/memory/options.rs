//! Options of a `memory://NAME` URL (the table is on [`MemoryOptions`]).

use std::time::Duration;

use url::Url;

use super::NAME;
use crate::error::Result;
use crate::options::UrlOptions;

const OPTIONS: &[&str] = &["timeout", "groups", "elections", "shared_locks", "latency"];
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Options of a `memory://NAME` URL:
///
/// | option | default | meaning |
/// |---|---|---|
/// | `timeout` | `10` | seconds a session lives without a heartbeat |
/// | `groups` | `true` | offer group membership (`false` emulates a lock-only backend) |
/// | `elections` | `true` | offer leader election |
/// | `shared_locks` | `true` | offer shared locks |
/// | `latency` | `0` | simulated round trip: every call waits half of it before touching the store and half after, as a request and its reply would (for testing timeouts and cancelled calls) |
#[derive(Debug, Clone)]
pub struct MemoryOptions {
    /// The store's name: coordinators with the same name share it.
    pub name: String,
    /// How long a session lives without a heartbeat.
    pub timeout: Duration,
    /// Offer group membership.
    pub groups: bool,
    /// Offer leader election.
    pub elections: bool,
    /// Offer shared locks.
    pub shared_locks: bool,
    /// Simulated round trip of every call.
    pub latency: Duration,
}

impl MemoryOptions {
    /// Reads a `memory://NAME?options` URL.
    pub fn from_url(url: &Url) -> Result<Self> {
        let options = UrlOptions::parse(NAME, url, OPTIONS)?;
        let timeout = options.duration("timeout", DEFAULT_TIMEOUT)?;
        if timeout.is_zero() {
            return Err(options.invalid("timeout", "0", "must be greater than zero"));
        }
        Ok(Self {
            name: format!("{}{}", url.host_str().unwrap_or(""), url.path()),
            timeout,
            groups: options.bool("groups", true)?,
            elections: options.bool("elections", true)?,
            shared_locks: options.bool("shared_locks", true)?,
            latency: options.duration("latency", Duration::ZERO)?,
        })
    }
}
