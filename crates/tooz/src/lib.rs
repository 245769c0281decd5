//! # tooz — distributed coordination for Rust
//!
//! Processes join **groups** (membership kept alive by heartbeats, with capabilities attached),
//! elect **leaders**, take **locks** that come with fencing tokens and loss signals, and share
//! work through a consistent **hash ring**. One API over many backends, chosen by URL, and
//! interoperable with Python [tooz] 9.1.0 on the same backend: same keys and paths, same msgpack
//! encoding of capabilities, same hash-ring placements.
//!
//! ```
//! use std::time::Duration;
//! use tooz::{Coordinator, GroupEvent};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> tooz::Result<()> {
//! let a = Coordinator::connect("memory://tour", "a").await?;
//! let b = Coordinator::connect("memory://tour", "b").await?;
//!
//! // Groups, with capabilities encoded exactly as Python tooz encodes them.
//! a.join_group_create("workers", serde_json::json!({"weight": 2})).await?;
//! let mut events = a.watch("workers").await?;
//! b.join_group("workers", serde_json::json!({"weight": 1})).await?;
//! let event = events.next().await.unwrap()?;
//! assert_eq!(event, GroupEvent::Joined { group: "workers".into(), member: "b".into() });
//!
//! // Leader election: exactly one leader, with a fencing token per term.
//! let leadership = a.campaign("workers").await?;
//! assert_eq!(b.leader("workers").await?, Some("a".into()));
//! assert!(b.try_campaign("workers").await?.is_none());
//!
//! // Locks: exclusive, fenced, and with a loss signal.
//! let guard = a.lock("migration").acquire().await?;
//! assert!(b.lock("migration").try_acquire().await?.is_none());
//! let first = guard.token();
//! guard.release().await?;
//! let guard = b.lock("migration").acquire_timeout(Duration::from_secs(1)).await?;
//! assert!(guard.token() > first);
//! tokio::select! {
//!     () = guard.lost() => unreachable!("b still holds it"),
//!     () = tokio::time::sleep(Duration::from_millis(10)) => {}
//! }
//!
//! leadership.resign().await?;
//! a.stop().await?;
//! b.stop().await
//! # }
//! ```
//!
//! ## Backends
//!
//! | URL | backend | feature | liveness | status |
//! |---|---|---|---|---|
//! | `memory://NAME` | in-process store shared by every coordinator of the process using `NAME` | always on | session lease (`timeout`, default 10 s) | available |
//! | `file:///DIR` | local directory, tooz's file driver layout, shared with Python tooz | `file` (default) | member file mtime + kernel locks | available |
//! | `redis://`, `rediss://`, `redis:///path.sock` | Redis (single, or Sentinel with `?sentinel=MASTER`), tooz's key layout, shared with Python tooz | `redis` (`redis-tls` for `rediss://`) | key TTLs renewed by heartbeats | available |
//! | `etcd3+http://`, `etcd3+https://`, `etcd://` | etcd v3 | `etcd` | leases | planned |
//! | `zookeeper://`, `kazoo://` | ZooKeeper | `zookeeper` | session, ephemeral nodes | planned |
//! | `postgresql://` | PostgreSQL | `postgres` | session advisory locks | planned |
//! | `mysql://` | MySQL / MariaDB | `mysql` | `GET_LOCK` | planned |
//! | `memcached://` | memcached | `memcached` | item expiry | planned |
//!
//! A planned scheme is refused by [`Coordinator::connect`] with [`Error::InvalidUrl`] naming the
//! backend. URL options keep tooz's names and defaults; an unknown option is an error that lists
//! the valid ones ([`Error::UnknownOption`]), and a password in a URL never appears in `Debug`,
//! `Display`, errors or logs.
//!
//! ## Cargo features
//!
//! | feature | default | enables |
//! |---|---|---|
//! | *(always)* | — | the API, `memory://`, the [`HashRing`] and [`Partitioner`] |
//! | `file` | yes | `file:///DIR` ([`drivers::file`]) |
//! | `redis` | no | `redis://` (`drivers::redis`, with the `redis` crate) |
//! | `redis-tls` | no | `rediss://` and `ssl=true` (rustls) |
//!
//! Each backend arrives behind its own feature, so a build carries only the clients it uses.
//!
//! ## Guarantees
//!
//! * **Fencing tokens.** Every lock grant and every leadership term carries a [`FencingToken`],
//!   strictly increasing per lock name (per group for leadership) across all holders.
//! * **Loss signals.** Every [`LockGuard`], [`Membership`] and [`Leadership`] has `lost()`, a
//!   future that resolves when it is no longer held, and `is_held()`/`is_active()`, which turn
//!   false at a *local* deadline (90% of the backend's timeout, counted from when the renewing
//!   heartbeat was sent), before the backend can have given it to someone else. Nothing is
//!   ever silently re-taken.
//! * **Bounded waits.** Every backend call is bounded by the coordinator's operation timeout
//!   (30 s by default, see [`CoordinatorBuilder::operation_timeout`]).
//! * **Honest capabilities.** What a backend does not offer returns [`Error::Unsupported`];
//!   [`Coordinator::supported`] and [`Coordinator::characteristics`] say so up front.
//! * **Names are data.** Group ids, member ids and lock names are byte strings of 1 to
//!   [`MAX_NAME_LEN`] bytes; no name is ever interpreted as path or key syntax.
//!
//! [tooz]: https://opendev.org/openstack/tooz

pub mod backend;
mod capabilities;
mod characteristics;
mod clock;
mod coordinator;
pub mod drivers;
mod election;
mod error;
mod hashring;
mod heartbeat;
mod ids;
mod lock;
mod membership;
pub mod options;
mod partitioner;
mod run_to_end;
mod scheme;
mod session;
mod wait;
mod watch;

pub use capabilities::{
    Capabilities, MAX_CAPABILITIES_DEPTH, MAX_CAPABILITIES_LEN, OSLO_DATETIME_EXT, OsloDateTime,
};
pub use characteristics::{Characteristic, Characteristics};
pub use coordinator::{
    Coordinator, CoordinatorBuilder, DEFAULT_OPERATION_TIMEOUT, DEFAULT_WATCH_INTERVAL, Supported,
};
pub use election::Leadership;
pub use error::{BoxError, Error, Result};
pub use hashring::{DEFAULT_PARTITIONS, HashFunction, HashRing, Placement};
pub use ids::{GroupId, LockName, MAX_NAME_LEN, MemberId};
pub use lock::{FencingToken, Lock, LockGuard};
pub use membership::Membership;
pub use partitioner::{PartitionKey, Partitioner, RawKey};
pub use watch::{GroupEvent, GroupWatch};

/// The msgpack value type capabilities are made of (re-exported from `rmpv`).
pub use rmpv::Value as MsgpackValue;
