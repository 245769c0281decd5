//! The ZooKeeper server the tests may use: the `zookeeper://` (or `kazoo://`) URL in
//! `TOOZ_TEST_URLS`. Where `TOOZ_REQUIRE_INTEROP` is set (scripts/test, CI) its absence fails
//! the test instead of skipping it.
//!
//! Also the znode layout the tests check against — Python tooz's kazoo layout, written out here
//! on purpose rather than taken from the driver, so that a driver that drifted from it fails the
//! tests: under the namespace node `/tooz`, a group is `/tooz/<group>` (persistent), a member
//! `/tooz/<group>/<member>` (ephemeral, its msgpack capabilities as data), a lock's contenders
//! `/tooz/locks/<name>/<32 hex>__lock__<10-digit sequence>` (ephemeral sequential, the member id
//! as data; kazoo's recipe), and a group's leader lock the same under `/tooz/<group>/leader`.
//! And ours alone: a name that cannot be one node name is written `~tooz-hex:<its bytes in
//! hex>` (Python has no such form; it joins such names into paths as they come).
//!
//! The URL should name no chroot and no `namespace` option: Python tooz ignores a chroot, and
//! the paths here are those of the default namespace.

// Shared by several test binaries, each of which uses only part of it.
#![allow(dead_code)]

pub(crate) fn zookeeper_url() -> Option<String> {
    let urls = std::env::var("TOOZ_TEST_URLS").unwrap_or_default();
    let url = urls
        .split_whitespace()
        .find(|u| u.starts_with("zookeeper://") || u.starts_with("kazoo://"))
        .map(str::to_owned);
    if url.is_none() && std::env::var_os("TOOZ_REQUIRE_INTEROP").is_some() {
        panic!("TOOZ_REQUIRE_INTEROP is set but TOOZ_TEST_URLS names no zookeeper:// server");
    }
    url
}

/// The namespace node (tooz's default namespace).
pub(crate) const NAMESPACE: &str = "/tooz";

/// The node every lock lives under.
pub(crate) const LOCKS: &str = "/tooz/locks";

/// Group `group`'s node.
pub(crate) fn group_path(group: &str) -> String {
    format!("{NAMESPACE}/{group}")
}

/// Member `member`'s node in group `group`.
pub(crate) fn member_path(group: &str, member: &str) -> String {
    format!("{NAMESPACE}/{group}/{member}")
}

/// Lock `name`'s node (its contenders are its children), for a name that is one node name.
pub(crate) fn lock_path(name: &str) -> String {
    format!("{LOCKS}/{name}")
}

/// Group `group`'s leader lock node.
pub(crate) fn leader_path(group: &str) -> String {
    format!("{NAMESPACE}/{group}/leader")
}

/// The node name ours gives a name that cannot be one node name (it holds '/', is not UTF-8,
/// ...): the marker and the name's bytes in lowercase hex.
pub(crate) fn hex_name(name: &[u8]) -> String {
    let mut node = String::from("~tooz-hex:");
    for b in name {
        node.push_str(&format!("{b:02x}"));
    }
    node
}

/// Whether `node` is a kazoo lock contender's name: 32 lowercase hex digits (kazoo's uuid4,
/// ours the grant's owner token), `__lock__`, and a 10-digit sequence.
pub(crate) fn is_contender(node: &str) -> bool {
    let Some((prefix, sequence)) = node.split_once("__lock__") else {
        return false;
    };
    prefix.len() == 32
        && prefix
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && sequence.len() == 10
        && sequence.bytes().all(|b| b.is_ascii_digit())
}
