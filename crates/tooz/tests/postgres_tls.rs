//! `postgresql://...?sslmode=...&sslrootcert=...`: throw-away PostgreSQL servers with `ssl = on`
//! and certificates from a private CA made with `openssl`. `require`, `verify-ca` and
//! `verify-full` always verify the server's certificate against `sslrootcert` (which they
//! need), and `verify-full` its name too; `prefer` uses TLS where the server offers it and
//! plain text where it does not; `disable` never uses TLS. What the server saw is read from
//! `pg_stat_ssl` on an admin connection of the test's own, by the coordinator's
//! `application_name` (`tooz:<member>`). A CA that did not sign the certificate, a name it was
//! not issued for (under `verify-full`) and a server without TLS (under `require`) are errors
//! in bounded time — never a hang, a panic or a fall-back to plain text.

#![cfg(feature = "postgres-tls")]

#[path = "support/postgres_server.rs"]
mod postgres_server;
#[path = "support/postgres_url.rs"]
mod postgres_url;
#[path = "support/tls_certs.rs"]
mod tls_certs;

use std::error::Error as _;
use std::time::{Duration, Instant};

use postgres_server::{Server, Setup, free_port, have_postgres};
use postgres_url::direct;
use tls_certs::{have_openssl, pki};
use tooz::{Capabilities, Coordinator, Error, MemberId};

/// The bound on any one call here: generous against the 2-second timeouts, far from a hang.
const BOUND: Duration = Duration::from_secs(15);
/// How soon a refused connection must be reported (a TLS handshake fails at once).
const PROMPT: Duration = Duration::from_secs(5);

async fn bounded<T>(what: &str, call: impl Future<Output = T>) -> T {
    match tokio::time::timeout(BOUND, call).await {
        Ok(result) => result,
        Err(_) => panic!("{what} did not return within {BOUND:?}"),
    }
}

/// Whether PostgreSQL and openssl are here; without them the test is skipped, unless
/// `TOOZ_REQUIRE_INTEROP` says servers are expected.
fn can_run() -> bool {
    if !have_postgres() {
        eprintln!("PostgreSQL is not installed: skipping (scripts/backends installs it)");
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

/// A server with `ssl = on`, presenting `cert` (key `server.key`, copied into the data
/// directory, owned by the server's user, mode 0600). Plain-text connections stay allowed
/// (initdb's `host all all 127.0.0.1/32 trust`).
fn tls_server(cert: &str) -> Server {
    let key = pki().server_key();
    Server::start_with(&Setup {
        files: &[("server.crt", cert), ("server.key", key.as_str())],
        conf: &[
            "ssl = on",
            "ssl_cert_file = 'server.crt'",
            "ssl_key_file = 'server.key'",
        ],
        ..Setup::default()
    })
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

/// How many sessions of coordinator `member` the server has, with TLS (`ssl`) or without.
async fn sessions(admin: &tokio_postgres::Client, member: &str, ssl: bool) -> i64 {
    admin
        .query_one(
            "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
             WHERE a.application_name = $1 AND s.ssl = $2",
            &[&format!("tooz:{member}"), &ssl],
        )
        .await
        .unwrap()
        .get(0)
}

/// A coordinator on `url` connects, takes a lock (with a fencing token), joins a group and
/// sees itself in it; meanwhile the server has its one session, with TLS if `tls`.
async fn works(admin: &tokio_postgres::Client, url: &str, member: &str, tls: bool, what: &str) {
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
    let members = coord.members("g").await.unwrap();
    assert!(
        members.contains(&MemberId::from(member)),
        "{what}: {members:?}"
    );
    let (with, without) = (
        sessions(admin, member, tls).await,
        sessions(admin, member, !tls).await,
    );
    assert_eq!(
        (with, without),
        (1, 0),
        "{what}: sessions of tooz:{member} with ssl = {tls}, and with ssl = {}",
        !tls
    );
    guard.release().await.unwrap();
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
    // The certificate is for IP:127.0.0.1, the address in the URLs.
    let server = tls_server(&pki.server_cert());
    let admin = direct(&server.direct_config()).await;
    let ca = pki.ca();

    for (mode, member) in [
        ("verify-full", "tls-verify-full"),
        ("verify-ca", "tls-verify-ca"),
        ("require", "tls-require"),
        ("prefer", "tls-prefer"),
    ] {
        works(
            &admin,
            &server.url(&format!("timeout=2&sslmode={mode}&sslrootcert={ca}")),
            member,
            true,
            &format!("sslmode={mode} with the server's CA"),
        )
        .await;
    }
    works(
        &admin,
        &server.url("timeout=2&sslmode=disable"),
        "tls-disable",
        false,
        "sslmode=disable",
    )
    .await;

    // A CA with the same name and another key did not sign the server's certificate: every
    // mode that verifies refuses it.
    for mode in ["verify-full", "verify-ca", "require"] {
        let shown = refused(
            &server.url(&format!(
                "timeout=2&sslmode={mode}&sslrootcert={}",
                pki.other_ca()
            )),
            &format!("sslmode={mode} with another CA"),
        )
        .await;
        assert!(
            shown.contains("certificate"),
            "the error says the certificate is the trouble: {shown}"
        );
    }
    // Nothing of the refused coordinators is left on the server.
    assert_eq!(sessions(&admin, "refused", true).await, 0);
    assert_eq!(sessions(&admin, "refused", false).await, 0);

    // A root certificate file that is missing, or holds no certificate: an error naming the
    // option or the file, never a panic, nor a client that trusts everything.
    let missing = pki.dir().join("no-such-root.pem").display().to_string();
    let garbage = pki.dir().join("garbage-root.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let garbage = garbage.display().to_string();
    for root in [&missing, &garbage] {
        let options = format!("timeout=2&sslmode=verify-full&sslrootcert={root}");
        let err = bounded(&options, Coordinator::connect(&server.url(&options), "m"))
            .await
            .err()
            .unwrap_or_else(|| panic!("{options}: connected"));
        let shown = chain(&err);
        println!("{options}: {shown}");
        assert!(!shown.to_lowercase().contains("panic"), "{shown}");
        assert!(
            shown.contains("sslrootcert") || shown.contains(root.as_str()),
            "the error names the option or the file: {shown}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_verify_full_checks_the_name() {
    if !can_run() {
        return;
    }
    let pki = pki();
    // The trusted CA's certificate, for DNS:example.invalid only.
    let server = tls_server(&pki.invalid_name_cert());
    let admin = direct(&server.direct_config()).await;
    let ca = pki.ca();

    let shown = refused(
        &server.url(&format!("timeout=2&sslmode=verify-full&sslrootcert={ca}")),
        "sslmode=verify-full with a certificate for another name",
    )
    .await;
    assert!(
        shown.contains("certificate"),
        "the error says the certificate is the trouble: {shown}"
    );
    for (mode, member) in [
        ("verify-ca", "tls-name-verify-ca"),
        ("require", "tls-name-require"),
    ] {
        works(
            &admin,
            &server.url(&format!("timeout=2&sslmode={mode}&sslrootcert={ca}")),
            member,
            true,
            &format!("sslmode={mode} with a certificate for another name"),
        )
        .await;
    }
    // Not checking the name is not trusting anyone: the CA still has to be the signer's.
    refused(
        &server.url(&format!(
            "timeout=2&sslmode=verify-ca&sslrootcert={}",
            pki.other_ca()
        )),
        "sslmode=verify-ca with another CA and a certificate for another name",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_tls_is_plain_under_prefer_and_refused_under_require() {
    if !can_run() {
        return;
    }
    let server = Server::start();
    let admin = direct(&server.direct_config()).await;
    let ca = pki().ca();

    works(
        &admin,
        &server.url(&format!("timeout=2&sslmode=prefer&sslrootcert={ca}")),
        "plain-prefer",
        false,
        "sslmode=prefer on a server without TLS",
    )
    .await;
    works(
        &admin,
        &server.url("timeout=2&sslmode=disable"),
        "plain-disable",
        false,
        "sslmode=disable on a server without TLS",
    )
    .await;
    for mode in ["require", "verify-ca", "verify-full"] {
        refused(
            &server.url(&format!("timeout=2&sslmode={mode}&sslrootcert={ca}")),
            &format!("sslmode={mode} on a server without TLS"),
        )
        .await;
    }
    assert_eq!(sessions(&admin, "refused", false).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_verifying_modes_need_sslrootcert() {
    // Nobody listens: what is refused here is refused before connecting.
    let port = free_port();
    for mode in ["require", "verify-ca", "verify-full"] {
        let url =
            format!("postgresql://postgres@127.0.0.1:{port}/postgres?timeout=2&sslmode={mode}");
        let err = bounded(&url, Coordinator::connect(&url, "m"))
            .await
            .err()
            .unwrap_or_else(|| panic!("{url}: connected to nobody"));
        println!("sslmode={mode} without sslrootcert: {err}");
        match &err {
            Error::InvalidOption { option, .. } => {
                assert_eq!(option, "sslrootcert", "sslmode={mode}: {err}");
            }
            _ => panic!("sslmode={mode} without sslrootcert: {err:?}"),
        }
        assert!(err.to_string().contains("sslrootcert"), "{err}");
    }
}
