//! The fenced store: resources (one per lock) that each keep the highest fencing token they have
//! seen and refuse a write carrying a lower one, as a storage service guarded by tooz's tokens
//! would. Tokens are ordered per lock only, so each lock is its own resource. Workers write
//! `write RESOURCE TOKEN` lines over TCP and get `ok` or `refused HIGHEST`; every write is logged
//! with the time it arrived, so a check can tell whether two holders' commands overlapped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::monotonic_ns;

#[derive(Debug, Clone)]
pub(crate) struct Write {
    pub(crate) resource: String,
    /// When it arrived, on CLOCK_MONOTONIC (shared by every process on the host).
    pub(crate) at: u64,
    pub(crate) token: u64,
    pub(crate) accepted: bool,
}

#[derive(Default)]
struct State {
    highest: HashMap<String, u64>,
    log: Vec<Write>,
}

pub(crate) struct FencedStore {
    port: u16,
    state: Arc<Mutex<State>>,
    accept: tokio::task::JoinHandle<()>,
}

impl FencedStore {
    pub(crate) async fn start() -> Result<Self, String> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("fenced store: bind: {e}"))?;
        let port = listener
            .local_addr()
            .map_err(|e| format!("fenced store: {e}"))?
            .port();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Arc::clone(&state);
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, Arc::clone(&shared)));
            }
        });
        Ok(Self {
            port,
            state,
            accept,
        })
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// A write from this process (the checks' own holders).
    pub(crate) fn write(&self, resource: &str, token: u64) -> bool {
        apply(&self.state, resource, token).is_ok()
    }

    /// Every write to `resource` so far.
    pub(crate) fn log(&self, resource: &str) -> Vec<Write> {
        let state = self.state.lock().expect("store lock");
        state
            .log
            .iter()
            .filter(|w| w.resource == resource)
            .cloned()
            .collect()
    }
}

impl Drop for FencedStore {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Ok, or Err with the highest token seen.
fn apply(state: &Mutex<State>, resource: &str, token: u64) -> Result<(), u64> {
    let mut state = state.lock().expect("store lock");
    let highest = state.highest.entry(resource.to_owned()).or_insert(token);
    let accepted = token >= *highest;
    let outcome = if accepted {
        *highest = token;
        Ok(())
    } else {
        Err(*highest)
    };
    state.log.push(Write {
        resource: resource.to_owned(),
        at: monotonic_ns(),
        token,
        accepted,
    });
    outcome
}

async fn serve(stream: TcpStream, state: Arc<Mutex<State>>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let parsed = line
            .strip_prefix("write ")
            .and_then(|rest| rest.rsplit_once(' '))
            .and_then(|(resource, token)| Some((resource, token.parse::<u64>().ok()?)));
        let answer = match parsed {
            Some((resource, token)) => match apply(&state, resource, token) {
                Ok(()) => "ok\n".to_owned(),
                Err(highest) => format!("refused {highest}\n"),
            },
            None => "error: expected `write RESOURCE TOKEN`\n".to_owned(),
        };
        if write.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// A worker's connection to the store.
pub(crate) struct StoreClient {
    lines: tokio::io::Lines<BufReader<tokio::net::tcp::OwnedReadHalf>>,
    write: tokio::net::tcp::OwnedWriteHalf,
}

impl StoreClient {
    pub(crate) async fn connect(port: u16) -> Result<Self, String> {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| format!("fenced store on port {port}: {e}"))?;
        let _ = stream.set_nodelay(true);
        let (read, write) = stream.into_split();
        Ok(Self {
            lines: BufReader::new(read).lines(),
            write,
        })
    }

    /// Whether the store accepted a write to `resource` under `token`.
    pub(crate) async fn write(&mut self, resource: &str, token: u64) -> Result<bool, String> {
        self.write
            .write_all(format!("write {resource} {token}\n").as_bytes())
            .await
            .map_err(|e| format!("fenced store: {e}"))?;
        let answer = self
            .lines
            .next_line()
            .await
            .map_err(|e| format!("fenced store: {e}"))?
            .ok_or("fenced store closed")?;
        match answer.as_str() {
            "ok" => Ok(true),
            refused if refused.starts_with("refused ") => Ok(false),
            other => Err(format!("fenced store: {other}")),
        }
    }
}
