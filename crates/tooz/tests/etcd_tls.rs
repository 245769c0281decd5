//! `etcd3+https://...?ca_cert=...`: throw-away etcd servers whose client port speaks TLS only
//! (`--cert-file --key-file`; `--trusted-ca-file --client-cert-auth` where a client
//! certificate is required) and certificates from a private CA made with `openssl`. Every
//! endpoint, those in `endpoints=` too, is reached over TLS; the server's certificate is always
//! verified against `ca_cert` (which `etcd3+https://` needs), and its name too; `cert_cert` +
//! `cert_key` present a client certificate. That the sessions really are encrypted is shown by
//! the servers: their client port refuses plain text. A CA that did not sign the server's
//! certificate, a name it was not issued for, a missing client certificate and a server
//! without TLS are errors in bounded time — never a hang, a panic or a fall-back to plain
//! text (a server without TLS is left without a lease or a key). TLS options on a plain-text
//! URL, half a client certificate and files that are missing or hold no PEM are refused
//! before anything is sent, naming the option; a password in the URL shows in no error.

#![cfg(feature = "etcd-tls")]

#[path = "support/etcd_server.rs"]
mod etcd_server;
#[path = "support/etcd_url.rs"]
mod etcd_url;
#[path = "support/tls_certs.rs"]
mod tls_certs;

use std::error::Error as _;
use std::net::{Ipv4Addr, TcpListener, ToSocketAddrs};
use std::time::{Duration, Instant};

use etcd_client::{Certificate, Client, ConnectOptions, TlsOptions};
use etcd_server::{Https, Server, Setup, free_port, have_etcd};
use etcd_url::{all_keys, direct};
use tls_certs::{have_openssl, pki};
use tooz::{Capabilities, Coordinator, Error, MemberId};

/// The bound on any one call here: generous against the 2-second timeouts, far from a hang.
const BOUND: Duration = Duration::from_secs(15);
/// How soon a refused connection must be reported: a TLS handshake fails at once, and at
/// worst connecting and the first request are each bounded by `timeout=2`.
const PROMPT: Duration = Duration::from_secs(6);
/// How soon options that cannot be used must be refused: before anything connects.
const AT_ONCE: Duration = Duration::from_secs(1);
/// The password of user `root`, given in URLs: it never shows in an error.
const SECRET: &str = "never-shown-pw";
/// A wrong password, given in URLs: it never shows either.
const WRONG: &str = "never-shown-wrong-pw";

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

/// Whether etcd (with curl) and openssl are here; without them the test is skipped, unless
/// `TOOZ_REQUIRE_INTEROP` says servers are expected.
fn can_run() -> bool {
    if !have_etcd() {
        assert!(
            std::env::var_os("TOOZ_REQUIRE_INTEROP").is_none(),
            "etcd or curl is not installed, yet TOOZ_REQUIRE_INTEROP is set"
        );
        eprintln!("etcd or curl is not installed: skipping (scripts/test installs them)");
        return false;
    }
    have_pki()
}

/// An etcd whose client port speaks TLS only, presenting `cert` (key `server.key`); `name` is
/// the name that certificate is for, where it is not 127.0.0.1 (for the health check). With
/// `client_auth` it lets in only clients with a certificate from the trusted CA
/// (`--trusted-ca-file --client-cert-auth`; etcd 3.4 asks for one with the first flag alone).
fn tls_server(cert: &str, name: Option<&str>, client_auth: bool) -> Server {
    let pki = pki();
    let mut args = vec![
        format!("--cert-file={cert}"),
        format!("--key-file={}", pki.server_key()),
    ];
    let mut client = None;
    if client_auth {
        args.push(format!("--trusted-ca-file={}", pki.ca()));
        args.push("--client-cert-auth".to_owned());
        client = Some((pki.client_cert(), pki.client_key()));
    }
    Server::start_with(Setup {
        args,
        https: Some(Https {
            ca: pki.ca(),
            client,
            name: name.map(str::to_owned),
        }),
    })
}

/// `etcd3+https://USER@127.0.0.1:P?OPTIONS` (`user`: `root:password`).
fn url_as(server: &Server, user: &str, options: &str) -> String {
    format!("etcd3+https://{user}@127.0.0.1:{}?{options}", server.port)
}

/// `etcd3+http://127.0.0.1:P?OPTIONS`, whatever the server speaks.
fn plain_url(server: &Server, options: &str) -> String {
    format!("etcd3+http://127.0.0.1:{}?{options}", server.port)
}

/// Whether `localhost` is 127.0.0.1 here (the certificate's `DNS:localhost`).
fn localhost_is_loopback() -> bool {
    ("localhost", 2379)
        .to_socket_addrs()
        .is_ok_and(|mut addrs| addrs.any(|a| a.ip() == Ipv4Addr::LOCALHOST))
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

/// `err` shown every way there is (its causes, its Debug form) has neither password in it.
fn secret_not_shown(err: &Error, what: &str) {
    let shown = format!("{} / {err:?}", chain(err));
    for secret in [SECRET, WRONG] {
        assert!(
            !shown.contains(secret),
            "{what}: the password is shown: {shown}"
        );
    }
}

/// A raw client of the test's own on `server`'s TLS port, trusting the CA (no library code
/// between), every request bounded by 10 s.
async fn direct_tls(server: &Server) -> Client {
    let ca = std::fs::read(pki().ca()).unwrap();
    let options = ConnectOptions::new()
        .with_tls(TlsOptions::new().ca_certificate(Certificate::from_pem(ca)))
        .with_connect_timeout(Duration::from_secs(5))
        .with_timeout(Duration::from_secs(10));
    let endpoint = server.endpoint();
    bounded(
        "a raw TLS client",
        Client::connect([endpoint.as_str()], Some(options)),
    )
    .await
    .unwrap_or_else(|e| panic!("a raw TLS client of {endpoint}: {e}"))
}

/// A coordinator on `url` connects, takes a lock (with a fencing token), joins a group and
/// sees itself in it; then `spread` more locks one after the other (requests the client
/// spreads over its endpoints).
async fn works_spread(url: &str, member: &str, spread: usize, what: &str) {
    let coord = bounded(what, Coordinator::connect(url, member))
        .await
        .unwrap_or_else(|e| panic!("{what}: {}", chain(&e)));
    let shown = format!("{coord:?}");
    assert!(
        !shown.contains(SECRET),
        "{what}: the coordinator's Debug: {shown}"
    );
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
    for i in 0..spread {
        let name = format!("spread-{i}");
        let guard = bounded(what, coord.lock(name.as_str()).try_acquire())
            .await
            .unwrap_or_else(|e| panic!("{what}: lock {name}: {}", chain(&e)))
            .unwrap_or_else(|| panic!("{what}: lock {name} is held by someone else"));
        guard
            .release()
            .await
            .unwrap_or_else(|e| panic!("{what}: releasing {name}: {}", chain(&e)));
    }
    coord.leave_group("g").await.unwrap();
    coord.stop().await.unwrap();
}

async fn works(url: &str, member: &str, what: &str) {
    works_spread(url, member, 0, what).await;
}

/// A connect on `url` that must fail: it does, within [`PROMPT`], with an error that has no
/// panic and no password in it, and is not about the options. Returns the error with its
/// causes, lowercased.
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
            Error::InvalidOption { .. }
                | Error::InvalidUrl { .. }
                | Error::UnknownOption { .. }
                | Error::FeatureNotEnabled { .. }
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
    let server = tls_server(&pki.server_cert(), None, false);
    let ca = pki.ca();

    works(
        &server.url(&format!("timeout=2&ca_cert={ca}")),
        "tls-member",
        "the server's CA",
    )
    .await;
    // The plain-text URL of the same port: the server speaks TLS only, so the coordinator
    // above spoke TLS.
    refused(
        &plain_url(&server, "timeout=2"),
        "a plain-text client on the TLS port",
    )
    .await;

    if localhost_is_loopback() {
        // On a DNS name: the certificate's DNS:localhost.
        works(
            &format!(
                "etcd3+https://localhost:{}?timeout=2&ca_cert={ca}",
                server.port
            ),
            "tls-localhost",
            "the server's CA on localhost",
        )
        .await;
        // Endpoints in endpoints= are reached over TLS too: the client spreads its requests
        // over both, and one in plain text would be refused by the TLS-only port.
        works_spread(
            &server.url(&format!(
                "timeout=2&ca_cert={ca}&endpoints=localhost:{}",
                server.port
            )),
            "tls-endpoints",
            16,
            "the server's CA, the server twice (127.0.0.1 and endpoints=localhost)",
        )
        .await;
    } else {
        eprintln!("localhost is not 127.0.0.1 here: its cases are skipped");
    }

    // A CA with the same name and another key did not sign the server's certificate.
    for user in [None, Some(format!("root:{SECRET}"))] {
        let options = format!("timeout=2&ca_cert={}", pki.other_ca());
        let url = match &user {
            Some(user) => url_as(&server, user, &options),
            None => server.url(&options),
        };
        let shown = refused(
            &url,
            &format!("another CA, with a password: {}", user.is_some()),
        )
        .await;
        assert!(
            shown.contains("certificate"),
            "the error says the certificate is the trouble: {shown}"
        );
    }
    // Nor is a client certificate a way around it.
    refused(
        &server.url(&format!(
            "timeout=2&ca_cert={}&cert_cert={}&cert_key={}",
            pki.other_ca(),
            pki.client_cert(),
            pki.client_key()
        )),
        "another CA, with a client certificate",
    )
    .await;

    // The server still serves a trusting client after all that.
    works(
        &server.url(&format!("timeout=2&ca_cert={ca}")),
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
    let server = tls_server(&pki.invalid_name_cert(), Some("example.invalid"), false);
    let ca = pki.ca();

    let mut urls = vec![(
        server.url(&format!("timeout=2&ca_cert={ca}")),
        "a certificate for another name, on 127.0.0.1",
    )];
    if localhost_is_loopback() {
        urls.push((
            format!(
                "etcd3+https://localhost:{}?timeout=2&ca_cert={ca}",
                server.port
            ),
            "a certificate for another name, on localhost",
        ));
    }
    for (url, what) in &urls {
        let shown = refused(url, what).await;
        assert!(
            shown.contains("certificate"),
            "the error says the certificate is the trouble: {shown}"
        );
    }
    // Nor with another CA, of course.
    refused(
        &server.url(&format!("timeout=2&ca_cert={}", pki.other_ca())),
        "another CA and a certificate for another name",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_is_sent_when_given() {
    if !can_run() {
        return;
    }
    let pki = pki();
    // A server that lets in only clients with a certificate from the trusted CA.
    let server = tls_server(&pki.server_cert(), None, true);
    let ca = pki.ca();
    let client = format!(
        "&cert_cert={}&cert_key={}",
        pki.client_cert(),
        pki.client_key()
    );

    works(
        &server.url(&format!("timeout=2&ca_cert={ca}{client}")),
        "tls-client-cert",
        "a client certificate",
    )
    .await;
    // Without one the server ends the connection (under TLS 1.3 after the client's side of
    // the handshake, at the first exchange).
    refused(
        &server.url(&format!("timeout=2&ca_cert={ca}")),
        "no client certificate where the server requires one",
    )
    .await;
    // Nor does plain text get in.
    refused(
        &plain_url(&server, "timeout=2"),
        "a plain-text client on a port that requires a client certificate",
    )
    .await;
    works(
        &server.url(&format!("timeout=2&ca_cert={ca}{client}")),
        "tls-client-cert-after",
        "a client certificate, after the refusals",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_client_never_falls_back_to_plain_text() {
    if !can_run() {
        return;
    }
    let pki = pki();
    let server = Server::start();
    let port = server.port;
    let ca = pki.ca();
    let tls = format!("timeout=2&ca_cert={ca}");

    let urls = [
        format!("etcd3+https://127.0.0.1:{port}?{tls}"),
        format!("etcd3+https://root:{SECRET}@127.0.0.1:{port}?{tls}"),
        format!(
            "etcd3+https://127.0.0.1:{port}?{tls}&cert_cert={}&cert_key={}",
            pki.client_cert(),
            pki.client_key()
        ),
    ];
    for url in &urls {
        refused(url, "a TLS client on a server without TLS").await;
    }
    // Endpoints in endpoints= are TLS too. The URL's own host here is a port that takes
    // connections and never answers: over TLS its handshake waits (up to `timeout`), so the
    // first request goes to the server in endpoints=, which refuses TLS at once. A client
    // speaking plain text to that server would be answered (and leave a lease behind); one
    // speaking plain text everywhere would send its request to the silent port, and be
    // refused only after `timeout`.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    for listed in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port},127.0.0.1:{port}"),
    ] {
        let url = format!("etcd3+https://127.0.0.1:{silent_port}?{tls}&endpoints={listed}");
        let started = Instant::now();
        refused(&url, "a TLS client on a server without TLS, in endpoints=").await;
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "refused after the silent port's timeout, not at once by the server in endpoints="
        );
    }
    drop(silent);

    // Not a request was served: no lease, no key.
    let mut raw = direct(&server.direct_url()).await;
    let leases = bounded("listing leases", raw.leases())
        .await
        .unwrap_or_else(|e| panic!("listing leases: {e}"));
    assert!(
        leases.leases().is_empty(),
        "leases granted in plain text: {:?}",
        leases.leases().iter().map(|l| l.id()).collect::<Vec<_>>()
    );
    let keys = bounded("listing keys", all_keys(&mut raw)).await;
    assert!(keys.is_empty(), "keys written in plain text: {keys:?}");

    // The server itself is fine: a plain-text client works.
    works(
        &server.url("timeout=2"),
        "plain",
        "plain text on a server without TLS",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_goes_over_tls_and_never_shows() {
    if !can_run() {
        return;
    }
    let pki = pki();
    let server = tls_server(&pki.server_cert(), None, false);
    let ca = pki.ca();
    // Authentication on (the way `etcdctl user add`, `user grant-role` and `auth enable` do
    // it), over TLS: user root with SECRET, and user enc with a password that needs
    // percent-encoding in a URL, both with the root role.
    let mut raw = direct_tls(&server).await;
    for (user, password) in [("root", SECRET.to_owned()), ("enc", format!("{SECRET}/@x"))] {
        bounded("adding a user", raw.user_add(user, password, None))
            .await
            .unwrap_or_else(|e| panic!("adding {user}: {e}"));
        bounded("granting a role", raw.user_grant_role(user, "root"))
            .await
            .unwrap_or_else(|e| panic!("granting {user} the root role: {e}"));
    }
    bounded("enabling authentication", raw.auth_enable())
        .await
        .unwrap_or_else(|e| panic!("enabling authentication: {e}"));

    let options = format!("timeout=2&ca_cert={ca}");
    let with_secret = url_as(&server, &format!("root:{SECRET}"), &options);
    assert!(
        !format!("{:?}", Coordinator::builder(&with_secret, "m")).contains(SECRET),
        "the builder's Debug shows the password"
    );
    works(&with_secret, "tls-root", "root with its password, over TLS").await;
    // A wrong password: etcd refuses the login (over TLS); neither password shows.
    refused(
        &url_as(&server, &format!("root:{WRONG}"), &options),
        "root with a wrong password",
    )
    .await;
    // Another CA: nothing is sent, the password least of all.
    let shown = refused(
        &url_as(
            &server,
            &format!("root:{SECRET}"),
            &format!("timeout=2&ca_cert={}", pki.other_ca()),
        ),
        "root with its password, and another CA",
    )
    .await;
    assert!(
        shown.contains("certificate"),
        "the error says the certificate is the trouble: {shown}"
    );
    // A password needing percent-encoding: decoded, and shown neither encoded nor decoded.
    works(
        &url_as(&server, &format!("enc:{SECRET}%2F%40x"), &options),
        "tls-enc",
        "a percent-encoded password, over TLS",
    )
    .await;
    refused(
        &url_as(&server, &format!("enc:{SECRET}%2F%40y"), &options),
        "a wrong percent-encoded password",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_options_are_checked_before_connecting() {
    // What each refusal below may name.
    const CA: &[&str] = &["ca_cert"];
    const CERT_OR_KEY: &[&str] = &["cert_cert", "cert_key"];
    const CERT: &[&str] = &["cert_cert"];
    const KEY: &[&str] = &["cert_key"];
    const ANY: &[&str] = &["ca_cert", "cert_cert", "cert_key"];
    if !have_pki() {
        return;
    }
    let pki = pki();
    // Nobody listens: what is refused here is refused before connecting.
    let port = free_port();
    let https =
        |options: &str| format!("etcd3+https://root:{SECRET}@127.0.0.1:{port}?timeout=2&{options}");
    let http =
        |options: &str| format!("etcd3+http://root:{SECRET}@127.0.0.1:{port}?timeout=2&{options}");
    let ca = pki.ca();
    let (cert, key) = (pki.client_cert(), pki.client_key());
    let missing = pki.dir().join("no-such-file.pem").display().to_string();
    let garbage = pki.dir().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let garbage = garbage.display().to_string();

    let mut invalid: Vec<(String, &[&str])> = vec![
        // etcd3+https:// needs the CA: the system's roots alone are never trusted, nor any
        // server unverified.
        (https(""), CA),
        (https(&format!("cert_cert={cert}&cert_key={key}")), CA),
        (
            format!("etcd3+https://127.0.0.1:{port}?timeout=2&endpoints=127.0.0.1:{port}"),
            CA,
        ),
        // A client certificate is both files or neither.
        (
            https(&format!("ca_cert={ca}&cert_cert={cert}")),
            CERT_OR_KEY,
        ),
        (https(&format!("ca_cert={ca}&cert_key={key}")), CERT_OR_KEY),
        // On a plain-text URL they would be ignored.
        (http(&format!("ca_cert={ca}")), CA),
        (
            http(&format!("cert_cert={cert}&cert_key={key}")),
            CERT_OR_KEY,
        ),
        (
            http(&format!("ca_cert={ca}&cert_cert={cert}&cert_key={key}")),
            ANY,
        ),
        (
            format!("etcd://root:{SECRET}@127.0.0.1:{port}?timeout=2&ca_cert={ca}"),
            CA,
        ),
        // A file that is missing or holds no PEM of the kind asked for.
        (https(&format!("ca_cert={missing}")), CA),
        (https(&format!("ca_cert={garbage}")), CA),
        (https(&format!("ca_cert={key}")), CA),
        (
            https(&format!("ca_cert={ca}&cert_cert={missing}&cert_key={key}")),
            CERT,
        ),
        (
            https(&format!("ca_cert={ca}&cert_cert={garbage}&cert_key={key}")),
            CERT,
        ),
        (
            https(&format!("ca_cert={ca}&cert_cert={key}&cert_key={key}")),
            CERT,
        ),
        (
            https(&format!("ca_cert={ca}&cert_cert={cert}&cert_key={missing}")),
            KEY,
        ),
        (
            https(&format!("ca_cert={ca}&cert_cert={cert}&cert_key={garbage}")),
            KEY,
        ),
        (
            https(&format!("ca_cert={ca}&cert_cert={cert}&cert_key={cert}")),
            KEY,
        ),
    ];
    // The same with the password percent-encoded: shown neither encoded nor decoded.
    invalid.push((
        format!("etcd3+https://root:{SECRET}%2F%40x@127.0.0.1:{port}?timeout=2"),
        CA,
    ));
    for (url, named) in &invalid {
        let redacted = url.replace(SECRET, "***");
        let what = redacted.as_str();
        let started = Instant::now();
        let err = bounded(what, Coordinator::connect(url, "m"))
            .await
            .err()
            .unwrap_or_else(|| panic!("{what}: connected to nobody"));
        let took = started.elapsed();
        assert!(took < AT_ONCE, "{what}: refused only after {took:?}");
        let shown = format!("{} / {err:?}", chain(&err));
        println!("{what}: {err}");
        match &err {
            Error::InvalidOption { option, .. } => {
                assert!(
                    named.contains(&option.as_str()),
                    "{what}: the error names {option}, not one of {named:?}: {shown}"
                );
                assert!(err.to_string().contains(option.as_str()), "{shown}");
            }
            _ => panic!("{what}: not an InvalidOption naming one of {named:?}: {shown}"),
        }
        secret_not_shown(&err, what);
    }
}
