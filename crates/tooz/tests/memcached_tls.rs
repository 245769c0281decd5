//! `memcached://...?use_ssl=true`: throw-away memcached servers with TLS (`-Z -o
//! ssl_chain_cert=...,ssl_key=...`) and certificates from a private CA made with `openssl`.
//! The server's certificate is always verified against `ca_cert`, and its name only with
//! `ssl_check_hostname=true`; a CA that did not sign it, a name it was not issued for (when
//! checked), a plain-text client on the TLS port, a TLS client on a plain port and a missing
//! client certificate are errors in bounded time — never a hang, a panic or a fall-back to
//! plain text. Options TLS cannot honour are refused before anything is sent.

#![cfg(feature = "memcached-tls")]

#[path = "support/memcached_server.rs"]
mod memcached_server;
#[path = "support/tls_certs.rs"]
mod tls_certs;

use std::error::Error as _;
use std::net::{Ipv4Addr, ToSocketAddrs};
use std::time::{Duration, Instant};

use memcached_server::{Server, free_port, have_memcached};
use tls_certs::{have_openssl, pki};
use tooz::{Capabilities, Coordinator, Error, MemberId};

/// The bound on any one call here: generous against the 2-second timeouts, far from a hang.
const BOUND: Duration = Duration::from_secs(15);
/// How soon a refused TLS connection must be reported (the handshake fails at once).
const PROMPT: Duration = Duration::from_secs(5);
/// A key password given in a URL: refused, and never shown.
const SECRET: &str = "never-shown-key-pass";

async fn bounded<T>(what: &str, call: impl Future<Output = T>) -> T {
    match tokio::time::timeout(BOUND, call).await {
        Ok(result) => result,
        Err(_) => panic!("{what} did not return within {BOUND:?}"),
    }
}

/// Whether memcached and openssl are here; without them the test is skipped, unless
/// `TOOZ_REQUIRE_INTEROP` says servers are expected.
fn can_run() -> bool {
    if !have_memcached() {
        eprintln!("memcached is not installed: skipping (scripts/test installs it)");
        return false;
    }
    if !have_openssl() {
        assert!(
            std::env::var_os("TOOZ_REQUIRE_INTEROP").is_none(),
            "openssl is not installed, yet TOOZ_REQUIRE_INTEROP is set"
        );
        eprintln!("openssl is not installed: skipping");
        return false;
    }
    true
}

/// A memcached whose port speaks TLS only, presenting `cert` (key `server.key`); `more` is
/// appended to its `-o` list (`,ssl_verify_mode=2,...`).
fn tls_server(cert: &str, more: &str) -> Server {
    let settings = format!("ssl_chain_cert={cert},ssl_key={}{more}", pki().server_key());
    Server::start_with(free_port(), &["-Z", "-o", &settings])
}

/// The error with every cause below it.
fn chain(err: &Error) -> String {
    let mut shown = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        shown.push_str(" / ");
        shown.push_str(&cause.to_string());
        source = cause.source();
    }
    shown
}

/// A coordinator on `url` connects, takes a lock (with a fencing token), joins a group and
/// sees itself in it.
async fn works(url: &str, member: &str, what: &str) {
    let coord = bounded(what, Coordinator::connect(url, member))
        .await
        .unwrap_or_else(|e| panic!("{what}: {}", chain(&e)));
    coord
        .join_group_create("g", Capabilities::none())
        .await
        .unwrap_or_else(|e| panic!("{what}: joining: {}", chain(&e)));
    let guard = bounded(
        what,
        coord.lock("l").acquire_timeout(Duration::from_secs(10)),
    )
    .await
    .unwrap_or_else(|e| panic!("{what}: locking: {}", chain(&e)));
    assert!(guard.token().get() >= 1, "{what}");
    guard.release().await.unwrap();
    let members = coord.members("g").await.unwrap();
    assert!(
        members.contains(&MemberId::from(member)),
        "{what}: {members:?}"
    );
    coord.leave_group("g").await.unwrap();
    coord.stop().await.unwrap();
}

/// A connect on `url` that must fail: it does, within [`PROMPT`], with an error that has no
/// panic in it. Returns the error with its causes, lowercased.
async fn refused(url: &str, what: &str) -> String {
    let started = Instant::now();
    let err = match bounded(what, Coordinator::connect(url, "refused")).await {
        Err(err) => err,
        Ok(coord) => {
            let _ = coord.stop().await;
            panic!("{what}: connected");
        }
    };
    let took = started.elapsed();
    let shown = chain(&err);
    println!("{what}: {shown} (after {took:?})");
    assert!(took < PROMPT, "{what}: refused only after {took:?}");
    assert!(
        !shown.to_lowercase().contains("panic"),
        "{what}: a panic: {shown}"
    );
    assert!(
        !matches!(
            err,
            Error::InvalidOption { .. } | Error::InvalidUrl { .. } | Error::UnknownOption { .. }
        ),
        "{what}: the options are right, the connection is not: {err:?}"
    );
    shown.to_lowercase()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_ca_is_trusted_and_no_other() {
    if !can_run() {
        return;
    }
    let pki = pki();
    let server = tls_server(&pki.server_cert(), "");
    let ca = pki.ca();

    works(
        &server.url(&format!("timeout=2&use_ssl=true&ca_cert={ca}")),
        "tls-member",
        "the server's CA",
    )
    .await;
    works(
        &server.url(&format!(
            "timeout=2&use_ssl=true&ca_cert={ca}&ssl_check_hostname=false"
        )),
        "tls-unchecked",
        "the server's CA, ssl_check_hostname=false",
    )
    .await;
    // Hostname checking on an IP address: the certificate's IP:127.0.0.1.
    works(
        &server.url(&format!(
            "timeout=2&use_ssl=true&ca_cert={ca}&ssl_check_hostname=true"
        )),
        "tls-checked",
        "the server's CA, ssl_check_hostname=true on 127.0.0.1",
    )
    .await;
    // And on a DNS name: the certificate's DNS:localhost (where localhost is this host).
    let localhost = ("localhost", server.port)
        .to_socket_addrs()
        .is_ok_and(|mut addrs| addrs.any(|a| a.ip() == Ipv4Addr::LOCALHOST));
    if localhost {
        works(
            &format!(
                "memcached://localhost:{}?timeout=2&use_ssl=true&ca_cert={ca}\
                 &ssl_check_hostname=true",
                server.port
            ),
            "tls-localhost",
            "the server's CA, ssl_check_hostname=true on localhost",
        )
        .await;
    } else {
        eprintln!("localhost is not 127.0.0.1 here: its case is skipped");
    }

    // A CA with the same name and another key did not sign the server's certificate.
    for check in ["false", "true"] {
        let shown = refused(
            &server.url(&format!(
                "timeout=2&use_ssl=true&ca_cert={}&ssl_check_hostname={check}",
                pki.other_ca()
            )),
            &format!("another CA, ssl_check_hostname={check}"),
        )
        .await;
        assert!(
            shown.contains("certificate"),
            "the error says the certificate is the trouble: {shown}"
        );
    }

    // A plain-text client on the TLS port: the server drops it.
    refused(
        &server.url("timeout=2"),
        "a plain-text client on a TLS port",
    )
    .await;

    // The server still serves a trusting client after all that.
    works(
        &server.url(&format!("timeout=2&use_ssl=true&ca_cert={ca}")),
        "tls-after",
        "the server's CA, after the refusals",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_name_is_checked_only_with_ssl_check_hostname() {
    if !can_run() {
        return;
    }
    let pki = pki();
    // The trusted CA's certificate, for DNS:example.invalid only.
    let server = tls_server(&pki.invalid_name_cert(), "");
    let ca = pki.ca();

    let shown = refused(
        &server.url(&format!(
            "timeout=2&use_ssl=true&ca_cert={ca}&ssl_check_hostname=true"
        )),
        "a certificate for another name, ssl_check_hostname=true",
    )
    .await;
    assert!(
        shown.contains("certificate"),
        "the error says the certificate is the trouble: {shown}"
    );
    works(
        &server.url(&format!(
            "timeout=2&use_ssl=true&ca_cert={ca}&ssl_check_hostname=false"
        )),
        "tls-name-unchecked",
        "a certificate for another name, ssl_check_hostname=false",
    )
    .await;
    works(
        &server.url(&format!("timeout=2&use_ssl=true&ca_cert={ca}")),
        "tls-name-default",
        "a certificate for another name, ssl_check_hostname left at tooz's default (false)",
    )
    .await;
    // Not checking the name is not trusting anyone: the CA still has to be the signer's.
    refused(
        &server.url(&format!(
            "timeout=2&use_ssl=true&ca_cert={}&ssl_check_hostname=false",
            pki.other_ca()
        )),
        "another CA and a certificate for another name, ssl_check_hostname=false",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_is_sent_when_given() {
    if !can_run() {
        return;
    }
    let pki = pki();
    // A server that requires a client certificate from the CA (2: SSL_VERIFY_PEER |
    // SSL_VERIFY_FAIL_IF_NO_PEER_CERT).
    let server = tls_server(
        &pki.server_cert(),
        &format!(",ssl_verify_mode=2,ssl_ca_cert={}", pki.ca()),
    );
    let ca = pki.ca();
    works(
        &server.url(&format!(
            "timeout=2&use_ssl=true&ca_cert={ca}&ssl_cert={}&ssl_key={}",
            pki.client_cert(),
            pki.client_key()
        )),
        "tls-client-cert",
        "a client certificate",
    )
    .await;
    // Without one the server ends the connection (under TLS 1.3 after the handshake, at the
    // first exchange).
    refused(
        &server.url(&format!("timeout=2&use_ssl=true&ca_cert={ca}")),
        "no client certificate where the server requires one",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_client_never_falls_back_to_plain_text() {
    if !can_run() {
        return;
    }
    let server = Server::start(free_port());
    refused(
        &server.url(&format!("timeout=2&use_ssl=true&ca_cert={}", pki().ca())),
        "a TLS client on a plain-text port",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_options_are_checked_before_connecting() {
    if !have_openssl() {
        return eprintln!("openssl is not installed: skipping");
    }
    let pki = pki();
    // Nobody listens: what is refused here is refused before connecting.
    let port = free_port();
    let url = |options: &str| format!("memcached://127.0.0.1:{port}?timeout=2&{options}");
    let ca = pki.ca();

    for (options, option) in [
        ("use_ssl=true".to_owned(), "ca_cert"),
        ("use_ssl=true&ssl_check_hostname=true".to_owned(), "ca_cert"),
        (
            format!(
                "use_ssl=true&ssl_cert={}&ssl_key={}",
                pki.client_cert(),
                pki.client_key()
            ),
            "ca_cert",
        ),
        (
            format!("use_ssl=true&ca_cert={ca}&ssl_key_password={SECRET}"),
            "ssl_key_password",
        ),
        (
            format!("use_ssl=true&ca_cert={ca}&ssl_ciphers=ECDHE-RSA-AES128-GCM-SHA256"),
            "ssl_ciphers",
        ),
        (
            format!("use_ssl=true&ca_cert={ca}&ssl_check_hostname=maybe"),
            "ssl_check_hostname",
        ),
    ] {
        let err = bounded(&options, Coordinator::connect(&url(&options), "m"))
            .await
            .err()
            .unwrap_or_else(|| panic!("{options}: connected to nobody"));
        let shown = format!("{err} / {err:?}");
        println!("{options}: {err}");
        match &err {
            Error::InvalidOption { option: named, .. } => {
                assert_eq!(named, option, "{options}: {shown}");
            }
            _ => panic!("{options}: not an InvalidOption naming {option}: {shown}"),
        }
        assert!(shown.contains(option), "the error names {option}: {shown}");
        assert!(
            !shown.contains(SECRET),
            "{options}: the key password is shown: {shown}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_file_that_is_missing_or_holds_no_certificate_is_an_error() {
    if !can_run() {
        return;
    }
    let pki = pki();
    // A server to connect to, so that a file read only when connecting is read.
    let server = tls_server(&pki.server_cert(), "");
    let missing = pki.dir().join("no-such-ca.pem").display().to_string();
    let garbage = pki.dir().join("garbage-ca.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let garbage = garbage.display().to_string();
    // An error, never a panic, nor a client that trusts nothing and says nothing, nor one
    // that trusts everything.
    for ca_file in [&missing, &garbage] {
        let options = format!("timeout=2&use_ssl=true&ca_cert={ca_file}");
        let err = bounded(&options, Coordinator::connect(&server.url(&options), "m"))
            .await
            .err()
            .unwrap_or_else(|| panic!("{options}: connected"));
        let shown = chain(&err);
        println!("{options}: {shown}");
        assert!(!shown.to_lowercase().contains("panic"), "{shown}");
        assert!(
            shown.contains("ca_cert") || shown.contains(ca_file.as_str()),
            "the error names the option or the file: {shown}"
        );
    }
}
