//! Redis Sentinel, as tooz's URL names it: `redis://SENTINEL:PORT?sentinel=MASTER`, more
//! sentinels in `sentinel_fallback=HOST:PORT` (repeatable), their credentials in
//! `sentinel_username` / `sentinel_password` (the URL's own credentials are the master's).
//!
//! The master's address is asked of the sentinels in order, at start and again whenever the
//! connection to the master fails or the node we reach says it is a read-only replica (a
//! failover happened): the coordinator follows the new master by itself. What was held on the
//! old master and did not survive the failover is found missing by the next heartbeat and
//! reported lost.

use std::time::Duration;

use redis::{AsyncConnectionConfig, ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo};

use super::{NAME, redis_error};
use crate::error::{Error, Result};
use crate::options::UrlOptions;

/// Where the sentinels are and which master to ask them for.
#[derive(Clone)]
pub(crate) struct SentinelOptions {
    pub(crate) master: String,
    pub(crate) sentinels: Vec<(String, u16)>,
    auth: RedisConnectionInfo,
}

impl std::fmt::Debug for SentinelOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentinelOptions")
            .field("master", &self.master)
            .field("sentinels", &self.sentinels)
            .finish_non_exhaustive()
    }
}

fn host_port(value: &str, options: &UrlOptions) -> Result<(String, u16)> {
    let invalid = || options.invalid("sentinel_fallback", value, "expected HOST:PORT");
    let (host, port) = value.rsplit_once(':').ok_or_else(invalid)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(invalid());
    }
    Ok((host.to_owned(), port.parse().map_err(|_| invalid())?))
}

impl SentinelOptions {
    /// Sentinel options from the URL's query, if `sentinel=` is there. `first` is the URL's
    /// own host and port: the first sentinel to ask.
    pub(crate) fn from_options(options: &UrlOptions, first: (String, u16)) -> Result<Option<Self>> {
        let Some(master) = options.get("sentinel") else {
            return Ok(None);
        };
        if options.bool("sentinel_ssl", false)? {
            return Err(Error::Unsupported {
                operation: "TLS to sentinels (sentinel_ssl)",
                backend: NAME,
            });
        }
        let mut sentinels = vec![first];
        for fallback in options.get_all("sentinel_fallback") {
            sentinels.push(host_port(fallback, options)?);
        }
        let mut auth = RedisConnectionInfo::default();
        if let Some(user) = options.get("sentinel_username") {
            auth = auth.set_username(user);
        }
        if let Some(password) = options.get("sentinel_password") {
            auth = auth.set_password(password);
        }
        Ok(Some(Self {
            master: master.to_owned(),
            sentinels,
            auth,
        }))
    }

    /// The current master's address, from the first sentinel that knows it.
    pub(crate) async fn resolve(&self, timeout: Duration) -> Result<(String, u16)> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout));
        let mut last = None;
        for (host, port) in &self.sentinels {
            let asked = async {
                let info = ConnectionAddr::Tcp(host.clone(), *port)
                    .into_connection_info()?
                    .set_redis_settings(self.auth.clone());
                let client = redis::Client::open(info)?;
                let mut conn = client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await?;
                redis::cmd("SENTINEL")
                    .arg("get-master-addr-by-name")
                    .arg(&self.master)
                    .query_async::<Option<(String, u16)>>(&mut conn)
                    .await
            };
            match asked.await {
                Ok(Some(addr)) => return Ok(addr),
                Ok(None) => {
                    last = Some(Error::Backend {
                        backend: NAME,
                        source: format!(
                            "sentinel {host}:{port} knows no master named '{}'",
                            self.master
                        )
                        .into(),
                    });
                }
                Err(e) => {
                    tracing::warn!(sentinel = %format!("{host}:{port}"), error = %e, "sentinel did not answer");
                    last = Some(redis_error(e));
                }
            }
        }
        Err(last.unwrap_or(Error::Backend {
            backend: NAME,
            source: "no sentinel configured".into(),
        }))
    }
}
