//! The request as Python sees it: a frozen object whose fields are converted to
//! Python values only when a view asks for them.

use bustapi_server::ViewRequest;
use bytes::Bytes;
use http::HeaderMap;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};
use std::sync::Arc;

#[pyclass(frozen, module = "bustapi._core", name = "RequestData")]
pub struct RequestData {
    method: http::Method,
    uri: http::Uri,
    version: http::Version,
    headers: Arc<HeaderMap>,
    body: Bytes,
    remote_addr: Option<std::net::SocketAddr>,
    secure: bool,
}

impl RequestData {
    pub fn from_view(req: &ViewRequest) -> Self {
        RequestData {
            method: req.method.clone(),
            uri: req.uri.clone(),
            version: req.version,
            headers: Arc::clone(&req.headers),
            body: req.body.clone(),
            remote_addr: req.remote_addr,
            secure: req.secure,
        }
    }
}

#[pymethods]
impl RequestData {
    #[getter]
    fn method(&self) -> &str {
        self.method.as_str()
    }

    /// The path as sent, still percent-encoded.
    #[getter]
    fn raw_path(&self) -> &str {
        self.uri.path()
    }

    #[getter]
    fn query_string(&self) -> &str {
        self.uri.query().unwrap_or("")
    }

    #[getter]
    fn http_version(&self) -> &'static str {
        match self.version {
            http::Version::HTTP_09 => "HTTP/0.9",
            http::Version::HTTP_10 => "HTTP/1.0",
            http::Version::HTTP_2 => "HTTP/2",
            http::Version::HTTP_3 => "HTTP/3",
            _ => "HTTP/1.1",
        }
    }

    #[getter]
    fn scheme(&self) -> &'static str {
        if self.secure {
            "https"
        } else {
            "http"
        }
    }

    #[getter]
    fn remote_addr(&self) -> Option<String> {
        self.remote_addr.map(|a| a.ip().to_string())
    }

    #[getter]
    fn remote_port(&self) -> Option<u16> {
        self.remote_addr.map(|a| a.port())
    }

    /// The body bytes (copied once into a Python `bytes`).
    #[getter]
    fn body<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.body)
    }

    /// All header fields in arrival order, as `(name, value)`; names are lower case.
    /// Values that are not valid UTF-8 are decoded as Latin-1, as WSGI does.
    fn header_items<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        for (name, value) in self.headers.iter() {
            let value = match value.to_str() {
                Ok(s) => s.to_string(),
                Err(_) => value.as_bytes().iter().map(|&b| b as char).collect(),
            };
            list.append(PyTuple::new(py, [name.as_str().to_string(), value])?)?;
        }
        Ok(list)
    }

    /// One header (the first of its name), or `None`.
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}
