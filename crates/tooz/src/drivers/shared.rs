//! Pieces the in-process parts of several drivers share.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::watch;

use crate::backend::ChangeHint;
#[cfg(any(
    feature = "postgres",
    feature = "mysql",
    feature = "etcd",
    feature = "zookeeper"
))]
use crate::error::Error;
#[cfg(any(
    feature = "redis",
    feature = "postgres",
    feature = "mysql",
    feature = "etcd",
    feature = "zookeeper"
))]
use crate::ids::GroupId;
#[cfg(any(
    feature = "postgres",
    feature = "mysql",
    feature = "etcd",
    feature = "zookeeper"
))]
use crate::options::RedactedUrl;

/// Process-wide objects by name, alive while anyone holds them (an in-memory store by its
/// URL name, a directory's change notifier by its path).
#[derive(Debug)]
pub(crate) struct Registry<T> {
    map: Mutex<BTreeMap<String, Weak<T>>>,
}

impl<T> Registry<T> {
    pub(crate) const fn new() -> Self {
        Self {
            map: Mutex::new(BTreeMap::new()),
        }
    }

    /// The live object named `key`, or a new one from `make`.
    pub(crate) fn get_or_make(&self, key: &str, make: impl FnOnce() -> T) -> Arc<T> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(found) = map.get(key).and_then(Weak::upgrade) {
            return found;
        }
        map.retain(|_, weak| weak.strong_count() > 0);
        let made = Arc::new(make());
        map.insert(key.to_owned(), Arc::downgrade(&made));
        made
    }
}

/// A change counter: everything that changes shared state bumps it, and waiters subscribe
/// before they check, so a change between their check and their wait still wakes them.
#[derive(Debug)]
pub(crate) struct Changes(watch::Sender<u64>);

impl Default for Changes {
    fn default() -> Self {
        Self(watch::Sender::new(0))
    }
}

impl Changes {
    pub(crate) fn notify(&self) {
        self.0.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// A hint that resolves at the next change (or when the notifier is gone).
    pub(crate) fn hint(&self) -> ChangeHint {
        let mut changes = self.0.subscribe();
        Box::pin(async move {
            let _ = changes.changed().await;
        })
    }

    #[cfg(any(
        feature = "file",
        feature = "redis",
        feature = "postgres",
        feature = "mysql"
    ))]
    /// A hint that resolves at the next change we hear of, or after `poll` at the latest, for
    /// backends where others change things without telling us (another process, Python tooz).
    pub(crate) fn hint_or_poll(&self, poll: std::time::Duration) -> ChangeHint {
        let announced = self.hint();
        Box::pin(async move {
            tokio::select! {
                () = announced => {}
                () = tokio::time::sleep(poll) => {}
            }
        })
    }
}

/// A listed member with its capabilities decoded from `data`; `None` (logged) if they cannot
/// be: someone else's bad data must not break the listing for everyone.
#[cfg(any(
    feature = "redis",
    feature = "postgres",
    feature = "mysql",
    feature = "etcd",
    feature = "zookeeper"
))]
pub(crate) fn decoded_member(
    backend: &'static str,
    group: &GroupId,
    member: crate::ids::MemberId,
    data: &[u8],
) -> Option<(crate::ids::MemberId, crate::capabilities::Capabilities)> {
    match crate::capabilities::Capabilities::decode(data) {
        Ok(caps) => Some((member, caps)),
        Err(e) => {
            tracing::warn!(
                backend,
                group = %group,
                member = %member,
                error = %e,
                "skipping a member whose capabilities cannot be decoded"
            );
            None
        }
    }
}

/// The error for a step that `server` did not answer within `bound`: `Connection`, naming
/// the step and the server (its URL, password hidden).
#[cfg(any(
    feature = "postgres",
    feature = "mysql",
    feature = "etcd",
    feature = "zookeeper"
))]
pub(crate) fn timed_out(
    backend: &'static str,
    server: &RedactedUrl,
    what: &str,
    bound: std::time::Duration,
) -> Error {
    Error::Connection {
        backend,
        source: format!("{what}: {server} did not answer within {bound:?}").into(),
    }
}

/// Runs a driver's step, bounded by `bound` (its `timeout` option): past it, [`timed_out`].
#[cfg(any(feature = "postgres", feature = "mysql", feature = "etcd"))]
pub(crate) async fn bounded<T, E: Into<Error>>(
    backend: &'static str,
    server: &RedactedUrl,
    bound: std::time::Duration,
    what: &str,
    step: impl Future<Output = Result<T, E>>,
) -> crate::error::Result<T> {
    match tokio::time::timeout(bound, step).await {
        Ok(result) => result.map_err(Into::into),
        Err(_) => Err(timed_out(backend, server, what, bound)),
    }
}

/// The error for a group change that touched nothing: `GroupNotCreated` if the group is
/// missing (as `exists`, asked afterwards, found), `otherwise` if it is there.
#[cfg(any(
    feature = "postgres",
    feature = "mysql",
    feature = "etcd",
    feature = "zookeeper"
))]
pub(crate) fn missing_group_or(
    exists: crate::error::Result<bool>,
    group: &GroupId,
    otherwise: Error,
) -> Error {
    match exists {
        Ok(false) => Error::GroupNotCreated {
            group: group.clone(),
        },
        Ok(true) => otherwise,
        Err(e) => e,
    }
}
