//! The view executor: a small pool of OS threads that take the GIL and run
//! Python views, so the async IO threads never wait on Python.
//!
//! The engine hands a request over a channel and awaits a oneshot reply; while a
//! view runs (or sleeps), tokio keeps serving static files and streams.
//!
//! A thread that holds the GIL and finds more requests queued runs them before
//! letting the GIL go: under load this turns one GIL hand-off (two context
//! switches) per request into one per batch. It only ever takes a request after
//! finishing its current one, so nothing waits behind a slow view; threads
//! blocked in `recv` pick up whatever arrives meanwhile.

use crate::convert::{to_view_response, view_error};
use crate::request::RequestData;
use bustapi_server::{Converter, Dispatcher, Target, ViewFuture, ViewRequest, ViewResponse};
use crossbeam_channel::{Receiver, Sender};
use http::StatusCode;
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::oneshot;

/// A request waiting for its Python view to run, and where to send the answer.
pub struct ViewJob {
    request: ViewRequest,
    reply: oneshot::Sender<ViewResponse>,
}

impl ViewJob {
    /// Runs the view on the calling thread (which must not hold the GIL) and replies.
    pub fn run(self, dispatch: &Py<PyAny>) {
        Python::attach(|py| self.answer(py, dispatch));
    }

    /// Runs the view and replies. The request (its upload temp files, its body
    /// stream) is dropped before the reply goes out, so when the client sees the
    /// response, every temp file the view did not keep is already gone.
    fn answer(self, py: Python<'_>, dispatch: &Py<PyAny>) {
        let ViewJob { request, reply } = self;
        // A client that went away while its request was queued costs nothing.
        if reply.is_closed() {
            return;
        }
        let response = run_view(py, dispatch, &request);
        drop(request);
        let _ = reply.send(response);
    }
}

/// A request extension that sends the request's view to this queue instead of
/// the pool. The test client uses it to run views on the test's own thread, as
/// Flask's test client does: thread-bound objects (an SQLite connection in `g`)
/// and the context kept by `with client:` then live where the test is.
#[derive(Clone)]
pub struct InlineJobs(pub Sender<ViewJob>);

/// Runs views on the pool. Dropping it closes the queue and the threads exit.
pub struct PyDispatcher {
    queue: Sender<ViewJob>,
    error_codes: HashSet<u16>,
}

impl PyDispatcher {
    /// `dispatch` is the Python callable `(RequestData, endpoint, params, error_status) -> (status, headers, body)`.
    pub fn start(
        dispatch: Py<PyAny>,
        threads: usize,
        error_codes: HashSet<u16>,
    ) -> std::io::Result<Self> {
        let (tx, rx) = crossbeam_channel::unbounded::<ViewJob>();
        let dispatch = Arc::new(dispatch);
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            let dispatch = Arc::clone(&dispatch);
            std::thread::Builder::new()
                .name(format!("bustapi-view-{i}"))
                .spawn(move || worker(&rx, &dispatch))?;
        }
        Ok(PyDispatcher {
            queue: tx,
            error_codes,
        })
    }
}

fn worker(rx: &Receiver<ViewJob>, dispatch: &Py<PyAny>) {
    // Blocks without the GIL until there is work.
    while let Ok(first) = rx.recv() {
        Python::attach(|py| {
            let mut job = first;
            loop {
                job.answer(py, dispatch);
                match rx.try_recv() {
                    Ok(next) => job = next,
                    Err(_) => break,
                }
            }
        });
    }
}

/// The name the Python side converts a URL parameter's value with (`int`,
/// `float`, `uuid`, `str`); the engine only checked that the value fits.
fn python_kind(converter: Converter) -> &'static str {
    match converter {
        Converter::Int => "int",
        Converter::Float => "float",
        Converter::Uuid => "uuid",
        Converter::String | Converter::Path => "str",
    }
}

fn run_view(py: Python<'_>, dispatch: &Py<PyAny>, request: &ViewRequest) -> ViewResponse {
    let call = || -> PyResult<ViewResponse> {
        let (endpoint, status) = match request.target {
            Target::Endpoint(e) => (e as i64, 0u16),
            Target::Error(s) => (-1, s.as_u16()),
        };
        let params = PyTuple::new(
            py,
            request
                .params
                .iter()
                .map(|(n, v, c)| (n.as_str(), v.as_str(), python_kind(*c))),
        )?;
        let data = Bound::new(py, RequestData::from_view(request))?;
        let result = dispatch.bind(py).call1((data, endpoint, params, status))?;
        to_view_response(py, &result)
    };
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(call)) {
        Ok(Ok(response)) => response,
        Ok(Err(err)) => {
            err.print(py);
            view_error(StatusCode::INTERNAL_SERVER_ERROR)
        }
        Err(_) => {
            tracing::error!("panic in the view bridge; answered 500");
            view_error(StatusCode::INTERNAL_SERVER_ERROR)
        }
    }
}

impl Dispatcher for PyDispatcher {
    fn dispatch(&self, request: ViewRequest) -> ViewFuture {
        let (reply, answer) = oneshot::channel();
        // Chosen by reference: no sender is cloned (an atomic on a shared counter)
        // per request.
        let inline = request.extensions.get::<InlineJobs>().map(|i| i.0.clone());
        let queue = inline.as_ref().unwrap_or(&self.queue);
        let queued = queue.send(ViewJob { request, reply }).is_ok();
        Box::pin(async move {
            if !queued {
                return view_error(StatusCode::SERVICE_UNAVAILABLE);
            }
            answer
                .await
                .unwrap_or_else(|_| view_error(StatusCode::INTERNAL_SERVER_ERROR))
        })
    }

    fn handles_error(&self, status: StatusCode) -> bool {
        self.error_codes.contains(&status.as_u16())
    }
}
