//! A consistent hash ring whose placements are bit-identical to Python tooz's
//! `tooz.hashring.HashRing`.
//!
//! The algorithm (tooz 9.1.0): a node named `K` (its UTF-8 bytes) with weight `w` owns
//! `partitions × w` positions; position `r` is the digest of `K` repeated `r + 2` times, read
//! as a big-endian integer (tooz keeps one running hash object, updates it with `K` before each
//! read, and reading a digest does not finalize it). A later node overwrites an equal position.
//! A key is placed by hashing it and taking the first position strictly greater than its hash,
//! wrapping around; replicas walk on clockwise, skipping ignored nodes and nodes already taken.
//!
//! A consequence of the algorithm, kept for identical placements: names that are repetitions of
//! one root (`a`, `aa`, `aaaa`) produce the same digests at different steps, so they share
//! positions; the node added last owns them, and removing either node removes them. Avoid such
//! node names where balance matters.
//!
//! Where tooz misbehaves we give a defined answer instead, documented on each method: a node of
//! weight 0 owns no positions and is never returned (tooz loops forever if asked for it as a
//! replica); the walk stops after one full turn.
//!
//! Memory: each position costs 20 bytes (a 16-byte position and a 4-byte node index) in the
//! lookup arrays, plus about 40 bytes in the ordered map kept for updates; 10 nodes at the
//! default 32 partitions are 320 positions, about 19 KiB.

use std::collections::BTreeMap;
use std::fmt;

use md5::Md5;
use sha1::Sha1;
use sha2::digest::Digest;
use sha2::{Sha224, Sha256, Sha384, Sha512};

use crate::error::{Error, Result};

/// tooz's default number of positions per unit of weight.
pub const DEFAULT_PARTITIONS: u32 = 32;

/// The digest used to place nodes and keys. tooz accepts any `hashlib` name; these are the
/// ones offered here, with tooz's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum HashFunction {
    /// `md5`, tooz's default.
    #[default]
    Md5,
    /// `sha1`.
    Sha1,
    /// `sha224`.
    Sha224,
    /// `sha256`.
    Sha256,
    /// `sha384`.
    Sha384,
    /// `sha512`.
    Sha512,
}

impl HashFunction {
    const ALL: [Self; 6] = [
        Self::Md5,
        Self::Sha1,
        Self::Sha224,
        Self::Sha256,
        Self::Sha384,
        Self::Sha512,
    ];

    /// The function with this `hashlib` name (case-insensitive).
    pub fn from_name(name: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| Error::InvalidArgument {
                argument: "hash_function",
                value: name.to_owned(),
                reason: format!(
                    "not supported; supported are {}",
                    Self::ALL.map(Self::name).join(", ")
                ),
            })
    }

    /// The `hashlib` name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Md5 => "md5",
            Self::Sha1 => "sha1",
            Self::Sha224 => "sha224",
            Self::Sha256 => "sha256",
            Self::Sha384 => "sha384",
            Self::Sha512 => "sha512",
        }
    }

    /// The ring position of `data`: the digest's leading 128 bits, big-endian. For md5 that is
    /// the whole digest; for longer digests ordering by the leading 128 bits equals tooz's
    /// ordering by the whole integer except on a 128-bit tie (probability 2⁻¹²⁸ per pair).
    fn position(self, data: &[u8]) -> u128 {
        match self {
            Self::Md5 => leading(&Md5::digest(data)),
            Self::Sha1 => leading(&Sha1::digest(data)),
            Self::Sha224 => leading(&Sha224::digest(data)),
            Self::Sha256 => leading(&Sha256::digest(data)),
            Self::Sha384 => leading(&Sha384::digest(data)),
            Self::Sha512 => leading(&Sha512::digest(data)),
        }
    }

    /// The positions of a node: digests of `key` repeated 2, 3, ... `count + 1` times.
    fn node_positions(self, key: &[u8], count: u64) -> Vec<u128> {
        match self {
            Self::Md5 => running::<Md5>(key, count),
            Self::Sha1 => running::<Sha1>(key, count),
            Self::Sha224 => running::<Sha224>(key, count),
            Self::Sha256 => running::<Sha256>(key, count),
            Self::Sha384 => running::<Sha384>(key, count),
            Self::Sha512 => running::<Sha512>(key, count),
        }
    }
}

fn leading(digest: &[u8]) -> u128 {
    let mut first = [0u8; 16];
    first.copy_from_slice(&digest[..16]);
    u128::from_be_bytes(first)
}

fn running<D: Digest + Clone>(key: &[u8], count: u64) -> Vec<u128> {
    let mut hasher = D::new();
    hasher.update(key);
    (0..count)
        .map(|_| {
            hasher.update(key);
            leading(&hasher.clone().finalize())
        })
        .collect()
}

/// A consistent hash ring with tooz's placements. `N` is the node type: anything with bytes
/// (`String`, `&str`, `Vec<u8>`, [`MemberId`](crate::MemberId)); text is placed by its UTF-8
/// bytes, as tooz places a `str` node.
///
/// ```
/// use tooz::HashRing;
///
/// let mut ring: HashRing<&str> = HashRing::new();
/// for node in ["node1", "node2", "node3"] {
///     ring.add_node(node, 1);
/// }
/// assert_eq!(ring.get_node(b"foo"), Some(&"node2"));
/// // Python: ring.get_nodes(b'foo', replicas=2, ignore_nodes=['node2']) == {'node1', 'node3'}
/// let mut two = ring.get_nodes(b"foo", 2, &["node2"]);
/// two.sort();
/// assert_eq!(two, vec![&"node1", &"node3"]);
/// ```
#[derive(Clone)]
pub struct HashRing<N = String> {
    partitions: u32,
    hash: HashFunction,
    /// Node slots; a removed node leaves `None` (its index may be reused).
    slots: Vec<Option<(N, u32)>>,
    /// Position → slot, as tooz's `_ring` dict (later inserts overwrite).
    ring: BTreeMap<u128, u32>,
    /// Sorted positions and their owners, rebuilt from `ring` after each change.
    positions: Vec<u128>,
    owners: Vec<u32>,
    /// Filled slots.
    node_count: usize,
}

impl<N: AsRef<[u8]>> HashRing<N> {
    /// An empty ring with tooz's defaults: 32 partitions per unit of weight, md5.
    pub fn new() -> Self {
        Self {
            partitions: DEFAULT_PARTITIONS,
            hash: HashFunction::Md5,
            slots: Vec::new(),
            ring: BTreeMap::new(),
            positions: Vec::new(),
            owners: Vec::new(),
            node_count: 0,
        }
    }

    /// An empty ring with `partitions` positions per unit of weight (at least 1) and the given
    /// hash function.
    pub fn with_options(partitions: u32, hash: HashFunction) -> Result<Self> {
        if partitions == 0 {
            return Err(Error::InvalidArgument {
                argument: "partitions",
                value: "0".to_owned(),
                reason: "a ring needs at least one partition per node".to_owned(),
            });
        }
        Ok(Self {
            partitions,
            hash,
            ..Self::new()
        })
    }

    /// Positions per unit of weight.
    pub fn partitions(&self) -> u32 {
        self.partitions
    }

    /// The hash function.
    pub fn hash_function(&self) -> HashFunction {
        self.hash
    }

    /// Number of positions on the ring (tooz `len(ring)`).
    pub fn len(&self) -> usize {
        self.positions.len()
    }

    /// True when no position is on the ring.
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    /// The nodes and their weights (tooz `ring.nodes`), in no particular order.
    pub fn nodes(&self) -> impl Iterator<Item = (&N, u32)> {
        self.slots.iter().flatten().map(|(n, w)| (n, *w))
    }

    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.node_count
    }

    /// The weight of a node, if it is on the ring.
    pub fn weight(&self, node: impl AsRef<[u8]>) -> Option<u32> {
        self.slot_of(node.as_ref())
            .and_then(|s| self.slots[s as usize].as_ref().map(|(_, w)| *w))
    }

    fn slot_of(&self, key: &[u8]) -> Option<u32> {
        self.slots
            .iter()
            .position(|s| s.as_ref().is_some_and(|(n, _)| n.as_ref() == key))
            .map(|i| i as u32)
    }

    /// Adds a node with `weight` × partitions positions. Re-adding a node updates its weight as
    /// tooz does (positions are re-put; a smaller weight leaves the extra positions in place,
    /// tooz's quirk, kept for identical placements). A weight of 0 adds a node that owns no
    /// position and is never returned.
    pub fn add_node(&mut self, node: N, weight: u32) {
        let key = node.as_ref();
        let positions = self
            .hash
            .node_positions(key, u64::from(self.partitions) * u64::from(weight));
        let slot = match self.slot_of(key) {
            Some(slot) => {
                self.slots[slot as usize] = Some((node, weight));
                slot
            }
            None => match self.slots.iter().position(Option::is_none) {
                Some(free) => {
                    self.slots[free] = Some((node, weight));
                    free as u32
                }
                None => {
                    self.slots.push(Some((node, weight)));
                    (self.slots.len() - 1) as u32
                }
            },
        };
        for position in positions {
            self.ring.insert(position, slot);
        }
        self.rebuild();
    }

    /// Removes a node and its positions; [`Error::UnknownNode`] if it is not on the ring.
    pub fn remove_node(&mut self, node: impl AsRef<[u8]>) -> Result<N> {
        let key = node.as_ref();
        let Some(slot) = self.slot_of(key) else {
            return Err(Error::UnknownNode {
                node: crate::ids::display_name(key),
            });
        };
        let Some((node, weight)) = self.slots[slot as usize].take() else {
            unreachable!("slot_of only returns filled slots")
        };
        // As tooz: delete the positions this node would have, whoever owns them now.
        let count = u64::from(self.partitions) * u64::from(weight);
        for position in self.hash.node_positions(node.as_ref(), count) {
            self.ring.remove(&position);
        }
        self.rebuild();
        Ok(node)
    }

    fn rebuild(&mut self) {
        self.node_count = self.slots.iter().flatten().count();
        self.positions = self.ring.keys().copied().collect();
        self.owners = self.ring.values().copied().collect();
    }

    /// The index of the first position strictly after `data`'s hash, wrapping (tooz
    /// `_get_partition`).
    fn start(&self, data: &[u8]) -> usize {
        let hash = self.hash.position(data);
        let index = self.positions.partition_point(|p| *p <= hash);
        if index == self.positions.len() {
            0
        } else {
            index
        }
    }

    /// The node owning `data` (tooz `get_nodes(data)` with one replica), without allocating.
    /// `None` on an empty ring.
    pub fn get_node(&self, data: &[u8]) -> Option<&N> {
        if self.positions.is_empty() {
            return None;
        }
        let owner = self.owners[self.start(data)];
        self.slots[owner as usize].as_ref().map(|(n, _)| n)
    }

    /// Up to `replicas` distinct nodes for `data`, skipping `ignore`, in ring order (the first
    /// is the primary). Python returns the same nodes as a set. The answer has
    /// `min(replicas, nodes not ignored)` nodes, fewer only when some of those own no
    /// position (weight 0); an empty ring, zero replicas or everything ignored give an empty
    /// answer. Up to four nodes are returned without allocating.
    pub fn get_nodes<I: AsRef<[u8]>>(
        &self,
        data: &[u8],
        replicas: usize,
        ignore: &[I],
    ) -> Placement<'_, N> {
        let is_ignored = |n: &N| ignore.iter().any(|i| i.as_ref() == n.as_ref());
        let candidates = if ignore.is_empty() {
            self.node_count
        } else {
            self.nodes().filter(|(n, _)| !is_ignored(n)).count()
        };
        let wanted = replicas.min(candidates);
        let mut found = Placement::empty();
        if wanted == 0 || self.positions.is_empty() {
            return found;
        }
        let len = self.positions.len();
        let start = self.start(data);
        if wanted == 1 && ignore.is_empty() {
            // The common case: the owner of the first position, which holds a node whenever
            // any node owns positions.
            if let Some((node, _)) = &self.slots[self.owners[start] as usize] {
                found.push(node);
            }
            return found;
        }
        for step in 0..len {
            let owner = self.owners[(start + step) % len] as usize;
            let Some((node, _)) = &self.slots[owner] else {
                continue;
            };
            if !is_ignored(node) && !found.iter().any(|f| f.as_ref() == node.as_ref()) {
                found.push(node);
                if found.len() == wanted {
                    break;
                }
            }
        }
        found
    }

    /// The sorted positions with their owners (for tests and diagnostics).
    pub fn positions(&self) -> impl Iterator<Item = (u128, &N)> {
        self.positions
            .iter()
            .zip(&self.owners)
            .filter_map(|(p, o)| self.slots[*o as usize].as_ref().map(|(n, _)| (*p, n)))
    }
}

/// The nodes [`HashRing::get_nodes`] picked, primary first; derefs to a slice.
pub struct Placement<'a, N> {
    repr: Repr<'a, N>,
}

/// Four nodes inline (the unused slots repeat the first, so no unsafe code is needed), more on
/// the heap.
enum Repr<'a, N> {
    Inline { items: [&'a N; 4], len: usize },
    Heap(Vec<&'a N>),
}

impl<'a, N> Placement<'a, N> {
    fn empty() -> Self {
        Self {
            repr: Repr::Heap(Vec::new()),
        }
    }

    fn push(&mut self, node: &'a N) {
        match &mut self.repr {
            Repr::Heap(v) if v.is_empty() => {
                self.repr = Repr::Inline {
                    items: [node; 4],
                    len: 1,
                }
            }
            Repr::Heap(v) => v.push(node),
            Repr::Inline { items, len } if *len < items.len() => {
                items[*len] = node;
                *len += 1;
            }
            Repr::Inline { items, .. } => {
                let mut v = items.to_vec();
                v.push(node);
                self.repr = Repr::Heap(v);
            }
        }
    }

    /// The nodes as a vector.
    pub fn into_vec(self) -> Vec<&'a N> {
        self.to_vec()
    }
}

impl<'a, N> std::ops::Deref for Placement<'a, N> {
    type Target = [&'a N];

    fn deref(&self) -> &Self::Target {
        match &self.repr {
            Repr::Inline { items, len } => &items[..*len],
            Repr::Heap(v) => v,
        }
    }
}

impl<N> std::ops::DerefMut for Placement<'_, N> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        match &mut self.repr {
            Repr::Inline { items, len } => &mut items[..*len],
            Repr::Heap(v) => v,
        }
    }
}

impl<'a, N> IntoIterator for Placement<'a, N> {
    type Item = &'a N;
    type IntoIter = std::vec::IntoIter<&'a N>;

    fn into_iter(self) -> Self::IntoIter {
        self.into_vec().into_iter()
    }
}

impl<'p, 'a, N> IntoIterator for &'p Placement<'a, N> {
    type Item = &'p &'a N;
    type IntoIter = std::slice::Iter<'p, &'a N>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<N: PartialEq> PartialEq<Vec<&N>> for Placement<'_, N> {
    fn eq(&self, other: &Vec<&N>) -> bool {
        **self == **other
    }
}

impl<N: fmt::Debug> fmt::Debug for Placement<'_, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<N: AsRef<[u8]>> Default for HashRing<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<N: AsRef<[u8]> + fmt::Debug> fmt::Debug for HashRing<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HashRing")
            .field("partitions", &self.partitions)
            .field("hash", &self.hash)
            .field("nodes", &self.nodes().collect::<Vec<_>>())
            .field("positions", &self.positions.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(nodes: &[&'static str]) -> HashRing<&'static str> {
        let mut ring = HashRing::new();
        for n in nodes {
            ring.add_node(*n, 1);
        }
        ring
    }

    fn sorted(v: Placement<'_, &'static str>) -> Vec<&'static str> {
        let mut v = v.into_vec();
        v.sort();
        v.into_iter().copied().collect()
    }

    const NONE: &[&str] = &[];

    #[test]
    fn md5_check_value() {
        assert_eq!(
            HashFunction::Md5.position(b"foo"),
            0xacbd18db4cc2f85cedef654fccc4a4d8
        );
    }

    #[test]
    fn golden_vectors_three_nodes() {
        let r = ring(&["node1", "node2", "node3"]);
        assert_eq!(r.len(), 96);
        let cases: &[(&[u8], &str, [&str; 2])] = &[
            (b"foo", "node2", ["node2", "node3"]),
            (b"bar", "node3", ["node2", "node3"]),
            (b"baz", "node3", ["node1", "node3"]),
            (b"", "node3", ["node2", "node3"]),
            (b"fake", "node3", ["node1", "node3"]),
            (b"12345", "node1", ["node1", "node2"]),
            ("чупакабра".as_bytes(), "node3", ["node1", "node3"]),
        ];
        for (key, one, two) in cases {
            assert_eq!(sorted(r.get_nodes(key, 1, NONE)), vec![*one]);
            assert_eq!(r.get_node(key), Some(one));
            assert_eq!(sorted(r.get_nodes(key, 2, NONE)), two.to_vec());
            assert_eq!(
                sorted(r.get_nodes(key, 2, &["node1"])),
                vec!["node2", "node3"]
            );
        }
        assert_eq!(
            sorted(r.get_nodes(b"foo", 2, &["node2"])),
            vec!["node1", "node3"]
        );
        let positions: Vec<(u128, &str)> = r.positions().map(|(p, n)| (p, *n)).collect();
        assert_eq!(positions[0], (0x0a6229ab4ce0a012c652d972f6735eb7, "node1"));
        assert_eq!(positions[1], (0x105caecdfdb9101a3cf0ab89af7a8dae, "node2"));
        assert_eq!(positions[2], (0x12754c04e6c2fb3788a8955348791807, "node1"));
        assert_eq!(positions[95], (0xfb2778b6d01b179c65f5eccc562af9eb, "node3"));
    }

    #[test]
    fn golden_vectors_weights_and_bytes() {
        let mut r: HashRing<Vec<u8>> = HashRing::new();
        r.add_node(b"a".to_vec(), 1);
        r.add_node(b"b".to_vec(), 3);
        r.add_node(b"c".to_vec(), 2);
        assert_eq!(r.len(), 192);
        assert_eq!(r.get_node(b"foo").unwrap(), b"a");
        assert_eq!(r.get_node(b"bar").unwrap(), b"b");
        assert_eq!(r.get_node(b"x1").unwrap(), b"b");
        let mut counts = BTreeMap::new();
        for i in 0..10_000 {
            let node = r.get_node(i.to_string().as_bytes()).unwrap();
            *counts.entry(node.clone()).or_insert(0) += 1;
        }
        assert_eq!(counts[&b"a".to_vec()], 1793);
        assert_eq!(counts[&b"b".to_vec()], 5718);
        assert_eq!(counts[&b"c".to_vec()], 2489);
    }

    #[test]
    fn golden_vectors_small_rings() {
        let mut r = HashRing::with_options(4, HashFunction::Md5).unwrap();
        r.add_node("n1", 1);
        r.add_node("n2", 1);
        let owners: Vec<&str> = r.positions().map(|(_, n)| *n).collect();
        assert_eq!(owners, ["n1", "n2", "n2", "n1", "n2", "n2", "n1", "n1"]);
        assert_eq!(r.get_node(b"foo"), Some(&"n1"));
        assert_eq!(r.get_node(b"bar"), Some(&"n2"));

        let digits = ring(&["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
        let got: Vec<&str> = [b"a", b"b", b"c", b"d", b"e"]
            .iter()
            .map(|k| *digits.get_node(*k).unwrap())
            .collect();
        assert_eq!(got, ["2", "2", "5", "8", "3"]);

        let mut five = HashRing::with_options(8, HashFunction::Md5).unwrap();
        for n in ["0", "1", "2", "3", "4"] {
            five.add_node(n, 1);
        }
        let got: Vec<&str> = [b"0", b"1", b"2", b"3", b"4"]
            .iter()
            .map(|k| *five.get_node(*k).unwrap())
            .collect();
        assert_eq!(got, ["3", "0", "3", "4", "1"]);

        let fb = ring(&["foo", "bar", "baz"]);
        assert_eq!(fb.get_node(b"fake"), Some(&"foo"));
        assert_eq!(fb.get_node(b"fake-again"), Some(&"bar"));
        assert_eq!(sorted(fb.get_nodes(b"fake", 1, &["foo"])), vec!["bar"]);
        assert_eq!(
            sorted(ring(&["foo", "bar"]).get_nodes(b"fake", 1, &["baz"])),
            vec!["foo"]
        );
    }

    #[test]
    fn edge_cases_have_defined_answers() {
        let empty: HashRing<&str> = HashRing::new();
        assert!(empty.get_nodes(b"k", 3, NONE).is_empty());
        assert_eq!(empty.get_node(b"k"), None);
        let mut r = ring(&["a", "b"]);
        assert_eq!(
            r.get_nodes(b"k", 5, NONE).len(),
            2,
            "replicas capped at node count"
        );
        assert!(r.get_nodes(b"k", 0, NONE).is_empty());
        assert!(
            r.get_nodes(b"k", 2, &["a", "b"]).is_empty(),
            "everything ignored"
        );
        r.add_node("zero", 0);
        assert_eq!(r.len(), 64, "weight 0 owns no position");
        assert_eq!(r.get_nodes(b"k", 3, NONE).len(), 2, "and is never returned");
        let err = r.remove_node("nope").unwrap_err().to_string();
        assert!(err.contains("nope"), "{err}");
        assert!(HashRing::<&str>::with_options(0, HashFunction::Md5).is_err());
        let err = HashFunction::from_name("crc32").unwrap_err().to_string();
        assert!(err.contains("crc32") && err.contains("md5, sha1"), "{err}");
        assert_eq!(
            HashFunction::from_name("SHA256").unwrap(),
            HashFunction::Sha256
        );
    }

    #[test]
    fn add_and_remove_keep_counts() {
        let mut r = ring(&["a", "b"]);
        r.add_node("c", 10);
        assert_eq!(r.len(), 32 * 12);
        assert_eq!(r.remove_node("c").unwrap(), "c");
        assert_eq!(r.len(), 64);
        assert_eq!(r.node_count(), 2);
        r.add_node("d", 1);
        assert_eq!(r.weight("d"), Some(1));
        assert_eq!(r.len(), 96);
    }
}
