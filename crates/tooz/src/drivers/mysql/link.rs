//! Connections to the server. The coordinator's session (groups, heartbeats, and locks taken
//! without waiting) is one; a waiting acquire waits on the server on a spare one, which then
//! holds the lock it was granted until it is released. Each is a `Link`: a lock taken on one
//! is lost when that connection ends, and the server ends a connection that stays idle past
//! `wait_timeout` (set to `lock_timeout`), so that a holder cut off by a partition keeps its
//! locks that long, not for TCP's hours.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, Params, Row};
use tokio::time::Instant;

use super::error::{interrupted, mysql_error};
use super::{MysqlOptions, NAME};
use crate::drivers::shared;
use crate::error::{Error, Result};

/// The oldest servers whose `GET_LOCK` lets one session hold several locks: before them a
/// second `GET_LOCK` silently released the first (MariaDB 10.0.2 is newer than this).
const OLDEST_SERVER: (u16, u16, u16) = (5, 7, 5);

/// One connection, and which one it is.
pub(super) struct Link {
    conn: Conn,
    /// Which connection this is: a lock taken on it is lost with it.
    pub(super) generation: u64,
    /// When it last answered (an idle one lives only `wait_timeout` on the server).
    used: Instant,
    /// The server is MariaDB (not MySQL).
    pub(super) mariadb: bool,
    /// A statement was sent and its answer not read (its caller was cancelled): the next
    /// command would read that answer as its own, so the connection is of no further use.
    dirty: bool,
}

impl std::fmt::Debug for Link {
    // (Not the client's connection: its options hold the password.)
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("generation", &self.generation)
            .field("id", &self.conn.id())
            .field("dirty", &self.dirty)
            .finish_non_exhaustive()
    }
}

/// What a statement returned: its rows, and its OK packet's counts.
#[derive(Debug)]
pub(super) struct Outcome {
    pub(super) rows: Vec<Row>,
    pub(super) affected: u64,
    pub(super) insert_id: Option<u64>,
}

/// How a statement failed.
#[derive(Debug)]
pub(super) enum Failure {
    /// The server refused it; the connection is fine.
    Refused(Error),
    /// `KILL QUERY` interrupted it (a waiter gave up); the connection is fine, but what the
    /// statement did before it was stopped is not known.
    Interrupted,
    /// The connection failed, timed out or ended: it is of no further use.
    Lost(Error),
}

impl Failure {
    pub(super) fn into_error(self) -> Error {
        match self {
            Self::Refused(e) | Self::Lost(e) => e,
            Self::Interrupted => Error::Backend {
                backend: NAME,
                source: "the statement was interrupted".into(),
            },
        }
    }
}

impl Link {
    /// Connects, checks the server, bounds idle time and runs `schema` (the tables, on the
    /// backend's first connection).
    pub(super) async fn open(
        options: &MysqlOptions,
        schema: Option<&[String]>,
        generation: u64,
    ) -> Result<Self> {
        let wait_timeout = options.lock_timeout.as_secs_f64().ceil() as usize;
        let mut builder = OptsBuilder::default()
            .ip_or_hostname(options.host.clone())
            .tcp_port(options.port)
            .user(options.user.clone())
            .pass(options.password.clone())
            .db_name(options.dbname.clone())
            .prefer_socket(false)
            // (What the server will be told, below, so that the client knows it too.)
            .wait_timeout(Some(wait_timeout.max(1)))
            // A peer that vanished without a word is noticed from our side too (within the
            // kernel's limit of 32,767 s for the first probe).
            .tcp_keepalive(Some(
                (options.lock_timeout / 2).clamp(Duration::from_secs(1), Duration::from_secs(3600)),
            ))
            .stmt_cache_size(64);
        if let Some(socket) = &options.socket {
            builder = builder.socket(Some(socket.clone()));
        }
        #[cfg(feature = "mysql-tls")]
        if let Some(tls) = &options.tls {
            builder = builder.ssl_opts(Some(tls.clone()));
        }
        let server = match &options.socket {
            Some(socket) => socket.clone(),
            None => format!("{}:{}", options.host, options.port),
        };
        let connect = async {
            Conn::new(builder).await.map_err(|e| {
                let source = format!("{server}: {e}");
                match mysql_error(e) {
                    Error::Backend { .. } => Error::Backend {
                        backend: NAME,
                        source: source.into(),
                    },
                    _ => Error::Connection {
                        backend: NAME,
                        source: source.into(),
                    },
                }
            })
        };
        let mut conn = bounded(options, "connecting", connect).await?;
        let version = conn.server_version();
        if version < OLDEST_SERVER {
            return Err(Error::Backend {
                backend: NAME,
                source: format!(
                    "{server} runs version {}.{}.{}: locks need MySQL 5.7.5 or MariaDB 10.0.2 \
                     or newer (older servers let a connection hold only one GET_LOCK lock and \
                     silently release the first)",
                    version.0, version.1, version.2
                )
                .into(),
            });
        }
        // The server ends a connection idle `wait_timeout` seconds (the client's option of that
        // name only tells the client); row-lock waits give up within our own bound. Numbers of
        // ours, not input.
        let wait_timeout = wait_timeout.max(1);
        let row_wait = options.timeout.as_secs().clamp(1, 1_073_741_824);
        let bound = format!(
            "SET SESSION wait_timeout = {wait_timeout}, innodb_lock_wait_timeout = {row_wait}"
        );
        bounded(options, "setting up the connection", conn.query_drop(bound)).await?;
        let version: Option<String> = bounded(
            options,
            "setting up the connection",
            conn.query_first("SELECT VERSION()"),
        )
        .await?;
        let mariadb = version.is_some_and(|v| v.contains("MariaDB"));
        if let Some(schema) = schema {
            let create = async {
                for table in schema {
                    conn.query_drop(table).await?;
                }
                Ok::<_, mysql_async::Error>(())
            };
            bounded(options, "creating the tables", create).await?;
        }
        Ok(Self {
            conn,
            generation,
            used: Instant::now(),
            mariadb,
            dirty: false,
        })
    }

    /// The server's id of this connection (for `KILL QUERY`).
    pub(super) fn id(&self) -> u32 {
        self.conn.id()
    }

    /// Whether the server may have ended it for idleness by now (`wait_timeout`, less a
    /// margin for the trip).
    pub(super) fn maybe_expired(&self, options: &MysqlOptions) -> bool {
        self.used.elapsed() >= options.lock_timeout.mul_f64(0.8)
    }

    /// Runs `sql` with `params`, bounded by `bound`.
    pub(super) async fn run(
        &mut self,
        options: &MysqlOptions,
        bound: Duration,
        what: &str,
        sql: &str,
        params: Params,
    ) -> std::result::Result<Outcome, Failure> {
        if self.dirty {
            return Err(Failure::Lost(Error::Connection {
                backend: NAME,
                source: "a statement on this connection was cut short; it is closed".into(),
            }));
        }
        // Cleared only once the answer is read: a caller cancelled in between leaves it set.
        self.dirty = true;
        let statement = async {
            let rows: Vec<Row> = self.conn.exec(sql, params).await?;
            Ok::<_, mysql_async::Error>(rows)
        };
        let rows = match tokio::time::timeout(bound, statement).await {
            Ok(Ok(rows)) => rows,
            Ok(Err(e)) if interrupted(&e) => {
                self.dirty = false;
                return Err(Failure::Interrupted);
            }
            Ok(Err(e)) => {
                return Err(match mysql_error(e) {
                    e @ Error::Connection { .. } => Failure::Lost(e),
                    e => {
                        // The server answered: the connection is in step.
                        self.dirty = false;
                        Failure::Refused(e)
                    }
                });
            }
            Err(_) => {
                return Err(Failure::Lost(shared::timed_out(
                    NAME,
                    &options.url,
                    what,
                    bound,
                )));
            }
        };
        self.used = Instant::now();
        self.dirty = false;
        Ok(Outcome {
            rows,
            affected: self.conn.affected_rows(),
            insert_id: self.conn.last_insert_id(),
        })
    }

    /// Closes it politely (the server frees what it held at once).
    pub(super) async fn close(self, options: &MysqlOptions) {
        let _ = tokio::time::timeout(options.timeout, self.conn.disconnect()).await;
    }
}

/// Bounds a step by the `timeout` option.
pub(super) async fn bounded<T, E>(
    options: &MysqlOptions,
    what: &str,
    step: impl Future<Output = std::result::Result<T, E>>,
) -> Result<T>
where
    E: Into<Error>,
{
    shared::bounded(NAME, &options.url, options.timeout, what, step).await
}
