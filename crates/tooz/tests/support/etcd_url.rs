//! The etcd server the tests may use: the `etcd3+http://` URL in `TOOZ_TEST_URLS`. Where
//! `TOOZ_REQUIRE_INTEROP` is set (scripts/test, CI) its absence fails the test instead of
//! skipping it.
//!
//! Also a raw etcd client of the test's own (`etcd_client`, no library code between), to watch
//! and poke the keys beside the driver, and the key layout the tests check against — written
//! out here on purpose rather than taken from the driver (Python tooz's keys: groups
//! `tooz/groups/<g>/`, members `tooz/groups/<g>/<m>`, locks `/tooz/locks<name>`; ours: leaders
//! `tooz-rs/leaders/<g>`), so that a driver that drifted from it fails the tests.

// Shared by several test binaries, each of which uses only part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use etcd_client::{Client, ConnectOptions, GetOptions, LeaseTimeToLiveOptions};

pub(crate) fn etcd_url() -> Option<String> {
    let urls = std::env::var("TOOZ_TEST_URLS").unwrap_or_default();
    let url = urls
        .split_whitespace()
        .find(|u| u.starts_with("etcd3+http://") || u.starts_with("etcd://"))
        .map(str::to_owned);
    if url.is_none() && std::env::var_os("TOOZ_REQUIRE_INTEROP").is_some() {
        panic!("TOOZ_REQUIRE_INTEROP is set but TOOZ_TEST_URLS names no etcd3+http:// server");
    }
    url
}

/// The URL without its options (`etcd3+http://host:port`).
pub(crate) fn base(url: &str) -> String {
    url.split('?').next().unwrap_or(url).to_owned()
}

/// The server's `HOST:PORT` (2379 when the URL names no port).
pub(crate) fn host_port(url: &str) -> String {
    let parsed = url::Url::parse(url).expect("an etcd URL");
    format!(
        "{}:{}",
        parsed.host_str().unwrap_or("127.0.0.1"),
        parsed.port().unwrap_or(2379)
    )
}

/// A raw client of the test's own on the host and port of `url` (its options, user and
/// password are ignored), every request bounded by 10 s.
pub(crate) async fn direct(url: &str) -> Client {
    let endpoint = format!("http://{}", host_port(url));
    let options = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(5))
        .with_timeout(Duration::from_secs(10));
    tokio::time::timeout(
        Duration::from_secs(10),
        Client::connect([endpoint.as_str()], Some(options)),
    )
    .await
    .unwrap_or_else(|_| panic!("a raw etcd client of {endpoint}: no answer within 10 s"))
    .unwrap_or_else(|e| panic!("a raw etcd client of {endpoint}: {e}"))
}

/// `tooz/groups/<group>/` (Python tooz's group key).
pub(crate) fn group_key(group: &[u8]) -> Vec<u8> {
    [b"tooz/groups/".as_slice(), group, b"/"].concat()
}

/// `tooz/groups/<group>/<member>` (Python tooz's member key).
pub(crate) fn member_key(group: &[u8], member: &[u8]) -> Vec<u8> {
    [b"tooz/groups/".as_slice(), group, b"/", member].concat()
}

/// `/tooz/locks<name>` (Python tooz's lock key).
pub(crate) fn lock_key(name: &[u8]) -> Vec<u8> {
    [b"/tooz/locks".as_slice(), name].concat()
}

/// `tooz-rs/leaders/<group>` (ours; tooz's etcd driver has no elections).
pub(crate) fn leader_key(group: &[u8]) -> Vec<u8> {
    [b"tooz-rs/leaders/".as_slice(), group].concat()
}

/// The lease `key` is attached to (0: none), or `None` if there is no such key.
pub(crate) async fn key_lease(client: &mut Client, key: &[u8]) -> Option<i64> {
    let answer = client
        .get(key, None)
        .await
        .unwrap_or_else(|e| panic!("get {:?}: {e}", String::from_utf8_lossy(key)));
    answer.kvs().first().map(|kv| kv.lease())
}

/// The value of `key`, if there is such a key.
pub(crate) async fn key_value(client: &mut Client, key: &[u8]) -> Option<Vec<u8>> {
    let answer = client
        .get(key, None)
        .await
        .unwrap_or_else(|e| panic!("get {:?}: {e}", String::from_utf8_lossy(key)));
    answer.kvs().first().map(|kv| kv.value().to_vec())
}

/// The keys attached to `lease` (none once it expired or was revoked).
pub(crate) async fn lease_keys(client: &mut Client, lease: i64) -> Vec<Vec<u8>> {
    let answer = client
        .lease_time_to_live(lease, Some(LeaseTimeToLiveOptions::new().with_keys()))
        .await
        .unwrap_or_else(|e| panic!("time to live of lease {lease:x}: {e}"));
    if answer.ttl() <= 0 {
        return Vec::new();
    }
    answer.keys().to_vec()
}

/// The lease whose keys include `key`, found the way an operator would (`etcdctl lease list`,
/// then `etcdctl lease timetolive --keys` on each).
pub(crate) async fn lease_holding(client: &mut Client, key: &[u8]) -> Option<i64> {
    let leases: Vec<i64> = client
        .leases()
        .await
        .unwrap_or_else(|e| panic!("listing leases: {e}"))
        .leases()
        .iter()
        .map(|l| l.id())
        .collect();
    for lease in leases {
        if lease_keys(client, lease)
            .await
            .iter()
            .any(|k| k.as_slice() == key)
        {
            return Some(lease);
        }
    }
    None
}

/// Every key on the server: its lease (0: none) and value.
pub(crate) async fn all_keys(client: &mut Client) -> BTreeMap<Vec<u8>, (i64, Vec<u8>)> {
    let answer = client
        .get(vec![0u8], Some(GetOptions::new().with_all_keys()))
        .await
        .unwrap_or_else(|e| panic!("listing every key: {e}"));
    answer
        .kvs()
        .iter()
        .map(|kv| (kv.key().to_vec(), (kv.lease(), kv.value().to_vec())))
        .collect()
}

/// Every key under `prefix`: its lease (0: none) and value.
pub(crate) async fn keys_under(
    client: &mut Client,
    prefix: &[u8],
) -> BTreeMap<Vec<u8>, (i64, Vec<u8>)> {
    let answer = client
        .get(prefix, Some(GetOptions::new().with_prefix()))
        .await
        .unwrap_or_else(|e| panic!("listing {:?}: {e}", String::from_utf8_lossy(prefix)));
    answer
        .kvs()
        .iter()
        .map(|kv| (kv.key().to_vec(), (kv.lease(), kv.value().to_vec())))
        .collect()
}

/// A key shown readably in messages.
pub(crate) fn shown(key: &[u8]) -> String {
    let text = String::from_utf8_lossy(key);
    if text.chars().count() > 60 {
        let cut: String = text.chars().take(60).collect();
        format!("{cut:?}... ({} bytes)", key.len())
    } else {
        format!("{text:?}")
    }
}
