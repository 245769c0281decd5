//! TLS for the drivers whose client library brings none of its own (memcached, PostgreSQL),
//! and the checks of the files for those whose library does (MySQL): one rustls client
//! configuration from certificate files. The server's certificate is always
//! verified against the CA given; its name is checked unless the URL says not to (tooz's
//! `ssl_check_hostname=false`, PostgreSQL's `verify-ca`). There is no mode that trusts any
//! certificate.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, SignatureScheme};

use crate::error::{Error, Result};

/// A file, and the URL option that named it (for errors).
pub(crate) type NamedFile = (PathBuf, &'static str);

/// Certificate files and how strictly to check the server.
#[derive(Debug, Clone)]
pub(crate) struct TlsFiles {
    /// The CA that signed the server's certificate.
    pub(crate) ca: NamedFile,
    /// A client certificate and its key.
    pub(crate) client: Option<(NamedFile, NamedFile)>,
    /// Check that the certificate names the host connected to.
    pub(crate) check_hostname: bool,
}

fn invalid(backend: &'static str, option: &str, path: &Path, reason: String) -> Error {
    Error::InvalidOption {
        backend,
        option: option.to_owned(),
        value: path.display().to_string(),
        reason,
    }
}

/// The rustls configuration for `files`.
pub(crate) fn client_config(backend: &'static str, files: &TlsFiles) -> Result<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let (ca, ca_option) = (&files.ca.0, files.ca.1);
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca)
        .map_err(|e| invalid(backend, ca_option, ca, format!("cannot read it: {e}")))?;
    for cert in certs {
        let cert = cert.map_err(|e| {
            invalid(
                backend,
                ca_option,
                ca,
                format!("not a PEM certificate: {e}"),
            )
        })?;
        roots
            .add(cert)
            .map_err(|e| invalid(backend, ca_option, ca, format!("not a CA certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(invalid(
            backend,
            ca_option,
            ca,
            "holds no certificate".into(),
        ));
    }
    let verifier =
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
            .build()
            .map_err(|e| invalid(backend, ca_option, ca, e.to_string()))?;
    let verifier: Arc<dyn ServerCertVerifier> = if files.check_hostname {
        verifier
    } else {
        Arc::new(AnyName(verifier))
    };
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Backend {
            backend,
            source: Box::new(e),
        })?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    match &files.client {
        None => Ok(builder.with_no_client_auth()),
        Some(((cert, cert_option), (key, key_option))) => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
                .and_then(|certs| certs.collect())
                .map_err(|e| invalid(backend, cert_option, cert, format!("cannot read it: {e}")))?;
            if chain.is_empty() {
                let reason = "it holds no PEM certificate".to_owned();
                return Err(invalid(backend, cert_option, cert, reason));
            }
            let private = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| invalid(backend, key_option, key, format!("cannot read it: {e}")))?;
            builder
                .with_client_auth_cert(chain, private)
                .map_err(|e| invalid(backend, key_option, key, e.to_string()))
        }
    }
}

/// The CA's whole verification, but any name: for servers whose certificate does not name the
/// host we reach them by (tooz's `ssl_check_hostname=false`, the default for memcached).
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        // The chain is verified first; a name that does not match is the only failure let by.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
