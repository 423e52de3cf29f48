//! Python view results (already normalised by `bustapi.app`) into engine responses.
//!
//! The Python side hands back `(status, headers, body)` where body is `bytes` or a
//! `FileSpec`; every header is checked here once more, so no value from Python can
//! smuggle CR/LF into the response head.

use crate::file_spec::PyFileSpec;
use crate::stream::PyChunkStream;
use bustapi_server::{ViewBody, ViewResponse};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};

/// Test-only: a response body that makes the binding panic, so tests can prove a
/// panic in Rust costs one request a 500 and nothing else. Compiled in only with the
/// `panic-probe` feature, so no release build can be made to panic on purpose.
#[cfg(feature = "panic-probe")]
#[pyclass(frozen, module = "bustapi._core")]
pub struct PanicProbe;

#[cfg(feature = "panic-probe")]
#[pymethods]
impl PanicProbe {
    #[new]
    fn new() -> Self {
        PanicProbe
    }
}

pub fn view_error(status: StatusCode) -> ViewResponse {
    let reason = status.canonical_reason().unwrap_or("");
    ViewResponse::text(
        status,
        format!(
            "{} {reason}: {}\n",
            status.as_u16(),
            bustapi_server::errors::message(status)
        ),
    )
}

pub fn to_view_response(py: Python<'_>, result: &Bound<'_, PyAny>) -> PyResult<ViewResponse> {
    let tuple = result
        .cast::<PyTuple>()
        .map_err(|_| PyTypeError::new_err("dispatch must return (status, headers, body)"))?;
    let (status, headers, body): (u16, Bound<'_, PyAny>, Bound<'_, PyAny>) = tuple.extract()?;
    let status = StatusCode::from_u16(status)
        .map_err(|_| PyValueError::new_err(format!("invalid HTTP status code {status}")))?;
    let mut map = HeaderMap::new();
    if !headers.is_none() {
        for item in headers.try_iter()? {
            let (name, value): (String, String) = item?.extract()?;
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| PyValueError::new_err(format!("invalid header name {name:?}")))?;
            let value = HeaderValue::from_str(&value)
                .map_err(|_| PyValueError::new_err(format!("invalid value for header {name}: CR, LF and control characters are not allowed")))?;
            map.append(name, value);
        }
    }
    #[cfg(feature = "panic-probe")]
    if body.cast::<PanicProbe>().is_ok() {
        panic!("PanicProbe returned as a response body");
    }
    let body = if let Ok(bytes) = body.cast::<PyBytes>() {
        ViewBody::Bytes(Bytes::copy_from_slice(bytes.as_bytes()))
    } else if let Ok(stream) = body.cast::<PyChunkStream>() {
        ViewBody::Stream(stream.get().source())
    } else if let Ok(spec) = body.cast::<PyFileSpec>() {
        ViewBody::File(Box::new(spec.get().to_spec()?))
    } else {
        let _ = py;
        return Err(PyTypeError::new_err(
            "response body must be bytes, FileSpec or ChunkStream",
        ));
    };
    Ok(ViewResponse {
        status,
        headers: map,
        body,
    })
}
