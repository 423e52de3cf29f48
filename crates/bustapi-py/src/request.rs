//! The request as Python sees it: a frozen object whose fields are converted to
//! Python values only when a view asks for them.
//!
//! The body is what the engine read: bytes, a parsed form (file parts are paths
//! to temp files, never their bytes), or a stream the view reads with the GIL
//! released. The temp files belong to the engine's request, not to this object:
//! they go when the request ends, however long Python keeps this around.

use bustapi_server::{BodyError, BodyReadHandle, Form, RequestBody, ViewRequest};
use bytes::Bytes;
use http::HeaderMap;
use pyo3::create_exception;
use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};
use std::sync::Arc;

create_exception!(
    _core,
    BodyReadError,
    PyOSError,
    "The request body could not be read: `args` are (HTTP status, reason)."
);

/// The body as the bindings keep it.
enum BodyView {
    Bytes(Bytes),
    Form(Arc<Form>),
    Stream(BodyReadHandle),
}

#[pyclass(frozen, module = "bustapi._core", name = "RequestData")]
pub struct RequestData {
    method: http::Method,
    uri: http::Uri,
    version: http::Version,
    headers: Arc<HeaderMap>,
    body: BodyView,
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
            body: match &req.body {
                RequestBody::Bytes(b) => BodyView::Bytes(b.clone()),
                RequestBody::Form { form, .. } => BodyView::Form(Arc::clone(form)),
                RequestBody::Stream(reader) => BodyView::Stream(reader.handle()),
            },
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

    /// The body bytes (copied once into a Python `bytes`); empty for a parsed
    /// form (the engine consumed it) and for a streamed body (see `read_body`).
    #[getter]
    fn body<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        match &self.body {
            BodyView::Bytes(b) => PyBytes::new(py, b),
            _ => PyBytes::new(py, b""),
        }
    }

    /// `"bytes"`, `"form"` (multipart, parsed by the engine) or `"stream"`.
    #[getter]
    fn body_kind(&self) -> &'static str {
        match &self.body {
            BodyView::Bytes(_) => "bytes",
            BodyView::Form(_) => "form",
            BodyView::Stream(_) => "stream",
        }
    }

    /// The form's non-file fields as `(name, value)`, values decoded as UTF-8
    /// (invalid bytes replaced, as Werkzeug does).
    fn form_fields<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        if let BodyView::Form(form) = &self.body {
            for field in &form.fields {
                let value = String::from_utf8_lossy(&field.value);
                list.append((field.name.as_str(), value.as_ref()))?;
            }
        }
        Ok(list)
    }

    /// The form's files as `(name, filename, headers, temp_path, size)`.
    fn form_files<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        if let BodyView::Form(form) = &self.body {
            for file in &form.files {
                list.append((
                    file.name.as_str(),
                    file.filename.as_str(),
                    header_list(py, &file.headers)?,
                    file.path.as_path(),
                    file.size,
                ))?;
            }
        }
        Ok(list)
    }

    /// Up to `size` bytes of a streamed body (`stream_body=True` routes), waiting
    /// for them with the GIL released; `b""` at the end. Raises `BodyReadError`
    /// when the body is refused (too large, too slow, cut short).
    fn read_body<'py>(&self, py: Python<'py>, size: usize) -> PyResult<Bound<'py, PyBytes>> {
        let BodyView::Stream(reader) = &self.body else {
            return Ok(PyBytes::new(py, b""));
        };
        match py.detach(|| reader.read_blocking(size)) {
            Ok(bytes) => Ok(PyBytes::new(py, &bytes)),
            Err(e) => Err(body_error(e)),
        }
    }

    /// All header fields in arrival order, as `(name, value)`; names are lower case.
    /// Values that are not valid UTF-8 are decoded as Latin-1, as WSGI does.
    fn header_items<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        header_list(py, &self.headers)
    }

    /// One header (the first of its name), or `None`.
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

fn header_list<'py>(py: Python<'py>, headers: &HeaderMap) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for (name, value) in headers.iter() {
        let value = match value.to_str() {
            Ok(s) => s.to_string(),
            Err(_) => value.as_bytes().iter().map(|&b| b as char).collect(),
        };
        list.append(PyTuple::new(py, [name.as_str().to_string(), value])?)?;
    }
    Ok(list)
}

fn body_error(e: BodyError) -> PyErr {
    BodyReadError::new_err((e.status().as_u16(), e.detail()))
}
