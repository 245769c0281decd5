//! A small memcached client of our own: the meta protocol (`ms`, `mg`, `md`, `ma`) and
//! `stats`, over tokio TCP, a batch of commands per round trip.
//!
//! Why not a crate: a coordination driver needs the client flags pymemcache writes (1 raw, 2
//! msgpack), CAS values on success and failure alike, meta commands with exact flags, binary
//! keys, `stats`, a timeout on every exchange, and a connection that is thrown away — never
//! reused out of step — when an exchange is cut short. None of the maintained crates gave all
//! of that (see the driver's docs); the protocol is a line and a data block.

use std::fmt;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{Mutex, MutexGuard};

use super::NAME;
use super::keys::Key;
use crate::error::{Error, Result};

/// A connection's byte stream: plain TCP, or TLS over it.
trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}
type Stream = Box<dyn Io>;

/// TLS settings of a client: the rustls configuration and the name the server must bear.
#[cfg(feature = "memcached-tls")]
#[derive(Clone)]
pub(crate) struct Tls {
    pub(crate) config: std::sync::Arc<rustls::ClientConfig>,
    pub(crate) server_name: rustls::pki_types::ServerName<'static>,
}

/// Longest value or response line we accept: memcached's default item size limit is 1 MiB.
const MAX_VALUE: usize = 64 << 20;
const MAX_LINE: usize = 8 << 10;

/// One meta command of a batch.
#[derive(Debug)]
pub(crate) struct Command {
    bytes: Vec<u8>,
}

impl Command {
    /// `verb key [length] [b]`: the key's form on the wire, the data length of a store, and
    /// the flag that says the key is base64.
    fn new(verb: &str, key: &Key, data_length: Option<usize>) -> Self {
        let mut bytes = Vec::with_capacity(64);
        bytes.extend_from_slice(verb.as_bytes());
        bytes.push(b' ');
        bytes.extend_from_slice(key.wire());
        let mut command = Self { bytes };
        if let Some(length) = data_length {
            command.flag(&length.to_string());
        }
        if key.is_base64() {
            command.flag("b");
        }
        command
    }

    fn flag(&mut self, flag: &str) -> &mut Self {
        self.bytes.push(b' ');
        self.bytes.extend_from_slice(flag.as_bytes());
        self
    }

    /// `ms`: stores `value` with client `flags` and `ttl` seconds (0: no expiry), in `mode`
    /// (`E` add, `S` set); returns the new CAS.
    pub(crate) fn set(key: &Key, value: &[u8], flags: u32, ttl: u32, mode: Mode) -> Self {
        Self::store(key, value, flags, ttl, mode, None)
    }

    /// `ms` as [`Command::set`], only if the item's CAS is still `cas`.
    pub(crate) fn set_if(key: &Key, value: &[u8], flags: u32, ttl: u32, cas: u64) -> Self {
        Self::store(key, value, flags, ttl, Mode::Set, Some(cas))
    }

    fn store(key: &Key, value: &[u8], flags: u32, ttl: u32, mode: Mode, cas: Option<u64>) -> Self {
        let mut command = Self::new("ms", key, Some(value.len()));
        command
            .flag(&format!("F{flags}"))
            .flag(&format!("T{ttl}"))
            .flag(mode.flag())
            .flag("c");
        if let Some(cas) = cas {
            command.flag(&format!("C{cas}"));
        }
        command.finish();
        command.bytes.extend_from_slice(value);
        command.bytes.extend_from_slice(b"\r\n");
        command
    }

    /// `mg`: the value, its client flags and CAS.
    pub(crate) fn get(key: &Key) -> Self {
        let mut command = Self::new("mg", key, None);
        command.flag("v").flag("f").flag("c");
        command.finish();
        command
    }

    /// `mg` without a value: whether the item exists.
    pub(crate) fn exists(key: &Key) -> Self {
        let mut command = Self::new("mg", key, None);
        command.finish();
        command
    }

    /// `md`: deletes, only if the item's CAS is `cas` when given.
    pub(crate) fn delete(key: &Key, cas: Option<u64>) -> Self {
        let mut command = Self::new("md", key, None);
        if let Some(cas) = cas {
            command.flag(&format!("C{cas}"));
        }
        command.finish();
        command
    }

    /// `ma`: adds one to a counter that never expires, creating it with `initial` if missing;
    /// returns the new value.
    pub(crate) fn increment(key: &Key, initial: u64) -> Self {
        let mut command = Self::new("ma", key, None);
        command.flag("N0").flag(&format!("J{initial}")).flag("v");
        command.finish();
        command
    }

    fn finish(&mut self) {
        self.bytes.extend_from_slice(b"\r\n");
    }
}

/// How `ms` stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Only if absent (`add`).
    Add,
    /// Whatever is there.
    Set,
}

impl Mode {
    fn flag(self) -> &'static str {
        match self {
            Self::Add => "ME",
            Self::Set => "MS",
        }
    }
}

/// One reply of the meta protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    /// `HD`, `VA`, `EN`, `NF`, `NS`, `EX`.
    pub(crate) status: Status,
    /// The returned flags (`c<cas>`, `f<flags>`), by their letter.
    flags: Vec<(u8, Vec<u8>)>,
    /// The data block of a `VA` reply.
    pub(crate) value: Option<Vec<u8>>,
}

/// The status of a meta reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// `HD`: done (stored, deleted, found without a value).
    Done,
    /// `VA`: a value follows.
    Value,
    /// `EN`: a get missed.
    Miss,
    /// `NF`: not found.
    NotFound,
    /// `NS`: not stored (an add that found the item).
    NotStored,
    /// `EX`: the CAS did not match.
    Exists,
    /// `CLIENT_ERROR` or `SERVER_ERROR`: this command was refused (its text in the reply's
    /// value); the batch's other replies still follow.
    Failed,
}

impl Reply {
    /// The numeric value of returned flag `letter`.
    pub(crate) fn number(&self, letter: u8) -> Option<u64> {
        let (_, digits) = self.flags.iter().find(|(l, _)| *l == letter)?;
        std::str::from_utf8(digits).ok()?.parse().ok()
    }

    /// The CAS the reply returned (0 if it returned none, or on a failure).
    pub(crate) fn cas(&self) -> Option<u64> {
        self.number(b'c').filter(|&c| c > 0)
    }

    /// The item's client flags.
    pub(crate) fn client_flags(&self) -> Option<u32> {
        self.number(b'f').and_then(|f| u32::try_from(f).ok())
    }

    /// The counter's value after `ma ... v`.
    pub(crate) fn counter(&self) -> Option<u64> {
        std::str::from_utf8(self.value.as_deref()?)
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

/// A pool of connections to one server; each exchange takes one for its whole batch.
pub(crate) struct Client {
    addr: String,
    timeout: Duration,
    #[cfg(feature = "memcached-tls")]
    tls: Option<Tls>,
    slots: Vec<Mutex<Option<Connection>>>,
    /// The server run last seen, and how many runs we have seen: a restarted memcached hands
    /// out CAS values from 1 again, so a CAS kept from an earlier run could match a stranger's
    /// item. Every new connection asks which run it reached.
    run: std::sync::Mutex<(Option<ServerRun>, u64)>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("addr", &self.addr)
            .field("connections", &self.slots.len())
            .finish()
    }
}

struct Connection {
    stream: BufReader<Stream>,
    /// Which run of the server it reached (see [`Client::epoch`]).
    epoch: u64,
}

/// A run of the server: its process id and when it started (by its own clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ServerRun {
    pid: u64,
    started: i64,
}

impl Client {
    /// Connects lazily, at most `connections` at once, each exchange bounded by `timeout`.
    pub(crate) fn new(
        addr: String,
        timeout: Duration,
        connections: usize,
        #[cfg(feature = "memcached-tls")] tls: Option<Tls>,
    ) -> Self {
        let slots = (0..connections.max(1)).map(|_| Mutex::new(None)).collect();
        Self {
            addr,
            timeout,
            #[cfg(feature = "memcached-tls")]
            tls,
            slots,
            run: std::sync::Mutex::new((None, 0)),
        }
    }

    /// A free slot if there is one, else the first to come free.
    async fn slot(&self) -> MutexGuard<'_, Option<Connection>> {
        for slot in &self.slots {
            if let Ok(guard) = slot.try_lock() {
                return guard;
            }
        }
        let waits = self.slots.iter().map(|s| Box::pin(s.lock()));
        futures_util_select_all(waits).await
    }

    /// Sends `commands` in one write and reads their replies, in order.
    pub(crate) async fn run(&self, commands: &[Command]) -> Result<Vec<Reply>> {
        let (replies, _) = self.run_with(|_| commands.iter().collect()).await?;
        Ok(replies)
    }

    /// As [`Client::run`], with the commands made once the connection is chosen, from the
    /// server run it reached (a CAS from another run must not be sent); returns that run too.
    pub(crate) async fn run_with<'c>(
        &self,
        build: impl FnOnce(u64) -> Vec<&'c Command>,
    ) -> Result<(Vec<Reply>, u64)> {
        let mut slot = self.slot().await;
        // Taken out for the exchange: if it is cut short (a timeout, a cancelled caller), the
        // connection is dropped with it rather than left with replies nobody read.
        let mut connection = match slot.take() {
            Some(connection) => connection,
            None => self.connect().await?,
        };
        let epoch = connection.epoch;
        let commands = build(epoch);
        let exchange = async {
            let mut batch = Vec::with_capacity(commands.iter().map(|c| c.bytes.len()).sum());
            for command in &commands {
                batch.extend_from_slice(&command.bytes);
            }
            connection.stream.get_mut().write_all(&batch).await?;
            let mut replies = Vec::with_capacity(commands.len());
            for _ in &commands {
                replies.push(read_reply(&mut connection.stream).await?);
            }
            Ok::<_, ReadError>(replies)
        };
        let replies = self.bounded(exchange).await?;
        *slot = Some(connection);
        Ok((replies, epoch))
    }

    /// `stats`: the server's general statistics, by name.
    pub(crate) async fn stats(&self) -> Result<Vec<(String, String)>> {
        let mut slot = self.slot().await;
        let mut connection = match slot.take() {
            Some(connection) => connection,
            None => self.connect().await?,
        };
        let stats = self.bounded(read_stats(&mut connection.stream)).await?;
        *slot = Some(connection);
        Ok(stats)
    }

    async fn connect(&self) -> Result<Connection> {
        let connect = async {
            let tcp = TcpStream::connect(&self.addr).await?;
            tcp.set_nodelay(true)?;
            let stream: Stream = self.secure(tcp).await?;
            let mut stream = BufReader::new(stream);
            let stats = read_stats(&mut stream).await?;
            let number = |name: &str| {
                stats
                    .iter()
                    .find(|(n, _)| n == name)
                    .and_then(|(_, v)| v.parse::<i64>().ok())
            };
            let run = match (number("pid"), number("time"), number("uptime")) {
                (Some(pid), Some(time), Some(uptime)) => ServerRun {
                    pid: pid.unsigned_abs(),
                    started: time - uptime,
                },
                _ => {
                    return Err(ReadError::Protocol(
                        "`stats` without pid, time, uptime".into(),
                    ));
                }
            };
            Ok::<_, ReadError>((stream, run))
        };
        let (stream, run) = self.bounded(connect).await?;
        let mut seen = self.run.lock().unwrap_or_else(|e| e.into_inner());
        // The start time is counted in whole seconds from two readings: a second either way
        // is the same run.
        let same = seen
            .0
            .is_some_and(|s| s.pid == run.pid && (s.started - run.started).abs() <= 1);
        if !same {
            if seen.0.is_some() {
                tracing::warn!(
                    backend = NAME,
                    server = %self.addr,
                    "memcached restarted: everything it held is gone"
                );
            }
            *seen = (Some(run), seen.1 + 1);
        }
        Ok(Connection {
            stream,
            epoch: seen.1,
        })
    }

    #[cfg(feature = "memcached-tls")]
    async fn secure(&self, tcp: TcpStream) -> std::result::Result<Stream, ReadError> {
        match &self.tls {
            Some(tls) => {
                let connector =
                    tokio_rustls::TlsConnector::from(std::sync::Arc::clone(&tls.config));
                let stream = connector.connect(tls.server_name.clone(), tcp).await?;
                Ok(Box::new(stream))
            }
            None => Ok(Box::new(tcp)),
        }
    }

    #[cfg(not(feature = "memcached-tls"))]
    async fn secure(&self, tcp: TcpStream) -> std::result::Result<Stream, ReadError> {
        Ok(Box::new(tcp))
    }

    async fn bounded<T>(
        &self,
        exchange: impl Future<Output = std::result::Result<T, ReadError>>,
    ) -> Result<T> {
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(e.into_error(&self.addr)),
            Err(_) => Err(Error::Connection {
                backend: NAME,
                source: format!(
                    "memcached at {} did not answer within {:?}",
                    self.addr, self.timeout
                )
                .into(),
            }),
        }
    }
}

/// Waits for the first of `futures` (a handful of slot locks).
async fn futures_util_select_all<F: Future + Unpin>(futures: impl Iterator<Item = F>) -> F::Output {
    let mut futures: Vec<F> = futures.collect();
    std::future::poll_fn(move |cx| {
        for future in &mut futures {
            if let std::task::Poll::Ready(output) = std::pin::Pin::new(future).poll(cx) {
                return std::task::Poll::Ready(output);
            }
        }
        std::task::Poll::Pending
    })
    .await
}

/// Why an exchange failed, before it is sorted into [`Error`]'s kinds.
#[derive(Debug)]
enum ReadError {
    /// The connection failed or closed: `Connection`.
    Io(std::io::Error),
    /// The server answered something we did not ask for: `Backend`.
    Protocol(String),
    /// The server said `ERROR`, `CLIENT_ERROR` or `SERVER_ERROR`: `Backend`.
    Server(String),
}

impl From<std::io::Error> for ReadError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

impl ReadError {
    fn into_error(self, addr: &str) -> Error {
        match self {
            Self::Io(e) => Error::Connection {
                backend: NAME,
                source: Box::new(e),
            },
            Self::Protocol(what) => Error::Backend {
                backend: NAME,
                source: format!("{addr} does not answer like memcached 1.6 or newer: {what}")
                    .into(),
            },
            Self::Server(said) => Error::Backend {
                backend: NAME,
                source: format!("memcached at {addr} said: {said}").into(),
            },
        }
    }
}

/// Sends `stats` and reads the statistics, by name.
async fn read_stats(
    stream: &mut BufReader<Stream>,
) -> std::result::Result<Vec<(String, String)>, ReadError> {
    stream.get_mut().write_all(b"stats\r\n").await?;
    let mut stats = Vec::new();
    loop {
        let line = read_line(stream).await?;
        if line == b"END" {
            return Ok(stats);
        }
        let text = String::from_utf8_lossy(&line);
        let mut parts = text.splitn(3, ' ');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("STAT"), Some(name), Some(value)) => {
                stats.push((name.to_owned(), value.to_owned()));
            }
            _ => {
                return Err(ReadError::Protocol(format!(
                    "unexpected `{}`",
                    shorten(&text)
                )));
            }
        }
    }
}

/// One line, without its `\r\n`.
async fn read_line(stream: &mut BufReader<Stream>) -> std::result::Result<Vec<u8>, ReadError> {
    let mut line = Vec::new();
    let read = (&mut *stream)
        .take(MAX_LINE as u64)
        .read_until(b'\n', &mut line)
        .await?;
    if read == 0 {
        return Err(ReadError::Io(std::io::ErrorKind::UnexpectedEof.into()));
    }
    if !line.ends_with(b"\r\n") {
        return Err(ReadError::Protocol("a reply line without its end".into()));
    }
    line.truncate(line.len() - 2);
    Ok(line)
}

async fn read_reply(stream: &mut BufReader<Stream>) -> std::result::Result<Reply, ReadError> {
    let line = read_line(stream).await?;
    let text = String::from_utf8_lossy(&line).into_owned();
    let mut words = text.split(' ');
    let code = words.next().unwrap_or("");
    let status = match code {
        "HD" => Status::Done,
        "VA" => Status::Value,
        "EN" => Status::Miss,
        "NF" => Status::NotFound,
        "NS" => Status::NotStored,
        "EX" => Status::Exists,
        // One command refused, in step with the rest (a non-numeric counter, an item too
        // large): its reply, not the exchange's end.
        "CLIENT_ERROR" | "SERVER_ERROR" => {
            return Ok(Reply {
                status: Status::Failed,
                flags: Vec::new(),
                value: Some(line),
            });
        }
        // A command the server did not understand: what follows may be out of step.
        "ERROR" => return Err(ReadError::Server(text)),
        _ => {
            return Err(ReadError::Protocol(format!(
                "unexpected `{}`",
                shorten(&text)
            )));
        }
    };
    let length = if status == Status::Value {
        let length = words.next().and_then(|n| n.parse::<usize>().ok());
        match length {
            Some(n) if n <= MAX_VALUE => Some(n),
            _ => {
                return Err(ReadError::Protocol(format!(
                    "a bad value length in `{text}`"
                )));
            }
        }
    } else {
        None
    };
    let flags = words
        .filter(|w| !w.is_empty())
        .map(|w| (w.as_bytes()[0], w.as_bytes()[1..].to_vec()))
        .collect();
    let value = match length {
        Some(n) => {
            let mut data = vec![0; n + 2];
            stream.read_exact(&mut data).await?;
            if !data.ends_with(b"\r\n") {
                return Err(ReadError::Protocol("a value without its end".into()));
            }
            data.truncate(n);
            Some(data)
        }
        None => None,
    };
    Ok(Reply {
        status,
        flags,
        value,
    })
}

fn shorten(text: &str) -> String {
    text.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(command: &Command) -> String {
        String::from_utf8_lossy(&command.bytes).into_owned()
    }

    #[test]
    fn commands_are_meta_lines_with_their_data() {
        let plain = Key::new(b"__TOOZ_LOCK_a".to_vec());
        assert_eq!(
            text(&Command::set(&plain, b"m1", 1, 30, Mode::Add)),
            "ms __TOOZ_LOCK_a 2 F1 T30 ME c\r\nm1\r\n"
        );
        assert_eq!(
            text(&Command::set_if(&plain, b"m1", 1, 30, 77)),
            "ms __TOOZ_LOCK_a 2 F1 T30 MS c C77\r\nm1\r\n"
        );
        assert_eq!(text(&Command::get(&plain)), "mg __TOOZ_LOCK_a v f c\r\n");
        assert_eq!(text(&Command::exists(&plain)), "mg __TOOZ_LOCK_a\r\n");
        assert_eq!(
            text(&Command::delete(&plain, Some(9))),
            "md __TOOZ_LOCK_a C9\r\n"
        );
        assert_eq!(
            text(&Command::increment(&plain, 5)),
            "ma __TOOZ_LOCK_a N0 J5 v\r\n"
        );
        // A key no plain token can carry goes base64-encoded, flagged `b`, data length first.
        let spaced = Key::new(b"__TOOZ_LOCK_a b\r\n".to_vec());
        assert_eq!(
            text(&Command::set(&spaced, b"m", 1, 2, Mode::Set)),
            "ms X19UT09aX0xPQ0tfYSBiDQo= 1 b F1 T2 MS c\r\nm\r\n"
        );
        assert_eq!(
            text(&Command::delete(&spaced, None)),
            "md X19UT09aX0xPQ0tfYSBiDQo= b\r\n"
        );
    }
}
