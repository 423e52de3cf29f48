//! The view executor: a small pool of OS threads that take the GIL and run
//! Python views, so the async IO threads never wait on Python.
//!
//! The engine hands a request over a channel and awaits a oneshot reply; while a
//! view runs (or sleeps), tokio keeps serving static files and streams.
//!
//! A thread that holds the GIL and finds more requests queued runs them before
//! letting the GIL go, and other threads are woken only when no thread is
//! draining the queue or a view blocks (see `view_pool`).

use crate::convert::{to_view_response, view_error};
use crate::request::RequestData;
use crate::scheduling;
use crate::view_pool::Pool;
use bustapi_server::{Converter, Dispatcher, Target, ViewFuture, ViewRequest, ViewResponse};
use crossbeam_channel::Sender;
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

/// Runs views on the pool. Dropping it closes the queue: the threads run what
/// is queued and exit.
pub struct PyDispatcher {
    pool: Arc<Pool<ViewJob>>,
    error_codes: HashSet<u16>,
}

impl PyDispatcher {
    /// `dispatch` is the Python callable `(RequestData, endpoint, params, error_status) -> (status, headers, body)`.
    pub fn start(
        dispatch: Py<PyAny>,
        threads: usize,
        error_codes: HashSet<u16>,
    ) -> std::io::Result<Self> {
        let threads = threads.max(1);
        let pool = Arc::new(Pool::new(threads));
        // Built first so that a failed spawn closes the pool (and the threads
        // already started exit) when it is dropped.
        let dispatcher = PyDispatcher {
            pool: Arc::clone(&pool),
            error_codes,
        };
        let dispatch = Arc::new(dispatch);
        for id in 0..threads {
            let pool = Arc::clone(&pool);
            let dispatch = Arc::clone(&dispatch);
            std::thread::Builder::new()
                .name(format!("bustapi-view-{id}"))
                .spawn(move || worker(&pool, id, &dispatch))?;
        }
        std::thread::Builder::new()
            .name("bustapi-view-watchdog".into())
            .spawn(move || {
                // A watchdog tick must not preempt the view thread it watches.
                scheduling::batch();
                pool.watch()
            })?;
        Ok(dispatcher)
    }
}

impl Drop for PyDispatcher {
    fn drop(&mut self) {
        self.pool.close();
    }
}

fn worker(pool: &Pool<ViewJob>, id: usize, dispatch: &Py<PyAny>) {
    // Attached once for the thread's life: attaching per batch made (and
    // freed) a Python thread state each time, with an mmap of its frame stack.
    // The thread lets the GIL go while it parks, and keeps it while there is
    // more work.
    pool.register(id);
    scheduling::batch();
    Python::attach(|py| {
        while let Some(first) = py.detach(|| pool.next(id)) {
            let mut job = first;
            loop {
                job.answer(py, dispatch);
                match pool.try_next() {
                    Some(next) => job = next,
                    None => break,
                }
            }
        }
    });
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
        // Only the test client's requests carry a queue of their own.
        let inline = request.extensions.get::<InlineJobs>().map(|i| i.0.clone());
        let job = ViewJob { request, reply };
        let queued = match inline {
            Some(inline) => inline.send(job).is_ok(),
            None => self.pool.submit(job).is_ok(),
        };
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
