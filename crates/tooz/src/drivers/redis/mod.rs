//! `redis://[user:pass@]host[:port][/db][?options]` and `redis:///path/to/redis.sock`:
//! Redis, with tooz 9.1.0's key layout, so Python tooz processes and ours share groups,
//! members, capabilities and locks on one server.
//!
//! * **Locks** take one round trip per acquire, fencing token included (a Lua script: `SET NX
//!   PX`, then `INCR` of the lock's counter); release and renewal compare the owner token.
//!   Waiters are woken by a release announcement (pub/sub) and poll, jittered, for releases
//!   made by Python tooz, which announces nothing.
//! * **Heartbeat**: one script per beat refreshes the member's beat key, extends every lock and
//!   leadership still ours, and checks every membership; whatever it finds gone fires its loss
//!   signal. The connection reconnects by itself.
//! * **Elections** use tooz's election lock (`NS_leader_of_<group>_lock`), so Python and Rust
//!   members exclude each other; `leader()` (which tooz's Redis driver lacks) reads the member
//!   we record beside it, and answers [`UNKNOWN_LEADER`] when a Python member leads.
//! * **Names** that would land on another kind of key in tooz's layout are refused (see
//!   `keys.rs`). `members()` prunes members whose beat key expired, in one round trip.
//!
//! # Options (tooz's names and defaults)
//!
//! | option | default | meaning |
//! |---|---|---|
//! | `timeout` | `30` | seconds; the default of the three below |
//! | `membership_timeout` | `timeout` | TTL of a member's beat key |
//! | `lock_timeout` | `timeout` | TTL of a lock or leadership, renewed by heartbeats |
//! | `namespace` | `_tooz` | key prefix |
//! | `db` | `0` (or the URL path) | database number |
//! | `socket_timeout` | `timeout` | bound on each reply |
//! | `socket_connect_timeout` | `timeout` | bound on connecting |
//! | `encoding` | `utf8` | only `utf8` is accepted |
//! | `retry_on_timeout`, `socket_keepalive`, `health_check_interval`, `executor` | — | accepted for tooz URLs; no effect |
//!
//! | `ssl` | `false` (`true` for `rediss://`) | TLS (cargo feature `redis-tls`) |
//! | `ssl_ca_certs` | system roots | PEM file of the CAs to trust |
//! | `ssl_certfile`, `ssl_keyfile` | — | PEM client certificate and key (mutual TLS) |
//!
//! | `sentinel` | — | master name: the URL's host is a Sentinel, the master is asked of it |
//! | `sentinel_fallback` | — | more sentinels, `HOST:PORT`, repeatable |
//! | `sentinel_username`, `sentinel_password` | — | the sentinels' credentials |
//!
//! Not yet supported (an error names it): `sentinel_ssl` (TLS to the sentinels).

mod groups;
mod keys;
mod scripts;
mod sentinel;

use std::fmt;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo};
use tokio::task::JoinHandle;
use url::Url;

use super::shared::Changes;
use crate::backend::{
    Backend, BeatReport, ChangeHint, Elections, Groups, Held, LockRequest, OwnerToken, Topic,
};
use crate::characteristics::{Characteristic, Characteristics};
use crate::error::{Error, Result};
use crate::ids::{GroupId, LockName, MemberId};
use crate::lock::FencingToken;
use crate::options::{RedactedUrl, UrlOptions};

use keys::Keys;
use sentinel::SentinelOptions;

const NAME: &str = "redis";
const OPTIONS: &[&str] = &[
    "timeout",
    "membership_timeout",
    "lock_timeout",
    "namespace",
    "db",
    "socket_timeout",
    "socket_connect_timeout",
    "encoding",
    "retry_on_timeout",
    "socket_keepalive",
    "health_check_interval",
    "executor",
    "ssl",
    "ssl_certfile",
    "ssl_keyfile",
    "ssl_ca_certs",
    "sentinel",
    "sentinel_fallback",
    "sentinel_username",
    "sentinel_password",
    "sentinel_ssl",
];
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a waiter looks for releases nobody announces (Python tooz's), at most.
const UNANNOUNCED_POLL: Duration = Duration::from_millis(100);

/// What [`crate::Coordinator::leader`] answers when the election lock is held by a Python tooz
/// member, which records no member id.
pub const UNKNOWN_LEADER: &str = "(a Python tooz member)";

/// Certificate files for TLS (tooz's `ssl_*` options).
#[derive(Debug, Clone, Default)]
#[cfg_attr(not(feature = "redis-tls"), allow(dead_code))]
struct TlsFiles {
    ca_certs: Option<std::path::PathBuf>,
    certfile: Option<std::path::PathBuf>,
    keyfile: Option<std::path::PathBuf>,
}

/// Options of a `redis://` URL.
#[derive(Clone)]
pub struct RedisOptions {
    url: RedactedUrl,
    addr: ConnectionAddr,
    tls: Option<TlsFiles>,
    sentinel: Option<SentinelOptions>,
    settings: RedisConnectionInfo,
    /// TTL of the member's beat key.
    pub membership_timeout: Duration,
    /// TTL of locks and leaderships.
    pub lock_timeout: Duration,
    /// Key prefix.
    pub namespace: String,
    /// Bound on each reply.
    pub socket_timeout: Duration,
    /// Bound on connecting.
    pub connect_timeout: Duration,
}

impl fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisOptions")
            .field("url", &self.url)
            .field("membership_timeout", &self.membership_timeout)
            .field("lock_timeout", &self.lock_timeout)
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl RedisOptions {
    /// Reads a `redis://` URL.
    pub fn from_url(url: &Url) -> Result<Self> {
        let shown = RedactedUrl::new(url.clone());
        let invalid = |reason: String| Error::InvalidUrl {
            url: shown.to_string(),
            reason,
        };
        let options = UrlOptions::parse(NAME, url, OPTIONS)?;
        let path = |name: &str| options.get(name).map(std::path::PathBuf::from);
        let tls = (url.scheme() == "rediss" || options.bool("ssl", false)?).then(|| TlsFiles {
            ca_certs: path("ssl_ca_certs"),
            certfile: path("ssl_certfile"),
            keyfile: path("ssl_keyfile"),
        });
        let ssl_files = ["ssl_ca_certs", "ssl_certfile", "ssl_keyfile"];
        if tls.is_none() && ssl_files.iter().any(|o| options.get(o).is_some()) {
            return Err(invalid(
                "ssl_* options need TLS: use rediss:// or ssl=true".into(),
            ));
        }
        if cfg!(not(feature = "redis-tls")) && tls.is_some() {
            return Err(Error::Unsupported {
                operation: "TLS (rediss://, ssl=true) without the cargo feature `redis-tls`",
                backend: NAME,
            });
        }
        if options
            .get("encoding")
            .is_some_and(|e| !e.eq_ignore_ascii_case("utf8") && !e.eq_ignore_ascii_case("utf-8"))
        {
            return Err(options.invalid(
                "encoding",
                options.get("encoding").unwrap_or(""),
                "only utf8 is supported",
            ));
        }
        let timeout = options.duration("timeout", DEFAULT_TIMEOUT)?;
        let membership_timeout = options.duration("membership_timeout", timeout)?;
        let lock_timeout = options.duration("lock_timeout", timeout)?;
        for (name, value) in [
            ("membership_timeout", membership_timeout),
            ("lock_timeout", lock_timeout),
        ] {
            if value < Duration::from_millis(100) {
                return Err(options.invalid(
                    name,
                    &format!("{value:?}"),
                    "must be at least 100 ms",
                ));
            }
        }
        let decode = |s: &str| {
            percent_decode(s).map_err(|()| {
                invalid("the user name or password is not valid percent-encoding".into())
            })
        };
        let (addr, path_db) = match url.host_str().filter(|h| !h.is_empty()) {
            Some(host) => {
                let host = host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_owned();
                let db = url.path().trim_start_matches('/');
                let db = if db.is_empty() {
                    None
                } else {
                    Some(db.parse::<i64>().map_err(|_| {
                        invalid(format!("the path '/{db}' is not a database number"))
                    })?)
                };
                (
                    tcp_addr(host, url.port().unwrap_or(6379), tls.is_some()),
                    db,
                )
            }
            None if !url.path().is_empty() && url.path() != "/" => {
                (ConnectionAddr::Unix(url.path().into()), None)
            }
            None => return Err(invalid("no host and no socket path".into())),
        };
        let db = match options.get("db") {
            Some(_) => options.u64("db", 0)? as i64,
            None => path_db.unwrap_or(0),
        };
        let mut settings = RedisConnectionInfo::default().set_db(db);
        if !url.username().is_empty() {
            settings = settings.set_username(decode(url.username())?);
        }
        if let Some(password) = url.password() {
            settings = settings.set_password(decode(password)?);
        }
        let sentinel = match &addr {
            ConnectionAddr::Tcp(host, port) | ConnectionAddr::TcpTls { host, port, .. } => {
                SentinelOptions::from_options(&options, (host.clone(), *port))?
            }
            _ if options.get("sentinel").is_some() => {
                return Err(invalid(
                    "sentinels are reached over TCP, not a unix socket".into(),
                ));
            }
            _ => None,
        };
        Ok(Self {
            url: shown,
            addr,
            tls,
            sentinel,
            settings,
            membership_timeout,
            lock_timeout,
            namespace: options.get("namespace").unwrap_or("_tooz").to_owned(),
            socket_timeout: options.duration("socket_timeout", timeout)?,
            connect_timeout: options.duration("socket_connect_timeout", timeout)?,
        })
    }
}

/// A TCP address, with TLS (certificates checked) or without.
fn tcp_addr(host: String, port: u16, tls: bool) -> ConnectionAddr {
    if tls {
        ConnectionAddr::TcpTls {
            host,
            port,
            insecure: false,
            tls_params: None,
        }
    } else {
        ConnectionAddr::Tcp(host, port)
    }
}

fn percent_decode(s: &str) -> std::result::Result<String, ()> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3).ok_or(())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| ())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ())
}

/// Maps a client error: unreachable, timed out or dropped is `Connection`; the rest `Backend`.
pub(crate) fn redis_error(e: redis::RedisError) -> Error {
    if e.is_io_error() || e.is_connection_refusal() || e.is_timeout() || e.is_connection_dropped() {
        Error::Connection {
            backend: NAME,
            source: Box::new(e),
        }
    } else {
        Error::Backend {
            backend: NAME,
            source: Box::new(e),
        }
    }
}

/// One coordinator's connection to a Redis server.
pub struct RedisBackend {
    options: RedisOptions,
    member: MemberId,
    keys: Keys,
    /// The connection to the master; replaced when a failover moves it.
    conn: RwLock<Option<ConnectionManager>>,
    /// The client the release listener subscribes through (follows `conn`).
    client: Arc<RwLock<Option<redis::Client>>>,
    changes: Arc<Changes>,
    listener: Mutex<Option<JoinHandle<()>>>,
}

impl fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBackend")
            .field("options", &self.options)
            .field("member", &self.member)
            .finish_non_exhaustive()
    }
}

impl RedisBackend {
    /// A connection for `member` to the server in `options` (made by `start`).
    pub fn new(options: RedisOptions, member: MemberId) -> Self {
        let keys = Keys::new(&options.namespace);
        Self {
            options,
            member,
            keys,
            conn: RwLock::new(None),
            client: Arc::new(RwLock::new(None)),
            changes: Arc::new(Changes::default()),
            listener: Mutex::new(None),
        }
    }

    fn client(&self, addr: ConnectionAddr) -> Result<redis::Client> {
        let info = addr
            .into_connection_info()
            .map_err(redis_error)?
            .set_redis_settings(self.options.settings.clone());
        match &self.options.tls {
            #[cfg(feature = "redis-tls")]
            Some(files) => tls_client(info, files),
            _ => redis::Client::open(info).map_err(redis_error),
        }
    }

    pub(crate) fn conn(&self) -> Result<ConnectionManager> {
        let conn = self.conn.read().unwrap_or_else(|e| e.into_inner());
        conn.clone().ok_or(Error::Stopped)
    }

    /// Where the master is: the URL's address, or what the sentinels say now.
    async fn master_addr(&self) -> Result<ConnectionAddr> {
        let Some(sentinel) = &self.options.sentinel else {
            return Ok(self.options.addr.clone());
        };
        let (host, port) = sentinel.resolve(self.options.connect_timeout).await?;
        Ok(tcp_addr(host, port, self.options.tls.is_some()))
    }

    /// Connects to the master (found anew through the sentinels, if any) and checks that it
    /// is a Redis master; replaces the connection in use.
    async fn connect(&self) -> Result<()> {
        let client = self.client(self.master_addr().await?)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.options.connect_timeout))
            .set_response_timeout(Some(self.options.socket_timeout))
            .set_number_of_retries(2);
        let mut conn = client
            .get_connection_manager_with_config(config)
            .await
            .map_err(redis_error)?;
        let info: String = redis::cmd("INFO")
            .arg("replication")
            .query_async(&mut conn)
            .await
            .map_err(redis_error)?;
        if !info.contains("role:") {
            return Err(Error::Backend {
                backend: NAME,
                source: format!(
                    "{} does not answer INFO like a Redis server",
                    self.options.url
                )
                .into(),
            });
        }
        if !info.contains("role:master") {
            return Err(Error::Backend {
                backend: NAME,
                source: format!("{} reached a replica, not the master", self.options.url).into(),
            });
        }
        *self.conn.write().unwrap_or_else(|e| e.into_inner()) = Some(conn);
        *self.client.write().unwrap_or_else(|e| e.into_inner()) = Some(client);
        Ok(())
    }

    /// After a failed call: with sentinels, look for the (possibly new) master.
    async fn follow_failover(&self, error: &Error) {
        let moved = match error {
            Error::Connection { .. } => true,
            Error::Backend { source, .. } => source.to_string().contains("READONLY"),
            _ => false,
        };
        if self.options.sentinel.is_some() && moved {
            match self.connect().await {
                Ok(()) => {
                    tracing::info!(url = %self.options.url, "reconnected to the master the sentinels name")
                }
                Err(e) => {
                    tracing::warn!(url = %self.options.url, error = %e, "no master reachable through the sentinels yet")
                }
            }
        }
    }

    fn ms(duration: Duration) -> u64 {
        duration.as_millis().max(1) as u64
    }

    /// Listens for release and membership announcements, reconnecting as needed, and wakes
    /// this backend's waiters.
    fn spawn_listener(&self) {
        let changes = Arc::clone(&self.changes);
        let current = Arc::clone(&self.client);
        let channel = self.keys.events();
        let task = tokio::spawn(async move {
            use futures_util::StreamExt;
            let mut pause = Duration::from_millis(100);
            loop {
                let client = current.read().unwrap_or_else(|e| e.into_inner()).clone();
                if let Some(client) = client
                    && let Ok(mut pubsub) = client.get_async_pubsub().await
                    && pubsub.subscribe(&channel).await.is_ok()
                {
                    pause = Duration::from_millis(100);
                    // Anything may have happened while we were not listening.
                    changes.notify();
                    let mut messages = pubsub.on_message();
                    while messages.next().await.is_some() {
                        changes.notify();
                    }
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
        });
        *self.listener.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
    }
}

#[cfg(feature = "redis-tls")]
fn tls_client(info: redis::ConnectionInfo, files: &TlsFiles) -> Result<redis::Client> {
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|e| Error::InvalidOption {
            backend: NAME,
            option: "ssl_*".to_owned(),
            value: path.display().to_string(),
            reason: format!("cannot read the file: {e}"),
        })
    };
    let client_tls = match (&files.certfile, &files.keyfile) {
        (Some(cert), Some(key)) => Some(redis::ClientTlsConfig {
            client_cert: read(cert)?,
            client_key: read(key)?,
        }),
        (None, None) => None,
        _ => {
            return Err(Error::InvalidOption {
                backend: NAME,
                option: "ssl_certfile".to_owned(),
                value: String::new(),
                reason: "ssl_certfile and ssl_keyfile go together".to_owned(),
            });
        }
    };
    let root_cert = files.ca_certs.as_deref().map(read).transpose()?;
    let certs = redis::TlsCertificates {
        client_tls,
        root_cert,
    };
    redis::Client::build_with_tls(info, certs).map_err(redis_error)
}

impl Drop for RedisBackend {
    fn drop(&mut self) {
        if let Some(task) = self
            .listener
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            task.abort();
        }
    }
}

#[async_trait]
impl Backend for RedisBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn characteristics(&self) -> Characteristics {
        Characteristics::new(&[
            Characteristic::DistributedAcrossThreads,
            Characteristic::DistributedAcrossProcesses,
            Characteristic::DistributedAcrossHosts,
            Characteristic::Causal,
        ])
    }

    fn membership_timeout(&self) -> Duration {
        self.options
            .membership_timeout
            .min(self.options.lock_timeout)
    }

    async fn start(&self) -> Result<()> {
        keys::check_member(&self.member)?;
        self.connect().await?;
        let mut conn = self.conn()?;
        let beat = self.keys.beat(&self.member);
        let _: () = redis::cmd("PSETEX")
            .arg(beat)
            .arg(Self::ms(self.options.membership_timeout))
            .arg("Not dead!")
            .query_async(&mut conn)
            .await
            .map_err(redis_error)?;
        self.spawn_listener();
        Ok(())
    }

    async fn heartbeat(&self, held: &Held) -> Result<BeatReport> {
        let mut conn = self.conn()?;
        let mut invocation = scripts::HEARTBEAT.prepare_invoke();
        invocation.key(self.keys.beat(&self.member));
        let mut tokens = Vec::new();
        for (name, owner) in &held.locks {
            invocation.key(self.keys.lock(name));
            tokens.push(owner.to_hex());
        }
        for (group, owner) in &held.leaderships {
            invocation.key(self.keys.leader_lock(group));
            tokens.push(owner.to_hex());
        }
        for group in &held.memberships {
            invocation.key(self.keys.group(group));
        }
        invocation
            .arg(Self::ms(self.options.membership_timeout))
            .arg(Self::ms(self.options.lock_timeout))
            .arg(self.member.as_bytes())
            .arg(tokens.len());
        for token in &tokens {
            invocation.arg(token);
        }
        let found: Vec<i64> = match invocation.invoke_async(&mut conn).await {
            Ok(found) => found,
            Err(e) => {
                let error = redis_error(e);
                self.follow_failover(&error).await;
                return Err(error);
            }
        };
        let mut found = found.into_iter();
        let mut report = BeatReport::default();
        for (_, owner) in &held.locks {
            if found.next() != Some(1) {
                report.lost_locks.push(*owner);
            }
        }
        for (group, _) in &held.leaderships {
            if found.next() != Some(1) {
                report.lost_leaderships.push(group.clone());
            }
        }
        for group in &held.memberships {
            if found.next() != Some(1) {
                report.lost_memberships.push(group.clone());
            }
        }
        Ok(report)
    }

    async fn stop(&self) -> Result<()> {
        if let Some(task) = self
            .listener
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            task.abort();
        }
        // Peers see us gone at once rather than after the beat key's TTL.
        let mut conn = self.conn()?;
        let _: () = redis::cmd("DEL")
            .arg(self.keys.beat(&self.member))
            .query_async(&mut conn)
            .await
            .map_err(redis_error)?;
        Ok(())
    }

    async fn try_acquire(&self, request: LockRequest<'_>) -> Result<Option<FencingToken>> {
        if request.mode == crate::backend::LockMode::Shared {
            return Err(Error::Unsupported {
                operation: "shared locks",
                backend: NAME,
            });
        }
        keys::check_lock(request.name)?;
        let mut conn = self.conn()?;
        let token: u64 = scripts::ACQUIRE
            .key(self.keys.lock(request.name))
            .key(self.keys.fence(request.name))
            .arg(request.owner.to_hex())
            .arg(Self::ms(self.options.lock_timeout))
            .invoke_async(&mut conn)
            .await
            .map_err(redis_error)?;
        Ok((token > 0).then(|| FencingToken::new(token)))
    }

    async fn release(&self, name: &LockName, owner: OwnerToken) -> Result<bool> {
        let key = self.keys.lock(name);
        let mut conn = self.conn()?;
        let released: i64 = scripts::RELEASE
            .key(&key)
            .key(&key)
            .arg(owner.to_hex())
            .arg(self.keys.events())
            .invoke_async(&mut conn)
            .await
            .map_err(redis_error)?;
        Ok(released == 1)
    }

    fn change_hint(&self, _topic: Topic<'_>) -> Option<ChangeHint> {
        Some(self.changes.hint_or_poll(UNANNOUNCED_POLL))
    }

    fn groups(&self) -> Option<&dyn Groups> {
        Some(self)
    }

    fn elections(&self) -> Option<&dyn Elections> {
        Some(self)
    }
}

#[async_trait]
impl Elections for RedisBackend {
    async fn try_lead(&self, group: &GroupId, owner: OwnerToken) -> Result<Option<FencingToken>> {
        let mut conn = self.conn()?;
        let term: u64 = scripts::LEAD
            .key(self.keys.leader_lock(group))
            .key(self.keys.leader_fence(group))
            .key(self.keys.leader_name(group))
            .arg(owner.to_hex())
            .arg(Self::ms(self.options.lock_timeout))
            .arg(self.member.as_bytes())
            .invoke_async(&mut conn)
            .await
            .map_err(redis_error)?;
        Ok((term > 0).then(|| FencingToken::new(term)))
    }

    async fn resign(&self, group: &GroupId, owner: OwnerToken) -> Result<bool> {
        let mut conn = self.conn()?;
        let resigned: i64 = scripts::RELEASE
            .key(self.keys.leader_lock(group))
            .key(self.keys.leader_name(group))
            .arg(owner.to_hex())
            .arg(self.keys.events())
            .invoke_async(&mut conn)
            .await
            .map_err(redis_error)?;
        Ok(resigned == 1)
    }

    async fn leader(&self, group: &GroupId) -> Result<Option<MemberId>> {
        let mut conn = self.conn()?;
        let leader: Option<Vec<u8>> = scripts::LEADER
            .key(self.keys.leader_lock(group))
            .key(self.keys.leader_name(group))
            .invoke_async(&mut conn)
            .await
            .map_err(redis_error)?;
        Ok(leader.map(|id| {
            if id.is_empty() {
                MemberId::from(UNKNOWN_LEADER)
            } else {
                MemberId::from(id)
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(url: &str) -> Result<RedisOptions> {
        RedisOptions::from_url(&Url::parse(url).unwrap())
    }

    #[test]
    fn urls_take_toozs_forms_and_defaults() {
        let o = options("redis://127.0.0.1").unwrap();
        assert_eq!(o.lock_timeout, Duration::from_secs(30));
        assert_eq!(o.namespace, "_tooz");
        let o = options("redis://h:7000/3?timeout=5&lock_timeout=2&namespace=app").unwrap();
        assert_eq!(
            (o.membership_timeout, o.lock_timeout),
            (Duration::from_secs(5), Duration::from_secs(2))
        );
        assert_eq!(o.settings.db(), 3);
        assert!(matches!(o.addr, ConnectionAddr::Tcp(ref h, 7000) if h == "h"));
        let o = options("redis:///run/redis.sock?db=2").unwrap();
        assert!(matches!(o.addr, ConnectionAddr::Unix(_)));
        assert_eq!(o.settings.db(), 2);
        options("redis://h?executor=threaded&retry_on_timeout=true").unwrap();
        let o = options("redis://s1:26379?sentinel=mymaster&sentinel_fallback=s2:26380&sentinel_fallback=[::1]:1").unwrap();
        let sentinel = o.sentinel.expect("sentinel options");
        assert_eq!(sentinel.master, "mymaster");
        assert_eq!(
            sentinel.sentinels,
            [
                ("s1".into(), 26379),
                ("s2".into(), 26380),
                ("::1".into(), 1)
            ]
        );
        assert!(options("redis://s1?sentinel=m&sentinel_fallback=nonsense").is_err());
    }

    #[test]
    fn bad_urls_name_the_problem_and_never_the_password() {
        let err = options("redis://u:s3cret@h/x").unwrap_err().to_string();
        assert!(err.contains("'/x'") && !err.contains("s3cret"), "{err}");
        assert!(
            options("redis://h?sentinel=m&sentinel_ssl=true")
                .unwrap_err()
                .is_unsupported()
        );
        let err = options("redis://h?ssl_ca_certs=/x.pem")
            .unwrap_err()
            .to_string();
        assert!(err.contains("rediss://"), "{err}");
        match options("rediss://h?ssl_ca_certs=/ca.pem") {
            Ok(o) => assert!(
                cfg!(feature = "redis-tls") && matches!(o.addr, ConnectionAddr::TcpTls { .. })
            ),
            Err(e) => assert!(!cfg!(feature = "redis-tls") && e.is_unsupported(), "{e}"),
        }
        assert!(
            options("redis://h?timout=1")
                .unwrap_err()
                .to_string()
                .contains("valid options")
        );
        let o = options("redis://u:s3cret@h").unwrap();
        assert!(!format!("{o:?}").contains("s3cret"));
        assert_eq!(o.settings.password(), Some("s3cret"));
    }
}
