//! `CoreApp`: the routes, static mounts and settings of one Python application,
//! and the ways to run its engine — on a socket (foreground or background) or
//! in-process for the test client.

use crate::executor::{InlineJobs, PyDispatcher, ViewJob};
use crate::file_spec::pace;
use crate::scheduling;
use crate::signing::PyUrlSigner;
use bustapi_server::files::Pace;
use bustapi_server::{
    Body, Config, Engine, PathPolicy, ResumableConfig, ResumableUploads, RouteBody, Router,
    StaticMount, UrlSigner,
};
use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};
use std::collections::HashSet;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::runtime::Runtime;

#[pyclass(module = "bustapi._core", name = "CoreApp")]
pub struct CoreApp {
    dispatch: Py<PyAny>,
    routes: Vec<(String, Vec<Method>, usize, RouteBody)>,
    statics: Vec<StaticSettings>,
    error_codes: HashSet<u16>,
    config: Config,
    view_threads: usize,
    resumable: Vec<ResumableConfig>,
    signer: Option<Arc<UrlSigner>>,
    /// Endpoints answered only for a validly signed URL.
    signed_routes: HashSet<usize>,
    built: Option<Arc<Engine>>,
}

/// A static mount as Python declared it.
struct StaticSettings {
    prefix: String,
    folder: PathBuf,
    max_age: Option<u64>,
    listing: bool,
    signed: bool,
    pace: Option<Pace>,
}

impl CoreApp {
    fn engine(&mut self, py: Python<'_>) -> PyResult<Arc<Engine>> {
        if let Some(engine) = &self.built {
            return Ok(Arc::clone(engine));
        }
        let mut router = Router::new();
        for (rule, methods, endpoint, _) in &self.routes {
            router
                .add(rule, methods, *endpoint)
                .map_err(|e| PyValueError::new_err(e.to_string()))?;
        }
        let route_bodies = self
            .routes
            .iter()
            .filter(|(.., body)| *body != RouteBody::default())
            .map(|(_, _, endpoint, body)| (*endpoint, *body))
            .collect::<Vec<_>>();
        let statics = self
            .statics
            .iter()
            .map(|s| StaticMount {
                prefix: s.prefix.clone(),
                root: s.folder.canonicalize().unwrap_or_else(|_| s.folder.clone()),
                policy: PathPolicy {
                    list_directories: s.listing,
                    ..PathPolicy::default()
                },
                max_age: s.max_age,
                cache: Default::default(),
                signed: s.signed,
                pace: s.pace,
            })
            .collect();
        let dispatcher = PyDispatcher::start(
            self.dispatch.clone_ref(py),
            self.view_threads,
            self.error_codes.clone(),
        )?;
        let mut engine = Engine::new(router, statics, Arc::new(dispatcher), self.config.clone())
            .with_route_bodies(route_bodies)
            .with_url_signer(self.signer.clone())
            .with_signed_routes(self.signed_routes.iter().copied());
        for config in &self.resumable {
            engine.add_resumable_uploads(ResumableUploads::new(config.clone()));
        }
        let engine = Arc::new(engine);
        self.built = Some(Arc::clone(&engine));
        Ok(engine)
    }

    fn changed(&mut self) {
        self.built = None;
    }
}

fn parse_methods(methods: Vec<String>) -> PyResult<Vec<Method>> {
    methods
        .into_iter()
        .map(|m| {
            Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                .map_err(|_| PyValueError::new_err(format!("invalid HTTP method {m:?}")))
        })
        .collect()
}

fn runtime(io_threads: usize) -> PyResult<Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(io_threads.max(1))
        .thread_name("bustapi-io")
        // So that a request or a reply arriving does not preempt the view
        // thread on a shared core (see `scheduling`).
        .on_thread_start(scheduling::batch)
        .enable_all()
        .build()
        .map_err(|e| PyRuntimeError::new_err(format!("cannot start the IO runtime: {e}")))
}

/// The shared runtime of the in-process test client.
fn test_runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| runtime(2).expect("test runtime"))
}

#[pymethods]
impl CoreApp {
    #[new]
    #[pyo3(signature = (dispatch, view_threads=16))]
    fn new(dispatch: Py<PyAny>, view_threads: usize) -> Self {
        CoreApp {
            dispatch,
            routes: Vec::new(),
            statics: Vec::new(),
            error_codes: HashSet::new(),
            config: Config::default(),
            view_threads,
            resumable: Vec::new(),
            signer: None,
            signed_routes: HashSet::new(),
            built: None,
        }
    }

    /// Registers a Flask-style rule; raises `ValueError` for a malformed or clashing rule.
    /// `stream_body` hands the view the raw body as it arrives; `max_body_size`
    /// overrides the global limit for this route; `signed` admits only validly
    /// signed URLs (checked by the engine before the body is read).
    #[pyo3(signature = (rule, methods, endpoint, stream_body=false, max_body_size=None, signed=false))]
    fn add_route(
        &mut self,
        rule: &str,
        methods: Vec<String>,
        endpoint: usize,
        stream_body: bool,
        max_body_size: Option<u64>,
        signed: bool,
    ) -> PyResult<()> {
        let methods = parse_methods(methods)?;
        // Validate against everything registered so far, so the error points at this call.
        let mut probe = Router::new();
        for (r, m, e, _) in &self.routes {
            probe
                .add(r, m, *e)
                .map_err(|e| PyValueError::new_err(e.to_string()))?;
        }
        probe
            .add(rule, &methods, endpoint)
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        let body = RouteBody {
            stream: stream_body,
            max_size: max_body_size,
        };
        self.routes
            .push((rule.to_string(), methods, endpoint, body));
        if signed {
            self.signed_routes.insert(endpoint);
        }
        self.changed();
        Ok(())
    }

    /// Mounts `folder` at `url_prefix` (`"/"` mounts it at the root, as `serve` does).
    /// `signed` serves only validly signed URLs; `rate`/`rate_after` pace each
    /// response (see `FileSpec`).
    #[pyo3(signature = (url_prefix, folder, max_age=None, listing=false, signed=false, rate=None,
        rate_after=None))]
    #[allow(clippy::too_many_arguments)]
    fn add_static(
        &mut self,
        url_prefix: &str,
        folder: PathBuf,
        max_age: Option<u64>,
        listing: bool,
        signed: bool,
        rate: Option<&Bound<'_, PyAny>>,
        rate_after: Option<u64>,
    ) -> PyResult<()> {
        if !url_prefix.starts_with('/') {
            return Err(PyValueError::new_err("static_url_path must start with '/'"));
        }
        self.statics.push(StaticSettings {
            prefix: url_prefix.trim_end_matches('/').to_string(),
            folder,
            max_age,
            listing,
            signed,
            pace: pace(rate, rate_after)?,
        });
        self.changed();
        Ok(())
    }

    /// The keys signed mounts and routes are checked with (`None`: none, and
    /// every signed URL is refused).
    fn set_url_signer(&mut self, signer: Option<PyRef<'_, PyUrlSigner>>) {
        self.signer = signer.map(|s| Arc::clone(&s.inner));
        self.changed();
    }

    /// Serves the tus protocol at `url_prefix`, storing uploads in `folder`.
    /// `authorize` and `on_complete` are endpoint ids (not routed) that the
    /// engine dispatches to when an upload is created and when it completes.
    #[pyo3(signature = (url_prefix, folder, *, max_size=None, expiration=None,
        sync_each_patch=true, authorize=None, on_complete=None))]
    #[allow(clippy::too_many_arguments)]
    fn add_resumable_uploads(
        &mut self,
        url_prefix: &str,
        folder: PathBuf,
        max_size: Option<u64>,
        expiration: Option<f64>,
        sync_each_patch: bool,
        authorize: Option<usize>,
        on_complete: Option<usize>,
    ) -> PyResult<()> {
        if !url_prefix.starts_with('/') {
            return Err(PyValueError::new_err("url_prefix must start with '/'"));
        }
        let expiration = expiration
            .map(|s| {
                Duration::try_from_secs_f64(s).map_err(|_| {
                    PyValueError::new_err("expiration must be a non-negative number of seconds")
                })
            })
            .transpose()?;
        self.resumable.push(ResumableConfig {
            prefix: url_prefix.to_string(),
            folder: folder.canonicalize().unwrap_or(folder),
            max_size,
            expiration,
            sync_each_patch,
            authorize,
            on_complete,
        });
        self.changed();
        Ok(())
    }

    /// Forgets every static mount, so the application can hand over its current set.
    fn reset_statics(&mut self) {
        self.statics.clear();
        self.changed();
    }

    fn set_error_codes(&mut self, codes: Vec<u16>) {
        self.error_codes = codes.into_iter().collect();
        self.changed();
    }

    #[pyo3(signature = (*, max_body_size=None, header_read_timeout=None, shutdown_timeout=None,
        max_header_bytes=None, view_threads=None, write_timeout=None, max_connections=None,
        access_log=None, live_stats=None, ssl_cert=None, ssl_key=None, sendfile=None,
        max_form_memory_size=None, max_form_parts=None, upload_temp_folder=None,
        body_read_timeout=None))]
    #[allow(clippy::too_many_arguments)]
    fn configure(
        &mut self,
        max_body_size: Option<u64>,
        header_read_timeout: Option<f64>,
        shutdown_timeout: Option<f64>,
        max_header_bytes: Option<usize>,
        view_threads: Option<usize>,
        write_timeout: Option<f64>,
        max_connections: Option<usize>,
        access_log: Option<bool>,
        live_stats: Option<bool>,
        ssl_cert: Option<PathBuf>,
        ssl_key: Option<PathBuf>,
        sendfile: Option<bool>,
        max_form_memory_size: Option<u64>,
        max_form_parts: Option<usize>,
        upload_temp_folder: Option<PathBuf>,
        body_read_timeout: Option<f64>,
    ) -> PyResult<()> {
        let secs = |v: f64, what: &str| {
            Duration::try_from_secs_f64(v).map_err(|_| {
                PyValueError::new_err(format!("{what} must be a non-negative number of seconds"))
            })
        };
        if let Some(v) = max_body_size {
            self.config.max_body_size = v;
        }
        if let Some(v) = max_form_memory_size {
            self.config.body.max_form_memory_size = v;
        }
        if let Some(v) = max_form_parts {
            self.config.body.max_form_parts = v;
        }
        // Like TLS, every configure() call states the folder: none is the system's.
        self.config.body.temp_folder = upload_temp_folder;
        if let Some(v) = body_read_timeout {
            self.config.body.read_timeout = secs(v, "body_read_timeout")?;
        }
        if let Some(v) = header_read_timeout {
            self.config.header_read_timeout = secs(v, "header_read_timeout")?;
        }
        if let Some(v) = shutdown_timeout {
            self.config.shutdown_timeout = secs(v, "shutdown_timeout")?;
        }
        if let Some(v) = max_header_bytes {
            self.config.max_header_bytes = v;
        }
        if let Some(v) = write_timeout {
            self.config.write_timeout = secs(v, "write_timeout")?;
        }
        if let Some(v) = max_connections {
            self.config.max_connections = v.max(1);
        }
        match (ssl_cert, ssl_key) {
            (Some(cert), Some(key)) => {
                let tls = bustapi_server::tls::server_config(&cert, &key)
                    .map_err(|e| PyValueError::new_err(e.to_string()))?;
                self.config.tls = Some(tls);
            }
            // Every configure() call states the whole TLS setting: none means plain HTTP.
            (None, None) => self.config.tls = None,
            _ => {
                return Err(PyValueError::new_err(
                    "HTTPS needs both a certificate and a key",
                ))
            }
        }
        if let Some(v) = sendfile {
            self.config.sendfile = v;
        }
        if let Some(v) = access_log {
            self.config.access_log = v;
        }
        if let Some(v) = live_stats {
            self.config.live_stats = v;
        }
        if let Some(v) = view_threads {
            self.view_threads = v.max(1);
        }
        self.changed();
        Ok(())
    }

    /// Binds a listening socket; `port=0` picks a free one (see `Listener.port`).
    #[staticmethod]
    #[pyo3(signature = (host, port, reuse_port=false))]
    fn bind(host: &str, port: u16, reuse_port: bool) -> PyResult<Listener> {
        let addr: SocketAddr = (host, port)
            .to_socket_addrs()
            .map_err(|e| PyOSError::new_err(format!("cannot resolve {host}: {e}")))?
            .next()
            .ok_or_else(|| PyOSError::new_err(format!("cannot resolve {host}")))?;
        let listener = bustapi_server::bind(addr, reuse_port)
            .map_err(|e| PyOSError::new_err(format!("cannot listen on {addr}: {e}")))?;
        let local = listener.local_addr()?;
        Ok(Listener {
            inner: Mutex::new(Some(listener)),
            addr: local,
        })
    }

    /// Serves until SIGINT/SIGTERM (delivered to Python), then shuts down gracefully.
    /// Must be called from the main thread; the GIL is released while serving.
    #[pyo3(signature = (listener, io_threads=2))]
    fn serve(&mut self, py: Python<'_>, listener: &Listener, io_threads: usize) -> PyResult<()> {
        let engine = self.engine(py)?;
        let socket = listener.take()?;
        let rt = runtime(io_threads)?;
        let result = py.detach(|| {
            rt.block_on(async move {
                // Python signal handlers only run when Python code runs on the main
                // thread; poll for them, and treat any exception (KeyboardInterrupt,
                // the SIGTERM handler's exception) as the request to shut down.
                let signalled = async {
                    let mut tick = tokio::time::interval(Duration::from_millis(100));
                    loop {
                        tick.tick().await;
                        if Python::attach(|py| py.check_signals()).is_err() {
                            break;
                        }
                    }
                };
                bustapi_server::serve(engine, socket, signalled).await
            })
        });
        rt.shutdown_timeout(Duration::from_secs(1));
        result.map_err(|e| PyOSError::new_err(e.to_string()))
    }

    /// Starts serving on a background thread; returns a handle to stop it.
    #[pyo3(signature = (listener, io_threads=2))]
    fn start(
        &mut self,
        py: Python<'_>,
        listener: &Listener,
        io_threads: usize,
    ) -> PyResult<ServerHandle> {
        let engine = self.engine(py)?;
        let socket = listener.take()?;
        let rt = runtime(io_threads)?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("bustapi-server".into())
            .spawn(move || {
                let result = rt.block_on(bustapi_server::serve(engine, socket, async {
                    let _ = stop_rx.await;
                }));
                if let Err(e) = result {
                    tracing::error!("server stopped with an error: {e}");
                }
                rt.shutdown_timeout(Duration::from_secs(1));
            })?;
        Ok(ServerHandle {
            stop: Mutex::new(Some(stop_tx)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Runs one request through the same engine a socket uses; returns
    /// `(status, [(name, value)], body)`. The view itself runs on the calling
    /// thread (see `InlineJobs`), everything else as for a socket. `secure` marks
    /// the request as arrived over TLS (`https://` test URLs), as a TLS listener does.
    #[pyo3(signature = (method, target, headers, body, remote_addr="127.0.0.1", secure=false))]
    #[allow(clippy::too_many_arguments)]
    fn test_request<'py>(
        &mut self,
        py: Python<'py>,
        method: &str,
        target: &str,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        remote_addr: &str,
        secure: bool,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let engine = self.engine(py)?;
        let (jobs_tx, jobs_rx) = crossbeam_channel::unbounded::<ViewJob>();
        let mut builder = Request::builder()
            .method(method)
            .uri(target)
            .extension(InlineJobs(jobs_tx));
        if secure {
            builder = builder.extension(bustapi_server::connection::Secure);
        }
        for (k, v) in &headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        let request = builder
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| PyValueError::new_err(format!("invalid test request: {e}")))?;
        let remote: Option<SocketAddr> = format!("{remote_addr}:0").parse().ok();
        let dispatch = self.dispatch.clone_ref(py);
        let (parts, collected) = py.detach(|| {
            let (done_tx, done_rx) = crossbeam_channel::bounded(1);
            test_runtime().spawn(async move {
                let response = engine.handle(request, remote).await;
                let (parts, body): (_, Body) = response.into_parts();
                let collected = body.collect().await.map(|c| c.to_bytes());
                let _ = done_tx.send((parts, collected));
            });
            loop {
                crossbeam_channel::select! {
                    recv(jobs_rx) -> job => {
                        if let Ok(job) = job {
                            job.run(&dispatch);
                        }
                    }
                    recv(done_rx) -> done => {
                        break done.map_err(|_| PyRuntimeError::new_err("the test request was lost"));
                    }
                }
            }
        })?;
        let bytes =
            collected.map_err(|e| PyOSError::new_err(format!("response body failed: {e}")))?;
        let header_list = PyList::empty(py);
        for (name, value) in parts.headers.iter() {
            let value: String = match value.to_str() {
                Ok(s) => s.to_string(),
                Err(_) => value.as_bytes().iter().map(|&b| b as char).collect(),
            };
            header_list.append((name.as_str(), value))?;
        }
        PyTuple::new(
            py,
            [
                parts.status.as_u16().into_pyobject(py)?.into_any(),
                header_list.into_any(),
                PyBytes::new(py, &bytes).into_any(),
            ],
        )
    }
}

/// A bound, not yet serving, socket.
#[pyclass(module = "bustapi._core", name = "Listener")]
pub struct Listener {
    inner: Mutex<Option<TcpListener>>,
    addr: SocketAddr,
}

impl Listener {
    fn take(&self) -> PyResult<TcpListener> {
        self.inner
            .lock()
            .ok()
            .and_then(|mut g| g.take())
            .ok_or_else(|| PyRuntimeError::new_err("this listener is already serving"))
    }
}

#[pymethods]
impl Listener {
    #[getter]
    fn port(&self) -> u16 {
        self.addr.port()
    }
    #[getter]
    fn host(&self) -> String {
        self.addr.ip().to_string()
    }
}

/// A server running on a background thread.
#[pyclass(module = "bustapi._core", name = "ServerHandle")]
pub struct ServerHandle {
    stop: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

#[pymethods]
impl ServerHandle {
    /// Stops accepting, lets in-flight responses finish (bounded), and joins.
    fn stop(&self, py: Python<'_>) {
        if let Some(tx) = self.stop.lock().ok().and_then(|mut g| g.take()) {
            let _ = tx.send(());
        }
        let thread = self.thread.lock().ok().and_then(|mut g| g.take());
        if let Some(t) = thread {
            py.detach(|| {
                let _ = t.join();
            });
        }
    }
}
