//! A private PKI for the TLS tests, made once per test binary with the `openssl` command line
//! (RSA 2048, valid for a day):
//!
//! * `ca.pem`: the CA the tests trust (subject `CN=tooz-test-ca`);
//! * `other-ca.pem`: an unrelated CA *with the same subject name* and a key of its own, so a
//!   client that trusts it finds an issuer by name and must still refuse the signature;
//! * `server.pem` + `server.key`: the server, for `IP:127.0.0.1` and `DNS:localhost`;
//! * `invalid-name.pem` (key `server.key` too): the same CA's certificate for
//!   `DNS:example.invalid` only, right for no address the tests connect to;
//! * `client.pem` + `client.key`: a client certificate from the CA (mutual TLS).
//!
//! The files live in `$TMPDIR/tooz-tls-pki-<pid>`; directories of test processes that have
//! ended are removed when the next one is made.

// Shared by several test binaries, each of which uses only part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const PREFIX: &str = "tooz-tls-pki-";

pub(crate) struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn file(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// The CA the tests trust.
    pub(crate) fn ca(&self) -> String {
        self.file("ca.pem")
    }

    /// A CA with the trusted one's subject name and another key: it vouches for nothing here.
    pub(crate) fn other_ca(&self) -> String {
        self.file("other-ca.pem")
    }

    /// The server certificate for `IP:127.0.0.1` and `DNS:localhost`.
    pub(crate) fn server_cert(&self) -> String {
        self.file("server.pem")
    }

    /// The key of both server certificates.
    pub(crate) fn server_key(&self) -> String {
        self.file("server.key")
    }

    /// A server certificate from the trusted CA for `DNS:example.invalid` only.
    pub(crate) fn invalid_name_cert(&self) -> String {
        self.file("invalid-name.pem")
    }

    /// A client certificate from the trusted CA (`CN=tooz-client`).
    pub(crate) fn client_cert(&self) -> String {
        self.file("client.pem")
    }

    pub(crate) fn client_key(&self) -> String {
        self.file("client.key")
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Whether the `openssl` command can be run.
pub(crate) fn have_openssl() -> bool {
    Command::new("openssl").arg("version").output().is_ok()
}

/// This test binary's PKI, made on first use.
pub(crate) fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(make)
}

fn make() -> Pki {
    let tmp = std::env::temp_dir();
    remove_stale(&tmp);
    let dir = tmp.join(format!("{PREFIX}{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
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
    let write = |name: &str, text: &str| std::fs::write(dir.join(name), text).unwrap();
    write(
        "server.cnf",
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    );
    write(
        "invalid-name.cnf",
        "subjectAltName=DNS:example.invalid\nbasicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    );
    write(
        "client.cnf",
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage=clientAuth\n",
    );
    // Two self-signed CAs with one subject name and two keys.
    for (key, cert) in [("ca.key", "ca.pem"), ("other-ca.key", "other-ca.pem")] {
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
            key,
            "-out",
            cert,
        ]);
    }
    // Keys and requests: one key for both server certificates, one for the client.
    for (key, csr, subject) in [
        ("server.key", "server.csr", "/CN=localhost"),
        ("client.key", "client.csr", "/CN=tooz-client"),
    ] {
        openssl(&[
            "req", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", key, "-out", csr,
        ]);
    }
    openssl(&[
        "req",
        "-new",
        "-key",
        "server.key",
        "-subj",
        "/CN=example.invalid",
        "-out",
        "invalid-name.csr",
    ]);
    for (csr, ext, cert) in [
        ("server.csr", "server.cnf", "server.pem"),
        ("invalid-name.csr", "invalid-name.cnf", "invalid-name.pem"),
        ("client.csr", "client.cnf", "client.pem"),
    ] {
        openssl(&[
            "x509",
            "-req",
            "-in",
            csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            ext,
            "-out",
            cert,
        ]);
    }
    Pki { dir }
}

/// Removes the PKI directories of test processes that no longer run.
fn remove_stale(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(PREFIX)) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
