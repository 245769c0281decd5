//! A synchronous API over the async one, for programs without an async runtime (feature
//! `blocking`), in the manner of `reqwest::blocking`.
//!
//! Every [`Coordinator`] here owns a small tokio runtime with a single worker thread, shared by
//! its clones and by every handle made from it. That thread keeps the coordinator alive
//! between calls — heartbeats, the local deadlines that fire loss signals, watches and
//! partitioner rings go on while your thread does something else — and each call runs on the
//! calling thread, blocked until it finishes, so calls from many threads do not queue behind
//! one another. The methods have the names and arguments of [`crate::Coordinator`]'s, and the
//! same guarantees; only `.await` is gone.
//!
//! ```
//! use std::time::Duration;
//! use tooz::GroupEvent;
//! use tooz::blocking::Coordinator;
//!
//! let a = Coordinator::connect("memory://blocking-module-doc", "a")?;
//! let b = Coordinator::connect("memory://blocking-module-doc", "b")?;
//!
//! // Groups; a watch is an iterator of events.
//! a.join_group_create("workers", serde_json::json!({"weight": 2}))?;
//! let mut events = a.watch("workers")?;
//! b.join_group("workers", serde_json::json!({"weight": 1}))?;
//! let event = events.next().unwrap()?;
//! assert_eq!(event, GroupEvent::Joined { group: "workers".into(), member: "b".into() });
//!
//! // Leader election.
//! let leadership = a.campaign("workers")?;
//! assert_eq!(b.leader("workers")?, Some("a".into()));
//! assert!(b.try_campaign("workers")?.is_none());
//!
//! // Locks, with fencing tokens and a loss signal to wait on.
//! let guard = a.lock("migration").acquire()?;
//! assert!(b.lock("migration").try_acquire()?.is_none());
//! let first = guard.token();
//! guard.release()?;
//! let guard = b.lock("migration").acquire_timeout(Duration::from_secs(1))?;
//! assert!(guard.token() > first);
//! assert!(!guard.wait_lost(Duration::from_millis(10)));
//! drop(guard); // released before `drop` returns
//! assert!(a.lock("migration").try_acquire()?.is_some());
//!
//! leadership.resign()?;
//! a.stop()?;
//! b.stop()?;
//! # Ok::<(), tooz::Error>(())
//! ```
//!
//! ## Inside an async runtime
//!
//! Blocking a runtime's thread stalls every task on it, so every call that would block
//! returns [`Error::BlockingInsideRuntime`](crate::Error::BlockingInsideRuntime) there
//! instead (never a panic): on any thread with a tokio context, which includes
//! `spawn_blocking` threads and code under `Runtime::enter`. Use the async API there;
//! [`Coordinator::async_coordinator`] reaches it on the same session. What answers without
//! blocking (`is_held`, `member_id`, `members_for`, ...) works everywhere, and `wait_lost`
//! answers there at once, without waiting.
//!
//! ## Dropping
//!
//! A dropped [`LockGuard`] or [`Leadership`] hands itself back before `drop` returns, so that
//! the next waiter gets it at once (a drop blocks for at most the smaller of the operation
//! and membership timeouts; what is not handed back by then expires on the backend). Inside
//! an async runtime it is handed back in the background instead. A dropped [`Membership`]
//! stays in its group, as in the async API. Dropping anything is safe everywhere, inside a
//! runtime too: the runtime thread ends with the last handle of its coordinator, without
//! blocking. As with the async API, a coordinator dropped without [`Coordinator::stop`]
//! leaves what it held to expire on the backend.

mod coordinator;
mod election;
mod group;
mod lock;
mod runtime;

pub use coordinator::{Coordinator, CoordinatorBuilder};
pub use election::Leadership;
pub use group::{GroupWatch, Membership, Partitioner};
pub use lock::{Lock, LockGuard};
