//! Streamed responses: a Python iterator (sync or async, wrapped by
//! `bustapi.StreamingResponse` into a `next` and a `close` callable) pulled one
//! chunk at a time as the client drains the previous one.
//!
//! Each `next()` runs on tokio's blocking pool with the GIL, never on an IO
//! thread. When the body is dropped before the end — the client went away, or
//! the request was HEAD — `close()` is called, so the generator's `finally`
//! blocks and context managers run.

use bustapi_server::{ChunkFuture, ChunkSource};
use bytes::Bytes;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::io;
use std::sync::Arc;

/// What Python hands the engine for a streamed body.
#[pyclass(frozen, module = "bustapi._core", name = "ChunkStream")]
pub struct PyChunkStream {
    next: Arc<Py<PyAny>>,
    close: Arc<Py<PyAny>>,
}

#[pymethods]
impl PyChunkStream {
    /// `next()` returns the next chunk as `bytes`, or `None` at the end;
    /// `close()` releases the iterator.
    #[new]
    fn new(next: Py<PyAny>, close: Py<PyAny>) -> Self {
        PyChunkStream {
            next: Arc::new(next),
            close: Arc::new(close),
        }
    }
}

impl PyChunkStream {
    pub fn source(&self) -> Box<dyn ChunkSource> {
        Box::new(Chunks {
            next: Arc::clone(&self.next),
            close: Arc::clone(&self.close),
        })
    }
}

struct Chunks {
    next: Arc<Py<PyAny>>,
    close: Arc<Py<PyAny>>,
}

fn call_next(next: &Py<PyAny>) -> Option<io::Result<Bytes>> {
    Python::attach(|py| match next.bind(py).call0() {
        Ok(v) if v.is_none() => None,
        Ok(v) => match v.cast::<PyBytes>() {
            Ok(b) => Some(Ok(Bytes::copy_from_slice(b.as_bytes()))),
            Err(_) => Some(Err(io::Error::other(
                "a streamed chunk must be bytes or str",
            ))),
        },
        Err(e) => {
            e.print(py);
            Some(Err(io::Error::other(
                "the response stream raised an exception",
            )))
        }
    })
}

impl ChunkSource for Chunks {
    fn next_chunk(&mut self) -> ChunkFuture {
        let next = Arc::clone(&self.next);
        let outcome = tokio::runtime::Handle::try_current()
            .map(|rt| rt.spawn_blocking(move || call_next(&next)));
        Box::pin(async move {
            match outcome {
                Ok(handle) => handle
                    .await
                    .unwrap_or_else(|e| Some(Err(io::Error::other(e)))),
                Err(_) => Some(Err(io::Error::other("no runtime to run the stream on"))),
            }
        })
    }
}

impl Drop for Chunks {
    /// Always closes: closing an exhausted iterator is a no-op in Python, and
    /// the Python side makes `close()` idempotent.
    fn drop(&mut self) {
        let close = Arc::clone(&self.close);
        let run = move || {
            Python::attach(|py| {
                if let Err(e) = close.bind(py).call0() {
                    e.print(py);
                }
            })
        };
        // Never take the GIL on an IO thread: hand the close to the blocking pool.
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn_blocking(run)),
            Err(_) => drop(std::thread::spawn(run)),
        }
    }
}
