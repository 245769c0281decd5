//! Blocking leadership: [`Leadership`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::runtime::{Runtime, refuse_inside_runtime};
use crate::error::{Error, Result};
use crate::{FencingToken, GroupId};

/// Being the leader of a group, won by
/// [`Coordinator::campaign`](super::Coordinator::campaign). Dropping it resigns before `drop`
/// returns (inside an async runtime, in the background); call [`Leadership::resign`] to know
/// that it was handed back.
pub struct Leadership {
    group: GroupId,
    token: FencingToken,
    /// `None` once resigned or dropped. Handed back in `Drop`, before `runtime` goes.
    leadership: Option<crate::Leadership>,
    hand_back: Duration,
    runtime: Arc<Runtime>,
}

impl Leadership {
    pub(super) fn new(
        leadership: crate::Leadership,
        hand_back: Duration,
        runtime: Arc<Runtime>,
    ) -> Self {
        Self {
            group: leadership.group().clone(),
            token: leadership.token(),
            leadership: Some(leadership),
            hand_back,
            runtime,
        }
    }

    /// The group led.
    pub fn group(&self) -> &GroupId {
        &self.group
    }

    /// This term's fencing token: strictly increasing across the group's leaders.
    pub fn token(&self) -> FencingToken {
        self.token
    }

    /// Whether we still lead, as far as we can know without asking the backend.
    pub fn is_held(&self) -> bool {
        self.leadership
            .as_ref()
            .is_some_and(crate::Leadership::is_held)
    }

    /// Waits at most `timeout` for this leadership to end (session expired, taken over,
    /// coordinator stopped); true if it did, at once if it already had. Inside an async
    /// runtime it cannot wait, and answers `!is_held()` at once.
    pub fn wait_lost(&self, timeout: Duration) -> bool {
        let Some(leadership) = &self.leadership else {
            return true;
        };
        if !leadership.is_held() {
            return true;
        }
        self.runtime
            .wait(timeout, leadership.lost())
            .unwrap_or_else(|| !leadership.is_held())
    }

    /// Stands down so that another member can be elected.
    /// [`Error::LockNotHeld`] if the leadership had been lost meanwhile. Inside an async
    /// runtime: [`Error::BlockingInsideRuntime`], and the leadership is resigned in the
    /// background as if it had been dropped.
    pub fn resign(mut self) -> Result<()> {
        refuse_inside_runtime("resign")?;
        let Some(leadership) = self.leadership.take() else {
            return Err(Error::LockNotHeld {
                lock: self.group.as_bytes().into(),
            });
        };
        self.runtime.call("resign", leadership.resign())
    }
}

impl Drop for Leadership {
    fn drop(&mut self) {
        // The async leadership's own drop would resign too, but in a task nobody waits for:
        // the next campaigner would find us still leading for a moment.
        if let Some(leadership) = self.leadership.take() {
            let resign = crate::Leadership::resign;
            self.runtime
                .hand_back_dropped("resign", leadership, self.hand_back, resign);
        }
    }
}

impl fmt::Debug for Leadership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Leadership")
            .field("group", &self.group)
            .field("token", &self.token)
            .field("held", &self.is_held())
            .finish()
    }
}
