//! `rediss://`: a TLS Redis server with a certificate from a private CA. With the CA given
//! (tooz's `ssl_ca_certs`) everything works; without it the connection is refused as untrusted,
//! with an error rather than a hang or a panic.

#![cfg(feature = "redis-tls")]

#[path = "support/redis_server.rs"]
mod redis_server;

use std::process::Command;
use std::time::{Duration, Instant};

use redis_server::{Server, free_port, have_redis_server};
use tooz::{Capabilities, Coordinator};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_with_the_servers_ca_works_and_without_it_is_refused() {
    if !have_redis_server() {
        return eprintln!("redis-server is not installed: skipping");
    }
    let dir = std::env::temp_dir().join(format!("tooz-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (ca, cert, key) = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .current_dir(&dir)
            .args(args)
            .output()
            .expect("openssl (scripts/backends installs it)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // A private CA, and a server certificate for 127.0.0.1 signed by it.
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=tooz-test-ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "key.pem",
        "-out",
        "req.csr",
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        "req.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "ext.cnf",
        "-out",
        "cert.pem",
    ]);

    let port = free_port();
    let (ca_s, cert_s, key_s) = (
        ca.display().to_string(),
        cert.display().to_string(),
        key.display().to_string(),
    );
    let _server = Server::start_with(
        port,
        &[
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--tls-cert-file",
            &cert_s,
            "--tls-key-file",
            &key_s,
            "--tls-ca-cert-file",
            &ca_s,
            "--tls-auth-clients",
            "no",
        ],
    );

    let url = format!("rediss://127.0.0.1:{port}?timeout=2&ssl_ca_certs={ca_s}");
    let coord = Coordinator::connect(&url, "tls-member").await.unwrap();
    coord
        .join_group_create("g", Capabilities::none())
        .await
        .unwrap();
    let guard = coord.lock("l").acquire().await.unwrap();
    assert!(guard.token().get() >= 1);
    guard.release().await.unwrap();
    assert_eq!(coord.members("g").await.unwrap().len(), 1);
    coord.stop().await.unwrap();

    let started = Instant::now();
    let untrusted = format!("rediss://127.0.0.1:{port}?timeout=2");
    let err = Coordinator::connect(&untrusted, "m").await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(15));
    eprintln!("without the CA: {err}");
    let _ = std::fs::remove_dir_all(&dir);
}
