//! `mysql://...?ssl_ca=...`: throw-away MariaDB servers with TLS (`--ssl-ca --ssl-cert
//! --ssl-key`) and certificates from a private CA made with `openssl`. With `ssl_ca` the
//! connection is TLS, the server's certificate always verified against it, and its name too
//! (`ssl_check_hostname=false` is refused: the client library cannot check the chain without
//! the name); `ssl_cert` + `ssl_key` present a client certificate.
//! That the sessions really are encrypted is shown by the server itself: users made
//! `REQUIRE SSL` (and `REQUIRE X509`, `REQUIRE SUBJECT`) log in only over TLS (with a client
//! certificate). A CA that did not sign the server's certificate, a name it was not issued for
//! (when checked), a missing client certificate and a server without TLS are errors in bounded
//! time — never a hang, a panic or a fall-back to plain text; `ssl_verify_mode` other than
//! required, `ssl_capath` and `ssl_cipher` are refused before anything is sent; a password in
//! the URL shows in no error.

#![cfg(feature = "mysql-tls")]

#[path = "support/mysql_server.rs"]
mod mysql_server;
#[path = "support/mysql_url.rs"]
mod mysql_url;
#[path = "support/tls_certs.rs"]
mod tls_certs;

use std::error::Error as _;
use std::net::{Ipv4Addr, ToSocketAddrs};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_server::{Server, Setup, free_port, have_mariadb};
use mysql_url::{direct, execute};
use tls_certs::{have_openssl, pki};
use tooz::{Capabilities, Coordinator, Error, MemberId};

/// The bound on any one call here: generous against the 2-second timeouts, far from a hang.
const BOUND: Duration = Duration::from_secs(15);
/// How soon a refused connection must be reported (a TLS handshake fails at once).
const PROMPT: Duration = Duration::from_secs(5);
/// The password of user `pwuser`, given in URLs: it never shows in an error.
const SECRET: &str = "never-shown-pw";

async fn bounded<T>(what: &str, call: impl Future<Output = T>) -> T {
    match tokio::time::timeout(BOUND, call).await {
        Ok(result) => result,
        Err(_) => panic!("{what} did not return within {BOUND:?}"),
    }
}

/// Whether openssl is here; without it the test is skipped, unless `TOOZ_REQUIRE_INTEROP`
/// says servers are expected.
fn have_pki() -> bool {
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

/// Whether MariaDB and openssl are here; without them the test is skipped, unless
/// `TOOZ_REQUIRE_INTEROP` says servers are expected.
fn can_run() -> bool {
    if !have_mariadb() {
        eprintln!("MariaDB is not installed: skipping (scripts/backends installs it)");
        return false;
    }
    have_pki()
}

/// A server with TLS, presenting `cert` (key `server.key`) and verifying client certificates
/// against the trusted CA; all copied into the data directory, owned by the server's user,
/// mode 0600. Plain-text connections stay allowed (`root` has no `REQUIRE`).
fn tls_server(cert: &str) -> Server {
    let pki = pki();
    let (ca, key) = (pki.ca(), pki.server_key());
    Server::start_with(&Setup {
        files: &[
            ("ca.pem", ca.as_str()),
            ("server.pem", cert),
            ("server.key", key.as_str()),
        ],
        args: &[
            "--ssl-ca=ca.pem",
            "--ssl-cert=server.pem",
            "--ssl-key=server.key",
        ],
    })
}

/// The test's own plain-text connection to `server`, as `root`, after making its users, each
/// with every right on database `tooz` and none elsewhere: `tlsuser` (`REQUIRE SSL`),
/// `pwuser` (`REQUIRE SSL`, password [`SECRET`]), `x509user` (`REQUIRE X509`: a client
/// certificate the server's CA signed) and `subjuser` (that certificate's subject and issuer).
async fn admin(server: &Server) -> mysql_async::Conn {
    let mut admin = direct(&server.direct_url()).await;
    let have_ssl: Option<String> = admin.query_first("SELECT @@have_ssl").await.unwrap();
    assert_eq!(have_ssl.as_deref(), Some("YES"), "the server has TLS");
    for (user, require) in [
        ("tlsuser", "REQUIRE SSL".to_owned()),
        ("pwuser", format!("IDENTIFIED BY '{SECRET}' REQUIRE SSL")),
        ("x509user", "REQUIRE X509".to_owned()),
        (
            "subjuser",
            "REQUIRE SUBJECT '/CN=tooz-client' AND ISSUER '/CN=tooz-test-ca'".to_owned(),
        ),
    ] {
        execute(
            &mut admin,
            &format!("CREATE USER '{user}'@'127.0.0.1' {require}"),
        )
        .await;
        execute(
            &mut admin,
            &format!("GRANT ALL ON tooz.* TO '{user}'@'127.0.0.1'"),
        )
        .await;
    }
    admin
}

/// How many sessions `user` has on the server.
async fn sessions(admin: &mut mysql_async::Conn, user: &str) -> u64 {
    let count: Option<u64> = admin
        .exec_first(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = ?",
            (user.to_owned(),),
        )
        .await
        .unwrap_or_else(|e| panic!("reading the process list: {e}"));
    count.unwrap_or(0)
}

/// Waits (a few seconds at most) until `user` has no session on the server: a refused
/// coordinator leaves none (nor does a stopped one, once the server saw it go).
async fn no_sessions(admin: &mut mysql_async::Conn, user: &str) {
    let deadline = Instant::now() + PROMPT;
    loop {
        let left = sessions(admin, user).await;
        if left == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{user} still has {left} sessions on the server"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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

/// `err` shown every way there is (its causes, its Debug form) has no [`SECRET`] in it.
fn secret_not_shown(err: &Error, what: &str) {
    let shown = format!("{} / {err:?}", chain(err));
    assert!(
        !shown.contains(SECRET),
        "{what}: the password is shown: {shown}"
    );
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
/// panic and no [`SECRET`] in it. Returns the error with its causes, lowercased.
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
    secret_not_shown(&err, what);
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
    let mut admin = admin(&server).await;
    let ca = pki.ca();

    works(
        &server.url(&format!("timeout=2&ssl_ca={ca}")),
        "tls-root",
        "passwordless root with the server's CA",
    )
    .await;
    // A user the server lets in over TLS only: the session is encrypted.
    for (options, member) in [
        ("", "tls-default"),
        ("&ssl_verify_mode=CERT_REQUIRED", "tls-cert-required"),
        ("&ssl_verify_mode=required", "tls-required"),
        ("&ssl_check_hostname=true", "tls-checked"),
    ] {
        works(
            &server.url_as("tlsuser", &format!("timeout=2&ssl_ca={ca}{options}")),
            member,
            &format!("a REQUIRE SSL user with the server's CA{options}"),
        )
        .await;
    }
    let pwuser = format!("pwuser:{SECRET}");
    works(
        &server.url_as(&pwuser, &format!("timeout=2&ssl_ca={ca}")),
        "tls-password",
        "a REQUIRE SSL user with a password, with the server's CA",
    )
    .await;
    // And on a DNS name: the certificate's DNS:localhost (where localhost is this host).
    let localhost = ("localhost", server.port)
        .to_socket_addrs()
        .is_ok_and(|mut addrs| addrs.any(|a| a.ip() == Ipv4Addr::LOCALHOST));
    if localhost {
        works(
            &format!(
                "mysql://tlsuser@localhost:{}/tooz?timeout=2&ssl_ca={ca}&ssl_check_hostname=true",
                server.port
            ),
            "tls-localhost",
            "the server's CA, ssl_check_hostname=true on localhost",
        )
        .await;
    } else {
        eprintln!("localhost is not 127.0.0.1 here: its case is skipped");
    }

    // Without TLS that user is refused: its logging in above is the proof of TLS.
    let shown = refused(
        &server.url_as("tlsuser", "timeout=2"),
        "a REQUIRE SSL user without ssl_ca",
    )
    .await;
    assert!(
        shown.contains("access denied"),
        "the server refuses the plain-text login: {shown}"
    );

    // A CA with the same name and another key did not sign the server's certificate.
    for user in ["root", "tlsuser", pwuser.as_str()] {
        let name = user.split(':').next().unwrap();
        for check in ["true"] {
            let shown = refused(
                &server.url_as(
                    user,
                    &format!(
                        "timeout=2&ssl_ca={}&ssl_check_hostname={check}",
                        pki.other_ca()
                    ),
                ),
                &format!("another CA as {name}, ssl_check_hostname={check}"),
            )
            .await;
            assert!(
                shown.contains("certificate"),
                "the error says the certificate is the trouble: {shown}"
            );
        }
    }
    // Nothing of the refused coordinators is left on the server.
    no_sessions(&mut admin, "tlsuser").await;
    no_sessions(&mut admin, "pwuser").await;

    // The server still serves a trusting client after all that.
    works(
        &server.url_as("tlsuser", &format!("timeout=2&ssl_ca={ca}")),
        "tls-after",
        "the server's CA, after the refusals",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_name_is_always_checked() {
    if !can_run() {
        return;
    }
    let pki = pki();
    // The trusted CA's certificate, for DNS:example.invalid only.
    let server = tls_server(&pki.invalid_name_cert());
    let mut admin = admin(&server).await;
    let ca = pki.ca();

    for check in ["", "&ssl_check_hostname=true"] {
        let shown = refused(
            &server.url_as("tlsuser", &format!("timeout=2&ssl_ca={ca}{check}")),
            &format!("a certificate for another name{check}"),
        )
        .await;
        assert!(
            shown.contains("certificate"),
            "the error says the certificate is the trouble: {shown}"
        );
    }
    // Not checking the name is refused before anything is sent (mysql_async 0.37 cannot skip
    // only the name check with today's rustls: it would skip nothing, or everything).
    let unchecked = bounded(
        "connect",
        Coordinator::connect(
            &server.url_as(
                "tlsuser",
                &format!("timeout=2&ssl_ca={ca}&ssl_check_hostname=false"),
            ),
            "tls-name-unchecked",
        ),
    )
    .await
    .expect_err("ssl_check_hostname=false must be refused");
    assert!(
        matches!(unchecked, Error::Unsupported { .. }),
        "{unchecked:?}"
    );
    no_sessions(&mut admin, "tlsuser").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_is_sent_when_given() {
    if !can_run() {
        return;
    }
    let pki = pki();
    let server = tls_server(&pki.server_cert());
    let mut admin = admin(&server).await;
    let ca = pki.ca();
    let client = format!(
        "&ssl_cert={}&ssl_key={}",
        pki.client_cert(),
        pki.client_key()
    );

    for user in ["x509user", "subjuser"] {
        works(
            &server.url_as(user, &format!("timeout=2&ssl_ca={ca}{client}")),
            &format!("tls-{user}"),
            &format!("{user} with a client certificate"),
        )
        .await;
        // Without one the server refuses the login (over TLS, which that user needs too).
        let shown = refused(
            &server.url_as(user, &format!("timeout=2&ssl_ca={ca}")),
            &format!("{user} without a client certificate"),
        )
        .await;
        assert!(
            shown.contains("access denied"),
            "the server refuses the login: {shown}"
        );
        no_sessions(&mut admin, user).await;
    }
    // A client certificate to a user who needs none: no harm done.
    works(
        &server.url_as("tlsuser", &format!("timeout=2&ssl_ca={ca}{client}")),
        "tls-needless-cert",
        "a REQUIRE SSL user with a client certificate",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_client_never_falls_back_to_plain_text() {
    if !can_run() {
        return;
    }
    // `--skip-ssl`: no TLS even on servers that make themselves a certificate (MariaDB 11.4+).
    let server = Server::start_with(&Setup {
        args: &["--skip-ssl"],
        ..Setup::default()
    });
    let mut admin = direct(&server.direct_url()).await;
    let have_ssl: Option<String> = admin.query_first("SELECT @@have_ssl").await.unwrap();
    assert_ne!(have_ssl.as_deref(), Some("YES"), "the server has no TLS");
    execute(
        &mut admin,
        &format!("CREATE USER 'pwuser'@'127.0.0.1' IDENTIFIED BY '{SECRET}'"),
    )
    .await;
    execute(&mut admin, "GRANT ALL ON tooz.* TO 'pwuser'@'127.0.0.1'").await;
    let ca = pki().ca();
    let pwuser = format!("pwuser:{SECRET}");

    for (user, check) in [("root", ""), (pwuser.as_str(), "")] {
        refused(
            &server.url_as(
                user,
                &format!("timeout=2&table_prefix=plain_&ssl_ca={ca}{check}"),
            ),
            &format!(
                "a TLS client on a server without TLS, as {}{check}",
                user.split(':').next().unwrap()
            ),
        )
        .await;
    }
    // Not a statement was run: no session is left, no table made.
    no_sessions(&mut admin, "pwuser").await;
    let tables: Option<u64> = admin
        .query_first(
            "SELECT COUNT(*) FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = 'tooz' AND TABLE_NAME LIKE 'plain\\_%'",
        )
        .await
        .unwrap();
    assert_eq!(tables, Some(0), "tables made in plain text");
    // The server itself is fine: a plain-text client works.
    works(
        &server.url_as(&pwuser, "timeout=2"),
        "plain",
        "plain text on a server without TLS",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_options_are_checked_before_connecting() {
    // What each refusal below may name.
    const VERIFY_MODE: &[&str] = &["ssl_verify_mode"];
    const CHECK_HOSTNAME: &[&str] = &["ssl_check_hostname"];
    const CERT_OR_KEY: &[&str] = &["ssl_cert", "ssl_key"];
    const CA: &[&str] = &["ssl_ca"];
    if !have_pki() {
        return;
    }
    let pki = pki();
    // Nobody listens: what is refused here is refused before connecting.
    let port = free_port();
    let url = |options: &str| {
        format!("mysql://pwuser:{SECRET}@127.0.0.1:{port}/tooz?timeout=2&{options}")
    };
    let ca = pki.ca();
    let (cert, key) = (pki.client_cert(), pki.client_key());

    let mut invalid: Vec<(String, &[&str])> = Vec::new();
    for mode in [
        "CERT_NONE",
        "none",
        "CERT_OPTIONAL",
        "optional",
        "sometimes",
    ] {
        invalid.push((format!("ssl_ca={ca}&ssl_verify_mode={mode}"), VERIFY_MODE));
    }
    invalid.push((
        format!("ssl_ca={ca}&ssl_check_hostname=maybe"),
        CHECK_HOSTNAME,
    ));
    // Both or neither.
    invalid.push((format!("ssl_ca={ca}&ssl_cert={cert}"), CERT_OR_KEY));
    invalid.push((format!("ssl_ca={ca}&ssl_key={key}"), CERT_OR_KEY));
    // A client certificate, but nothing to check the server's against.
    invalid.push((format!("ssl_cert={cert}&ssl_key={key}"), CA));
    for (options, named) in &invalid {
        let started = Instant::now();
        let err = bounded(options, Coordinator::connect(&url(options), "m"))
            .await
            .err()
            .unwrap_or_else(|| panic!("{options}: connected to nobody"));
        let took = started.elapsed();
        assert!(took < PROMPT, "{options}: refused only after {took:?}");
        let shown = format!("{err} / {err:?}");
        println!("{options}: {err}");
        match &err {
            Error::InvalidOption { option, .. } => {
                assert!(
                    named.contains(&option.as_str()),
                    "{options}: the error names {option}, not one of {named:?}: {shown}"
                );
                assert!(err.to_string().contains(option.as_str()), "{shown}");
            }
            _ => panic!("{options}: not an InvalidOption naming one of {named:?}: {shown}"),
        }
        secret_not_shown(&err, options);
    }

    // Options TLS here cannot honour: refused, not ignored.
    let capath = pki.dir().display().to_string();
    for options in [
        format!("ssl_ca={ca}&ssl_capath={capath}"),
        format!("ssl_ca={ca}&ssl_cipher=ECDHE-RSA-AES128-GCM-SHA256"),
    ] {
        let err = bounded(&options, Coordinator::connect(&url(&options), "m"))
            .await
            .err()
            .unwrap_or_else(|| panic!("{options}: connected to nobody"));
        println!("{options}: {err}");
        assert!(
            matches!(err, Error::Unsupported { .. }),
            "{options}: not Unsupported: {err:?}"
        );
        secret_not_shown(&err, &options);
    }
    // Without ssl_ca as well: refused (as unsupported, or for want of ssl_ca), never a
    // connection attempt.
    for options in [
        format!("ssl_capath={capath}"),
        "ssl_cipher=ECDHE-RSA-AES128-GCM-SHA256".to_owned(),
    ] {
        let err = bounded(&options, Coordinator::connect(&url(&options), "m"))
            .await
            .err()
            .unwrap_or_else(|| panic!("{options}: connected to nobody"));
        println!("{options}: {err}");
        assert!(
            matches!(err, Error::Unsupported { .. } | Error::InvalidOption { .. }),
            "{options}: not refused before connecting: {err:?}"
        );
        secret_not_shown(&err, &options);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_is_missing_or_holds_no_certificate_is_an_error() {
    if !can_run() {
        return;
    }
    let pki = pki();
    // A server to connect to, so that a file read only when connecting is read.
    let server = tls_server(&pki.server_cert());
    let _admin = admin(&server).await;
    let missing = pki.dir().join("no-such-file.pem").display().to_string();
    let garbage = pki.dir().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let garbage = garbage.display().to_string();
    let (ca, cert, key) = (pki.ca(), pki.client_cert(), pki.client_key());
    // An error naming the option or the file, never a panic, nor a client that trusts nothing
    // and says nothing, nor one that trusts everything, nor one that goes on without its
    // certificate.
    let mut cases = Vec::new();
    for file in [&missing, &garbage] {
        cases.push((format!("ssl_ca={file}"), "ssl_ca", file));
        cases.push((
            format!("ssl_ca={ca}&ssl_cert={file}&ssl_key={key}"),
            "ssl_cert",
            file,
        ));
        cases.push((
            format!("ssl_ca={ca}&ssl_cert={cert}&ssl_key={file}"),
            "ssl_key",
            file,
        ));
    }
    for (options, option, file) in cases {
        let options = format!("timeout=2&{options}");
        // (A user who needs the client certificate: a client that went on without it is
        // refused by the server, not let in.)
        let url = server.url_as("x509user", &options);
        let err = bounded(&options, Coordinator::connect(&url, "m"))
            .await
            .err()
            .unwrap_or_else(|| panic!("{options}: connected"));
        let shown = chain(&err);
        println!("{options}: {shown}");
        assert!(!shown.to_lowercase().contains("panic"), "{shown}");
        assert!(
            shown.contains(option) || shown.contains(file.as_str()),
            "{options}: the error names {option} or {file}: {shown}"
        );
    }
}
