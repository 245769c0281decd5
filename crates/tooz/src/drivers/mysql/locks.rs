//! Locks on MySQL: `GET_LOCK` on tooz's names, a counter row per name for fencing, and
//! server-side waits on connections of their own.

use std::sync::{Arc, MutexGuard};

use sha2::{Digest, Sha256};

use super::link::{Failure, Link};
use super::{HeldLock, MysqlBackend, NAME, SPARES_KEPT, Wait, error, key};
use crate::backend::{FencingToken, LockMode, LockRequest, OwnerToken};
use crate::error::{Error, Result};
use crate::ids::LockName;

/// The start of the server's name of a lock whose own name it cannot take.
const MARKER: &str = "~tooz-sha256:";
/// The longest lock name MySQL takes, in characters.
const LONGEST_NAME: usize = 64;

/// How long a lock name the server takes may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NameLimit {
    /// MySQL: 64 characters, of its 3-byte UTF-8 (no character past U+FFFF).
    Mysql,
    /// MariaDB: 192 bytes (64 characters of its old 3-byte UTF-8).
    Mariadb,
}

impl NameLimit {
    fn admits(self, text: &str) -> bool {
        match self {
            Self::Mysql => {
                text.chars().count() <= LONGEST_NAME && text.chars().all(|c| c <= '\u{FFFF}')
            }
            Self::Mariadb => text.len() <= 3 * LONGEST_NAME,
        }
    }
}

/// The server's name for a lock: tooz's own name (so that Python tooz's locks and ours
/// exclude each other), unless the server cannot take it as it is — empty, not UTF-8, too
/// long for `limit`, or holding a NUL (the server ends the name there) — or it begins with
/// [`MARKER`] (in any case: MySQL folds case); then the marker and the first 51 hex digits of
/// the name's SHA-256, which no name taken as it is can equal.
pub(crate) fn server_name(name: &LockName, limit: NameLimit) -> String {
    let as_is = std::str::from_utf8(name.as_bytes()).ok().filter(|text| {
        !text.is_empty()
            && !text.contains('\0')
            && limit.admits(text)
            && !text
                .get(..MARKER.len())
                .is_some_and(|start| start.eq_ignore_ascii_case(MARKER))
    });
    if let Some(text) = as_is {
        return text.to_owned();
    }
    let digest = Sha256::digest(name.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{MARKER}{}", &hex[..LONGEST_NAME - MARKER.len()])
}

/// What one acquire statement settled.
enum Attempt {
    Granted(FencingToken),
    Refused,
}

impl MysqlBackend {
    /// The lock-name rule of the server we talk to (MySQL's, the stricter, until we know).
    fn name_limit(&self) -> NameLimit {
        match self.mariadb.get() {
            Some(true) => NameLimit::Mariadb,
            _ => NameLimit::Mysql,
        }
    }

    fn waiting(&self) -> MutexGuard<'_, std::collections::HashMap<OwnerToken, Wait>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs the acquire statement for `owner` on `link`, waiting up to `wait_secs` on the
    /// server. The lock is recorded as `owner`'s on `link` before the statement leaves, so
    /// that a caller who gives up meanwhile still hands back what it may have taken.
    async fn attempt(
        &self,
        link: &mut Link,
        request: &LockRequest<'_>,
        server_name: &str,
        wait_secs: u64,
    ) -> std::result::Result<Attempt, Failure> {
        self.held().insert(
            request.owner,
            HeldLock {
                server_name: server_name.to_owned(),
                generation: link.generation,
            },
        );
        let params = (
            key(request.name.as_bytes()),
            server_name.to_owned(),
            server_name.to_owned(),
            wait_secs,
        );
        let bound = self.options.timeout + std::time::Duration::from_secs(wait_secs);
        let what = if wait_secs == 0 {
            "acquiring a lock"
        } else {
            "waiting for a lock"
        };
        let outcome = link
            .run(&self.options, bound, what, &self.sql.acquire, params.into())
            .await;
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(failure) => {
                self.held().remove(&request.owner);
                return Err(failure);
            }
        };
        if outcome.affected == 0 {
            self.held().remove(&request.owner);
            return Ok(Attempt::Refused);
        }
        match outcome.insert_id.filter(|id| *id > 0) {
            Some(token) => Ok(Attempt::Granted(FencingToken::new(token))),
            None => {
                // Taken, but without its token: the connection goes (freeing the lock).
                self.held().remove(&request.owner);
                Err(Failure::Lost(error::unexpected(&format!(
                    "no fencing token for lock '{}'",
                    request.name
                ))))
            }
        }
    }

    pub(super) async fn take_lock(&self, request: LockRequest<'_>) -> Result<Option<FencingToken>> {
        if request.mode == LockMode::Shared {
            return Err(Error::Unsupported {
                operation: "shared locks",
                backend: NAME,
            });
        }
        let server_name = server_name(request.name, self.name_limit());
        {
            // First on the session, without waiting.
            let mut main = self.main.lock().await;
            let link = self.session(&mut main).await?;
            let generation = link.generation;
            match self.attempt(link, &request, &server_name, 0).await {
                Ok(Attempt::Granted(token)) => return self.still_held(request.owner, token),
                Ok(Attempt::Refused) if !request.wait => return Ok(None),
                Ok(Attempt::Refused) => {}
                Err(failure) => {
                    // What the statement did is not known: the session goes, and with it
                    // anything it may have taken (reported before it closes).
                    self.link_ended(generation);
                    main.take();
                    return Err(failure.into_error());
                }
            }
        }
        self.wait_on_spare(&request, &server_name).await
    }

    /// Waits for the lock on the server, on a connection of its own, for up to
    /// `lock_timeout`; a connection granted the lock holds it until it is released.
    async fn wait_on_spare(
        &self,
        request: &LockRequest<'_>,
        server_name: &str,
    ) -> Result<Option<FencingToken>> {
        let mut link = self.spare().await?;
        let generation = link.generation;
        {
            let mut waiting = self.waiting();
            if let Some(Wait::Abandoned) = waiting.remove(&request.owner) {
                // Its owner gave up while we were getting here.
                drop(waiting);
                self.keep_spare(link);
                return Ok(None);
            }
            waiting.insert(request.owner, Wait::On(link.id()));
        }
        let wait_secs = self.options.lock_timeout.as_secs().max(1);
        let attempt = self
            .attempt(&mut link, request, server_name, wait_secs)
            .await;
        self.waiting().remove(&request.owner);
        match attempt {
            Ok(Attempt::Granted(token)) => {
                if self.stopped.load(std::sync::atomic::Ordering::Acquire) {
                    // Stopped meanwhile: closing the connection gives the lock back.
                    self.held().remove(&request.owner);
                    link.close(&self.options).await;
                    return Err(Error::Stopped);
                }
                self.pinned()
                    .insert(generation, Arc::new(tokio::sync::Mutex::new(Some(link))));
                self.still_held(request.owner, token)
            }
            Ok(Attempt::Refused) => {
                self.keep_spare(link);
                Ok(None)
            }
            // The waiter gave up; whatever the server granted before the interruption goes
            // with the connection.
            Err(Failure::Interrupted) => Ok(None),
            Err(failure) => Err(failure.into_error()),
        }
    }

    /// An idle connection for a waiting acquire (one the server may have ended for
    /// idleness is closed instead).
    async fn spare(&self) -> Result<Link> {
        loop {
            let spare = self.spares.lock().unwrap_or_else(|e| e.into_inner()).pop();
            match spare {
                Some(link) if link.maybe_expired(&self.options) => {
                    link.close(&self.options).await;
                }
                Some(link) => return Ok(link),
                None => return self.open_link().await,
            }
        }
    }

    fn keep_spare(&self, link: Link) {
        let mut spares = self.spares.lock().unwrap_or_else(|e| e.into_inner());
        if spares.len() < SPARES_KEPT && !self.stopped.load(std::sync::atomic::Ordering::Acquire) {
            spares.push(link);
        }
    }

    /// A grant, unless its connection was reported ended while the answer came back (the
    /// watcher's loss would then have reached nobody): then it is in doubt, and handed back.
    fn still_held(&self, owner: OwnerToken, token: FencingToken) -> Result<Option<FencingToken>> {
        let generation = self.held().get(&owner).map(|h| h.generation);
        // (A connection the watcher gave up counts as ended: a grant on it is not handed out.)
        if generation.is_some_and(|g| !self.shared.has_ended(g)) {
            Ok(Some(token))
        } else {
            Err(Error::Connection {
                backend: NAME,
                source: "the connection holding the lock ended as it was granted".into(),
            })
        }
    }

    /// Cuts the server-side wait of `owner`, if it is waiting, and keeps one that has not
    /// begun yet from beginning.
    pub(super) async fn cut_wait(&self, owner: OwnerToken) -> Result<()> {
        let id = {
            let mut waiting = self.waiting();
            match waiting.get(&owner).copied() {
                Some(Wait::On(id)) => id,
                Some(Wait::Abandoned) => return Ok(()),
                None => {
                    waiting.insert(owner, Wait::Abandoned);
                    return Ok(());
                }
            }
        };
        // An id the server gave us, not input: nothing to escape. (KILL takes no parameter.)
        let kill = format!("KILL QUERY {id}");
        match self
            .on_main("cutting a wait", &kill, mysql_async::Params::Empty)
            .await
        {
            // The wait had already ended and its connection is gone.
            Err(Error::Backend { .. }) => Ok(()),
            other => other.map(drop),
        }
    }

    pub(super) async fn release_lock(&self, name: &LockName, owner: OwnerToken) -> Result<bool> {
        let Some(held) = self.held().remove(&owner) else {
            return Ok(false);
        };
        let params = || (held.server_name.clone(),).into();
        let on_main = {
            let mut main = self.main.lock().await;
            match main.as_mut() {
                Some(link) if link.generation == held.generation => {
                    let release = link
                        .run(
                            &self.options,
                            self.options.timeout,
                            "releasing a lock",
                            &self.sql.release,
                            params(),
                        )
                        .await;
                    if release.is_err() {
                        main.take();
                    }
                    Some(release)
                }
                _ => None,
            }
        };
        let release = match on_main {
            Some(release) => release,
            None => {
                let pinned = self.pinned().get(&held.generation).map(Arc::clone);
                match pinned {
                    Some(pinned) => self.release_pinned(&held, &pinned, params()).await,
                    // Its connection is gone, and the lock with it.
                    None => return Ok(false),
                }
            }
        };
        let outcome = match release {
            Ok(outcome) => outcome,
            Err(Failure::Refused(e)) => return Err(e),
            // The connection failed: the server frees the lock with it (at once, or after
            // `wait_timeout` if it cannot hear us), so it is no longer ours.
            Err(_) => {
                self.link_ended(held.generation);
                return Ok(false);
            }
        };
        self.shared.lock_changes.notify();
        let released = outcome
            .rows
            .first()
            .map(|row| super::column::<Option<i64>>(row, 0))
            .transpose()?
            .flatten()
            == Some(1);
        if !released {
            tracing::warn!(backend = NAME, lock = %name, "a lock we held was not held by our connection");
        }
        Ok(released)
    }

    /// Releases a lock held on a pinned connection, which goes back to the spares.
    async fn release_pinned(
        &self,
        held: &HeldLock,
        pinned: &super::Pinned,
        params: mysql_async::Params,
    ) -> std::result::Result<super::Outcome, Failure> {
        let mut guard = pinned.lock().await;
        let Some(link) = guard.as_mut() else {
            return Err(Failure::Lost(error::unexpected("the connection is closed")));
        };
        let outcome = link
            .run(
                &self.options,
                self.options.timeout,
                "releasing a lock",
                &self.sql.release,
                params,
            )
            .await;
        // A pinned connection holds the one lock it waited for: released (or failed), it is
        // pinned no more.
        self.pinned().remove(&held.generation);
        if let Some(link) = guard.take()
            && outcome.is_ok()
        {
            self.keep_spare(link);
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_server_cannot_take_are_hashed_apart() {
        let name = |s: &[u8]| LockName::from(s.to_vec());
        let crab64 = "\u{1F980}".repeat(64);
        let crab48 = "\u{1F980}".repeat(48);
        assert_eq!(server_name(&name(b"plain"), NameLimit::Mysql), "plain");
        // (MySQL keeps lock names in 3-byte UTF-8: no character past U+FFFF as it is.)
        assert!(server_name(&name(crab64.as_bytes()), NameLimit::Mysql).starts_with(MARKER));
        let accents = "é".repeat(64);
        assert_eq!(
            server_name(&name(accents.as_bytes()), NameLimit::Mysql),
            accents
        );
        assert!(server_name(&name(crab64.as_bytes()), NameLimit::Mariadb).starts_with(MARKER));
        assert_eq!(
            server_name(&name(crab48.as_bytes()), NameLimit::Mariadb),
            crab48
        );
        let long = "x".repeat(100);
        assert_eq!(
            server_name(&name(long.as_bytes()), NameLimit::Mariadb),
            long
        );
        assert!(server_name(&name(long.as_bytes()), NameLimit::Mysql).starts_with(MARKER));
        for limit in [NameLimit::Mysql, NameLimit::Mariadb] {
            for hashed in [&b""[..], b"a\0b", b"\xff\xfe", b"~TOOZ-sha256:abc"] {
                let server = server_name(&name(hashed), limit);
                assert!(server.starts_with(MARKER), "{hashed:?}: {server}");
                assert_eq!(server.len(), LONGEST_NAME);
            }
            assert_ne!(
                server_name(&name(b"a\0b"), limit),
                server_name(&name(b"a\0c"), limit)
            );
        }
    }
}
