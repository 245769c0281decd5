//! [`Partitioner`]: a group whose members share objects through a [`HashRing`], kept in step
//! with the membership by itself.

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, RwLock};

use tokio::task::JoinHandle;

use crate::capabilities::Capabilities;
use crate::coordinator::Coordinator;
use crate::error::{Error, Result};
use crate::hashring::{HashFunction, HashRing};
use crate::ids::{GroupId, MemberId};
use crate::watch::GroupEvent;

/// How an object becomes the bytes placed on the ring.
///
/// Text and integers use the UTF-8 of their text form, as tooz does (`str(obj)`), so a Python
/// partitioner places them identically. A type that wants its own key implements this trait,
/// as a Python class defines `__tooz_hash__`; [`RawKey`] places bytes as they are. (Python
/// places a `bytes` object by its *repr*, `b'...'`; wrap such keys accordingly if you need to
/// agree with Python on them.)
pub trait PartitionKey {
    /// The bytes hashed onto the ring.
    fn partition_key(&self) -> Cow<'_, [u8]>;
}

impl PartitionKey for str {
    fn partition_key(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(self.as_bytes())
    }
}

impl PartitionKey for String {
    fn partition_key(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(self.as_bytes())
    }
}

impl<T: PartitionKey + ?Sized> PartitionKey for &T {
    fn partition_key(&self) -> Cow<'_, [u8]> {
        (**self).partition_key()
    }
}

macro_rules! integer_keys {
    ($($t:ty),*) => {$(
        impl PartitionKey for $t {
            fn partition_key(&self) -> Cow<'_, [u8]> {
                Cow::Owned(self.to_string().into_bytes())
            }
        }
    )*};
}
integer_keys!(
    i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize
);

/// Bytes placed on the ring as they are (tooz's `__tooz_hash__` returning bytes).
#[derive(Debug, Clone, Copy)]
pub struct RawKey<'a>(pub &'a [u8]);

impl PartitionKey for RawKey<'_> {
    fn partition_key(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(self.0)
    }
}

/// The weight a member declared in its capabilities (`{"weight": w}`), or 1, as tooz reads it.
fn weight_of(capabilities: &Capabilities) -> u32 {
    capabilities
        .get("weight")
        .and_then(rmpv::Value::as_u64)
        .and_then(|w| u32::try_from(w).ok())
        .unwrap_or(1)
}

type SharedRing = Arc<RwLock<HashRing<MemberId>>>;

/// A member of a partitioned group: answers which members own an object, with a ring that
/// follows joins and leaves without the caller doing anything (tooz needs `run_watchers()`).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> tooz::Result<()> {
/// let coord = tooz::Coordinator::connect("memory://partitioner-doc", "w1").await?;
/// let part = coord.join_partitioned_group("jobs", 1, 32).await?;
/// assert!(part.belongs_to_self(&"job-17"));
/// assert_eq!(part.members_for(&42, 1, &[]), vec![tooz::MemberId::from("w1")]);
/// part.leave().await?;
/// # coord.stop().await
/// # }
/// ```
pub struct Partitioner {
    coord: Coordinator,
    group: GroupId,
    ring: SharedRing,
    follower: JoinHandle<()>,
}

impl Coordinator {
    /// Joins (creating if needed) `group` with capabilities `{"weight": weight}`, exactly as
    /// tooz's `join_partitioned_group` does, and returns a [`Partitioner`] whose ring has
    /// `partitions` positions per unit of weight (tooz's default is 32).
    pub async fn join_partitioned_group(
        &self,
        group: impl Into<GroupId>,
        weight: u32,
        partitions: u32,
    ) -> Result<Partitioner> {
        let group = group.into();
        let empty = HashRing::<MemberId>::with_options(partitions, HashFunction::Md5)?;
        let capabilities = Capabilities::new(rmpv::Value::Map(vec![(
            rmpv::Value::from("weight"),
            rmpv::Value::from(weight),
        )]));
        self.join_group_create(group.clone(), capabilities).await?;
        // Watch before reading the members, so no change between the two is missed.
        let watch = self.watch(group.clone()).await?;
        let ring = Arc::new(RwLock::new(empty));
        refresh(self, &group, &ring).await?;
        let follower = tokio::spawn(follow(
            self.clone(),
            group.clone(),
            Arc::clone(&ring),
            watch,
        ));
        Ok(Partitioner {
            coord: self.clone(),
            group,
            ring,
            follower,
        })
    }
}

/// Rebuilds the ring from one membership snapshot when its members or weights changed.
async fn refresh(coord: &Coordinator, group: &GroupId, ring: &SharedRing) -> Result<()> {
    let members = match coord.members_with_capabilities(group).await {
        Ok(members) => members,
        Err(Error::GroupNotCreated { .. }) => Default::default(),
        Err(e) => return Err(e),
    };
    let wanted: Vec<(MemberId, u32)> = members
        .iter()
        .map(|(member, caps)| (member.clone(), weight_of(caps)))
        .collect();
    let mut ring = ring.write().unwrap_or_else(|e| e.into_inner());
    let mut current: Vec<(MemberId, u32)> = ring.nodes().map(|(m, w)| (m.clone(), w)).collect();
    current.sort();
    if current == wanted {
        return Ok(());
    }
    let mut fresh = HashRing::with_options(ring.partitions(), ring.hash_function())?;
    // Sorted order: every member of ours builds the same ring from the same membership.
    for (member, weight) in wanted {
        fresh.add_node(member, weight);
    }
    *ring = fresh;
    Ok(())
}

async fn follow(
    coord: Coordinator,
    group: GroupId,
    ring: SharedRing,
    mut watch: crate::GroupWatch,
) {
    while let Some(event) = watch.next().await {
        match event {
            Ok(GroupEvent::Joined { .. } | GroupEvent::Left { .. }) => {
                if let Err(e) = refresh(&coord, &group, &ring).await {
                    tracing::warn!(group = %group, error = %e, "partitioner could not refresh its ring");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(group = %group, error = %e, "partitioner watch failed"),
        }
    }
}

impl Partitioner {
    /// The group.
    pub fn group(&self) -> &GroupId {
        &self.group
    }

    /// A copy of the current ring.
    pub fn ring(&self) -> HashRing<MemberId> {
        self.ring.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Up to `replicas` members owning `object`, primary first, skipping `ignore` (tooz
    /// `members_for_object`).
    pub fn members_for(
        &self,
        object: &(impl PartitionKey + ?Sized),
        replicas: usize,
        ignore: &[MemberId],
    ) -> Vec<MemberId> {
        let ring = self.ring.read().unwrap_or_else(|e| e.into_inner());
        ring.get_nodes(&object.partition_key(), replicas, ignore)
            .into_iter()
            .cloned()
            .collect()
    }

    /// Whether `member` is among the `replicas` owners of `object`.
    pub fn belongs_to_member(
        &self,
        object: &(impl PartitionKey + ?Sized),
        member: &MemberId,
        replicas: usize,
    ) -> bool {
        self.members_for(object, replicas, &[]).contains(member)
    }

    /// Whether this member is the owner of `object` (one replica).
    pub fn belongs_to_self(&self, object: &(impl PartitionKey + ?Sized)) -> bool {
        self.belongs_to_member(object, self.coord.member_id(), 1)
    }

    /// Brings the ring up to date now instead of at the next watch poll.
    pub async fn refresh(&self) -> Result<()> {
        refresh(&self.coord, &self.group, &self.ring).await
    }

    /// Stops following the group and leaves it (tooz `leave_partitioned_group`).
    pub async fn leave(self) -> Result<()> {
        self.follower.abort();
        self.coord.leave_group(self.group.clone()).await
    }
}

impl Drop for Partitioner {
    fn drop(&mut self) {
        self.follower.abort();
    }
}

impl fmt::Debug for Partitioner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Partitioner")
            .field("group", &self.group)
            .field(
                "ring",
                &*self.ring.read().unwrap_or_else(|e| e.into_inner()),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_become_keys_as_in_tooz() {
        assert_eq!(&*"abc".partition_key(), b"abc");
        assert_eq!(&*42u32.partition_key(), b"42");
        assert_eq!(&*(-7i64).partition_key(), b"-7");
        assert_eq!(&*RawKey(b"\xff").partition_key(), b"\xff");
    }

    #[test]
    fn weight_is_read_like_tooz() {
        let caps = Capabilities::from(serde_json::json!({"weight": 5}));
        assert_eq!(weight_of(&caps), 5);
        assert_eq!(weight_of(&Capabilities::none()), 1);
        assert_eq!(
            weight_of(&Capabilities::from(serde_json::json!({"w": 5}))),
            1
        );
        assert_eq!(
            weight_of(&Capabilities::from(serde_json::json!({"weight": "x"}))),
            1
        );
    }
}
