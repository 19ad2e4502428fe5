//! TLS to PostgreSQL with rustls (ring provider, as the MQTT driver; no
//! OpenSSL), per `database.tls`:
//!
//! - `disable`: no TLS (`sslmode=disable`).
//! - `require`: TLS required, the certificate not checked (libpq's
//!   `sslmode=require`): protects against listening, not against an
//!   impostor. For servers with a self-signed certificate nobody distributed.
//! - `verify-full`: TLS required, the chain checked against `ca_file` (or
//!   the system's CAs) and the name against the URL's host.
//!
//! Files are read once, when the store opens: a missing CA file stops the
//! start with its name.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::config::database::{Database, DbTls};

/// What every connection of the store is made with.
#[derive(Clone)]
pub(super) struct Connector {
    mode: DbTls,
    config: ClientConfig,
}

impl Connector {
    /// Reads the CA file (or the system's CAs) for `database.tls`.
    pub(super) fn new(database: &Database) -> Result<Connector, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("database.tls: {e}"))?;
        let config = match database.tls {
            DbTls::VerifyFull => {
                let mut roots = RootCertStore::empty();
                match &database.ca_file {
                    Some(path) => {
                        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                            .map_err(|e| format!("database.ca_file {}: cannot be read: {e}", path.display()))?
                            .collect::<Result<_, _>>()
                            .map_err(|e| format!("database.ca_file {}: not PEM certificates: {e}", path.display()))?;
                        let (added, _) = roots.add_parsable_certificates(certs);
                        if added == 0 {
                            return Err(format!(
                                "database.ca_file {}: holds no usable CA certificate",
                                path.display()
                            ));
                        }
                    }
                    None => {
                        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
                        if roots.is_empty() {
                            return Err(
                                "database.tls is verify-full, no ca_file is given and no system CA certificate was found; give ca_file"
                                    .into(),
                            );
                        }
                    }
                }
                builder.with_root_certificates(roots).with_no_client_auth()
            }
            DbTls::Require | DbTls::Disable => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider)))
                .with_no_client_auth(),
        };
        Ok(Connector {
            mode: database.tls,
            config,
        })
    }

    /// The `sslmode` that goes with it.
    pub(super) fn ssl_mode(&self) -> SslMode {
        match self.mode {
            DbTls::Disable => SslMode::Disable,
            DbTls::Require | DbTls::VerifyFull => SslMode::Require,
        }
    }

    /// A connector for one connection (or a pool's).
    pub(super) fn make(&self) -> MakeRustlsConnect {
        MakeRustlsConnect::new(self.config.clone())
    }
}

/// `require`: any certificate is accepted, but the handshake's signatures
/// are still checked, so the session is encrypted to whoever holds the key
/// of the certificate shown.
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
