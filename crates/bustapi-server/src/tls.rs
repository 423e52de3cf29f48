//! HTTPS: rustls, with HTTP/2 offered by ALPN.
//!
//! ALPN advertises `h2` then `http/1.1`; hyper-util's auto builder then speaks
//! whichever the client chose (it reads the h2 preface), so ranges, conditionals
//! and everything else behave identically over both.
//!
//! File bodies over TLS are read and encrypted in user space: zero-copy needs
//! kernel TLS (the `tls` TCP upper-layer protocol, rustls handing its record
//! keys to the kernel after the handshake), which is not used yet. Whether the
//! kernel could do it is logged once when an HTTPS server starts
//! ([`kernel_tls_available`]), so an operator can tell what a future kTLS path
//! would have to work with; bench/analysis.md has the measurements.

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

/// Whether this kernel offers kernel TLS: the `tls` upper-layer protocol is
/// registered (it is listed once the module is loaded; a kernel that can load
/// it on demand is not detected, which errs on the side of "no").
pub fn kernel_tls_available() -> bool {
    std::fs::read_to_string("/proc/sys/net/ipv4/tcp_available_ulp")
        .is_ok_and(|ulps| ulps.split_whitespace().any(|u| u == "tls"))
}

/// Logs, once per process, whether kernel TLS is available.
pub fn log_kernel_tls() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if kernel_tls_available() {
            tracing::info!(
                "kernel TLS is available; HTTPS file bodies are still encrypted in user space"
            );
        } else {
            tracing::info!(
                "kernel TLS unavailable (no `tls` in /proc/sys/net/ipv4/tcp_available_ulp): \
                 HTTPS file bodies are encrypted in user space"
            );
        }
    });
}
