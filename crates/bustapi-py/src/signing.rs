//! `UrlSigner`: the application's URL-signing keys, shared by Python's
//! `sign_url` and the engine's checks, so one implementation both signs and
//! verifies (see `bustapi_server::signed_url`).

use bustapi_server::signed_url::Refusal;
use bustapi_server::UrlSigner;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use std::net::IpAddr;
use std::sync::Arc;

#[pyclass(frozen, module = "bustapi._core", name = "UrlSigner")]
pub struct PyUrlSigner {
    pub inner: Arc<UrlSigner>,
}

fn parse_ip(ip: Option<&str>) -> PyResult<Option<IpAddr>> {
    ip.map(|ip| {
        ip.parse::<IpAddr>()
            .map_err(|_| PyValueError::new_err(format!("not an IP address: {ip:?}")))
    })
    .transpose()
}

#[pymethods]
impl PyUrlSigner {
    /// Signs with the first key, accepts any.
    #[new]
    fn new(keys: Vec<Vec<u8>>) -> PyResult<Self> {
        let inner = UrlSigner::new(&keys).map_err(PyValueError::new_err)?;
        Ok(PyUrlSigner {
            inner: Arc::new(inner),
        })
    }

    /// The query string (no `?`) signing `path` until `expires` (Unix seconds).
    #[pyo3(signature = (path, expires, ip=None, prefix=None))]
    fn sign(
        &self,
        path: &str,
        expires: u64,
        ip: Option<&str>,
        prefix: Option<&str>,
    ) -> PyResult<String> {
        self.inner
            .sign(path, expires, parse_ip(ip)?, prefix)
            .map_err(PyValueError::new_err)
    }

    /// The status the engine would answer a request for `path?query` from
    /// `ip` with: 200 (admitted), 403 or 410.
    #[pyo3(signature = (path, query, ip=None, now=None))]
    fn check(
        &self,
        path: &str,
        query: Option<&str>,
        ip: Option<&str>,
        now: Option<u64>,
    ) -> PyResult<u16> {
        let now = now.unwrap_or_else(bustapi_server::signed_url::now);
        Ok(match self.inner.verify(path, query, parse_ip(ip)?, now) {
            Ok(()) => 200,
            Err(r @ (Refusal::Forbidden(_) | Refusal::Expired)) => r.status().as_u16(),
        })
    }
}
