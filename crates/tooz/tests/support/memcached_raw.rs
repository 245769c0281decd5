//! A plain memcached connection for tests: what is on the server, seen and planted without
//! going through the driver. Keys are given as written on the wire (ASCII, no spaces).

// Shared by several test binaries, each of which uses only part of it.
#![allow(dead_code)]

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufStream};
use tokio::net::TcpStream;

pub(crate) struct Raw(BufStream<TcpStream>);

impl Raw {
    pub(crate) async fn connect(port: u16) -> Self {
        Self::connect_to(&format!("127.0.0.1:{port}")).await
    }

    /// `addr` is `HOST:PORT`.
    pub(crate) async fn connect_to(addr: &str) -> Self {
        let stream = TcpStream::connect(addr)
            .await
            .unwrap_or_else(|e| panic!("connecting to memcached at {addr}: {e}"));
        stream.set_nodelay(true).unwrap();
        Self(BufStream::new(stream))
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.0.write_all(bytes).await.expect("write to memcached");
        self.0.flush().await.expect("write to memcached");
    }

    /// One reply line, without its `\r\n`.
    async fn line(&mut self) -> Vec<u8> {
        let mut line = Vec::new();
        self.0
            .read_until(b'\n', &mut line)
            .await
            .expect("read from memcached");
        assert!(line.ends_with(b"\r\n"), "a cut reply: {line:?}");
        line.truncate(line.len() - 2);
        line
    }

    /// Whether `key` exists (a meta get with no flags answers `HD` or `EN`).
    pub(crate) async fn exists(&mut self, key: &str) -> bool {
        self.send(format!("mg {key}\r\n").as_bytes()).await;
        match self.line().await.as_slice() {
            b"HD" => true,
            b"EN" => false,
            other => panic!("mg {key}: {}", String::from_utf8_lossy(other)),
        }
    }

    /// The client flags and value under `key`, if any.
    pub(crate) async fn get(&mut self, key: &str) -> Option<(u32, Vec<u8>)> {
        self.send(format!("mg {key} v f\r\n").as_bytes()).await;
        let line = self.line().await;
        if line == b"EN" {
            return None;
        }
        let text = String::from_utf8_lossy(&line).into_owned();
        let mut words = text.split(' ');
        assert_eq!(words.next(), Some("VA"), "mg {key}: {text}");
        let len: usize = words.next().and_then(|n| n.parse().ok()).expect(&text);
        let flags: u32 = words
            .find_map(|w| w.strip_prefix('f'))
            .and_then(|f| f.parse().ok())
            .expect(&text);
        let mut value = vec![0u8; len + 2];
        self.0.read_exact(&mut value).await.expect("read a value");
        assert!(value.ends_with(b"\r\n"));
        value.truncate(len);
        Some((flags, value))
    }

    /// Stores `value` under `key` with client `flags`, no expiry (the classic `set`).
    pub(crate) async fn set(&mut self, key: &str, flags: u32, value: &[u8]) {
        let mut request = format!("set {key} {flags} 0 {}\r\n", value.len()).into_bytes();
        request.extend_from_slice(value);
        request.extend_from_slice(b"\r\n");
        self.send(&request).await;
        let reply = self.line().await;
        assert_eq!(
            reply,
            b"STORED",
            "set {key}: {}",
            String::from_utf8_lossy(&reply)
        );
    }

    /// Deletes `key`; whether it was there.
    pub(crate) async fn delete(&mut self, key: &str) -> bool {
        self.send(format!("delete {key}\r\n").as_bytes()).await;
        match self.line().await.as_slice() {
            b"DELETED" => true,
            b"NOT_FOUND" => false,
            other => panic!("delete {key}: {}", String::from_utf8_lossy(other)),
        }
    }
}
