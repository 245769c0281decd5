//! Group event streams, derived from membership snapshots: any backend with groups can be
//! watched, and backends that can push wake the poll early through their change hint.

use std::collections::BTreeSet;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::sleep;

use crate::backend::Topic;
use crate::coordinator::Coordinator;
use crate::error::{Error, Result};
use crate::ids::{GroupId, MemberId};
use crate::telemetry;

/// Buffered events before the watcher waits for its reader.
const BUFFER: usize = 256;

/// Something that happened in a group.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GroupEvent {
    /// A member joined (tooz `MemberJoinedGroup`).
    Joined {
        /// The group.
        group: GroupId,
        /// The member.
        member: MemberId,
    },
    /// A member left or timed out (tooz `MemberLeftGroup`).
    Left {
        /// The group.
        group: GroupId,
        /// The member.
        member: MemberId,
    },
    /// A member became the group's leader (tooz `LeaderElected`).
    LeaderElected {
        /// The group.
        group: GroupId,
        /// The new leader.
        member: MemberId,
    },
}

impl GroupEvent {
    /// The member the event is about.
    pub fn member(&self) -> &MemberId {
        match self {
            Self::Joined { member, .. }
            | Self::Left { member, .. }
            | Self::LeaderElected { member, .. } => member,
        }
    }
}

/// A stream of [`GroupEvent`]s (implements [`futures_core::Stream`]); polling stops when it
/// is dropped. A failed poll yields an `Err` item and watching goes on.
pub struct GroupWatch {
    events: mpsc::Receiver<Result<GroupEvent>>,
    task: JoinHandle<()>,
}

struct Snapshot {
    members: BTreeSet<MemberId>,
    leader: Option<MemberId>,
}

impl GroupWatch {
    pub(crate) async fn start(coord: Coordinator, group: GroupId) -> Result<Self> {
        // Prime first, so a missing group is an error now and existing members are not
        // reported as joins.
        let first = snapshot(&coord, &group).await?;
        let (tx, events) = mpsc::channel(BUFFER);
        let task = tokio::spawn(run(coord, group, first, tx));
        Ok(Self { events, task })
    }

    /// The next event; `None` once the coordinator has stopped.
    pub async fn next(&mut self) -> Option<Result<GroupEvent>> {
        self.events.recv().await
    }
}

async fn snapshot(coord: &Coordinator, group: &GroupId) -> Result<Snapshot> {
    let members = coord.members(group).await?;
    let leader = if coord.supported().elections {
        coord.leader(group).await?
    } else {
        None
    };
    Ok(Snapshot { members, leader })
}

async fn run(
    coord: Coordinator,
    group: GroupId,
    mut last: Snapshot,
    tx: mpsc::Sender<Result<GroupEvent>>,
) {
    let interval = coord.inner.config.watch_interval;
    loop {
        let hint = coord.inner.backend.change_hint(Topic::Group(&group));
        match hint {
            Some(hint) => {
                tokio::select! {
                    () = hint => {}
                    () = sleep(interval) => {}
                }
            }
            None => sleep(interval).await,
        }
        if !coord.is_started() {
            return;
        }
        let next = match snapshot(&coord, &group).await {
            Ok(next) => next,
            // As in tooz, a group that vanished has no members.
            Err(Error::GroupNotCreated { .. }) => Snapshot {
                members: BTreeSet::new(),
                leader: None,
            },
            Err(Error::Stopped) => return,
            Err(e) => {
                if tx.send(Err(e)).await.is_err() {
                    return;
                }
                continue;
            }
        };
        telemetry::group_members(&group, next.members.len());
        for event in diff(&group, &last, &next) {
            if tx.send(Ok(event)).await.is_err() {
                return;
            }
        }
        last = next;
    }
}

fn diff(group: &GroupId, old: &Snapshot, new: &Snapshot) -> Vec<GroupEvent> {
    let joined = new
        .members
        .difference(&old.members)
        .map(|m| GroupEvent::Joined {
            group: group.clone(),
            member: m.clone(),
        });
    let left = old
        .members
        .difference(&new.members)
        .map(|m| GroupEvent::Left {
            group: group.clone(),
            member: m.clone(),
        });
    let mut events: Vec<GroupEvent> = joined.chain(left).collect();
    if let Some(leader) = &new.leader
        && new.leader != old.leader
    {
        events.push(GroupEvent::LeaderElected {
            group: group.clone(),
            member: leader.clone(),
        });
    }
    events
}

impl futures_core::Stream for GroupWatch {
    type Item = Result<GroupEvent>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.events.poll_recv(cx)
    }
}

impl Drop for GroupWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl fmt::Debug for GroupWatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupWatch").finish_non_exhaustive()
    }
}
