//! Listening sockets, the accept loop, connections, graceful shutdown.
//!
//! HTTP/1.1 (keep-alive, pipelining) and HTTP/2 with prior knowledge (h2c) are
//! served on the same port: a plain-TCP connection whose first bytes are not the
//! HTTP/2 preface is served by [`idle`] (hyper's HTTP/1, dropped while the
//! connection is idle); h2c and TLS connections by hyper-util's auto builder,
//! which sniffs the preface itself.

use crate::access_log::{self, Logged, Record, Traffic};
use crate::body::Body;
use crate::connection::Secure;
use crate::engine::Engine;
use crate::framing;
use crate::framing_watch::{Conflicts, Watched};
use crate::idle;
use crate::linger;
use crate::lot::{Lot, Woken};
use crate::sendfile::{self, FileSink, SendfileBody, SendfileQueue};
use crate::trim;
use crate::write_timeout::WriteTimeout;
use http::header::RANGE;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use socket2::{Domain, Protocol, Socket, Type};
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;

/// Binds a listening socket. `reuse_port` lets several worker processes share the
/// port, with the kernel spreading connections among them.
pub fn bind(addr: SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.set_tcp_nodelay(true)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// File bytes per read on an HTTP/2 stream: one DATA frame at the default
/// SETTINGS_MAX_FRAME_SIZE. hyper polls a stream's body before the peer has
/// granted it any window and parks the chunk until it has, so this is what a
/// stream whose window never opens costs in file data.
const H2_FILE_CHUNK: usize = 16 * 1024;

/// Streams one HTTP/2 connection may have open at once (hyper's default is 200;
/// nginx's is 128). Together with the per-stream bounds below it bounds the
/// file data one connection can pin.
const H2_MAX_STREAMS: u32 = 100;

/// Response bytes hyper may queue on one stream beyond what is already written
/// (hyper's default is 400 KiB). Data within the peer's window drains at socket
/// speed; this caps what a peer that opens windows but stops reading can pin.
const H2_MAX_SEND_BUF: usize = 64 * 1024;

/// The HTTP/1 settings, for hyper's own builder and the auto builder's (two
/// types with the same methods).
macro_rules! http1_options {
    ($builder:expr, $engine:expr) => {
        $builder
            .timer(TokioTimer::new())
            .keep_alive(true)
            // The queue strategy hands body buffers to the socket as they are, which
            // the sendfile placeholders rely on; pinned here rather than inferred from
            // `is_write_vectored` (a flattened copy would be refused by FileSink).
            .writev(true)
            .header_read_timeout($engine.config.header_read_timeout)
            .max_buf_size($engine.config.max_header_bytes.max(8192))
    };
}

fn connection_builder(engine: &Engine) -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    http1_options!(builder.http1(), engine);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .max_concurrent_streams(H2_MAX_STREAMS)
        .max_send_buf_size(H2_MAX_SEND_BUF)
        // The same head budget as HTTP/1.1; it also bounds a CONTINUATION flood.
        .max_header_list_size(u32::try_from(engine.config.max_header_bytes).unwrap_or(u32::MAX))
        // Rapid reset (CVE-2023-44487): streams the peer opens and cancels before
        // we accept them; past this many at once the connection gets GOAWAY.
        .max_pending_accept_reset_streams(20)
        // "MadeYouReset": streams we had to reset for the peer's protocol errors.
        .max_local_error_reset_streams(256);
    builder
}

async fn accept(
    listener: &tokio::net::TcpListener,
    slots: &Arc<Semaphore>,
) -> io::Result<(tokio::net::TcpStream, SocketAddr, OwnedSemaphorePermit)> {
    let permit = Arc::clone(slots)
        .acquire_owned()
        .await
        .map_err(io::Error::other)?;
    let (stream, remote) = listener.accept().await?;
    Ok((stream, remote, permit))
}

/// The per-connection service: access-log bookkeeping around `Engine::handle`.
fn service(
    engine: Arc<Engine>,
    traffic: Option<Arc<Traffic>>,
    remote: SocketAddr,
    secure: bool,
    sendfile_queue: Option<Arc<SendfileQueue>>,
    conflicts: Arc<Conflicts>,
) -> impl hyper::service::Service<
    Request<Incoming>,
    Response = http::Response<Logged>,
    Error = Infallible,
    Future = impl Future<Output = Result<http::Response<Logged>, Infallible>> + Send,
> + Clone {
    service_fn(move |mut req: Request<Incoming>| {
        let engine = Arc::clone(&engine);
        let traffic = traffic.clone();
        // HTTP/2 multiplexes streams over the connection: sendfile is HTTP/1.x only.
        let multiplexed = req.version() >= http::Version::HTTP_2;
        let sendfile_queue = sendfile_queue.clone().filter(|_| !multiplexed);
        // Counted here, synchronously: hyper calls the service once per HTTP/1
        // request, in the order the heads arrived.
        let conflicting_lengths = !multiplexed && conflicts.next_request_conflicts();
        if secure {
            req.extensions_mut().insert(Secure);
        }
        async move {
            let record = engine.config.access_log.then(|| {
                Box::new(Record {
                    remote: Some(remote),
                    method: req.method().clone(),
                    target: req
                        .uri()
                        .path_and_query()
                        .map_or_else(|| req.uri().to_string(), |p| p.to_string()),
                    version: req.version(),
                    status: 0,
                    range: req
                        .headers()
                        .get(RANGE)
                        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
                    started: Instant::now(),
                })
            });
            let mut response = if conflicting_lengths {
                framing::refusal(framing::BOTH_LENGTHS)
            } else {
                // Bound first, awaited after: awaited as a temporary, the handle
                // future (1.6 KiB) was laid out twice in this one (3.5 KiB, not
                // 1.9), which `Counted::call` copies into a box per request.
                let handled = engine.handle(req, Some(remote));
                handled.await
            };
            if let (true, Body::File(file)) = (multiplexed, response.body_mut()) {
                file.read_on_demand(H2_FILE_CHUNK);
            }
            if let (Some(sendfile_queue), Body::File(file)) = (&sendfile_queue, response.body()) {
                if let Some(zero_copy) = SendfileBody::from_file_body(file, sendfile_queue) {
                    *response.body_mut() = Body::Sendfile(zero_copy);
                }
            }
            let status = response.status().as_u16();
            let record = record.map(|mut r| {
                r.status = status;
                r
            });
            Ok::<_, Infallible>(response.map(|body| Logged::new(body, record, traffic)))
        }
    })
}

/// A connection's place among `max_connections` and its client's address: all
/// a plain HTTP/1 connection keeps while it is parked in the lot.
struct Slot {
    remote: SocketAddr,
    /// The slot frees only when the connection is gone (with this).
    _permit: OwnedSemaphorePermit,
}

impl Slot {
    fn ended(self, served: Result<(), BoxError>) {
        if let Err(e) = served {
            tracing::debug!("connection from {} ended: {e}", self.remote);
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How a new connection that opens like HTTP/2 is served.
type Http2Route = (Arc<Builder<TokioExecutor>>, Watcher);

/// What every plain-TCP HTTP/1 connection of a server shares.
struct Lean {
    engine: Arc<Engine>,
    traffic: Option<Arc<Traffic>>,
    http1: idle::Http1,
    /// Where they wait while idle.
    lot: Arc<Lot<Slot>>,
}

impl Lean {
    /// Starts a plain-TCP connection's task: a new connection (`fresh` says how
    /// to serve it if it opens like HTTP/2), or one its client woke in the lot.
    fn start(
        self: &Arc<Self>,
        stream: tokio::net::TcpStream,
        slot: Slot,
        head_by: tokio::time::Instant,
        stop: watch::Receiver<bool>,
        fresh: Option<Http2Route>,
    ) {
        let config = &self.engine.config;
        let write_timeout = config.write_timeout;
        let sendfile_queue =
            (config.sendfile && sendfile::AVAILABLE).then(|| Arc::new(SendfileQueue::default()));
        let conflicts = Arc::new(Conflicts::default());
        let max_head = config.max_header_bytes.max(8192);
        // One task type per kind of IO: a task is as large as its future.
        match sendfile_queue.clone() {
            Some(queue) => {
                let io = WriteTimeout::new(FileSink::new(stream, queue), write_timeout);
                let io = Watched::new(io, max_head, Arc::clone(&conflicts));
                self.spawn(io, sendfile_queue, conflicts, slot, head_by, stop, fresh)
            }
            None => {
                let io = WriteTimeout::new(stream, write_timeout);
                let io = Watched::new(io, max_head, Arc::clone(&conflicts));
                self.spawn(io, None, conflicts, slot, head_by, stop, fresh)
            }
        }
    }

    /// A parked connection's client sent again: its task is built anew.
    fn resume(self: &Arc<Self>, woken: Woken<Slot>, stop: watch::Receiver<bool>) {
        match tokio::net::TcpStream::from_std(woken.socket) {
            Ok(stream) => self.start(stream, woken.payload, woken.head_by, stop, None),
            Err(e) => woken.payload.ended(Err(e.into())),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn spawn<T>(
        self: &Arc<Self>,
        io: T,
        sendfile_queue: Option<Arc<SendfileQueue>>,
        conflicts: Arc<Conflicts>,
        slot: Slot,
        head_by: tokio::time::Instant,
        stop: watch::Receiver<bool>,
        fresh: Option<Http2Route>,
    ) where
        T: idle::Socket + crate::owed::Owing + AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let service = service(
            Arc::clone(&self.engine),
            self.traffic.clone(),
            slot.remote,
            false,
            sendfile_queue,
            conflicts,
        );
        let activity = Arc::new(idle::Activity::default());
        let lean = Arc::clone(self);
        tokio::spawn(async move {
            let http1 = &lean.http1;
            let served = match fresh {
                Some((builder, watcher)) => {
                    let maybe_http2: idle::Http2Fallback<_, _> = Box::new(move |io, service| {
                        let conn = builder.serve_connection(TokioIo::new(io), service);
                        Box::pin(watcher.watch(conn.into_owned()))
                    });
                    idle::serve(http1, activity, io, service, head_by, stop, maybe_http2).await
                }
                None => idle::resume(http1, activity, io, service, head_by, stop).await,
            };
            match served {
                Ok(Some(idle)) => lean.lot.park(idle.socket, idle.head_by, slot),
                Ok(None) => slot.ended(Ok(())),
                Err(e) => slot.ended(Err(e)),
            }
        });
    }
}

/// Lifts the soft open-files limit to the hard one: every connection is a
/// descriptor, and the common default of 1024 is far below what one process can
/// serve. Failure is harmless (we keep the limit we have).
fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain libc calls with a valid, initialised struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// Serves `listener` until `shutdown` resolves, then stops accepting and waits up
/// to `config.shutdown_timeout` for in-flight responses to finish.
pub async fn serve(
    engine: Arc<Engine>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    raise_fd_limit();
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let max_connections = engine.config.max_connections.max(1);
    let slots = Arc::new(Semaphore::new(max_connections));
    let counting = engine.config.access_log || engine.config.live_stats;
    let traffic = counting.then(|| Arc::new(Traffic::default()));
    let open_connections = {
        let slots = Arc::clone(&slots);
        move || max_connections - slots.available_permits()
    };
    let live = match (&traffic, engine.config.live_stats) {
        (Some(t), true) => Some(tokio::spawn(access_log::live_line(
            Arc::clone(t),
            open_connections.clone(),
        ))),
        _ => None,
    };
    // Idle connections hold no buffers: only the others count as load, so the
    // freed memory is trimmed when many go idle as well as when they close.
    let idle_connections = Arc::new(AtomicUsize::new(0));
    let (lot, lot_driver) = Lot::new()?;
    let busy_connections = {
        let idle = Arc::clone(&idle_connections);
        let lot = Arc::clone(&lot);
        move || open_connections().saturating_sub(idle.load(Ordering::Relaxed) + lot.parked())
    };
    let trimmer = tokio::spawn(trim::after_load_falls(busy_connections));
    if engine.config.tls.is_some() {
        crate::tls::log_kernel_tls();
    }
    let builder = Arc::new(connection_builder(&engine));
    let mut http1_builder = hyper::server::conn::http1::Builder::new();
    // Exact, where `max_buf_size` alone lets a head that arrives all at once
    // through (hyper grows its read buffer past the limit before checking it);
    // hyper-util's auto builder has no such setting.
    http1_options!(http1_builder, engine).max_header_size(engine.config.max_header_bytes);
    let lean = Arc::new(Lean {
        engine: Arc::clone(&engine),
        traffic: traffic.clone(),
        http1: idle::Http1 {
            builder: http1_builder,
            head_timeout: engine.config.header_read_timeout,
            idle: idle_connections,
        },
        lot,
    });
    // HTTP/2 and TLS connections are hyper-util's and end through its graceful
    // watcher; lean HTTP/1 connections (and the lot's driver) watch `stop_lean`
    // and hold a receiver until they are gone.
    let graceful = GracefulShutdown::new();
    let (stop_lean, _) = watch::channel(false);
    tokio::spawn({
        let lot = Arc::clone(&lean.lot);
        let lean = Arc::clone(&lean);
        lot_driver.run(lot, stop_lean.subscribe(), move |woken, stop| {
            lean.resume(woken, stop.clone());
        })
    });
    tokio::pin!(shutdown);
    loop {
        // Past max_connections, stop accepting: further clients wait in the
        // kernel's backlog instead of being refused or crashing the process.
        let accepted = tokio::select! {
            biased;
            _ = &mut shutdown => break,
            accepted = accept(&listener, &slots) => accepted,
        };
        let (stream, remote, permit) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // EMFILE/ENFILE/ENOBUFS and friends: back off instead of spinning or
                // exiting; connections already open keep being served.
                tracing::warn!("accept failed: {e}; retrying shortly");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let slot = Slot {
            remote,
            _permit: permit,
        };
        // A request head (or the TLS handshake) is due within the head timeout.
        let head_by = tokio::time::Instant::now() + engine.config.header_read_timeout;
        match engine.config.tls.clone() {
            None => lean.start(
                stream,
                slot,
                head_by,
                stop_lean.subscribe(),
                Some((Arc::clone(&builder), graceful.watcher())),
            ),
            // The handshake is bounded like a request head: a client that opens a
            // socket and never completes TLS is a slowloris too.
            Some(tls) => {
                let acceptor = TlsAcceptor::from(tls);
                let write_timeout = engine.config.write_timeout;
                let handshake_timeout = engine.config.header_read_timeout;
                let max_head = engine.config.max_header_bytes.max(8192);
                let conflicts = Arc::new(Conflicts::default());
                let service = service(
                    Arc::clone(&engine),
                    traffic.clone(),
                    remote,
                    true,
                    None,
                    Arc::clone(&conflicts),
                );
                let builder = Arc::clone(&builder);
                let watcher = graceful.watcher();
                let mut stop = stop_lean.subscribe();
                tokio::spawn(async move {
                    let stream = linger::Shared::new(stream);
                    let socket = stream.socket();
                    let io = WriteTimeout::new(stream, write_timeout);
                    let served =
                        match tokio::time::timeout(handshake_timeout, acceptor.accept(io)).await {
                            Ok(Ok(stream)) => {
                                let io = TokioIo::new(Watched::new(stream, max_head, conflicts));
                                let served = watcher
                                    .watch(builder.serve_connection(io, service).into_owned())
                                    .await;
                                // As a plain connection hyper closed does (idle.rs):
                                // the client sees the last response, not a reset
                                // under the body it is still sending. Not after an
                                // error (a head or write timeout, a reset): no
                                // response is owed to a client that will read it.
                                if served.is_ok() {
                                    let _ = linger::half_close(&socket);
                                    linger::drain(&socket, linger::LINGER, &mut stop).await;
                                }
                                served
                            }
                            Ok(Err(e)) => Err(format!("TLS handshake failed: {e}").into()),
                            Err(_) => Err("TLS handshake timed out".into()),
                        };
                    slot.ended(served)
                });
            }
        }
    }
    drop(listener);
    if let Some(live) = live {
        live.abort();
    }
    trimmer.abort();
    let timeout = engine.config.shutdown_timeout;
    stop_lean.send_replace(true);
    let all_ended = async {
        tokio::join!(graceful.shutdown(), stop_lean.closed());
    };
    tokio::select! {
        _ = all_ended => {}
        _ = tokio::time::sleep(timeout) => {
            tracing::warn!("graceful shutdown timed out after {timeout:?}; closing remaining connections");
        }
    }
    Ok(())
}
