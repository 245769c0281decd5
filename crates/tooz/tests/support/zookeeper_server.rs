//! A throw-away standalone ZooKeeper on a free loopback port, for the tests that must kill or
//! restart a server, or see every znode on it (the shared one from `TOOZ_TEST_URLS` is never
//! touched that way).
//!
//! Debian's ZooKeeper 3.8 (`/usr/share/java/zookeeper.jar`, whose manifest names the jars it
//! needs) is run by `java` as `QuorumPeerMain` on a `zoo.cfg` of its own, as a child of the test
//! in a private temp directory (data in `data/`; its log, slf4j-simple's at INFO with times, in
//! `zookeeper.log`). Only the client port is opened, on 127.0.0.1: no AdminServer (Jetty on
//! 8080), no JMX port, no quorum ports. `tickTime=500` and `minSessionTimeout=1000`: a session
//! may be as short as a second (up to `maxSessionTimeout=60000`), and the server expires it
//! within a tick of its timeout. It is ready when `srvr` says it serves (`ruok` answers `imok`
//! as soon as the port is open, before the data is loaded).
//!
//! `kill` SIGKILLs it, as a crash would (one JVM: the kernel closes every client connection at
//! once); `restart` starts it again on the same port and data directory (ZooKeeper fsyncs its
//! transaction log before it answers a write: every acknowledged write survives, and so does
//! every session, with its full timeout again from the restart: a client that reconnects within
//! it keeps its session and its ephemeral znodes, one that does not finds them gone).
//! `wipe_and_restart` starts it again empty, as a new server: a client of the old one is then
//! refused at every reconnection while the zxid it has seen is past the new server's ("client
//! must try another server"), and its session is unknown there anyway: it must start a new one.
//! Dropped: killed, and its directory removed.
//!
//! `Server::start_with` takes more `zoo.cfg` lines (`key=value`), after the kit's own: a key
//! given again overrides it (`maxSessionTimeout=4000`).
//!
//! `Server::start_tls` also opens a TLS port (`secureClientPort` on 127.0.0.1, a second free
//! port: `secure_port()`), its `ssl.*` settings given by the caller. TLS needs ZooKeeper's Netty
//! connection factory, which then serves the plain client port too (the four-letter words the
//! kit waits on included); Netty's codec jar, which `zookeeper.jar`'s manifest does not name,
//! is put on the classpath for it (without it Netty drops every connection).

// Shared by several test binaries, each of which uses only part of it.
#![allow(dead_code)]

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Debian's server jar (package `libzookeeper-java`, which `zookeeper` depends on).
const ZOOKEEPER_JAR: &str = "/usr/share/java/zookeeper.jar";

/// An slf4j binding (package `libslf4j-java`): without one the server logs nothing.
const SLF4J_SIMPLE_JAR: &str = "/usr/share/java/slf4j-simple.jar";

/// Netty's codec (package `libnetty-java`, which `libzookeeper-java` depends on): ZooKeeper's
/// Netty connection factory needs it, and `zookeeper.jar`'s manifest leaves it out.
const NETTY_CODEC_JAR: &str = "/usr/share/java/netty-codec.jar";

/// ZooKeeper's Netty connection factory: the one that speaks TLS.
const NETTY_FACTORY: &str = "org.apache.zookeeper.server.NettyServerCnxnFactory";

/// A program on PATH.
fn on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|bin| bin.is_file())
    })
}

/// Whether a ZooKeeper server can be run here (`java`, and Debian's `zookeeper.jar`); their
/// absence fails the test where servers are expected (`TOOZ_TEST_URLS` names a ZooKeeper).
pub(crate) fn have_zookeeper() -> bool {
    let found = on_path("java").is_some() && Path::new(ZOOKEEPER_JAR).is_file();
    if !found
        && std::env::var("TOOZ_TEST_URLS")
            .is_ok_and(|u| u.contains("zookeeper://") || u.contains("kazoo://"))
    {
        panic!("ZooKeeper or java is not installed, yet TOOZ_TEST_URLS names a ZooKeeper server");
    }
    found
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether a ZooKeeper server with TLS can be run here: one at all ([`have_zookeeper`]), and
/// Netty's codec for its Netty connection factory.
pub(crate) fn have_zookeeper_tls() -> bool {
    have_zookeeper() && Path::new(NETTY_CODEC_JAR).is_file()
}

/// The server's classpath: its jar, slf4j-simple's where it is installed, and with `netty`
/// Netty's codec.
fn classpath(netty: bool) -> String {
    let mut classpath = ZOOKEEPER_JAR.to_owned();
    if Path::new(SLF4J_SIMPLE_JAR).is_file() {
        classpath.push(':');
        classpath.push_str(SLF4J_SIMPLE_JAR);
    }
    if netty {
        classpath.push(':');
        classpath.push_str(NETTY_CODEC_JAR);
    }
    classpath
}

/// Sends the four-letter word `word` (`ruok`, `srvr`, `stat`, `mntr`, `cons`, `dump`: those this
/// kit's servers answer) to 127.0.0.1:`port`, and reads the answer to its end (the server closes
/// the connection after it); `None` if that fails or takes over a second at any step.
pub(crate) fn four_letter_word(port: u16, word: &str) -> Option<String> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    stream
        .set_write_timeout(Some(Duration::from_secs(1)))
        .ok()?;
    stream.write_all(word.as_bytes()).ok()?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).ok()?;
    Some(String::from_utf8_lossy(&answer).into_owned())
}

pub(crate) struct Server {
    port: u16,
    /// The TLS port (`secureClientPort`), for servers made by `start_tls`.
    secure_port: Option<u16>,
    dir: PathBuf,
    java: PathBuf,
    child: Option<Child>,
}

impl Server {
    /// A fresh standalone server with no znodes but `/zookeeper`'s own, serving.
    pub(crate) fn start() -> Self {
        Self::start_with(&[])
    }

    /// The same with `config`'s lines at the end of its `zoo.cfg` (kept for every restart).
    pub(crate) fn start_with(config: &[&str]) -> Self {
        Self::start_configured(config, false)
    }

    /// A fresh server that also serves TLS, on [`Self::secure_port`] (127.0.0.1), the Netty
    /// connection factory serving both ports; `tls`'s lines (the `ssl.*` settings: key store,
    /// trust store, `ssl.clientAuth`) at the end of its `zoo.cfg`. The plain client port stays
    /// open (the kit checks readiness there, in plain text).
    pub(crate) fn start_tls(tls: &[&str]) -> Self {
        assert!(
            Path::new(NETTY_CODEC_JAR).is_file(),
            "{NETTY_CODEC_JAR} (package libnetty-java) is needed for ZooKeeper's TLS"
        );
        Self::start_configured(tls, true)
    }

    fn start_configured(config: &[&str], tls: bool) -> Self {
        static SERIAL: AtomicUsize = AtomicUsize::new(0);
        let java = on_path("java").expect("java is installed");
        let port = free_port();
        // (Two ports free at once: a second pick that happens to be the first is picked again.)
        let secure_port = tls.then(|| {
            std::iter::repeat_with(free_port)
                .find(|&secure| secure != port)
                .unwrap()
        });
        let dir = std::env::temp_dir().join(format!(
            "tooz-zk-{}-{}-{port}",
            std::process::id(),
            SERIAL.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("data")).unwrap();
        // Standalone (no server.N lines). Keys that are no settings of ZooKeeper's own become
        // system properties zookeeper.KEY (admin.enableServer, 4lw.commands.whitelist).
        // maxClientCnxns=0: no limit on the connections from one address.
        let mut cfg = format!(
            "tickTime=500\n\
             minSessionTimeout=1000\n\
             maxSessionTimeout=60000\n\
             dataDir={}\n\
             clientPort={port}\n\
             clientPortAddress=127.0.0.1\n\
             maxClientCnxns=0\n\
             admin.enableServer=false\n\
             4lw.commands.whitelist=ruok,srvr,stat,mntr,cons,dump\n",
            dir.join("data").display()
        );
        if let Some(secure) = secure_port {
            // Keys that are no settings of ZooKeeper's own become system properties here too:
            // zookeeper.serverCnxnFactory.
            cfg.push_str(&format!(
                "secureClientPort={secure}\n\
                 secureClientPortAddress=127.0.0.1\n\
                 serverCnxnFactory={NETTY_FACTORY}\n"
            ));
        }
        for line in config {
            cfg.push_str(line);
            cfg.push('\n');
        }
        std::fs::write(dir.join("zoo.cfg"), cfg).unwrap();
        let mut server = Self {
            port,
            secure_port,
            dir,
            java,
            child: None,
        };
        server.launch();
        server
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn config(&self) -> PathBuf {
        self.dir.join("zoo.cfg")
    }

    fn log(&self) -> PathBuf {
        self.dir.join("zookeeper.log")
    }

    /// Starts ZooKeeper on this server's port and data directory, and waits until it serves
    /// (after it has loaded its snapshot and transaction log).
    fn launch(&mut self) {
        assert!(self.child.is_none(), "the server is running already");
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log())
            .unwrap();
        let mut java = Command::new(&self.java);
        // A small heap and the serial collector: many of these run side by side on few cores.
        // -XX:-UsePerfData: no /tmp/hsperfdata_USER/PID left by a killed JVM. preferIPv4Stack: a
        // plain IPv4 socket on 127.0.0.1. The AdminServer is off on the command line too.
        java.args([
            "-Xmx128m",
            "-XX:+UseSerialGC",
            "-XX:-UsePerfData",
            "-Djava.net.preferIPv4Stack=true",
            "-Dzookeeper.admin.enableServer=false",
            "-Dorg.slf4j.simpleLogger.showDateTime=true",
            "-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS",
        ])
        .arg("-cp")
        .arg(classpath(self.secure_port.is_some()))
        .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
        .arg(self.config())
        .current_dir(&self.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        // Not in the test's process group: a ^C meant for the test harness is not the
        // server's to see.
        .process_group(0);
        let mut child = java.spawn().expect("java");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "zookeeper on port {} exited at once ({status}):\n{}",
                    self.port,
                    self.log_tail()
                );
            }
            if self.serving() {
                break;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "zookeeper on port {} did not start serving:\n{}",
                    self.port,
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child = Some(child);
    }

    /// `srvr` gives the server's mode (`Mode: standalone`), not "This ZooKeeper instance is not
    /// currently serving requests".
    fn serving(&self) -> bool {
        four_letter_word(self.port, "srvr").is_some_and(|answer| answer.contains("Mode: "))
    }

    /// `ruok` is answered `imok` (the port is open: the server may still be loading its data).
    pub(crate) fn answers(&self) -> bool {
        four_letter_word(self.port, "ruok").as_deref() == Some("imok")
    }

    /// The answer to the four-letter word `word` (`mntr`: `zk_ephemerals_count`, ...; `dump`:
    /// the sessions and their ephemeral znodes; `cons`: the connections).
    pub(crate) fn four_letter_word(&self, word: &str) -> Option<String> {
        four_letter_word(self.port, word)
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.log()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// `zookeeper://127.0.0.1:P`.
    pub(crate) fn url(&self) -> String {
        format!("zookeeper://127.0.0.1:{}", self.port)
    }

    /// The same with `options` (`timeout=3&...`).
    pub(crate) fn url_with(&self, options: &str) -> String {
        format!("{}?{options}", self.url())
    }

    /// `127.0.0.1:P` (for a raw client of the test's own).
    pub(crate) fn hosts(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The client port.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// The TLS port of a server made by [`Self::start_tls`].
    pub(crate) fn secure_port(&self) -> u16 {
        self.secure_port
            .expect("a server started with start_tls has a TLS port")
    }

    /// `zookeeper://127.0.0.1:S?OPTIONS` on the TLS port (`use_ssl=true&ca=...` is the caller's
    /// to give).
    pub(crate) fn secure_url_with(&self, options: &str) -> String {
        format!("zookeeper://127.0.0.1:{}?{options}", self.secure_port())
    }

    /// The JVM's pid, while it runs (for a test that stops it with SIGSTOP and SIGCONT).
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether ZooKeeper runs.
    pub(crate) fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// SIGKILL to the JVM: gone at once, as in a crash; the kernel closes every connection.
    pub(crate) fn kill(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Starts ZooKeeper again (killing it first if it runs) on the same port and data directory.
    pub(crate) fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    /// Starts ZooKeeper again (killing it first if it runs) on the same port, empty: its data
    /// directory is emptied first (no znodes, no sessions, zxids from 0 again).
    pub(crate) fn wipe_and_restart(&mut self) {
        self.kill();
        let data = self.data();
        std::fs::remove_dir_all(&data).unwrap();
        std::fs::create_dir_all(&data).unwrap();
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
