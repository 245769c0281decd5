//! What a backend guarantees, in tooz's vocabulary.

use std::fmt;

/// One guarantee, named as tooz's `Characteristics` enum names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Characteristic {
    /// Coordinates threads (tasks) of one process.
    DistributedAcrossThreads,
    /// Coordinates processes of one host.
    DistributedAcrossProcesses,
    /// Coordinates processes on many hosts.
    DistributedAcrossHosts,
    /// Liveness does not rest on timeouts alone.
    NonTimeoutBased,
    /// Operations are linearizable.
    Linearizable,
    /// Operations are sequentially consistent.
    Sequential,
    /// Operations are causally consistent.
    Causal,
    /// Operations are serializable.
    Serializable,
    /// Every client sees the same view during a partition.
    SameViewUnderPartitions,
    /// Every client sees the same view.
    SameViewAcrossClients,
}

impl Characteristic {
    /// tooz's name for it (`DISTRIBUTED_ACROSS_HOSTS`, ...).
    pub fn tooz_name(self) -> &'static str {
        match self {
            Self::DistributedAcrossThreads => "DISTRIBUTED_ACROSS_THREADS",
            Self::DistributedAcrossProcesses => "DISTRIBUTED_ACROSS_PROCESSES",
            Self::DistributedAcrossHosts => "DISTRIBUTED_ACROSS_HOSTS",
            Self::NonTimeoutBased => "NON_TIMEOUT_BASED",
            Self::Linearizable => "LINEARIZABLE",
            Self::Sequential => "SEQUENTIAL",
            Self::Causal => "CAUSAL",
            Self::Serializable => "SERIALIZABLE",
            Self::SameViewUnderPartitions => "SAME_VIEW_UNDER_PARTITIONS",
            Self::SameViewAcrossClients => "SAME_VIEW_ACROSS_CLIENTS",
        }
    }
}

impl fmt::Display for Characteristic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.tooz_name())
    }
}

/// The set of guarantees a backend declares.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Characteristics(Vec<Characteristic>);

impl Characteristics {
    /// A set from a list.
    pub fn new(list: &[Characteristic]) -> Self {
        let mut list = list.to_vec();
        list.sort();
        list.dedup();
        Self(list)
    }

    /// Whether `c` is declared.
    pub fn contains(&self, c: Characteristic) -> bool {
        self.0.contains(&c)
    }

    /// Every declared characteristic.
    pub fn iter(&self) -> impl Iterator<Item = Characteristic> + '_ {
        self.0.iter().copied()
    }

    /// Those of `required` that are not declared.
    pub fn missing(&self, required: &[Characteristic]) -> Vec<Characteristic> {
        required
            .iter()
            .copied()
            .filter(|c| !self.contains(*c))
            .collect()
    }
}
