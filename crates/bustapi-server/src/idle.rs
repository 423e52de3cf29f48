//! HTTP/1.1 connections that hold only their socket while idle.
//!
//! A hyper HTTP/1 connection keeps, for as long as it lives, an 8 KiB read
//! buffer and an 8 KiB header write buffer (hyper 1.x `proto/h1/io.rs`) plus
//! its dispatcher state: most of the ~24 KiB each keep-alive connection cost
//! while it did nothing (bench/notes/idle13.md has the measurement). So a
//! plain-TCP HTTP/1 connection here alternates between two phases:
//!
//! - **idle**: no task, no hyper state, no tokio registration: the socket is
//!   handed back to the caller, which parks it in the [`lot`](crate::lot) (an
//!   entry of a few dozen bytes in one shared epoll set) until the client sends
//!   again, and then starts the connection's task again with [`resume`].
//! - **busy**: a hyper connection is built over the socket, first replaying any
//!   bytes the previous busy phase had read ahead (a pipelined or partial next
//!   request), and serves requests as hyper always does: keep-alive,
//!   pipelining, the head timeout. Once it has served at least one request and
//!   then been [`QUIET`] (no response in flight, nothing unsent, hyper waiting
//!   for the client's next bytes, no new request for a whole period; at once
//!   when a file body it handed over is still owed, see owed.rs), it is
//!   ended with `graceful_shutdown`, which hyper treats as "close now" only in
//!   exactly that state (its `disable_keep_alive` on an idle connection: no
//!   response is touched, no `Connection: close` is added). `into_parts` gives
//!   back the socket and hyper's read-ahead bytes; with none, the connection is
//!   idle (bytes read ahead are never parked: the next busy phase replays them).
//!
//! What hyper would do across that boundary is kept: the next request head must
//! arrive within the head timeout of the connection going quiet (hyper's
//! `header_read_timeout` also bounds idle keep-alive time), a slowloris that
//! trickles a head is cut by the same deadline whichever phase it spans, and a
//! graceful shutdown ends an idle connection at once and lets a busy one finish
//! its response (hyper's own `graceful_shutdown`; the lot closes every parked
//! connection at once).

use crate::framing_watch::Watched;
use crate::linger;
use crate::owed::{self, Owing};
use crate::sendfile::FileSink;
use crate::write_timeout::WriteTimeout;
use bytes::{Buf, Bytes};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper::service::Service;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::error::Error as StdError;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{sleep_until, Instant, Sleep};

/// How long a busy connection must have nothing to do before its hyper state
/// is dropped. Long enough that a client sending request after request (a
/// benchmark, a page loading its assets) never pays for rebuilding it; an idle
/// connection gives its buffers back between one and two periods after its
/// last response.
pub const QUIET: Duration = Duration::from_secs(1);

type BoxError = Box<dyn StdError + Send + Sync>;

/// The TCP socket under a connection's IO wrappers: what an idle connection
/// keeps.
pub trait Socket {
    fn socket(&self) -> &TcpStream;

    /// Going idle: the socket alone, the wrappers dropped.
    fn into_socket(self) -> TcpStream;

    /// Whether a new set of wrappers, made when the connection wakes, would
    /// follow the byte stream as these do (the framing watcher is between
    /// requests).
    fn between_requests(&self) -> bool {
        true
    }

    /// Before owed file bytes go out (for as long as a slow client takes):
    /// free what a wrapper keeps between requests. A small block allocated
    /// during a busy phase and kept pins a whole page of the freed hyper
    /// buffers around it (malloc_trim cannot return a page with one live byte).
    fn shed(&mut self) {}
}

impl Socket for TcpStream {
    fn socket(&self) -> &TcpStream {
        self
    }

    fn into_socket(self) -> TcpStream {
        self
    }
}

impl Socket for FileSink {
    fn socket(&self) -> &TcpStream {
        self.tcp()
    }

    fn into_socket(self) -> TcpStream {
        self.into_tcp()
    }

    fn between_requests(&self) -> bool {
        self.is_drained()
    }
}

impl<T: Socket> Socket for WriteTimeout<T> {
    fn socket(&self) -> &TcpStream {
        self.get_ref().socket()
    }

    fn into_socket(self) -> TcpStream {
        self.into_inner().into_socket()
    }

    fn between_requests(&self) -> bool {
        self.get_ref().between_requests()
    }

    fn shed(&mut self) {
        self.shed_timer();
        self.get_mut().shed();
    }
}

impl<T: Socket> Socket for Watched<T> {
    fn socket(&self) -> &TcpStream {
        self.get_ref().socket()
    }

    fn into_socket(self) -> TcpStream {
        self.into_inner().into_socket()
    }

    fn between_requests(&self) -> bool {
        self.at_head() && self.get_ref().between_requests()
    }

    fn shed(&mut self) {
        self.shed_buffer();
        self.get_mut().shed();
    }
}

/// What the server shares with every lean HTTP/1 connection.
pub struct Http1 {
    pub builder: http1::Builder,
    /// How long a request head may take from the moment the connection was
    /// accepted or went quiet (the `header_read_timeout`).
    pub head_timeout: Duration,
    /// New connections waiting for their first bytes right now (the trimmer
    /// counts them, and parked ones, as no load).
    pub idle: Arc<AtomicUsize>,
}

/// What the first bytes of a new plain-TCP connection say it speaks.
enum Opening {
    /// HTTP/2 with prior knowledge (the start of its preface), or too few bytes
    /// yet to rule it out: hyper-util's auto builder sniffs the rest.
    MaybeHttp2,
    Http1,
    /// Closed, timed out, or the server is stopping, before any byte.
    Gone,
}

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Waits, holding no buffer, for a new connection's first bytes and peeks at
/// them (they stay in the socket for whoever serves it).
async fn opening(
    tcp: &TcpStream,
    head_by: Instant,
    conf: &Http1,
    stop: &mut watch::Receiver<bool>,
) -> Opening {
    let _idle = IdleCount::enter(&conf.idle);
    let mut first = [0u8; 24];
    let peeked = tokio::select! {
        biased;
        _ = stop.changed() => return Opening::Gone,
        _ = sleep_until(head_by) => return Opening::Gone,
        peeked = tcp.peek(&mut first) => peeked,
    };
    match peeked {
        Ok(0) | Err(_) => Opening::Gone,
        Ok(n) if H2_PREFACE.starts_with(&first[..n]) => Opening::MaybeHttp2,
        Ok(_) => Opening::Http1,
    }
}

/// A connection that may be HTTP/2 with prior knowledge, handed back with its
/// service to be served some other way (boxed: it is the rare case, and the
/// task should not be sized for it).
pub type Http2Fallback<T, S> =
    Box<dyn FnOnce(T, S) -> Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>> + Send>;

/// A connection gone idle, for the caller to park: its socket (no longer
/// registered with tokio) and when its next request head is due.
pub struct Idle {
    pub socket: std::net::TcpStream,
    pub head_by: Instant,
}

/// Serves one plain-TCP connection from its first byte: HTTP/1 busy phases
/// until it closes (`None`) or goes idle; one that opens like HTTP/2 goes to
/// `maybe_http2`. `head_by` is when the first request head must have arrived.
pub async fn serve<T, S, B>(
    conf: &Http1,
    activity: Arc<Activity>,
    io: T,
    service: S,
    head_by: Instant,
    mut stop: watch::Receiver<bool>,
    maybe_http2: Http2Fallback<T, S>,
) -> Result<Option<Idle>, BoxError>
where
    T: Socket + Owing + AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Service<Request<Incoming>, Response = Response<B>> + Unpin + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body + Unpin + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    match opening(io.socket(), head_by, conf, &mut stop).await {
        Opening::Gone => Ok(None),
        Opening::Http1 => resume(conf, activity, io, service, head_by, stop).await,
        // Ended by hyper-util's graceful watcher, not `stop`.
        Opening::MaybeHttp2 => maybe_http2(io, service).await.map(|()| None),
    }
}

/// Serves an HTTP/1 connection that has bytes to read (its first, or those
/// that woke it in the lot), with fresh wrappers: busy phases until it closes
/// or goes idle. `head_by` is when the next request head is due.
pub async fn resume<T, S, B>(
    conf: &Http1,
    activity: Arc<Activity>,
    io: T,
    service: S,
    mut head_by: Instant,
    mut stop: watch::Receiver<bool>,
) -> Result<Option<Idle>, BoxError>
where
    T: Socket + Owing + AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Service<Request<Incoming>, Response = Response<B>> + Unpin + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body + Unpin + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let stop = &mut stop;
    let mut service = Counted {
        inner: service,
        activity: Arc::clone(&activity),
    };
    let (mut io, mut ahead) = (io, Bytes::new());
    loop {
        let busy = BusyIo {
            ahead,
            inner: io,
            activity: Arc::clone(&activity),
        };
        // Boxed: the task's own state stays small while hyper's is not needed.
        let mut conn = Box::new(conf.builder.serve_connection(TokioIo::new(busy), service));
        let ended = busy_phase(&mut conn, &activity, head_by, stop).await?;
        let parts = conn.into_parts();
        let busy = parts.io.into_inner();
        io = busy.inner;
        service = parts.service;
        // Copied: `read_buf` is a view into hyper's whole read buffer, which
        // would otherwise stay allocated (even when it is empty), also while
        // owed file bytes go out below.
        let read_ahead = [&parts.read_buf[..], &busy.ahead[..]].concat();
        drop((parts.read_buf, busy.ahead));
        match ended {
            Ended::Quiet(at) => {
                ahead = read_ahead.into();
                io.shed();
                // Quiet for real once the file bytes it still owed are sent.
                let at = owed::send(&mut io).await?.unwrap_or(at);
                io.shed();
                head_by = at + conf.head_timeout;
                if ahead.is_empty() {
                    return Ok(idle(io, head_by).await);
                }
                // Bytes read ahead are served at once by the next busy phase.
            }
            Ended::Closed => {
                owed::send(&mut io).await?;
                // What hyper does at the end of a connection it closes; then
                // what the client still sends is let in and dropped, so that
                // it sees this response rather than a reset.
                let _ = io.shutdown().await;
                linger::drain(io.socket(), linger::LINGER, stop).await;
                return Ok(None);
            }
            Ended::HeadTimeout => return Ok(None),
        }
    }
}

/// The connection is idle: everything but its socket is dropped, and the socket
/// leaves tokio for the caller's lot.
async fn idle<T>(mut io: T, head_by: Instant) -> Option<Idle>
where
    T: Socket + AsyncWrite + Unpin,
{
    if !io.between_requests() {
        // Wrappers made on waking would not follow this connection's bytes
        // (never seen: hyper is quiet only between requests). An idle
        // connection may be closed at any time (RFC 9112, 9.6).
        let _ = io.shutdown().await;
        return None;
    }
    match io.into_socket().into_std() {
        Ok(socket) => Some(Idle { socket, head_by }),
        Err(e) => {
            tracing::debug!("idle connection closed: {e}");
            None
        }
    }
}

enum Ended {
    /// We ended it for being quiet, at this moment.
    Quiet(Instant),
    /// hyper finished the connection (the client closed, keep-alive off, a
    /// graceful shutdown).
    Closed,
    /// No request head arrived in time.
    HeadTimeout,
}

/// Drives hyper's connection and decides when it ends. Written as one poll
/// function rather than a `select!` over timers: every wake-up of the task
/// polls hyper, and a timer firing while a response waits on a stalled client
/// would make hyper pull one more chunk from its body each time; so the quiet
/// timer is armed only once hyper is quiet, and the head deadline is dropped
/// once a request has arrived.
async fn busy_phase<I, S, B>(
    conn: &mut http1::Connection<I, S>,
    activity: &Activity,
    head_by: Instant,
    stop: &mut watch::Receiver<bool>,
) -> Result<Ended, BoxError>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::HttpService<Incoming, ResBody = B> + Unpin,
    S::Future: Unpin,
    B: Body + 'static,
    B::Error: Into<BoxError>,
{
    let start = activity.dispatched();
    let stopped = stop.changed();
    tokio::pin!(stopped);
    let mut stopping = false;
    // Only until the first request of this phase has arrived: its head is due
    // by the deadline set when the connection was accepted or went quiet.
    let mut head_deadline = Some(Box::pin(sleep_until(head_by)));
    // Armed once hyper is quiet, with the request count it saw then.
    let mut quiet_timer: Option<(Pin<Box<Sleep>>, u64)> = None;
    let mut quiet_at = None;
    poll_fn(|cx| loop {
        if let Poll::Ready(done) = conn.poll_without_shutdown(cx) {
            done?;
            return Poll::Ready(Ok(quiet_at.map_or(Ended::Closed, Ended::Quiet)));
        }
        if !stopping && stopped.as_mut().poll(cx).is_ready() {
            stopping = true;
            quiet_at = None;
            Pin::new(&mut *conn).graceful_shutdown();
            continue;
        }
        let dispatched = activity.dispatched();
        if let Some(deadline) = &mut head_deadline {
            if dispatched != start {
                head_deadline = None;
            } else if deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Ok(Ended::HeadTimeout));
            }
        }
        if stopping || quiet_at.is_some() || dispatched == start {
            return Poll::Pending;
        }
        if activity.quiet() && activity.owes.load(Ordering::Acquire) {
            // Only owed file bytes are left: sent without hyper (owed.rs).
            quiet_at = Some(Instant::now());
            Pin::new(&mut *conn).graceful_shutdown();
            continue;
        }
        match &mut quiet_timer {
            None if activity.quiet() => {
                let timer = Box::pin(sleep_until(Instant::now() + QUIET));
                quiet_timer = Some((timer, dispatched));
                continue; // polled below, to register the wake-up
            }
            None => return Poll::Pending,
            Some((timer, seen)) => {
                if timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                if !activity.quiet() {
                    // Busy again (new requests, or a response waiting on the
                    // client): re-armed when it is next quiet.
                    quiet_timer = None;
                    return Poll::Pending;
                }
                if *seen == dispatched {
                    quiet_at = Some(Instant::now());
                    Pin::new(&mut *conn).graceful_shutdown();
                    continue;
                }
                *seen = dispatched;
                timer.as_mut().reset(Instant::now() + QUIET);
            }
        }
    })
    .await
}

/// What a busy phase's service and IO tell its loop, shared per connection.
#[derive(Default)]
pub struct Activity {
    /// Requests handed to the service over the connection's life.
    dispatched: AtomicU64,
    /// Responses whose body hyper still holds (dropped once fully written).
    in_flight: AtomicUsize,
    /// hyper's last read found no bytes: it is waiting on the client.
    read_waiting: AtomicBool,
    /// hyper's last write or flush could not complete: bytes wait on the client.
    write_blocked: AtomicBool,
    /// The IO owes file bytes of a body hyper has finished (owed.rs).
    owes: AtomicBool,
}

impl Activity {
    fn dispatched(&self) -> u64 {
        self.dispatched.load(Ordering::Acquire)
    }

    /// hyper has nothing to do but wait for the next request head.
    fn quiet(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
            && self.read_waiting.load(Ordering::Acquire)
            && !self.write_blocked.load(Ordering::Acquire)
    }
}

/// Counts a connection as idle while alive.
struct IdleCount<'a>(&'a AtomicUsize);

impl<'a> IdleCount<'a> {
    fn enter(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        IdleCount(count)
    }
}

impl Drop for IdleCount<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The IO of a busy phase: first the bytes the previous phase had read ahead,
/// then the socket; records whether hyper is waiting on the client.
struct BusyIo<T> {
    ahead: Bytes,
    inner: T,
    activity: Arc<Activity>,
}

impl<T: Owing> BusyIo<T> {
    fn note_write<R>(&self, polled: Poll<R>) -> Poll<R> {
        self.activity
            .write_blocked
            .store(polled.is_pending(), Ordering::Release);
        self.note_owed();
        polled
    }

    fn note_owed(&self) {
        self.activity
            .owes
            .store(self.inner.owes(), Ordering::Release);
    }
}

impl<T: AsyncRead + Owing + Unpin> AsyncRead for BusyIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.ahead.is_empty() {
            let n = this.ahead.len().min(buf.remaining());
            buf.put_slice(&this.ahead[..n]);
            this.ahead.advance(n);
            return Poll::Ready(Ok(()));
        }
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        this.activity
            .read_waiting
            .store(polled.is_pending(), Ordering::Release);
        this.note_owed();
        polled
    }
}

impl<T: AsyncWrite + Owing + Unpin> AsyncWrite for BusyIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.note_write(polled)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.note_write(polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_flush(cx);
        this.note_write(polled)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The service, counting requests and the responses hyper still holds.
struct Counted<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S, B> Service<Request<Incoming>> for Counted<S>
where
    S: Service<Request<Incoming>, Response = Response<B>>,
    S::Future: Send + 'static,
{
    type Response = Response<CountedBody<B>>;
    type Error = S::Error;
    // Boxed so hyper's `poll_without_shutdown` (which wants an Unpin future)
    // can drive it.
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let in_flight = InFlight::new(&self.activity);
        let response = self.inner.call(req);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|body| CountedBody { body, in_flight }))
        })
    }
}

/// One request from the moment the service takes it until hyper drops its
/// response body (written out, or the connection gone).
struct InFlight(Arc<Activity>);

impl InFlight {
    fn new(activity: &Arc<Activity>) -> Self {
        activity.dispatched.fetch_add(1, Ordering::AcqRel);
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(Arc::clone(activity))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

struct CountedBody<B> {
    body: B,
    #[allow(dead_code)] // held for its Drop
    in_flight: InFlight,
}

impl<B: Body + Unpin> Body for CountedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
