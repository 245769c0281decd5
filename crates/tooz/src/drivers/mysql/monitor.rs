//! Watching the session. MySQL pushes nothing, and a connection ended on the server (`KILL`,
//! a crash, `wait_timeout`) is otherwise noticed only at its next statement. So the session
//! holds a sentinel lock of its own, and a watcher on a connection of its own waits for it:
//! when the server ends the session it frees the sentinel, the watcher is granted it, and the
//! session's locks are reported lost at once.

use std::sync::{Arc, Weak};
use std::time::Duration;

use super::link::{Failure, Link};
use super::{MysqlOptions, Shared, column, error};
use crate::backend::OwnerToken;
use crate::error::Result;

/// How long one wait of the watcher lasts on the server before it asks again: short enough
/// that no middlebox idle timeout (30 s is common) cuts the silent connection, which now ends
/// the session.
const WATCH_SLICE: Duration = Duration::from_secs(10);
/// Failed attempts in a row to connect after which the watcher leaves the rest to heartbeats.
const GIVE_UP_AFTER: u32 = 5;

/// Takes a sentinel lock on `session` and starts a watcher waiting for it.
pub(super) async fn watch(
    options: &MysqlOptions,
    shared: &Arc<Shared>,
    session: &mut Link,
) -> Result<()> {
    let sentinel = format!("~tooz-session:{}", OwnerToken::generate().to_hex());
    let taken = session
        .run(
            options,
            options.timeout,
            "watching the session",
            "SELECT GET_LOCK(?, 0)",
            (sentinel.clone(),).into(),
        )
        .await
        .map_err(Failure::into_error)?;
    let got = taken
        .rows
        .first()
        .map(|row| column::<Option<i64>>(row, 0))
        .transpose()?
        .flatten();
    if got != Some(1) {
        return Err(error::unexpected(
            "the session's sentinel lock was not granted",
        ));
    }
    let watcher = Watcher {
        options: options.clone(),
        shared: Arc::downgrade(shared),
        generation: session.generation,
        sentinel,
    };
    tokio::spawn(watcher.run());
    Ok(())
}

struct Watcher {
    options: MysqlOptions,
    shared: Weak<Shared>,
    generation: u64,
    sentinel: String,
}

impl Watcher {
    async fn run(self) {
        let mut link: Option<Link> = None;
        let mut failures = 0;
        while failures < GIVE_UP_AFTER && self.shared.strong_count() > 0 {
            let watching = match link.as_mut() {
                Some(watching) => watching,
                None => match Link::open(&self.options, None, 0).await {
                    Ok(opened) => link.insert(opened),
                    Err(_) => {
                        failures += 1;
                        tokio::time::sleep(Duration::from_secs(u64::from(failures))).await;
                        continue;
                    }
                },
            };
            let params = (self.sentinel.clone(), WATCH_SLICE.as_secs());
            let bound = WATCH_SLICE + self.options.timeout;
            let sql = "SELECT GET_LOCK(?, ?)";
            let answer = watching
                .run(
                    &self.options,
                    bound,
                    "watching the session",
                    sql,
                    params.into(),
                )
                .await;
            let granted = match answer {
                Ok(outcome) => {
                    outcome
                        .rows
                        .first()
                        .and_then(|row| column::<Option<i64>>(row, 0).ok())
                        .flatten()
                        == Some(1)
                }
                Err(_) => {
                    // The watch went blind, and what broke its connection (a reset, a cut path,
                    // a restarted server) has most likely broken the session's too: the server
                    // then frees the session's locks at once, while an idle session connection
                    // hears of it only at its next statement, a heartbeat away. Waiting that
                    // long let another process be granted a lock this one still believed held
                    // (scripts/torture, reset fault). So the session counts as ended: its locks
                    // are reported lost now, and its connection is replaced at the next use
                    // (closing it frees whatever the server still held on it). If only the
                    // watcher's connection broke, this costs a spurious loss, never a silent one.
                    // Connections pinned by waiting acquires go the same way: the fault that
                    // broke this one has most likely broken them too.
                    if let Some(shared) = self.shared.upgrade() {
                        let pinned: Vec<u64> = shared.pinned().keys().copied().collect();
                        for generation in pinned.into_iter().chain([self.generation]) {
                            shared.ended().insert(generation);
                            shared.link_ended(generation);
                        }
                    }
                    link = None;
                    break;
                }
            };
            if granted {
                // The session is over on the server: what it held is free there now.
                if let Some(shared) = self.shared.upgrade() {
                    shared.ended().insert(self.generation);
                    shared.link_ended(self.generation);
                }
                break;
            }
        }
        if let Some(link) = link {
            // Closing frees the sentinel, if it was granted.
            link.close(&self.options).await;
        }
    }
}
