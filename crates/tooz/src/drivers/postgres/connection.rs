//! The coordinator's one session with the server: connecting, the statements prepared on it,
//! the task that reads its notifications, and what happens when it ends.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{AsyncMessage, Client, Config, Connection, NoTls, Socket, Statement};

use super::error::{connect_error, postgres_error};
use super::sql::{SCHEMA_LOCK, Sql};
use super::{NAME, PostgresOptions, Shared};
use crate::drivers::shared;
use crate::error::{Error, Result};
use crate::ids::MemberId;

/// The statements the hot paths run, prepared once per session (a statement given as text is
/// parsed on every call, one more round trip).
#[derive(Debug)]
pub(super) struct Prepared {
    pub(super) acquire: Statement,
    pub(super) release: Statement,
    pub(super) heartbeat: Statement,
}

/// A live session.
#[derive(Debug)]
pub(super) struct Live {
    pub(super) client: Client,
    pub(super) prepared: Prepared,
    /// Which session this is: a lock taken on one is lost with it.
    pub(super) generation: u64,
    /// The server process serving it (to tell a transaction-mode pooler, which would hand our
    /// statements to other sessions, from a real session).
    pub(super) pid: i32,
}

/// Opens a session: connects, bounds it on the server, listens, creates the schema if needed
/// and prepares the statements. When the session ends, `shared` reports what was lost with it.
pub(super) async fn open(
    options: &PostgresOptions,
    member: &MemberId,
    sql: &Sql,
    shared: &Arc<Shared>,
    generation: u64,
) -> Result<Live> {
    let mut config = Config::new();
    config
        .host(&options.host)
        .port(options.port)
        .user(&options.user)
        .dbname(&options.dbname)
        .application_name(application_name(member))
        .connect_timeout(options.timeout)
        // A peer that vanished without a word is noticed from our side too.
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(1).max(options.lock_timeout / 2))
        .keepalives_interval(Duration::from_secs(1))
        .keepalives_retries(3)
        .tcp_user_timeout(options.lock_timeout);
    if let Some(password) = &options.password {
        config.password(password);
    }
    let server = format!("{}:{}", options.host, options.port);
    let (lock_channel, group_channel) = (sql.lock_channel.clone(), sql.group_channel.clone());
    let reader = Reader {
        shared: Arc::clone(shared),
        generation,
        lock_channel,
        group_channel,
    };
    #[cfg(feature = "postgres-tls")]
    let client = match &options.tls {
        Some(tls) => {
            config.ssl_mode(if tls.required {
                tokio_postgres::config::SslMode::Require
            } else {
                tokio_postgres::config::SslMode::Prefer
            });
            let connector = tokio_postgres_rustls::MakeRustlsConnect::new((*tls.config).clone());
            connect(options, &config, connector, &server, reader).await?
        }
        None => connect(options, &config, NoTls, &server, reader).await?,
    };
    #[cfg(not(feature = "postgres-tls"))]
    let client = connect(options, &config, NoTls, &server, reader).await?;
    let live = async {
        // The server ends a session that sends nothing for lock_timeout: a holder cut off by
        // a partition loses its locks then, not after TCP's hours. Heartbeats keep it busy.
        // The idle clock starts when a statement is received, after our send time, and the
        // local lease (90% from the send time) runs out first.
        let ms = options.lock_timeout.as_millis();
        // (Not the server's tcp_user_timeout: counted from data the server sent, a
        // notification, it could end the session before our lease runs out.)
        let bound = format!("SET idle_session_timeout = {ms};");
        if let Err(e) = client.batch_execute(&bound).await {
            tracing::warn!(
                backend = NAME,
                error = %e,
                "the server cannot bound idle sessions (PostgreSQL 14 or newer can): a holder \
                 cut off by a partition keeps its locks until TCP gives up"
            );
        }
        client.batch_execute(&sql.setup).await?;
        if !shared.schema_ready() {
            let schema = format!(
                "BEGIN; SELECT pg_advisory_xact_lock({SCHEMA_LOCK}); {} COMMIT;",
                sql.schema
            );
            client.batch_execute(&schema).await?;
            shared.mark_schema_ready();
        }
        let acquire = if options.tooz_lock_keys {
            &sql.acquire_with_tooz_keys
        } else {
            &sql.acquire
        };
        let release = if options.tooz_lock_keys {
            &sql.release_with_tooz_keys
        } else {
            &sql.release
        };
        let prepared = Prepared {
            acquire: client.prepare(acquire).await?,
            release: client.prepare(release).await?,
            heartbeat: client.prepare(&sql.heartbeat).await?,
        };
        let pid: i32 = client
            .query_one("SELECT pg_backend_pid()", &[])
            .await?
            .get(0);
        Ok::<_, tokio_postgres::Error>((prepared, pid))
    };
    let (prepared, pid) = bounded(options, "setting up the session", async {
        live.await.map_err(postgres_error)
    })
    .await?;
    Ok(Live {
        client,
        prepared,
        generation,
        pid,
    })
}

/// What the task reading a session's messages needs.
struct Reader {
    shared: Arc<Shared>,
    generation: u64,
    lock_channel: String,
    group_channel: String,
}

impl Reader {
    /// Reads the session's messages until it ends: notifications wake waiters and watches;
    /// the end reports what was lost with the session.
    async fn run<S, T>(self, mut connection: Connection<S, T>)
    where
        S: AsyncRead + AsyncWrite + Unpin,
        T: AsyncRead + AsyncWrite + Unpin,
    {
        loop {
            let message = std::future::poll_fn(|cx| connection.poll_message(cx)).await;
            match message {
                Some(Ok(AsyncMessage::Notification(n))) if n.channel() == self.lock_channel => {
                    self.shared.lock_changes.notify();
                }
                Some(Ok(AsyncMessage::Notification(n))) if n.channel() == self.group_channel => {
                    self.shared.group_changes.notify();
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::warn!(backend = NAME, error = %e, "the PostgreSQL session ended");
                    break;
                }
                None => break,
            }
        }
        self.shared.session_ended(self.generation);
    }
}

/// Connects with `tls` and starts the session's reader.
async fn connect<T>(
    options: &PostgresOptions,
    config: &Config,
    tls: T,
    server: &str,
    reader: Reader,
) -> Result<Client>
where
    T: MakeTlsConnect<Socket> + Send,
    T::Stream: Send + 'static,
    T::TlsConnect: Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    let connect = async {
        config
            .connect(tls)
            .await
            .map_err(|e| connect_error(e, server))
    };
    let (client, connection) = bounded(options, "connecting", connect).await?;
    tokio::spawn(reader.run(connection));
    Ok(client)
}

/// What `pg_stat_activity` shows for us: `tooz:<member>` (cut to fit).
fn application_name(member: &MemberId) -> String {
    let shown: String = crate::ids::display_name(member.as_bytes())
        .chars()
        .filter(|c| !c.is_control())
        .take(50)
        .collect();
    format!("tooz:{shown}")
}

/// Bounds a step by the `timeout` option.
pub(super) async fn bounded<T, E>(
    options: &PostgresOptions,
    what: &str,
    step: impl Future<Output = std::result::Result<T, E>>,
) -> Result<T>
where
    E: Into<Error>,
{
    shared::bounded(NAME, &options.url, options.timeout, what, step).await
}
