//! A membership in a group, returned by [`Coordinator::join_group`](crate::Coordinator::join_group).

use std::fmt;
use std::future::Future;

use std::sync::Arc;

use crate::Coordinator;
use crate::error::Result;
use crate::ids::GroupId;
use crate::session::Signal;

/// Being a member of a group. Unlike a lock guard, dropping it does not leave the group
/// (tooz's memberships last until `leave_group` or `stop`); it only gives up watching.
pub struct Membership {
    coord: Coordinator,
    group: GroupId,
    signal: Arc<Signal>,
}

impl Membership {
    pub(crate) fn new(coord: Coordinator, group: GroupId, signal: Arc<Signal>) -> Self {
        Self {
            coord,
            group,
            signal,
        }
    }

    /// The group joined.
    pub fn group(&self) -> &GroupId {
        &self.group
    }

    /// Whether we are still a member, as far as we can know without asking the backend.
    pub fn is_active(&self) -> bool {
        self.signal.is_live() && self.coord.is_live()
    }

    /// Resolves when the membership ends: the member timed out (heartbeats did not reach the
    /// backend in time), was removed by someone else, left, or the coordinator stopped.
    pub fn lost(&self) -> impl Future<Output = ()> + Send + 'static {
        self.signal.lost().clone().cancelled_owned()
    }

    /// Leaves the group. A membership already lost is not left again:
    /// [`crate::Error::MemberNotJoined`], and a newer membership of the same group (joined
    /// after this one was lost) stays untouched.
    pub async fn leave(self) -> Result<()> {
        if self.signal.lost().is_cancelled() {
            return Err(crate::Error::MemberNotJoined {
                group: self.group.clone(),
                member: self.coord.member_id().clone(),
            });
        }
        self.coord.leave_group(self.group.clone()).await
    }
}

impl fmt::Debug for Membership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Membership")
            .field("group", &self.group)
            .field("active", &self.is_active())
            .finish()
    }
}
