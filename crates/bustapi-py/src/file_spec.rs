//! `FileSpec`: the Python-built description of a file response.
//!
//! Validated when constructed, so a wrong argument fails at the Python call site
//! with a clear exception, not later as a broken response.

use bustapi_server::files::{Pace, Rate};
use bustapi_server::{DispositionType, FileSpec, PathOrFile, Validator};
use bytes::Bytes;
use http::HeaderValue;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use std::os::fd::{BorrowedFd, RawFd};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[pyclass(frozen, module = "bustapi._core", name = "FileSpec")]
pub struct PyFileSpec {
    path_or_file: PathOrFile,
    content_type: Option<HeaderValue>,
    type_hint_name: Option<String>,
    disposition: Option<(DispositionType, Option<String>)>,
    conditional: bool,
    etag: Validator<HeaderValue>,
    last_modified: Validator<SystemTime>,
    max_age: Option<u64>,
    pace: Option<Pace>,
}

/// `rate` (bytes per second, or `"auto"` for an MP4's bitrate multiple) and
/// `rate_after` (bytes at full speed first) as the engine's pacing.
pub(crate) fn pace(rate: Option<&Bound<'_, PyAny>>, after: Option<u64>) -> PyResult<Option<Pace>> {
    let after = after.unwrap_or(0);
    let Some(rate) = rate.filter(|r| !r.is_none()) else {
        if after > 0 {
            return Err(PyValueError::new_err("rate_after needs a rate"));
        }
        return Ok(None);
    };
    if let Ok(word) = rate.extract::<String>() {
        return match word.as_str() {
            "auto" => Ok(Some(Pace::Auto { after })),
            _ => Err(PyValueError::new_err(format!(
                "rate must be bytes per second or \"auto\", not {word:?}"
            ))),
        };
    }
    if rate.is_instance_of::<pyo3::types::PyBool>() {
        return Err(PyTypeError::new_err(
            "rate must be bytes per second or \"auto\"",
        ));
    }
    match rate.extract::<u64>() {
        Ok(bytes_per_second) if bytes_per_second > 0 => Ok(Some(Pace::Fixed(Rate {
            bytes_per_second,
            after,
        }))),
        _ => Err(PyValueError::new_err(
            "rate must be a positive number of bytes per second or \"auto\"",
        )),
    }
}

fn header_value(what: &str, v: &str) -> PyResult<HeaderValue> {
    if v.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        return Err(PyValueError::new_err(format!(
            "{what} must not contain CR, LF or NUL"
        )));
    }
    HeaderValue::from_str(v)
        .map_err(|_| PyValueError::new_err(format!("{what} is not a valid header value: {v:?}")))
}

#[pymethods]
impl PyFileSpec {
    #[new]
    #[pyo3(signature = (*, path=None, root=None, rel=None, fd=None, data=None, content_type=None,
        type_hint_name=None, disposition=None, filename=None, conditional=true, etag=None,
        use_etag=true, last_modified=None, use_last_modified=true, max_age=None, rate=None,
        rate_after=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        path: Option<PathBuf>,
        root: Option<PathBuf>,
        rel: Option<String>,
        fd: Option<RawFd>,
        data: Option<Vec<u8>>,
        content_type: Option<&str>,
        type_hint_name: Option<String>,
        disposition: Option<&str>,
        filename: Option<String>,
        conditional: bool,
        etag: Option<&str>,
        use_etag: bool,
        last_modified: Option<f64>,
        use_last_modified: bool,
        max_age: Option<u64>,
        rate: Option<&Bound<'_, PyAny>>,
        rate_after: Option<u64>,
    ) -> PyResult<Self> {
        let path_or_file = match (path, root, rel, fd, data) {
            (Some(p), None, None, None, None) => PathOrFile::Path(p),
            (None, Some(root), Some(rel), None, None) => PathOrFile::Under { root, rel },
            (None, None, None, Some(fd), None) => {
                // Own a duplicate: the Python file object may be closed or collected
                // while the engine is still streaming.
                if fd < 0 {
                    return Err(PyValueError::new_err("fd must be an open file descriptor"));
                }
                // SAFETY: the descriptor is only borrowed for the duration of the dup;
                // an invalid one makes dup fail with EBADF, reported as OSError.
                let owned = unsafe { BorrowedFd::borrow_raw(fd) }.try_clone_to_owned()?;
                PathOrFile::Open(std::fs::File::from(owned))
            }
            (None, None, None, None, Some(d)) => PathOrFile::Bytes(Bytes::from(d)),
            _ => {
                return Err(PyTypeError::new_err(
                    "FileSpec needs exactly one of: path, root+rel, fd, data",
                ))
            }
        };
        let disposition = match disposition {
            None if filename.is_none() => None,
            None | Some("attachment") => Some((DispositionType::Attachment, filename)),
            Some("inline") => Some((DispositionType::Inline, filename)),
            Some(other) => {
                return Err(PyValueError::new_err(format!(
                    "content disposition must be 'inline' or 'attachment', not {other:?}"
                )))
            }
        };
        let etag = match (use_etag, etag) {
            (false, _) => Validator::Off,
            (true, None) => Validator::Auto,
            (true, Some(e)) => {
                let quoted = if e.starts_with('"') || e.starts_with("W/\"") {
                    e.to_string()
                } else {
                    format!("\"{e}\"")
                };
                Validator::Set(header_value("etag", &quoted)?)
            }
        };
        let last_modified = match (use_last_modified, last_modified) {
            (false, _) => Validator::Off,
            (true, None) => Validator::Auto,
            (true, Some(ts)) if ts.is_finite() && ts >= 0.0 => {
                Validator::Set(UNIX_EPOCH + Duration::from_secs_f64(ts))
            }
            (true, Some(_)) => {
                return Err(PyValueError::new_err(
                    "last_modified must be a non-negative timestamp",
                ))
            }
        };
        Ok(PyFileSpec {
            path_or_file,
            content_type: content_type
                .map(|c| header_value("mimetype", c))
                .transpose()?,
            type_hint_name,
            disposition,
            conditional,
            etag,
            last_modified,
            max_age,
            pace: pace(rate, rate_after)?,
        })
    }
}

impl PyFileSpec {
    /// A fresh engine-side spec; may be called for every response that reuses this object.
    pub fn to_spec(&self) -> std::io::Result<FileSpec> {
        Ok(FileSpec {
            path_or_file: self.path_or_file.try_clone()?,
            content_type: self.content_type.clone(),
            type_hint_name: self.type_hint_name.clone(),
            disposition: self.disposition.clone(),
            conditional: self.conditional,
            etag: self.etag.clone(),
            last_modified: self.last_modified.clone(),
            max_age: self.max_age,
            pace: self.pace,
        })
    }
}
