//! Leadership of a group, won by [`Coordinator::campaign`](crate::Coordinator::campaign).

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use crate::backend::FencingToken;
use crate::error::Result;
use crate::ids::GroupId;
use crate::lock::Grant;
use crate::{Coordinator, backend::OwnerToken};

/// Being the leader of a group. Dropping it resigns in the background (best effort); call
/// [`Leadership::resign`] to know that it was handed back.
pub struct Leadership {
    group: GroupId,
    grant: Grant,
}

impl Leadership {
    pub(crate) fn new(
        coord: Coordinator,
        group: GroupId,
        owner: OwnerToken,
        token: FencingToken,
        signal: Arc<crate::session::Signal>,
    ) -> Self {
        let hold = tracing::debug_span!(
            "tooz.lead",
            backend = coord.backend_name(),
            group = %group,
            token = token.get(),
        );
        Self {
            group,
            grant: Grant::new(coord, owner, token, signal, hold, false),
        }
    }

    /// The group led.
    pub fn group(&self) -> &GroupId {
        &self.group
    }

    /// This term's fencing token: strictly increasing across the group's leaders.
    pub fn token(&self) -> FencingToken {
        self.grant.token
    }

    /// Whether we still lead, as far as we can know without asking the backend.
    pub fn is_held(&self) -> bool {
        self.grant.is_held()
    }

    /// Resolves when this leadership ends: lost (session expired, taken over, coordinator
    /// stopped) or resigned.
    pub fn lost(&self) -> impl Future<Output = ()> + Send + 'static {
        self.grant.lost()
    }

    /// Stands down so that another member can be elected (tooz `stand_down_group_leader`,
    /// which only its ZooKeeper driver offers; every backend with elections can resign here).
    /// [`crate::Error::LockNotHeld`] if the leadership had been lost meanwhile.
    pub async fn resign(mut self) -> Result<()> {
        let was_held = self.grant.finish();
        let owner = self.grant.owner;
        let inner = Arc::clone(&self.grant.coord.inner);
        inner.session.remove(owner);
        inner.elections("resign")?;
        let group = self.group.clone();
        let call = async move { inner.elections("resign")?.resign(&group, owner).await };
        let resigned = self.grant.hand_back("resign", call).await?;
        Grant::handed_back(was_held, resigned, self.group.as_bytes().into())
    }
}

impl Drop for Leadership {
    fn drop(&mut self) {
        self.grant.coord.inner.session.remove(self.grant.owner);
        let group = self.group.clone();
        self.grant.drop_with(|inner, owner| async move {
            inner.resign_quietly(&group, owner).await;
        });
    }
}

impl fmt::Debug for Leadership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Leadership")
            .field("group", &self.group)
            .field("token", &self.grant.token)
            .field("held", &self.is_held())
            .finish()
    }
}
