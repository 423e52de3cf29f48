//! HTTPS: rustls, with HTTP/2 offered by ALPN.
//!
//! ALPN advertises `h2` then `http/1.1`; hyper-util's auto builder then speaks
//! whichever the client chose (it reads the h2 preface), so ranges, conditionals
//! and everything else behave identically over both.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::io;
use std::path::Path;
use std::sync::Arc;
use tokio_rustls::rustls::{self, ServerConfig};

/// A TLS server configuration from PEM files (Flask's `ssl_context=(cert, key)`).
pub fn server_config(cert_pem: &Path, key_pem: &Path) -> io::Result<Arc<ServerConfig>> {
    let bad = |what: &str, path: &Path, e: &dyn std::fmt::Display| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what} {}: {e}", path.display()),
        )
    };
    let certs = CertificateDer::pem_file_iter(cert_pem)
        .map_err(|e| bad("cannot read certificate", cert_pem, &e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad("invalid certificate", cert_pem, &e))?;
    if certs.is_empty() {
        return Err(bad("no certificate in", cert_pem, &"empty PEM"));
    }
    let key = PrivateKeyDer::from_pem_file(key_pem)
        .map_err(|e| bad("cannot read private key", key_pem, &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| io::Error::other(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| bad("certificate and key do not match", key_pem, &e))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
