//! A throw-away PostgreSQL server on a free loopback port, for the tests that must stop, kill
//! or restart a server (the shared one from `TOOZ_TEST_URLS` is never touched that way).
//!
//! `initdb` runs once, into a private temp directory; the postmaster is then started as a
//! child of the test (`postgres -D ...`, as user `postgres` when the test runs as root:
//! PostgreSQL refuses root), and `kill` SIGKILLs it and every process it forked, as a crash
//! would; `restart` starts it again on the same port and data directory (crash recovery keeps
//! every committed row: the page cache outlives the processes, so `fsync=off` loses nothing
//! here). Dropped: killed, and its directory removed.
//!
//! `start_with` sets a server up beyond that before its first start: lines appended to
//! `postgresql.conf` (`ssl = on`), and files copied into the data directory, private to the
//! server's user (a TLS key: PostgreSQL refuses one that others can read).

// Shared by several test binaries, each of which uses only part of it.
#![allow(dead_code)]

use std::fs::File;
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The PostgreSQL server binaries: Debian's 15 (bookworm), else the newest one installed.
pub(crate) fn pg_bin() -> Option<PathBuf> {
    let fifteen = PathBuf::from("/usr/lib/postgresql/15/bin");
    if fifteen.join("postgres").is_file() {
        return Some(fifteen);
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let major = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("postgres").is_file().then_some((major, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

/// Whether a PostgreSQL server can be run here; its absence fails the test where servers are
/// expected (`TOOZ_TEST_URLS` names one).
pub(crate) fn have_postgres() -> bool {
    let found = pg_bin().is_some();
    if !found
        && std::env::var("TOOZ_TEST_URLS")
            .is_ok_and(|u| u.contains("postgresql://") || u.contains("postgres://"))
    {
        panic!("PostgreSQL is not installed, yet TOOZ_TEST_URLS names a PostgreSQL server");
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

/// Root runs the server as `postgres` (uid, gid); anyone else runs it as themselves.
fn server_user() -> Option<(u32, u32)> {
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    if !root {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").expect("/etc/passwd");
    let line = passwd
        .lines()
        .find(|l| l.starts_with("postgres:"))
        .expect("a `postgres` user (the postgresql package makes one)");
    let fields: Vec<&str> = line.split(':').collect();
    Some((fields[2].parse().unwrap(), fields[3].parse().unwrap()))
}

/// How a server is set up before its first start, beyond trust authentication.
#[derive(Default)]
pub(crate) struct Setup<'a> {
    /// `Some(password)`: user `postgres` needs it over TCP (scram-sha-256).
    pub(crate) password: Option<&'a str>,
    /// Files copied into the data directory as `(name there, source)`: owned by the server's
    /// user, mode 0600. Relative paths in `conf` are read from the data directory.
    pub(crate) files: &'a [(&'a str, &'a str)],
    /// Lines appended to `postgresql.conf` (`ssl = on`, `ssl_cert_file = 'server.crt'`).
    pub(crate) conf: &'a [&'a str],
}

pub(crate) struct Server {
    pub(crate) port: u16,
    /// `Some(password)` when the server asks for one over TCP (scram-sha-256).
    password: Option<String>,
    dir: PathBuf,
    bin: PathBuf,
    user: Option<(u32, u32)>,
    child: Option<Child>,
}

impl Server {
    /// A server with trust authentication (user `postgres`, no password).
    pub(crate) fn start() -> Self {
        Self::start_with_password(None)
    }

    /// A server whose user `postgres` needs `password` over TCP (scram-sha-256), or trust
    /// authentication with `None`.
    pub(crate) fn start_with_password(password: Option<&str>) -> Self {
        Self::start_with(&Setup {
            password,
            ..Setup::default()
        })
    }

    /// A server set up with `setup` before its first start.
    pub(crate) fn start_with(setup: &Setup<'_>) -> Self {
        static SERIAL: AtomicUsize = AtomicUsize::new(0);
        let bin = pg_bin().expect("PostgreSQL is installed");
        let port = free_port();
        let dir = std::env::temp_dir().join(format!(
            "tooz-pg-{}-{}-{port}",
            std::process::id(),
            SERIAL.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("run")).unwrap();
        let user = server_user();
        if let Some((uid, gid)) = user {
            for path in [dir.clone(), dir.join("run")] {
                std::os::unix::fs::chown(&path, Some(uid), Some(gid)).unwrap();
            }
        }
        let mut server = Self {
            port,
            password: setup.password.map(str::to_owned),
            dir,
            bin,
            user,
            child: None,
        };
        server.initdb();
        server.configure(setup);
        server.launch();
        server
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(self.bin.join(program));
        command.current_dir(&self.dir).stdin(Stdio::null());
        if let Some((uid, gid)) = self.user {
            command.uid(uid).gid(gid);
        }
        command
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn log(&self) -> PathBuf {
        self.dir.join("postgresql.log")
    }

    fn initdb(&self) {
        let mut initdb = self.command("initdb");
        initdb.arg("-D").arg(self.data()).args([
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ]);
        match &self.password {
            None => {
                initdb.args(["-A", "trust"]);
            }
            Some(password) => {
                let pwfile = self.dir.join("pwfile");
                std::fs::write(&pwfile, format!("{password}\n")).unwrap();
                if let Some((uid, gid)) = self.user {
                    std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid)).unwrap();
                }
                initdb
                    .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
                    .arg(format!("--pwfile={}", pwfile.display()));
            }
        }
        let out = initdb.output().expect("initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Copies `setup`'s files into the data directory and appends its lines to
    /// `postgresql.conf`.
    fn configure(&self, setup: &Setup<'_>) {
        let data = self.data();
        for (name, source) in setup.files {
            let target = data.join(name);
            std::fs::copy(source, &target)
                .unwrap_or_else(|e| panic!("copying {source} to {}: {e}", target.display()));
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
            if let Some((uid, gid)) = self.user {
                std::os::unix::fs::chown(&target, Some(uid), Some(gid)).unwrap();
            }
        }
        if !setup.conf.is_empty() {
            let mut conf = File::options()
                .append(true)
                .open(data.join("postgresql.conf"))
                .unwrap();
            let mut text = String::from("\n# Set up by the test\n");
            for line in setup.conf {
                text.push_str(line);
                text.push('\n');
            }
            conf.write_all(text.as_bytes()).unwrap();
        }
    }

    /// Starts the postmaster on this server's port and data directory, and waits until it
    /// accepts connections (after crash recovery, if it was killed).
    fn launch(&mut self) {
        assert!(self.child.is_none(), "the server is running already");
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log())
            .unwrap();
        let mut postgres = self.command("postgres");
        postgres
            .arg("-D")
            .arg(self.data())
            .args(["-p", &self.port.to_string(), "-k"])
            .arg(self.dir.join("run"))
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "max_connections=100",
            ])
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            // Not in the test's process group: a ^C meant for the test harness is not the
            // server's to see.
            .process_group(0);
        let mut child = postgres.spawn().expect("postgres");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "postgres on port {} exited at once ({status}):\n{}",
                    self.port,
                    self.log_tail()
                );
            }
            if self.ready() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "postgres on port {} did not become ready:\n{}",
                self.port,
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child = Some(child);
    }

    fn ready(&self) -> bool {
        Command::new(self.bin.join("pg_isready"))
            .args([
                "-q",
                "-t",
                "1",
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
            ])
            .stdin(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.log()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// The URL of this server's database `postgres` with `options` (`timeout=2&...`), with
    /// the password when it has one.
    pub(crate) fn url(&self, options: &str) -> String {
        let user = match &self.password {
            Some(password) => format!("postgres:{password}"),
            None => "postgres".to_owned(),
        };
        format!(
            "postgresql://{user}@127.0.0.1:{}/postgres?{options}",
            self.port
        )
    }

    /// A tokio-postgres configuration for a direct connection of the test's own.
    pub(crate) fn direct_config(&self) -> String {
        let mut config = format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres connect_timeout=5 \
             application_name=tooz-test",
            self.port
        );
        if let Some(password) = &self.password {
            config.push_str(&format!(" password={password}"));
        }
        config
    }

    /// Whether the postmaster runs.
    pub(crate) fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// SIGKILL to the postmaster and to every process it forked (the backends, which put
    /// themselves in sessions of their own, so no process group reaches them all): the server
    /// is gone at once, as in a crash, and every client connection is closed by the kernel.
    pub(crate) fn kill(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = child.id();
        // Stopped, the postmaster forks nothing more while its children are looked for.
        signal("-STOP", &[pid]);
        let children = children_of(pid);
        let mut all = children.clone();
        all.push(pid);
        signal("-KILL", &all);
        let _ = child.wait();
        // A backend still exiting would keep the old shared memory attached, and the next
        // postmaster would refuse to start beside it.
        let deadline = Instant::now() + Duration::from_secs(10);
        while children.iter().any(|&c| alive(c)) {
            if Instant::now() > deadline {
                // Not a panic (this runs in Drop too): a restart says what went wrong.
                eprintln!("postgres children {children:?} outlived SIGKILL by 10 s");
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
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

/// `kill SIGNAL PID...`, by pid only.
fn signal(signal: &str, pids: &[u32]) {
    if pids.is_empty() {
        return;
    }
    let _ = Command::new("kill")
        .arg(signal)
        .arg("--")
        .args(pids.iter().map(u32::to_string))
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The fields of `/proc/PID/stat` after the command name: state, ppid, ...
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    Some(after_name.split_whitespace().map(str::to_owned).collect())
}

/// The processes whose parent is `parent`.
fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| {
            stat_fields(pid)
                .is_some_and(|f| f.get(1).is_some_and(|ppid| ppid.parse() == Ok(parent)))
        })
        .collect()
}

/// Whether `pid` still runs (a zombie, waiting for its new parent to reap it, does not).
fn alive(pid: u32) -> bool {
    stat_fields(pid).is_some_and(|f| f.first().is_some_and(|state| state != "Z" && state != "X"))
}
