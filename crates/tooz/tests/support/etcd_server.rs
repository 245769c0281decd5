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

pub(crate) struct Server {
    /// The client port.
    pub(crate) port: u16,
    peer_port: u16,
    dir: PathBuf,
    bin: PathBuf,
    child: Option<Child>,
}

impl Server {
    /// A fresh one-member cluster with an empty key space, answering.
    pub(crate) fn start() -> Self {
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
        let client = format!("http://127.0.0.1:{}", self.port);
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

    /// `curl -s http://127.0.0.1:P/health` says `"health":"true"`.
    fn healthy(&self) -> bool {
        Command::new("curl")
            .args(["-s", "--max-time", "1"])
            .arg(format!("http://127.0.0.1:{}/health", self.port))
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

    /// The URL of this server with `options` (`timeout=3&...`).
    pub(crate) fn url(&self, options: &str) -> String {
        format!("etcd3+http://127.0.0.1:{}?{options}", self.port)
    }

    /// The same without options (for a raw client of the test's own).
    pub(crate) fn direct_url(&self) -> String {
        format!("etcd3+http://127.0.0.1:{}", self.port)
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
