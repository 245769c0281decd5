//! A throw-away one-member etcd on free loopback ports (clients and peers), for the tests that
//! must kill or restart a server, or see every key on it (the shared one from
//! `TOOZ_TEST_URLS` is never touched that way).
//!
//! `etcd` is started as a child of the test, in a private temp data directory, logging errors
//! only (to a file there); it is ready when `/health` says `"health":"true"` (a member with a
//! leader, not merely a listening socket). `kill` SIGKILLs it, as a crash would (the kernel
//! closes every client connection at once); `restart` starts it again on the same ports and
//! data directory (etcd fsyncs its log: every committed write survives, and so do leases,
//! which a restarted etcd renews to their full TTL). Dropped: killed, and its directory
//! removed.
//!
//! `Server::start_with` takes a [`Setup`]: more etcd flags, and client URLs in `https://`
//! (`--cert-file`, `--key-file`, ... among the flags), whose health check is then made with
//! TLS too, verifying the server's certificate as a client would (etcd 3.4 asks for a client
//! certificate as soon as it has `--trusted-ca-file`, with or without `--client-cert-auth`:
//! the check then presents one).

// Shared by several test binaries, each of which uses only part of it.
#![allow(dead_code)]

use std::fs::File;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A program on PATH.
fn on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|bin| bin.is_file())
    })
}

/// Whether an etcd server can be run here (`etcd`, and `curl` for its health check); their
/// absence fails the test where servers are expected (`TOOZ_TEST_URLS` names an etcd).
pub(crate) fn have_etcd() -> bool {
    let found = on_path("etcd").is_some() && on_path("curl").is_some();
    if !found
        && std::env::var("TOOZ_TEST_URLS")
            .is_ok_and(|u| u.contains("etcd3+http://") || u.contains("etcd://"))
    {
        panic!("etcd or curl is not installed, yet TOOZ_TEST_URLS names an etcd server");
    }
    found
}

/// `n` distinct free loopback ports (all bound at once, then let go).
pub(crate) fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

pub(crate) fn free_port() -> u16 {
    free_ports(1)[0]
}

/// What etcd is started with beyond the defaults (`Setup::default()`: plain text).
#[derive(Debug, Clone, Default)]
pub(crate) struct Setup {
    /// More flags, after the server's own (`--cert-file=...`, `--client-cert-auth`).
    pub(crate) args: Vec<String>,
    /// Client URLs in `https://`, and how the health check verifies them (the flags giving
    /// etcd its certificate are the caller's, in `args`).
    pub(crate) https: Option<Https>,
}

/// How the health check reaches an etcd whose client URLs are `https://`.
#[derive(Debug, Clone)]
pub(crate) struct Https {
    /// The CA that signed the server's certificate (curl's `--cacert`).
    pub(crate) ca: String,
    /// A client certificate and its key (curl's `--cert`, `--key`): for a server with
    /// `--trusted-ca-file` (and `--client-cert-auth`).
    pub(crate) client: Option<(String, String)>,
    /// The name the server's certificate is for, if not `127.0.0.1`: the check reaches
    /// 127.0.0.1 by that name (curl's `--resolve`), so that the name is checked still.
    pub(crate) name: Option<String>,
}

pub(crate) struct Server {
    /// The client port.
    pub(crate) port: u16,
    peer_port: u16,
    dir: PathBuf,
    bin: PathBuf,
    setup: Setup,
    child: Option<Child>,
}

impl Server {
    /// A fresh one-member cluster with an empty key space, answering (in plain text).
    pub(crate) fn start() -> Self {
        Self::start_with(Setup::default())
    }

    /// The same with `setup`'s flags, and TLS on the client port if it says so.
    pub(crate) fn start_with(setup: Setup) -> Self {
        static SERIAL: AtomicUsize = AtomicUsize::new(0);
        let bin = on_path("etcd").expect("etcd is installed");
        let ports = free_ports(2);
        let (port, peer_port) = (ports[0], ports[1]);
        let dir = std::env::temp_dir().join(format!(
            "tooz-etcd-{}-{}-{port}",
            std::process::id(),
            SERIAL.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut server = Self {
            port,
            peer_port,
            dir,
            bin,
            setup,
            child: None,
        };
        server.launch();
        server
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn log(&self) -> PathBuf {
        self.dir.join("etcd.log")
    }

    /// Starts etcd on this server's ports and data directory (a new cluster the first time,
    /// the same member afterwards: etcd ignores the `--initial-*` flags once its data
    /// directory holds a member), and waits until it is healthy.
    fn launch(&mut self) {
        assert!(self.child.is_none(), "the server is running already");
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log())
            .unwrap();
        let client = format!("{}://127.0.0.1:{}", self.scheme(), self.port);
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let mut etcd = Command::new(&self.bin);
        etcd.arg("--name")
            .arg("t")
            .arg("--data-dir")
            .arg(self.data())
            .arg("--listen-client-urls")
            .arg(client.as_str())
            .arg("--advertise-client-urls")
            .arg(client.as_str())
            .arg("--listen-peer-urls")
            .arg(peer.as_str())
            .arg("--initial-advertise-peer-urls")
            .arg(peer.as_str())
            .arg("--initial-cluster")
            .arg(format!("t={peer}"))
            .args(["--logger=zap", "--log-level=error"])
            .args(&self.setup.args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            // Not in the test's process group: a ^C meant for the test harness is not the
            // server's to see.
            .process_group(0);
        let mut child = etcd.spawn().expect("etcd");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "etcd on port {} exited at once ({status}):\n{}",
                    self.port,
                    self.log_tail()
                );
            }
            if self.healthy() {
                break;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "etcd on port {} did not become healthy:\n{}",
                    self.port,
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child = Some(child);
    }

    /// `http` or `https`: what the client port speaks.
    fn scheme(&self) -> &'static str {
        if self.setup.https.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// `curl -s http://127.0.0.1:P/health` says `"health":"true"` (with TLS: `https://`,
    /// `--cacert`, and `--cert`, `--key`, `--resolve` where the setup has them).
    fn healthy(&self) -> bool {
        let mut curl = Command::new("curl");
        curl.args(["-s", "--max-time", "1"]);
        let mut host = "127.0.0.1".to_owned();
        if let Some(https) = &self.setup.https {
            curl.arg("--cacert").arg(&https.ca);
            if let Some((cert, key)) = &https.client {
                curl.arg("--cert").arg(cert).arg("--key").arg(key);
            }
            if let Some(name) = &https.name {
                curl.arg("--resolve")
                    .arg(format!("{name}:{}:127.0.0.1", self.port));
                host.clone_from(name);
            }
        }
        curl.arg(format!("{}://{host}:{}/health", self.scheme(), self.port))
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .is_ok_and(|out| {
                String::from_utf8_lossy(&out.stdout)
                    .replace(' ', "")
                    .contains("\"health\":\"true\"")
            })
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.log()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// The URL of this server with `options` (`timeout=3&...`): `etcd3+https://` if its
    /// client port speaks TLS (the options must then give `ca_cert`).
    pub(crate) fn url(&self, options: &str) -> String {
        format!("{}?{options}", self.direct_url())
    }

    /// The same without options (for a raw client of the test's own).
    pub(crate) fn direct_url(&self) -> String {
        format!("etcd3+{}://127.0.0.1:{}", self.scheme(), self.port)
    }

    /// The client endpoint, `http://127.0.0.1:P` or `https://127.0.0.1:P` (for a raw
    /// `etcd_client` of the test's own).
    pub(crate) fn endpoint(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme(), self.port)
    }

    /// Whether etcd runs.
    pub(crate) fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// SIGKILL to etcd: gone at once, as in a crash; the kernel closes every connection.
    pub(crate) fn kill(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Starts etcd again (killing it first if it runs) on the same ports and data directory.
    pub(crate) fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    pub(crate) fn data_dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
