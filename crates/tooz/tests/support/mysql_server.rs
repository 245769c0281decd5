//! A throw-away MariaDB server on a free loopback port, for the tests that must kill or restart
//! a server (the shared one from `TOOZ_TEST_URLS` is never touched that way).
//!
//! `mariadb-install-db` runs once, into a private temp directory; `mariadbd` is then started
//! as a child of the test (as user `mysql` when the test runs as root: mariadbd refuses root
//! without `--user`, and its data directory must be that user's), with a passwordless `root`
//! and a database `tooz`. `kill` SIGKILLs it, as a crash would (mariadbd is one process: its
//! connections are threads, so the kernel closes every client connection at once); `restart`
//! starts it again on the same port and data directory (InnoDB's crash recovery keeps every
//! committed row: `innodb_flush_log_at_trx_commit` is left at 1). Dropped: killed, and its
//! directory removed.
//!
//! `start_with` sets a server up beyond that: files copied into the data directory, private to
//! the server's user (a TLS key the test's own user made, which `mysql` could not read where
//! it was), and more options for mariadbd on every start (`--ssl-ca=ca.pem`, `--skip-ssl`).

// Shared by several test binaries, each of which uses only part of it.
#![allow(dead_code)]

use std::fs::File;
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The MariaDB server binary (in /usr/sbin, which a user's PATH may lack).
fn mariadbd() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("mariadbd"))
            .find(|bin| bin.is_file())
    });
    on_path.or_else(|| {
        let sbin = PathBuf::from("/usr/sbin/mariadbd");
        sbin.is_file().then_some(sbin)
    })
}

/// A client program (`mariadb-install-db`, `mariadb-admin`, `mariadb`) on PATH or in
/// /usr/bin.
fn client(program: &str) -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|bin| bin.is_file())
    });
    on_path.or_else(|| {
        let bin = PathBuf::from("/usr/bin").join(program);
        bin.is_file().then_some(bin)
    })
}

/// Whether a MariaDB server can be run here; its absence fails the test where servers are
/// expected (`TOOZ_TEST_URLS` names a `mysql://` one).
pub(crate) fn have_mariadb() -> bool {
    let found = mariadbd().is_some()
        && ["mariadb-install-db", "mariadb-admin", "mariadb"]
            .iter()
            .all(|p| client(p).is_some());
    if !found && std::env::var("TOOZ_TEST_URLS").is_ok_and(|u| u.contains("mysql://")) {
        panic!("MariaDB is not installed, yet TOOZ_TEST_URLS names a mysql:// server");
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

/// Root runs the server as `mysql` (uid, gid); anyone else runs it as themselves.
fn server_user() -> Option<(u32, u32)> {
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    if !root {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").expect("/etc/passwd");
    let line = passwd
        .lines()
        .find(|l| l.starts_with("mysql:"))
        .expect("a `mysql` user (the mariadb-server package makes one)");
    let fields: Vec<&str> = line.split(':').collect();
    Some((fields[2].parse().unwrap(), fields[3].parse().unwrap()))
}

/// How a server is set up beyond a passwordless `root` and a database `tooz`.
#[derive(Default)]
pub(crate) struct Setup<'a> {
    /// Files copied into the data directory as `(name there, source)`: owned by the server's
    /// user, mode 0600. mariadbd runs in its data directory: relative paths in `args` are read
    /// from there (`--ssl-key=server.key`).
    pub(crate) files: &'a [(&'a str, &'a str)],
    /// More options for mariadbd, on every start (`--ssl-ca=ca.pem`, `--skip-ssl`).
    pub(crate) args: &'a [&'a str],
}

pub(crate) struct Server {
    pub(crate) port: u16,
    dir: PathBuf,
    bin: PathBuf,
    user: Option<(u32, u32)>,
    /// `Setup::args`.
    args: Vec<String>,
    child: Option<Child>,
}

impl Server {
    /// A fresh server with a passwordless `root` and a database `tooz`, accepting connections.
    pub(crate) fn start() -> Self {
        Self::start_with(&Setup::default())
    }

    /// The same, set up with `setup` before its first start.
    pub(crate) fn start_with(setup: &Setup<'_>) -> Self {
        static SERIAL: AtomicUsize = AtomicUsize::new(0);
        let bin = mariadbd().expect("MariaDB is installed");
        let port = free_port();
        let dir = std::env::temp_dir().join(format!(
            "tooz-mdb-{}-{}-{port}",
            std::process::id(),
            SERIAL.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let user = server_user();
        if let Some((uid, gid)) = user {
            for path in [dir.clone(), dir.join("data")] {
                std::os::unix::fs::chown(&path, Some(uid), Some(gid)).unwrap();
            }
        }
        let mut server = Self {
            port,
            dir,
            bin,
            user,
            args: setup.args.iter().map(|&a| a.to_owned()).collect(),
            child: None,
        };
        server.install_db();
        server.copy_files(setup.files);
        server.launch();
        server.sql("CREATE DATABASE IF NOT EXISTS tooz");
        server
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn log(&self) -> PathBuf {
        self.dir.join("mariadb.log")
    }

    /// `--user=mysql` where the test runs as root (mariadbd drops to it by itself).
    fn user_args(&self) -> Vec<&'static str> {
        if self.user.is_some() {
            vec!["--user=mysql"]
        } else {
            Vec::new()
        }
    }

    fn install_db(&self) {
        // One at a time in a process (tests of one binary run side by side, and concurrent
        // installs on two cores have been seen to fail), with one more try after a failure.
        static INSTALLING: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _one = INSTALLING.lock().unwrap_or_else(|e| e.into_inner());
        let install = || {
            Command::new(client("mariadb-install-db").expect("mariadb-install-db"))
                .arg("--no-defaults")
                .args(self.user_args())
                .arg(format!("--datadir={}", self.data().display()))
                .args([
                    "--auth-root-authentication-method=normal",
                    "--skip-test-db",
                    "--skip-name-resolve",
                ])
                .current_dir(&self.dir)
                .stdin(Stdio::null())
                .output()
                .expect("mariadb-install-db")
        };
        let mut out = install();
        if !out.status.success() {
            let _ = std::fs::remove_dir_all(self.data());
            out = install();
        }
        assert!(
            out.status.success(),
            "mariadb-install-db failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Copies `files` (`(name there, source)`) into the data directory, private to the server's
    /// user.
    fn copy_files(&self, files: &[(&str, &str)]) {
        for (name, source) in files {
            let target = self.data().join(name);
            std::fs::copy(source, &target)
                .unwrap_or_else(|e| panic!("copying {source} to {}: {e}", target.display()));
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
            if let Some((uid, gid)) = self.user {
                std::os::unix::fs::chown(&target, Some(uid), Some(gid)).unwrap();
            }
        }
    }

    /// Starts mariadbd on this server's port and data directory, and waits until it accepts
    /// connections (after crash recovery, if it was killed).
    fn launch(&mut self) {
        assert!(self.child.is_none(), "the server is running already");
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log())
            .unwrap();
        let data = self.data();
        let mut mariadbd = Command::new(&self.bin);
        mariadbd
            .arg("--no-defaults")
            .args(self.user_args())
            .arg(format!("--datadir={}", data.display()))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--port={}", self.port))
            .arg(format!("--socket={}", data.join("s.sock").display()))
            .arg(format!("--pid-file={}", data.join("p.pid").display()))
            .args([
                "--skip-name-resolve",
                "--innodb-buffer-pool-size=16M",
                "--max-connections=100",
            ])
            .args(&self.args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            // Not in the test's process group: a ^C meant for the test harness is not the
            // server's to see.
            .process_group(0);
        let mut child = mariadbd.spawn().expect("mariadbd");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "mariadbd on port {} exited at once ({status}):\n{}",
                    self.port,
                    self.log_tail()
                );
            }
            if self.ready() {
                break;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "mariadbd on port {} did not become ready:\n{}",
                    self.port,
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child = Some(child);
    }

    /// `mariadb-admin ping` answers (it does so even to a client the server would refuse).
    fn ready(&self) -> bool {
        Command::new(client("mariadb-admin").expect("mariadb-admin"))
            .args(["--no-defaults", "-h", "127.0.0.1", "-P"])
            .arg(self.port.to_string())
            .args([
                "--protocol=tcp",
                "-u",
                "root",
                "--connect-timeout=1",
                "ping",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Runs `sql` (the test's own text) with the `mariadb` client, as root.
    fn sql(&self, sql: &str) {
        let out = Command::new(client("mariadb").expect("mariadb"))
            .args(["--no-defaults", "-h", "127.0.0.1", "-P"])
            .arg(self.port.to_string())
            .args([
                "--protocol=tcp",
                "-u",
                "root",
                "--connect-timeout=5",
                "-e",
                sql,
            ])
            .stdin(Stdio::null())
            .output()
            .expect("mariadb");
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.log()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// The URL of this server's database `tooz` as `root` with `options` (`timeout=3&...`).
    pub(crate) fn url(&self, options: &str) -> String {
        format!("mysql://root@127.0.0.1:{}/tooz?{options}", self.port)
    }

    /// The URL of this server's database `tooz` as `userinfo` (`user` or `user:password`,
    /// percent-encoded) with `options`.
    pub(crate) fn url_as(&self, userinfo: &str, options: &str) -> String {
        format!("mysql://{userinfo}@127.0.0.1:{}/tooz?{options}", self.port)
    }

    /// The URL of this server's database `tooz` as `root`, without options, for a direct
    /// connection of the test's own.
    pub(crate) fn direct_url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}/tooz", self.port)
    }

    /// Whether mariadbd runs.
    pub(crate) fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// SIGKILL to mariadbd (one process; every connection is a thread of it): the server is
    /// gone at once, as in a crash, and every client connection is closed by the kernel.
    pub(crate) fn kill(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Starts the server again (killing it first if it runs) on the same port and data
    /// directory.
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
