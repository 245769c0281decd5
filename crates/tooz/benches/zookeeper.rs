//! Placeholder: the ZooKeeper benchmark is written next.
fn main() {}
