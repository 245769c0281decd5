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
//! | `memcached://HOST[:PORT]` | memcached 1.6+, tooz's key layout, shared with Python tooz; locks owned by CAS, fencing tokens best effort (`drivers::memcached`) | `memcached` | item TTLs renewed by heartbeats | available |
//! | `etcd3+http://`, `etcd3+https://`, `etcd://` | etcd v3 (TLS with `etcd-tls`): tooz's key layout, shared with Python tooz; locks fenced by the key's create revision, our waiters queued in arrival order, watches pushed by etcd (`drivers::etcd`) | `etcd` | one session lease per coordinator, renewed by heartbeats | available |
//! | `zookeeper://`, `kazoo://` | ZooKeeper 3.5+ (one host or a list, a chroot, digest login, TLS with `zookeeper-tls`): tooz's kazoo layout, shared with Python tooz; kazoo's lock recipe (Python's locks and ours exclude each other; waiters queued, each watching only its predecessor), locks fenced by the contender node's czxid, watches pushed by ZooKeeper (`drivers::zookeeper`) | `zookeeper` | the ZooKeeper session: members and contenders are its ephemeral nodes | available |
//! | `postgresql://`, `postgres://` | PostgreSQL 14+: session advisory locks on keys the server assigns per name (no collisions), durable fencing counters, groups and elections in tables (`drivers::postgres`) | `postgres` | the session (bounded by `idle_session_timeout`), rows timed by the server's clock | available |
//! | `mysql://` | MySQL 5.7.5+ / MariaDB 10.0.2+: `GET_LOCK` on tooz's lock names (Python tooz's locks exclude ours), durable fencing counters, waits queued on the server, groups and elections in tables (`drivers::mysql`) | `mysql` | the connection (bounded by `wait_timeout`), rows timed by the server's clock | available |
//!
//! This table is [`REGISTRATIONS`] (a test holds the two together). A planned scheme is refused
//! by [`Coordinator::connect`] with [`Error::InvalidUrl`] naming the backend; a backend whose
//! cargo feature is off in this build, with [`Error::FeatureNotEnabled`] naming the feature. URL options keep tooz's names and defaults; an unknown option is an error that lists
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
//! | `memcached` | no | `memcached://` (`drivers::memcached`, a meta-protocol client of its own) |
//! | `memcached-tls` | no | `use_ssl=true` on `memcached://` (rustls; the server is always verified against `ca_cert`) |
//! | `postgres` | no | `postgresql://` (`drivers::postgres`, with `tokio-postgres`) |
//! | `postgres-tls` | no | `sslmode=require`, `verify-ca`, `verify-full` on `postgresql://` (rustls; the server is always verified against `sslrootcert`) |
//! | `etcd` | no | `etcd3+http://` (`drivers::etcd`, with `etcd-client`; its build needs `protoc`) |
//! | `etcd-tls` | no | `etcd3+https://` with `ca_cert` (rustls; the servers are always verified against it, names included), `cert_cert`, `cert_key` |
//! | `mysql` | no | `mysql://` (`drivers::mysql`, with `mysql_async`, pure Rust) |
//! | `mysql-tls` | no | `ssl_ca`, `ssl_cert`, `ssl_key` on `mysql://` (rustls; the server is always verified against `ssl_ca`, its name always checked) |
//! | `zookeeper` | no | `zookeeper://`, `kazoo://` (`drivers::zookeeper`, with `zookeeper-client`, pure Rust) |
//! | `zookeeper-tls` | no | `use_ssl=true` with `ca` (the servers are always verified against it, names included), `certfile`, `keyfile` on `zookeeper://` (rustls with the ring provider) |
//! | `blocking` | no | `tooz::blocking`: the same API without async, one runtime thread per coordinator |
//! | `metrics` | no | metrics through the `metrics` facade (see *Observability*) |
//!
//! Each backend arrives behind its own feature, so a build carries only the clients it uses.
//!
//! ## Guarantees
//!
//! * **Fencing tokens.** Every lock grant and every leadership term carries a [`FencingToken`],
//!   strictly increasing per lock name (per group for leadership) across all holders. On
//!   Redis a token is the larger of the counter plus one and the server's clock in
//!   microseconds, so a restart that lost the counter (no persistence) or a failover to a
//!   replica that missed the last increment never hands out a smaller token; what remains
//!   assumed is that the servers' clocks do not step back. On `file://` the counter lives in
//!   the lock file (it survives process crashes, not an operating-system crash).
//! * **Loss signals.** Every [`LockGuard`], [`Membership`] and [`Leadership`] has `lost()`, a
//!   future that resolves when it is no longer held, and `is_held()`/`is_active()`, which turn
//!   false at a *local* deadline, before the backend can have given it to someone else: 90% of
//!   the backend's timeout, counted for each lock and leadership from when the request that
//!   took it, or the last heartbeat that renewed *that grant*, was sent (for memberships, from
//!   the last heartbeat sent). The deadline is watched even while a heartbeat hangs on a
//!   partitioned connection. [`Coordinator::expiry_margin`] says how much time is left between
//!   the two. Nothing is ever silently re-taken: a membership given up locally is also left on
//!   the backend at the next chance, so peers never list a member that believes it is gone.
//! * **Cancellation.** A caller that stops waiting for an acquire, campaign or join (a
//!   `select!`, a timeout) never leaves a grant held with no handle: the call finishes in the
//!   background and hands back what it took. [`Coordinator::stop`] racing a grant ends with it
//!   handed back.
//! * **Waiting for a lock.** A waiter is woken by the release itself, not by polling, and a
//!   releaser that asks again at once never takes the lock back ahead of a waiter, on every
//!   backend but PostgreSQL and memcached ([`Supported::queued_lock_waits`]). The order each
//!   backend serves waiters in:
//!   * `memory://`, `redis://`, `etcd`, `zookeeper://`: arrival order (an in-process queue;
//!     a queue beside the Redis key, whose release hands the lock to the first live waiter in
//!     the same script and tells that waiter alone; etcd queue keys and kazoo's sequence
//!     nodes, each waiter watching only the one before it).
//!   * `mysql://`: the server's own queue for `GET_LOCK`.
//!   * `file://`: the kernel's: waiters block in `F_OFD_SETLKW` (on threads kept for reuse)
//!     and Linux hands a released lock to one of them, roughly in arrival order.
//!   * `postgresql://`, `memcached://`: none — a release is announced (PostgreSQL's `NOTIFY`)
//!     or not (memcached), and waiters try again with jittered back-off and race.
//!
//!   Python tooz's waiters poll (except on ZooKeeper, where they join the same queue, and on
//!   MySQL and PostgreSQL, where they wait on the server): they still get a lock we release,
//!   and we get one they release. `scripts/bench contention` measures all of this.
//! * **Bounded waits.** Every backend call is bounded by the coordinator's operation timeout
//!   (30 s by default, see [`CoordinatorBuilder::operation_timeout`]).
//! * **Honest capabilities.** What a backend does not offer returns [`Error::Unsupported`];
//!   [`Coordinator::supported`] and [`Coordinator::characteristics`] say so up front.
//! * **Names are data.** Group ids, member ids and lock names are byte strings of 1 to
//!   [`MAX_NAME_LEN`] bytes; no name is ever interpreted as path or key syntax.
//!
//! ## Observability
//!
//! Spans (`tracing`, at DEBUG, heartbeats at TRACE, so that a healthy run is quiet at the
//! usual INFO): `tooz.connect`, `tooz.acquire` (fields `backend`, `lock`, `mode`, and once
//! granted `token`, `waited_us`, `attempts`), `tooz.hold` (open from the grant to its
//! hand-back: its duration is the hold time), `tooz.join`, `tooz.leave`, `tooz.campaign`,
//! `tooz.lead`, `tooz.heartbeat`. Warnings say what went wrong (a failed heartbeat, a loss,
//! a skipped malformed entry). No field ever carries a URL's password.
//!
//! With the `metrics` feature, the recorder a program installs receives:
//!
//! | metric | kind | labels | what |
//! |---|---|---|---|
//! | `tooz_lock_acquisitions_total` | counter | `backend` | locks granted |
//! | `tooz_lock_contended_total` | counter | `backend` | grants that waited for another holder |
//! | `tooz_lock_wait_seconds` | histogram | `backend` | from the call to the grant |
//! | `tooz_lock_hold_seconds` | histogram | `backend` | from the grant to its hand-back |
//! | `tooz_heartbeat_seconds` | histogram | `backend` | one heartbeat's round trip |
//! | `tooz_renewals_total` | counter | `backend` | grants and memberships heartbeats renewed |
//! | `tooz_renewal_failures_total` | counter | `backend` | heartbeats that failed |
//! | `tooz_losses_total` | counter | `kind`: `lock`, `leadership`, `membership` | grants lost rather than handed back |
//! | `tooz_group_members` | gauge | `group` | members of a watched group, at the last look |
//!
//! Lock names are not labels (a program may use millions). A coordinator registers its
//! metrics when it connects: install the recorder before connecting.
//!
//! [tooz]: https://opendev.org/openstack/tooz

// Feature badges on docs.rs (nightly rustdoc); `scripts/test` builds them too.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod backend;
#[cfg(feature = "blocking")]
#[cfg_attr(docsrs, doc(cfg(feature = "blocking")))]
pub mod blocking;
mod capabilities;
mod characteristics;
mod clock;
mod coordinator;
pub mod drivers;
mod election;
mod error;
#[cfg(test)]
mod fuzz;
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
mod telemetry;
mod tokens;
mod wait;
mod watch;

pub use capabilities::{
    Capabilities, MAX_CAPABILITIES_DEPTH, MAX_CAPABILITIES_LEN, OSLO_DATETIME_EXT, OsloDateTime,
};
pub use characteristics::{Characteristic, Characteristics};
pub use coordinator::{
    Coordinator, CoordinatorBuilder, DEFAULT_OPERATION_TIMEOUT, DEFAULT_WATCH_INTERVAL,
    OpenBackend, Supported,
};
pub use election::Leadership;
pub use error::{BoxError, Error, Result};
pub use hashring::{DEFAULT_PARTITIONS, HashFunction, HashRing, Placement};
pub use ids::{GroupId, LockName, MAX_NAME_LEN, MemberId};
pub use lock::{Lock, LockGuard};
pub use membership::Membership;
pub use partitioner::{PartitionKey, Partitioner, RawKey};
pub use scheme::{BackendStatus, REGISTRATIONS, Registration};
pub use tokens::FencingToken;
pub use watch::{GroupEvent, GroupWatch};

/// The msgpack value type capabilities are made of (re-exported from `rmpv`).
pub use rmpv::Value as MsgpackValue;
