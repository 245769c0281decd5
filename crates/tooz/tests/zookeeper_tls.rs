//! `zookeeper://...?use_ssl=true&ca=...`: throw-away ZooKeeper servers with a TLS port
//! (`secureClientPort`, ZooKeeper's Netty connection factory, the certificate and its key in
//! one PEM key store, `ssl.clientAuth=need` where a client certificate is required) beside
//! their plain client port, and certificates from a private CA made with `openssl`. The
//! server's certificate is always verified against `ca`, its name too (`IP:127.0.0.1`,
//! `DNS:localhost`); `certfile` + `keyfile` present a client certificate. That the sessions
//! really are encrypted is shown by the servers: their TLS port refuses plain text. A CA that
//! did not sign the server's certificate, a name it was not issued for, a missing client
//! certificate, a server without TLS and one that never answers are errors in bounded time —
//! never a hang, a panic or a fall-back to plain text (a server without TLS makes no session:
//! its zxid does not move). TLS options that would be ignored or would weaken it, half a client
//! certificate and files that are missing, empty or hold no PEM of the kind asked for are
//! refused before anything is sent, naming the option; a key password shows in no error.

#![cfg(feature = "zookeeper-tls")]

#[path = "support/tls_certs.rs"]
mod tls_certs;
#[path = "support/zookeeper_server.rs"]
mod zookeeper_server;

use std::error::Error as _;
use std::net::{Ipv4Addr, TcpListener, ToSocketAddrs};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tls_certs::{have_openssl, pki};
use tooz::{Capabilities, Coordinator, Error, MemberId};
use zookeeper_server::{Server, four_letter_word, free_port, have_zookeeper_tls};

/// The `timeout` option of every URL here: the bound on connecting and on every request.
const TIMEOUT: &str = "timeout=3";
/// The bound on any one call here: generous against the 3-second timeouts, far from a hang.
const BOUND: Duration = Duration::from_secs(20);
/// How soon a refused connection must be reported: a failed TLS handshake at once, a server
/// that never answers once connecting has taken `timeout=3`; and slack.
const PROMPT: Duration = Duration::from_secs(6);
/// How soon options that cannot be used must be refused: before anything connects.
const AT_ONCE: Duration = Duration::from_secs(1);
/// A password given in URLs (the user's, the key's): it never shows in an error.
const SECRET: &str = "never-shown-zk-pw";

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

/// Whether ZooKeeper (with java and Netty's codec) and openssl are here; without them the test
/// is skipped (unless `TOOZ_TEST_URLS` names a ZooKeeper: then ZooKeeper's absence fails it).
fn can_run() -> bool {
    if !have_zookeeper_tls() {
        eprintln!(
            "ZooKeeper, java or Netty's codec is not installed: skipping (scripts/test \
             installs them)"
        );
        return false;
    }
    have_pki()
}

/// `cert` and the servers' key (`server.key`, PKCS#8: `BEGIN PRIVATE KEY`, the form ZooKeeper's
/// PEM key store reads) in one new PEM file, as ZooKeeper's `ssl.keyStore.location` takes them.
fn key_store(cert: &str) -> String {
    static SERIAL: AtomicUsize = AtomicUsize::new(0);
    let pki = pki();
    let key = std::fs::read_to_string(pki.server_key()).unwrap();
    assert!(
        key.contains("-----BEGIN PRIVATE KEY-----"),
        "ZooKeeper reads PKCS#8 keys only: {}",
        pki.server_key()
    );
    let mut pem = std::fs::read_to_string(cert).unwrap();
    if !pem.ends_with('\n') {
        pem.push('\n');
    }
    pem.push_str(&key);
    let path = pki.dir().join(format!(
        "zookeeper-key-store-{}.pem",
        SERIAL.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&path, pem).unwrap();
    path.display().to_string()
}

/// A ZooKeeper whose TLS port presents `cert` (key `server.key`) and checks client certificates
/// against the trusted CA; `client_auth` is its `ssl.clientAuth` (`none`, `want`, `need`).
fn tls_server(cert: &str, client_auth: &str) -> Server {
    let key_store = format!("ssl.keyStore.location={}", key_store(cert));
    let trust_store = format!("ssl.trustStore.location={}", pki().ca());
    let client_auth = format!("ssl.clientAuth={client_auth}");
    Server::start_tls(&[
        &key_store,
        "ssl.keyStore.type=PEM",
        &trust_store,
        "ssl.trustStore.type=PEM",
        &client_auth,
    ])
}

/// The options of a TLS URL trusting `ca`.
fn tls_options(ca: &str) -> String {
    format!("{TIMEOUT}&use_ssl=true&ca={ca}")
}

/// The options of a TLS URL trusting the CA and presenting the client certificate.
fn client_cert_options() -> String {
    let pki = pki();
    format!(
        "{}&certfile={}&keyfile={}",
        tls_options(&pki.ca()),
        pki.client_cert(),
        pki.client_key()
    )
}

/// Whether `localhost` is 127.0.0.1 here (the certificate's `DNS:localhost`).
fn localhost_is_loopback() -> bool {
    ("localhost", 2181)
        .to_socket_addrs()
        .is_ok_and(|mut addrs| addrs.any(|a| a.ip() == Ipv4Addr::LOCALHOST))
}

/// The last transaction id `server` applied (`srvr`'s `Zxid: 0x...`): every session made moves
/// it on, so a session made in plain text would show.
fn zxid(server: &Server) -> u64 {
    let answer = server
        .four_letter_word("srvr")
        .expect("srvr is answered on the plain port");
    let hex = answer
        .lines()
        .find_map(|line| line.strip_prefix("Zxid: 0x"))
        .unwrap_or_else(|| panic!("no zxid in srvr's answer: {answer}"));
    u64::from_str_radix(hex.trim(), 16).unwrap_or_else(|e| panic!("zxid {hex}: {e}"))
}

/// Whether `openssl s_client`, trusting the CA, completes a handshake with 127.0.0.1:`port` and
/// finds the certificate valid as `check` asks (`-verify_hostname NAME`, `-verify_ip IP`): a
/// check of the server's side of the test, with another TLS client than ours.
fn openssl_verifies(port: u16, check: [&str; 2]) -> bool {
    let mut child = Command::new("openssl")
        .args(["s_client", "-brief", "-verify_return_error", "-connect"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("-CAfile")
        .arg(pki().ca())
        .args(check)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.success();
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("openssl s_client on port {port} did not finish in 10 s");
        }
        std::thread::sleep(Duration::from_millis(50));
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

/// `err` shown every way there is (its causes, its Debug form) has no password in it.
fn secret_not_shown(err: &Error, what: &str) {
    let shown = format!("{} / {err:?}", chain(err));
    assert!(
        !shown.contains(SECRET),
        "{what}: the password is shown: {shown}"
    );
}

/// A coordinator on `url` connects, takes a lock (with a fencing token), joins a group and
/// sees itself in it; a group and a lock of its own (named after `member`).
async fn works(url: &str, member: &str, what: &str) {
    let coord = bounded(what, Coordinator::connect(url, member))
        .await
        .unwrap_or_else(|e| panic!("{what}: {}", chain(&e)));
    let shown = format!("{coord:?}");
    assert!(
        !shown.contains(SECRET),
        "{what}: the coordinator's Debug: {shown}"
    );
    let group = format!("group-{member}");
    bounded(what, coord.join_group_create(&group, Capabilities::none()))
        .await
        .unwrap_or_else(|e| panic!("{what}: joining: {}", chain(&e)));
    let guard = bounded(
        what,
        coord
            .lock(format!("lock-{member}"))
            .acquire_timeout(Duration::from_secs(10)),
    )
    .await
    .unwrap_or_else(|e| panic!("{what}: locking: {}", chain(&e)));
    assert!(guard.token().get() >= 1, "{what}");
    bounded(what, guard.release())
        .await
        .unwrap_or_else(|e| panic!("{what}: releasing: {}", chain(&e)));
    let members = bounded(what, coord.members(&group))
        .await
        .unwrap_or_else(|e| panic!("{what}: members: {}", chain(&e)));
    assert!(
        members.contains(&MemberId::from(member)),
        "{what}: {members:?}"
    );
    bounded(what, coord.leave_group(&group))
        .await
        .unwrap_or_else(|e| panic!("{what}: leaving: {}", chain(&e)));
    bounded(what, coord.stop())
        .await
        .unwrap_or_else(|e| panic!("{what}: stopping: {}", chain(&e)));
}

/// A connect on `url` that must fail: it does, within [`PROMPT`], with an error that has no
/// panic and no password in it, and is not about the options.
async fn refused(url: &str, what: &str) {
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_ca_is_trusted_and_no_other() {
    if !can_run() {
        return;
    }
    let pki = pki();
    // The certificate is for IP:127.0.0.1, the address in the URLs, and DNS:localhost.
    let server = tls_server(&pki.server_cert(), "none");
    let secure = server.secure_port();
    let tls = tls_options(&pki.ca());

    // TLS to the server's plain port (Netty's, as the TLS port's) is refused, and makes no
    // session there.
    let before = zxid(&server);
    refused(
        &server.url_with(&tls),
        "a TLS client on the server's plain port",
    )
    .await;
    assert_eq!(zxid(&server), before, "a session was made in plain text");

    works(
        &server.secure_url_with(&tls),
        "tls-member",
        "the server's CA",
    )
    .await;
    // verify_certs=true is kazoo's default, said out loud.
    works(
        &server.secure_url_with(&format!("{tls}&verify_certs=true")),
        "tls-verify-certs",
        "the server's CA, verify_certs=true",
    )
    .await;
    works(
        &format!("kazoo://127.0.0.1:{secure}?{tls}"),
        "tls-kazoo",
        "the server's CA, kazoo://",
    )
    .await;
    // The TLS port refuses plain text, so the coordinators above spoke TLS.
    refused(
        &server.secure_url_with(TIMEOUT),
        "a plain-text client on the TLS port",
    )
    .await;
    assert!(
        !four_letter_word(secure, "srvr").is_some_and(|answer| answer.contains("Mode: ")),
        "the TLS port answers a four-letter word in plain text"
    );

    if localhost_is_loopback() {
        // On a DNS name: the certificate's DNS:localhost.
        works(
            &format!("zookeeper://localhost:{secure}?{tls}"),
            "tls-localhost",
            "the server's CA on localhost",
        )
        .await;
    } else {
        eprintln!("localhost is not 127.0.0.1 here: its case is skipped");
    }

    // A CA with the same name and another key did not sign the server's certificate.
    let other = tls_options(&pki.other_ca());
    let mut urls = vec![
        (server.secure_url_with(&other), "another CA"),
        (
            format!("zookeeper://tooz:{SECRET}@127.0.0.1:{secure}?{other}"),
            "another CA, with a user and password",
        ),
        (
            server.secure_url_with(&format!(
                "{other}&certfile={}&keyfile={}",
                pki.client_cert(),
                pki.client_key()
            )),
            "another CA, with a client certificate",
        ),
    ];
    if localhost_is_loopback() {
        urls.push((
            format!("zookeeper://localhost:{secure}?{other}"),
            "another CA, on localhost",
        ));
    }
    for (url, what) in &urls {
        refused(url, what).await;
    }

    // The server still serves a trusting client after all that.
    works(
        &server.secure_url_with(&tls),
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
    let server = tls_server(&pki.invalid_name_cert(), "none");
    let secure = server.secure_port();
    // The server's TLS is sound: another client, trusting the CA, takes the certificate for
    // the name it was issued for, and refuses it for 127.0.0.1 (so what our client refuses
    // below is the name).
    assert!(
        openssl_verifies(secure, ["-verify_hostname", "example.invalid"]),
        "the server's certificate does not verify for its own name"
    );
    assert!(
        !openssl_verifies(secure, ["-verify_ip", "127.0.0.1"]),
        "openssl takes a certificate for example.invalid on 127.0.0.1"
    );
    let tls = tls_options(&pki.ca());

    let mut urls = vec![
        (
            server.secure_url_with(&tls),
            "a certificate for another name, on 127.0.0.1",
        ),
        (
            server.secure_url_with(&format!("{tls}&verify_certs=true")),
            "a certificate for another name, verify_certs=true",
        ),
        (
            server.secure_url_with(&format!(
                "{tls}&certfile={}&keyfile={}",
                pki.client_cert(),
                pki.client_key()
            )),
            "a certificate for another name, with a client certificate",
        ),
    ];
    if localhost_is_loopback() {
        urls.push((
            format!("zookeeper://localhost:{secure}?{tls}"),
            "a certificate for another name, on localhost",
        ));
    }
    for (url, what) in &urls {
        refused(url, what).await;
    }
    // Nor with another CA, of course.
    refused(
        &server.secure_url_with(&tls_options(&pki.other_ca())),
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
    // A TLS port that lets in only clients with a certificate from the trusted CA.
    let server = tls_server(&pki.server_cert(), "need");
    let with_cert = client_cert_options();

    works(
        &server.secure_url_with(&with_cert),
        "tls-client-cert",
        "a client certificate",
    )
    .await;
    // Without one the server ends the handshake.
    refused(
        &server.secure_url_with(&tls_options(&pki.ca())),
        "no client certificate where the server requires one",
    )
    .await;
    refused(
        &format!(
            "zookeeper://tooz:{SECRET}@127.0.0.1:{}?{}",
            server.secure_port(),
            tls_options(&pki.ca())
        ),
        "no client certificate where the server requires one, with a user and password",
    )
    .await;
    // Nor does plain text get in.
    refused(
        &server.secure_url_with(TIMEOUT),
        "a plain-text client on a TLS port that requires a client certificate",
    )
    .await;
    works(
        &server.secure_url_with(&with_cert),
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
    // A server without TLS.
    let server = Server::start();
    let port = server.port();
    let tls = tls_options(&pki.ca());
    let before = zxid(&server);

    let urls = [
        (
            format!("zookeeper://127.0.0.1:{port}?{tls}"),
            "a TLS client on a server without TLS",
        ),
        (
            format!("zookeeper://tooz:{SECRET}@127.0.0.1:{port}?{tls}"),
            "a TLS client with a user and password on a server without TLS",
        ),
        (
            format!("zookeeper://127.0.0.1:{port}?{}", client_cert_options()),
            "a TLS client with a client certificate on a server without TLS",
        ),
        (
            format!("kazoo://127.0.0.1:{port}?{tls}"),
            "a TLS kazoo:// client on a server without TLS",
        ),
        // Every host of a host list is TLS.
        (
            format!("zookeeper://127.0.0.1:{port},localhost:{port}?{tls}"),
            "a TLS client on a host list of a server without TLS",
        ),
        (
            format!("zookeeper://127.0.0.1:{port}?{tls}&hosts=127.0.0.1:{port}"),
            "a TLS client on a server without TLS, twice (hosts=)",
        ),
    ];
    for (url, what) in &urls {
        refused(url, what).await;
    }
    // Not one session was made: the zxid has not moved.
    assert_eq!(
        zxid(&server),
        before,
        "a session was made in plain text by a client asked for TLS"
    );

    // A port that takes connections and never answers: refused once connecting has taken
    // `timeout`, not a hang.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    refused(
        &format!("zookeeper://127.0.0.1:{silent_port}?{tls}"),
        "a TLS client on a port that never answers",
    )
    .await;
    drop(silent);

    // The server itself is fine: a plain-text client works, and moves the zxid on (the check
    // above would have seen a session made in plain text).
    works(
        &server.url_with(TIMEOUT),
        "plain-member",
        "plain text on a server without TLS",
    )
    .await;
    assert!(
        zxid(&server) > before,
        "a session was made, yet the zxid did not move"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_options_are_checked_before_connecting() {
    // What each refusal below may name.
    const CA: &[&str] = &["ca"];
    const CA_OR_USE_SSL: &[&str] = &["ca", "use_ssl"];
    const CERT: &[&str] = &["certfile"];
    const KEY: &[&str] = &["keyfile"];
    const CERT_OR_KEY: &[&str] = &["certfile", "keyfile"];
    const ANY_FILE: &[&str] = &["ca", "certfile", "keyfile"];
    const USE_SSL: &[&str] = &["use_ssl"];
    const VERIFY: &[&str] = &["verify_certs"];
    const PASSWORD: &[&str] = &["keyfile_password"];
    const CA_OR_VERIFY: &[&str] = &["ca", "verify_certs"];
    if !have_pki() {
        return;
    }
    let pki = pki();
    // Nobody listens: what is refused here is refused before connecting.
    let port = free_port();
    let plain = |options: &str| format!("zookeeper://127.0.0.1:{port}?{TIMEOUT}&{options}");
    let tls = |options: &str| plain(&format!("use_ssl=true&{options}"));
    let ca = pki.ca();
    let (cert, key) = (pki.client_cert(), pki.client_key());
    let missing = pki.dir().join("no-such-file.pem").display().to_string();
    let empty = pki.dir().join("zookeeper-empty.pem");
    std::fs::write(&empty, "").unwrap();
    let empty = empty.display().to_string();
    let garbage = pki.dir().join("zookeeper-garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let garbage = garbage.display().to_string();
    // A directory: no file to read.
    let directory = pki.dir().display().to_string();

    let invalid: Vec<(String, &[&str])> = vec![
        // use_ssl=true needs the CA: no server is ever taken unverified, nor on the system's
        // roots alone.
        (tls(""), CA_OR_USE_SSL),
        (
            tls(&format!("certfile={cert}&keyfile={key}")),
            CA_OR_USE_SSL,
        ),
        (
            format!("kazoo://127.0.0.1:{port}?{TIMEOUT}&use_ssl=true"),
            CA_OR_USE_SSL,
        ),
        (
            format!("zookeeper://127.0.0.1:{port},127.0.0.1:{port}?{TIMEOUT}&use_ssl=true"),
            CA_OR_USE_SSL,
        ),
        (
            format!("zookeeper://tooz:{SECRET}@127.0.0.1:{port}?{TIMEOUT}&use_ssl=true"),
            CA_OR_USE_SSL,
        ),
        (plain("use_ssl=maybe"), USE_SSL),
        // Verification off would take any server for ZooKeeper.
        (tls(&format!("ca={ca}&verify_certs=false")), VERIFY),
        (plain(&format!("ca={ca}&verify_certs=false")), CA_OR_VERIFY),
        // An encrypted key is not supported; its password is never repeated back.
        (
            tls(&format!(
                "ca={ca}&certfile={cert}&keyfile={key}&keyfile_password={SECRET}"
            )),
            PASSWORD,
        ),
        (
            format!(
                "zookeeper://tooz:{SECRET}@127.0.0.1:{port}?{TIMEOUT}&use_ssl=true&ca={ca}\
                 &keyfile_password={SECRET}"
            ),
            PASSWORD,
        ),
        // TLS options without TLS would be ignored.
        (plain(&format!("ca={ca}")), CA),
        (plain(&format!("use_ssl=false&ca={ca}")), CA),
        (
            plain(&format!("certfile={cert}&keyfile={key}")),
            CERT_OR_KEY,
        ),
        (plain(&format!("certfile={cert}")), CERT_OR_KEY),
        (plain(&format!("keyfile={key}")), CERT_OR_KEY),
        (
            plain(&format!(
                "use_ssl=false&ca={ca}&certfile={cert}&keyfile={key}"
            )),
            ANY_FILE,
        ),
        (format!("kazoo://127.0.0.1:{port}?{TIMEOUT}&ca={ca}"), CA),
        // A client certificate is both files or neither.
        (tls(&format!("ca={ca}&certfile={cert}")), CERT_OR_KEY),
        (tls(&format!("ca={ca}&keyfile={key}")), CERT_OR_KEY),
        // Files that cannot be read, or are empty.
        (tls(&format!("ca={missing}")), CA),
        (tls(&format!("ca={empty}")), CA),
        (tls(&format!("ca={directory}")), CA),
        (
            tls(&format!("ca={ca}&certfile={missing}&keyfile={key}")),
            CERT,
        ),
        (
            tls(&format!("ca={ca}&certfile={empty}&keyfile={key}")),
            CERT,
        ),
        (
            tls(&format!("ca={ca}&certfile={directory}&keyfile={key}")),
            CERT,
        ),
        (
            tls(&format!("ca={ca}&certfile={cert}&keyfile={missing}")),
            KEY,
        ),
        (
            tls(&format!("ca={ca}&certfile={cert}&keyfile={empty}")),
            KEY,
        ),
        (
            tls(&format!("ca={ca}&certfile={cert}&keyfile={directory}")),
            KEY,
        ),
        // Files that hold no PEM of the kind asked for.
        (tls(&format!("ca={garbage}")), CA),
        (tls(&format!("ca={key}")), CA),
        (
            tls(&format!("ca={ca}&certfile={garbage}&keyfile={key}")),
            CERT,
        ),
        (tls(&format!("ca={ca}&certfile={key}&keyfile={key}")), CERT),
        (
            tls(&format!("ca={ca}&certfile={cert}&keyfile={garbage}")),
            KEY,
        ),
        (tls(&format!("ca={ca}&certfile={cert}&keyfile={cert}")), KEY),
    ];
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

    // The same files, right ones, are taken (and only then is nobody found listening).
    for url in [
        tls(&format!("ca={ca}")),
        tls(&format!("ca={ca}&certfile={cert}&keyfile={key}")),
        tls(&format!("ca={ca}&verify_certs=true")),
    ] {
        let err = bounded(&url, Coordinator::connect(&url, "m"))
            .await
            .err()
            .unwrap_or_else(|| panic!("{url}: connected to nobody"));
        assert!(
            !matches!(
                err,
                Error::InvalidOption { .. }
                    | Error::InvalidUrl { .. }
                    | Error::UnknownOption { .. }
                    | Error::FeatureNotEnabled { .. }
            ),
            "{url}: the options are right: {}",
            chain(&err)
        );
    }
}
