//! TLS and credentials for the broker connection, read once at start.
//!
//! rustls with the `ring` provider, chosen explicitly: `aws-lc-rs` (rustls'
//! default) costs about 40 s of build on the project's 2-core machines and
//! brings nothing an MQTT client needs. Files are read here, at start, so
//! that a missing or unreadable one is a clear [`DriverError::Setup`] naming
//! the file, never a failure hidden in the reconnect loop. No error message
//! carries a secret: only paths and reasons.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

use crate::config::MqttTls;
use crate::driver::DriverError;

/// The rustls client configuration for `tls`: roots from `ca_file` (PEM),
/// or the system's roots when none is given; a client certificate when
/// `cert_file` and `key_file` are given.
///
/// # Errors
/// [`DriverError::Setup`] naming the file that is missing, unreadable or
/// holds no usable certificate or key.
pub(crate) fn client_config(tls: &MqttTls) -> Result<ClientConfig, DriverError> {
    let mut roots = RootCertStore::empty();
    match &tls.ca_file {
        Some(path) => {
            let certs = read_certs(path, "mqtt.tls.ca_file")?;
            let (added, _ignored) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(setup(path, "mqtt.tls.ca_file", "holds no usable CA certificate"));
            }
        }
        None => {
            // System roots, for a broker with a publicly trusted certificate.
            // Errors on single files of the system store are not fatal: what
            // loaded is used, and an empty store is.
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err(DriverError::Setup(
                    "mqtt.tls: no ca_file given and no system CA certificate found; give ca_file".to_owned(),
                ));
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| DriverError::Setup(format!("mqtt.tls: {e}")))?
        .with_root_certificates(roots);
    match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => {
            let chain = read_certs(cert, "mqtt.tls.cert_file")?;
            if chain.is_empty() {
                return Err(setup(cert, "mqtt.tls.cert_file", "holds no certificate"));
            }
            let key_der = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| setup(key, "mqtt.tls.key_file", &format!("holds no usable private key ({e})")))?;
            builder.with_client_auth_cert(chain, key_der).map_err(|e| {
                DriverError::Setup(format!("mqtt.tls: client certificate and key do not go together: {e}"))
            })
        }
        // Validation rejects one without the other; treat it as no client
        // certificate rather than failing on what cannot happen.
        _ => Ok(builder.with_no_client_auth()),
    }
}

/// The broker password: the file's content with surrounding whitespace
/// (the trailing newline editors add) trimmed.
///
/// # Errors
/// [`DriverError::Setup`] naming the file when it cannot be read.
pub(crate) fn read_password(path: &Path) -> Result<String, DriverError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| setup(path, "mqtt.password_file", &format!("cannot be read: {e}")))?;
    Ok(text.trim().to_owned())
}

fn read_certs(path: &Path, key: &str) -> Result<Vec<CertificateDer<'static>>, DriverError> {
    // Read the file first so that "missing" and "not PEM" get distinct messages.
    let bytes = std::fs::read(path).map_err(|e| setup(path, key, &format!("cannot be read: {e}")))?;
    CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| setup(path, key, &format!("is not valid PEM: {e}")))
}

fn setup(path: &Path, key: &str, what: &str) -> DriverError {
    DriverError::Setup(format!("{key} {}: {what}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls(ca: Option<&Path>) -> MqttTls {
        MqttTls {
            ca_file: ca.map(Path::to_path_buf),
            cert_file: None,
            key_file: None,
        }
    }

    #[test]
    fn missing_ca_file_is_a_setup_error_naming_it() {
        let err = client_config(&tls(Some(Path::new("/nonexistent/ca.pem")))).unwrap_err();
        let DriverError::Setup(msg) = err else {
            panic!("{err:?}")
        };
        assert!(msg.contains("mqtt.tls.ca_file /nonexistent/ca.pem"), "{msg}");
    }

    #[test]
    fn ca_file_without_certificates_is_a_setup_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let err = client_config(&tls(Some(&path))).unwrap_err();
        assert!(
            matches!(&err, DriverError::Setup(m) if m.contains("no usable CA")),
            "{err:?}"
        );
    }

    #[test]
    fn password_is_trimmed_and_a_missing_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "s3cret\n").unwrap();
        assert_eq!(read_password(&path).unwrap(), "s3cret");
        let err = read_password(&dir.path().join("none")).unwrap_err();
        assert!(
            matches!(&err, DriverError::Setup(m) if m.contains("mqtt.password_file")),
            "{err:?}"
        );
    }
}
