//! A throw-away `memcached` on a loopback port (`-l 127.0.0.1 -U 0`, no UDP), stopped by its
//! own pid when dropped or killed. An empty server every time: memcached keeps nothing on disk.
//! `start_with` adds arguments of the test's own: `-Z -o ssl_chain_cert=...,ssl_key=...` makes
//! the port a TLS one.

// Shared by several test binaries, each of which uses only part of it.
#![allow(dead_code)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) struct Server {
    pub(crate) port: u16,
    child: Option<Child>,
}

impl Server {
    pub(crate) fn start(port: u16) -> Self {
        Self::start_with(port, &[])
    }

    /// A server started with `extra` arguments after the usual ones. With `-Z` (or
    /// `--enable-ssl`) the port speaks TLS only, and the server counts as started once it
    /// answers a connection that sends plain text by dropping it (a TLS server's answer to
    /// anything but a handshake).
    pub(crate) fn start_with(port: u16, extra: &[&str]) -> Self {
        let tls = extra.iter().any(|a| *a == "-Z" || *a == "--enable-ssl");
        // `-u root` is required when running as root and ignored otherwise.
        let child = Command::new("memcached")
            .args(["-l", "127.0.0.1", "-p", &port.to_string(), "-U", "0"])
            .args(["-u", "root"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("memcached");
        let mut server = Self {
            port,
            child: Some(child),
        };
        let serves = || {
            if tls {
                refuses_plain_text(port)
            } else {
                answers(port)
            }
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while !serves() {
            if let Some(Ok(Some(status))) = server.child.as_mut().map(Child::try_wait) {
                panic!("memcached on port {port} exited at once: {status}");
            }
            assert!(Instant::now() < deadline, "memcached did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
        server
    }

    /// The URL of this server with `options` (`timeout=2&...`).
    pub(crate) fn url(&self, options: &str) -> String {
        format!("memcached://127.0.0.1:{}?{options}", self.port)
    }

    /// SIGKILL, by the child's pid: everything it held is gone at once.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether a server on `port` answers `version` (listening is not yet serving).
fn answers(port: u16) -> bool {
    use std::io::{BufRead, BufReader, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    if stream.write_all(b"version\r\n").is_err() {
        return false;
    }
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).is_ok() && line.starts_with("VERSION")
}

/// Whether a TLS server on `port` serves: it answers a connection that sends plain text at
/// once, by dropping it (a reset or an end of stream) or with an alert, where one still
/// starting would leave it unread.
fn refuses_plain_text(port: u16) -> bool {
    use std::io::{ErrorKind, Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    if stream.write_all(b"version\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 256];
    match stream.read(&mut buf) {
        // Any answer (an alert) or the end of the stream: it is serving, as TLS.
        Ok(_read) => true,
        Err(e) => matches!(
            e.kind(),
            ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe
        ),
    }
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether `memcached` can be run; its absence fails the test where servers are expected.
pub(crate) fn have_memcached() -> bool {
    let found = Command::new("memcached").arg("-V").output().is_ok();
    if !found && std::env::var("TOOZ_TEST_URLS").is_ok_and(|u| u.contains("memcached://")) {
        panic!("memcached is not installed, yet TOOZ_TEST_URLS names a memcached server");
    }
    found
}
