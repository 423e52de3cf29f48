//! Zero-copy file bodies on plain HTTP/1.x connections: `sendfile(2)` behind
//! hyper's back.
//!
//! hyper writes whatever bytes a body yields; it has no notion of a file. So for
//! a file range the body yields *placeholder* frames that point into one shared
//! buffer whose bytes are never sent ([`marker`]), and queues "send bytes `offset..offset+n` of
//! this file" on the connection's [`SendfileQueue`]. hyper hands body buffers to the socket
//! untouched, as `writev` slices over the same memory (its "queue" write
//! strategy, which serve.rs selects explicitly). When [`FileSink`] sees a slice that lies inside the placeholder buffer, it does not
//! write those zeros: it calls `sendfile` for the queued range instead, and
//! reports the bytes the kernel sent. hyper keeps framing, keep-alive, pipelining
//! and Content-Length accounting; the file bytes never enter user space, and a
//! slow client pins no buffer (what 10,000 slow video clients need).
//!
//! Safety nets, because a copied placeholder would put zeros on the wire under
//! a valid `Content-Length`:
//! - serve.rs pins hyper's queue strategy (`writev(true)`) instead of relying on
//!   [`FileSink::is_write_vectored`] alone.
//! - A placeholder slice is only turned into file bytes if its position matches
//!   the queued range exactly; anything unexpected (none queued, a mismatched position, a
//!   file that shrank so `sendfile` returns 0) fails the write.
//! - While ranges are queued, any write of ordinary bytes is checked for signs of
//!   a copy: a plain (non-vectored) write means hyper flattened the body into its
//!   own buffer; the marker's first [`CANARY_LEN`] bytes are a random per-process
//!   canary that every placeholder frame starts with, so a copied frame of at
//!   least that length is found in the bytes before they are sent; and when the
//!   connection is flushed every queued range must have been sent (this catches a
//!   shorter copied frame, after the fact).
//! - The per-connection queue is bounded ([`MAX_QUEUED_RANGES`]).
//!
//! Each failure is logged at error level and fails the write or the body, so
//! hyper closes the connection: the client sees a cut, never silent zeros.
//! This path is used only for HTTP/1.x over plain TCP on Linux ([`AVAILABLE`]);
//! TLS, HTTP/2 and other systems use the ordinary read-and-copy body.

use crate::page_cache;
use bustapi_files::{BodySource, FileBody, Pacer, Piece};
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use memchr::memmem::Finder;
use std::collections::VecDeque;
use std::fs::File;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, IoSlice};
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

/// Whether this build sends file bodies with `sendfile(2)`. Linux only: macOS
/// and the BSDs have a `sendfile` with other semantics and no `TCP_CORK`, so
/// they (and builds without the `sendfile` feature) use the copy path.
pub const AVAILABLE: bool = cfg!(all(target_os = "linux", feature = "sendfile"));

/// Largest placeholder frame: one `sendfile` call sends at most this much.
pub const MARKER_LEN: usize = 1 << 20;

/// Bodies smaller than this are copied instead: the headers and a small body then
/// leave in one `writev`, where sendfile would cost a second system call (a
/// `bytes=0-1` probe is all overhead).
pub const SENDFILE_MIN: u64 = 64 * 1024;

/// Bodies up to this size (and from [`BOUNCE_MIN`]) are written from a per-thread bounce buffer
/// (`pread` then `write`) instead of `sendfile`: for cached data of 256 KiB to
/// 1 MiB a memcpy is cheaper than splicing page by page (bench/file_paths.py:
/// 81 against 106 µs of server CPU at 256 KiB, 368 against 400 µs at 1 MiB).
/// Above it sendfile costs the server 3× less. The buffer belongs to the IO
/// thread, not the connection, and nothing is kept between writes, so a slow
/// client still pins no memory.
pub const BOUNCE_MAX: u64 = 1 << 20;

/// ... and from this size: at 64 KiB sendfile still wins (1.04× nginx against
/// the copy's 0.86-0.90× in bench/file_paths.py), at 256 KiB the bounce does.
pub const BOUNCE_MIN: u64 = 128 * 1024;

/// Length of the canary at the start of the marker buffer.
pub const CANARY_LEN: usize = 64;

/// Most file ranges queued on one connection. hyper buffers at most 16 body
/// frames before it writes (its `MAX_BUF_LIST_BUFFERS`), each frame carries at
/// most one range, so more means frames are piling up unsent.
pub const MAX_QUEUED_RANGES: usize = 16;

static SENT: AtomicU64 = AtomicU64::new(0);
static BOUNCED: AtomicU64 = AtomicU64::new(0);

/// File bytes this process has sent with `sendfile(2)` since it started (tests
/// read it to prove the zero-copy path really carried a response).
pub fn bytes_sent() -> u64 {
    SENT.load(Ordering::Relaxed)
}

/// File bytes this process has written through the bounce buffer (bodies of
/// at most [`BOUNCE_MAX`] on the placeholder path).
pub fn bytes_bounced() -> u64 {
    BOUNCED.load(Ordering::Relaxed)
}

/// The placeholder buffer. Allocated zeroed; only the canary at its start is
/// ever written, so one page is faulted in and the rest is never touched.
fn marker() -> &'static [u8] {
    static MARKER: OnceLock<&'static [u8]> = OnceLock::new();
    MARKER.get_or_init(|| {
        let mut buf = vec![0u8; MARKER_LEN];
        // Fresh SipHash keys per RandomState: unpredictable enough that no real
        // response head or multipart framing contains these 64 bytes.
        let random = std::collections::hash_map::RandomState::new();
        for (i, word) in buf[..CANARY_LEN].chunks_exact_mut(8).enumerate() {
            let mut h = random.build_hasher();
            h.write_usize(i);
            word.copy_from_slice(&h.finish().to_ne_bytes());
        }
        Box::leak(buf.into_boxed_slice())
    })
}

/// Finds the canary (a copied placeholder frame) in ordinary bytes.
fn canary() -> &'static Finder<'static> {
    static FINDER: OnceLock<Finder<'static>> = OnceLock::new();
    FINDER.get_or_init(|| Finder::new(&marker()[..CANARY_LEN]))
}

/// Offset of `slice` inside the placeholder buffer, if it lies there.
fn marker_offset(slice: &[u8]) -> Option<usize> {
    let base = marker().as_ptr() as usize;
    let p = slice.as_ptr() as usize;
    (p >= base && p + slice.len() <= base + MARKER_LEN && !slice.is_empty()).then(|| p - base)
}

/// The error for placeholder bytes that reached a copying path. Logged here,
/// since the client only sees the connection close.
fn copied(why: &str) -> io::Error {
    tracing::error!(
        "sendfile placeholder bytes reached a copying write path ({why}); \
         closing the connection instead of sending zeros"
    );
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("sendfile placeholder copied: {why}"),
    )
}

/// A file range behind one placeholder frame: `len` bytes at `offset`, of
/// which `done` have been sent.
struct QueuedRange {
    file: Arc<File>,
    offset: u64,
    len: usize,
    done: usize,
    /// More file ranges of the same body follow (keep the socket corked).
    more: bool,
    /// Written from the bounce buffer rather than with sendfile.
    bounce: bool,
}

/// The per-connection queue of file ranges behind placeholder frames, in the
/// order hyper will write them.
#[derive(Default)]
pub struct SendfileQueue {
    ranges: Mutex<VecDeque<QueuedRange>>,
}

impl SendfileQueue {
    fn ranges(&self) -> io::Result<MutexGuard<'_, VecDeque<QueuedRange>>> {
        self.ranges
            .lock()
            .map_err(|_| io::Error::other("sendfile queue poisoned"))
    }
}

/// A TCP stream that turns placeholder writes into `sendfile`.
pub struct FileSink {
    tcp: TcpStream,
    queue: Arc<SendfileQueue>,
    /// Whether `TCP_CORK` is set (from the head of a file response to the flush
    /// after its last range).
    corked: bool,
    /// The last range sent has more of its body's ranges behind it: a flush
    /// between its frames keeps the cork, so segments stay full.
    more: bool,
}

impl FileSink {
    pub fn new(tcp: TcpStream, queue: Arc<SendfileQueue>) -> Self {
        FileSink {
            tcp,
            queue,
            corked: false,
            more: false,
        }
    }

    pub fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    /// No file range is queued: nothing of a response is left to send.
    pub fn is_drained(&self) -> bool {
        self.queue.ranges().is_ok_and(|r| r.is_empty())
    }

    /// The socket alone (a connection going idle), never left corked.
    pub fn into_tcp(self) -> TcpStream {
        if self.corked {
            sys::set_cork(self.tcp.as_raw_fd(), false);
        }
        self.tcp
    }

    /// Like nginx's tcp_nopush: from the response head on, only full segments
    /// leave while the file streams (small partial segments cost the receiver far
    /// more per byte). Set before the head is written, so the head shares a
    /// segment with the first file bytes.
    fn cork(&mut self) {
        if !self.corked {
            sys::set_cork(self.tcp.as_raw_fd(), true);
            self.corked = true;
        }
    }

    /// Checks ordinary bytes about to be written while file ranges are queued.
    fn check_ordinary(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<()> {
        if self.queue.ranges()?.is_empty() {
            return Ok(());
        }
        if bufs.iter().any(|b| canary().find(b).is_some()) {
            return Err(copied("the marker canary is in an ordinary write"));
        }
        self.cork();
        Ok(())
    }

    fn front_is_bounce(&self) -> io::Result<bool> {
        Ok(self.queue.ranges()?.front().is_some_and(|q| q.bounce))
    }

    /// A response head followed by the placeholder of a bounced range: both go
    /// out in one `writev` (head slices, then the file bytes read into the
    /// thread's bounce buffer), as the copy path would write them, with no
    /// cork and no second system call. The count returned covers the head
    /// first, so hyper advances into the placeholder only by file bytes sent.
    fn poll_head_and_bounce(
        &mut self,
        cx: &mut Context<'_>,
        head: &[IoSlice<'_>],
        placeholder: &[u8],
    ) -> Poll<io::Result<usize>> {
        if head.iter().any(|b| canary().find(b).is_some()) {
            return Poll::Ready(Err(copied("the marker canary is in an ordinary write")));
        }
        let at = marker_offset(placeholder).unwrap_or(usize::MAX);
        let queue = Arc::clone(&self.queue);
        let mut ranges = queue.ranges()?;
        let Some(queued) = ranges.front_mut() else {
            return Poll::Ready(Err(io::Error::other(
                "placeholder frame without a file range",
            )));
        };
        if at != queued.done || queued.done + placeholder.len() > queued.len {
            return Poll::Ready(Err(io::Error::other(
                "placeholder frame out of step with its file range",
            )));
        }
        let head_len: usize = head.iter().map(|b| b.len()).sum();
        let socket = self.tcp.as_raw_fd();
        let file = queued.file.as_raw_fd();
        let start = queued.offset + queued.done as u64;
        let len = placeholder.len();
        loop {
            ready!(self.tcp.poll_write_ready(cx))?;
            let written = self.tcp.try_io(Interest::WRITABLE, || {
                sys::head_and_bounce(socket, head, file, start, len)
            });
            match written {
                Ok(Some(w)) => {
                    let body = w.saturating_sub(head_len);
                    BOUNCED.fetch_add(body as u64, Ordering::Relaxed);
                    queued.done += body;
                    if queued.done == queued.len {
                        self.more = queued.more;
                        ranges.pop_front();
                    }
                    return Poll::Ready(Ok(w));
                }
                Ok(None) => {
                    let e = io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("file shrank while streaming: nothing left at offset {start}"),
                    );
                    tracing::warn!("file response aborted: {e}");
                    return Poll::Ready(Err(e));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    fn poll_sendfile(
        &mut self,
        cx: &mut Context<'_>,
        at: usize,
        len: usize,
    ) -> Poll<io::Result<usize>> {
        let queue = Arc::clone(&self.queue);
        let mut ranges = queue.ranges()?;
        let Some(queued) = ranges.front_mut() else {
            return Poll::Ready(Err(io::Error::other(
                "placeholder frame without a file range",
            )));
        };
        if at != queued.done || queued.done + len > queued.len {
            return Poll::Ready(Err(io::Error::other(
                "placeholder frame out of step with its file range",
            )));
        }
        // A bounced write is one contiguous buffer: its segments are full
        // without the cork.
        if !queued.bounce {
            self.cork();
        }
        let socket = self.tcp.as_raw_fd();
        let file = queued.file.as_raw_fd();
        loop {
            ready!(self.tcp.poll_write_ready(cx))?;
            let start = queued.offset + queued.done as u64;
            let bounce = queued.bounce;
            let sent = self.tcp.try_io(Interest::WRITABLE, || {
                if bounce {
                    sys::bounce(socket, file, start, len)
                } else {
                    sys::sendfile(socket, file, start, len)
                }
            });
            match sent {
                Ok(0) => {
                    let e = io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("file shrank while streaming: nothing left at offset {start}"),
                    );
                    // The connection is aborted; say why, the client only sees a cut.
                    tracing::warn!("file response aborted: {e}");
                    return Poll::Ready(Err(e));
                }
                Ok(n) => {
                    let counter = if bounce { &BOUNCED } else { &SENT };
                    counter.fetch_add(n as u64, Ordering::Relaxed);
                    queued.done += n;
                    if queued.done == queued.len {
                        self.more = queued.more;
                        ranges.pop_front();
                    }
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

/// The system calls, Linux only; elsewhere [`AVAILABLE`] is false and no
/// connection ever gets a [`FileSink`] with a file range to send.
#[cfg(all(target_os = "linux", feature = "sendfile"))]
mod sys {
    use std::io;
    use std::os::fd::RawFd;

    pub fn sendfile(socket: RawFd, file: RawFd, offset: u64, len: usize) -> io::Result<usize> {
        let mut off =
            libc::off_t::try_from(offset).map_err(|_| io::Error::other("offset too large"))?;
        // SAFETY: both descriptors are open for the duration of the call (the
        // caller holds the file and the socket).
        let n = unsafe { libc::sendfile(socket, file, &mut off, len) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }

    /// Reads up to `len` file bytes at `offset` into this thread's bounce
    /// buffer and writes what the socket takes now; nothing is kept, a partial
    /// write is resumed from the file at the next call. 0: the file shrank.
    pub fn bounce(socket: RawFd, file: RawFd, offset: u64, len: usize) -> io::Result<usize> {
        head_and_bounce(socket, &[], file, offset, len).map(|w| w.unwrap_or(0))
    }

    /// `writev` of `head` and then up to `len` file bytes at `offset`, read
    /// into this thread's bounce buffer. `None` when the file has nothing left
    /// at `offset` (it shrank).
    pub fn head_and_bounce(
        socket: RawFd,
        head: &[std::io::IoSlice<'_>],
        file: RawFd,
        offset: u64,
        len: usize,
    ) -> io::Result<Option<usize>> {
        let off =
            libc::off_t::try_from(offset).map_err(|_| io::Error::other("offset too large"))?;
        BOUNCE_BUF.with(|buf| {
            let mut buf = buf.borrow_mut();
            let want = len.min(super::MARKER_LEN);
            if buf.len() < want {
                buf.resize(want, 0);
            }
            // SAFETY: `buf` has at least `want` writable bytes; the descriptor is open.
            let n = unsafe { libc::pread(file, buf.as_mut_ptr().cast(), want, off) };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            if n == 0 {
                return Ok(None);
            }
            let mut iov: Vec<libc::iovec> = head
                .iter()
                .map(|b| libc::iovec {
                    iov_base: b.as_ptr() as *mut libc::c_void,
                    iov_len: b.len(),
                })
                .collect();
            iov.push(libc::iovec {
                iov_base: buf.as_mut_ptr().cast(),
                iov_len: n as usize,
            });
            // SAFETY: every iovec points into a live buffer of its length.
            let w = unsafe { libc::writev(socket, iov.as_ptr(), iov.len() as libc::c_int) };
            if w < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(Some(w as usize))
            }
        })
    }

    thread_local! {
        static BOUNCE_BUF: std::cell::RefCell<Vec<u8>> =
            const { std::cell::RefCell::new(Vec::new()) };
    }

    pub fn set_cork(socket: RawFd, on: bool) {
        let value: libc::c_int = on.into();
        // SAFETY: a valid socket and a pointer to a c_int of the given size.
        // Failure only costs efficiency, never correctness, so it is ignored.
        unsafe {
            libc::setsockopt(
                socket,
                libc::IPPROTO_TCP,
                libc::TCP_CORK,
                (&value as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
}

#[cfg(not(all(target_os = "linux", feature = "sendfile")))]
mod sys {
    use std::io;
    use std::os::fd::RawFd;

    pub fn sendfile(_socket: RawFd, _file: RawFd, _offset: u64, _len: usize) -> io::Result<usize> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "sendfile is not available in this build",
        ))
    }

    pub fn bounce(_socket: RawFd, _file: RawFd, _offset: u64, _len: usize) -> io::Result<usize> {
        sendfile(_socket, _file, _offset, _len)
    }

    pub fn head_and_bounce(
        _socket: RawFd,
        _head: &[std::io::IoSlice<'_>],
        _file: RawFd,
        _offset: u64,
        _len: usize,
    ) -> io::Result<Option<usize>> {
        sendfile(_socket, _file, _offset, _len).map(Some)
    }

    pub fn set_cork(_socket: RawFd, _on: bool) {}
}

impl AsyncRead for FileSink {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for FileSink {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(at) = marker_offset(buf) {
            return this.poll_sendfile(cx, at, buf.len());
        }
        // hyper's queue strategy writes only vectored; a plain write while ranges
        // are queued means it flattened the body, placeholders included, into
        // its own buffer.
        if !this.queue.ranges()?.is_empty() {
            return Poll::Ready(Err(copied("a plain write while file ranges are queued")));
        }
        Pin::new(&mut this.tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        // Ordinary bytes up to the first placeholder go out with writev; a
        // placeholder at the front goes out with sendfile.
        let ordinary = match bufs.iter().position(|b| marker_offset(b).is_some()) {
            Some(0) => {
                let at = marker_offset(&bufs[0]).unwrap_or(usize::MAX);
                return this.poll_sendfile(cx, at, bufs[0].len());
            }
            Some(i) if this.front_is_bounce()? => {
                return this.poll_head_and_bounce(cx, &bufs[..i], &bufs[i]);
            }
            Some(i) => &bufs[..i],
            None => bufs,
        };
        this.check_ordinary(ordinary)?;
        Pin::new(&mut this.tcp).poll_write_vectored(cx, ordinary)
    }

    fn is_write_vectored(&self) -> bool {
        // serve.rs pins hyper's queue strategy; this agrees with it.
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // hyper flushes the socket only once everything it buffered is written,
        // so every placeholder frame must have become a sendfile by now.
        let unsent = this.queue.ranges()?.len();
        if unsent > 0 {
            return Poll::Ready(Err(copied(&format!(
                "{unsent} file range(s) still queued when the connection was flushed"
            ))));
        }
        if this.corked && !this.more {
            // End of the response's file bytes: let the tail go out now.
            sys::set_cork(this.tcp.as_raw_fd(), false);
            this.corked = false;
        }
        Pin::new(&mut this.tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

/// A file body that yields placeholder frames and queues their ranges on the
/// connection's [`SendfileQueue`].
pub struct SendfileBody {
    file: Arc<File>,
    /// What remains to be sent, from `BodyPlan::pieces` (as `FileBody` sends
    /// it); the front range shrinks as its placeholder frames go out.
    pieces: VecDeque<Piece>,
    remaining: u64,
    queue: Arc<SendfileQueue>,
    /// A cold range being read into the page cache on the blocking pool, so
    /// the `sendfile` that sends it does not wait for the disk on an IO thread.
    warming: Option<tokio::task::JoinHandle<io::Result<()>>>,
    /// Start of the range last found (or made) resident.
    resident_from: Option<u64>,
    /// The file body's pacing, carried over: placeholder frames wait for their
    /// time like the copied frames would.
    pacer: Option<Pacer>,
    /// The whole body is at most [`BOUNCE_MAX`]: its ranges go through the
    /// bounce buffer.
    bounce: bool,
}

impl SendfileBody {
    /// Converts a planned file body, if it streams from a file (bytes held in
    /// memory are cheaper to send as they are) and is large enough to gain.
    pub fn from_file_body(body: &FileBody, queue: &Arc<SendfileQueue>) -> Option<Self> {
        let BodySource::File(file) = body.source() else {
            return None;
        };
        if body.remaining() < SENDFILE_MIN {
            return None;
        }
        Some(SendfileBody {
            file: Arc::clone(file),
            pieces: body.plan().pieces().collect(),
            remaining: body.remaining(),
            queue: Arc::clone(queue),
            warming: None,
            resident_from: None,
            pacer: body.rate().map(Pacer::new),
            bounce: (BOUNCE_MIN..=BOUNCE_MAX).contains(&body.remaining()),
        })
    }
}

/// Ready once `start..start + len` is in the page cache: at once when it
/// already is, otherwise after a read of it on the blocking pool.
fn poll_resident(
    file: &Arc<File>,
    start: u64,
    len: usize,
    warming: &mut Option<tokio::task::JoinHandle<io::Result<()>>>,
    resident_from: &mut Option<u64>,
    cx: &mut Context<'_>,
) -> Poll<io::Result<()>> {
    if *resident_from == Some(start) {
        return Poll::Ready(Ok(()));
    }
    if warming.is_none() {
        let runtime = tokio::runtime::Handle::try_current();
        if page_cache::resident(file, start, len as u64) || runtime.is_err() {
            *resident_from = Some(start);
            return Poll::Ready(Ok(()));
        }
        let file = Arc::clone(file);
        *warming = runtime
            .ok()
            .map(|rt| rt.spawn_blocking(move || page_cache::warm(&file, start, len)));
    }
    let Some(task) = warming.as_mut() else {
        return Poll::Ready(Ok(()));
    };
    let warmed = ready!(Pin::new(task).poll(cx));
    *warming = None;
    *resident_from = Some(start);
    Poll::Ready(
        warmed.unwrap_or_else(|e| Err(io::Error::other(format!("page-cache read failed: {e}")))),
    )
}

impl http_body::Body for SendfileBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        let limit = this
            .pacer
            .as_ref()
            .map_or(MARKER_LEN, |p| p.frame_limit().clamp(1, MARKER_LEN));
        // The range's pages first (before the pacer counts it as sent, so a
        // cold read that returns Pending is not counted twice).
        if let Some(Piece::Range(r)) = this.pieces.front() {
            let n = r.len().min(limit as u64) as usize;
            if let Err(e) = ready!(poll_resident(
                &this.file,
                r.start,
                n,
                &mut this.warming,
                &mut this.resident_from,
                cx
            )) {
                return Poll::Ready(Some(Err(e)));
            }
        }
        if let Some(pacer) = &mut this.pacer {
            let next = match this.pieces.front() {
                None => return Poll::Ready(None),
                Some(Piece::Framing(b)) => b.len() as u64,
                Some(Piece::Range(r)) => r.len().min(limit as u64),
            };
            ready!(pacer.poll_ready(cx, next));
            pacer.sent(next);
        }
        let frame = match this.pieces.front_mut() {
            None => return Poll::Ready(None),
            Some(Piece::Framing(_)) => match this.pieces.pop_front() {
                Some(Piece::Framing(b)) => b,
                _ => unreachable!("front was framing"),
            },
            Some(Piece::Range(r)) => {
                let n = r.len().min(limit as u64) as usize;
                let r_start = r.start;
                r.start += n as u64;
                if r.is_empty() {
                    this.pieces.pop_front();
                }
                let queued = QueuedRange {
                    file: Arc::clone(&this.file),
                    offset: r_start,
                    len: n,
                    done: 0,
                    more: this.pieces.iter().any(|s| matches!(s, Piece::Range(_))),
                    bounce: this.bounce,
                };
                match this.queue.ranges() {
                    Ok(ranges) if ranges.len() >= MAX_QUEUED_RANGES => {
                        return Poll::Ready(Some(Err(copied(&format!(
                            "{} file ranges queued and none sent",
                            ranges.len()
                        )))))
                    }
                    Ok(mut ranges) => ranges.push_back(queued),
                    Err(e) => return Poll::Ready(Some(Err(e))),
                }
                Bytes::from_static(&marker()[..n])
            }
        };
        this.remaining -= frame.len() as u64;
        Poll::Ready(Some(Ok(Frame::data(frame))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body::Body as _;
    use hyper_util::rt::TokioIo;
    use std::io::Write as _;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A temporary file of `len` bytes, none of them zero (so a zero is always a
    /// placeholder that leaked).
    fn nonzero_file(name: &str, len: usize) -> (Arc<File>, Vec<u8>) {
        // Tests run in parallel threads and several use the same name: a counter
        // keeps one test from deleting the file another is about to open.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let content: Vec<u8> = (0..len).map(|i| (i % 251) as u8 + 1).collect();
        let path = std::env::temp_dir().join(format!(
            "bustapi-sendfile-{}-{n}-{name}",
            std::process::id()
        ));
        std::fs::File::create(&path)
            .unwrap()
            .write_all(&content)
            .unwrap();
        let file = File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        (Arc::new(file), content)
    }

    fn whole_body(file: &Arc<File>, len: u64, queue: &Arc<SendfileQueue>) -> SendfileBody {
        SendfileBody {
            file: Arc::clone(file),
            pieces: bustapi_files::BodyPlan::Whole(len).pieces().collect(),
            remaining: len,
            queue: Arc::clone(queue),
            warming: None,
            resident_from: None,
            pacer: None,
            bounce: false,
        }
    }

    async fn tcp_pair() -> (TcpStream, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap());
        let (client, accepted) = tokio::join!(client, listener.accept());
        (accepted.unwrap().0, client.unwrap())
    }

    /// Serves one file response through hyper over a FileSink and returns what
    /// the client received before the connection closed.
    async fn serve_through_hyper(writev: bool, content_len: usize) -> (Vec<u8>, Vec<u8>) {
        let (file, content) = nonzero_file(&format!("hyper-{writev}"), content_len);
        let (server, mut client) = tcp_pair().await;
        let queue = Arc::new(SendfileQueue::default());
        let body_queue = Arc::clone(&queue);
        let service = hyper::service::service_fn(move |_req| {
            let body = whole_body(&file, content_len as u64, &body_queue);
            async move { Ok::<_, std::convert::Infallible>(http::Response::new(body)) }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .writev(writev)
            .serve_connection(TokioIo::new(FileSink::new(server, queue)), service);
        let served = tokio::spawn(conn);
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut received = Vec::new();
        // A reset is also an ending; whatever arrived before it is in `received`.
        let _ = client.read_to_end(&mut received).await;
        let _ = served.await;
        (received, content)
    }

    #[tokio::test]
    async fn a_flattening_hyper_is_refused_before_any_zero_is_sent() {
        // hyper's flatten strategy copies body frames into its own buffer: the
        // placeholders must never reach the client as zeros under Content-Length.
        let (received, _) = serve_through_hyper(false, 300_000).await;
        let text = String::from_utf8_lossy(&received);
        assert!(
            !received.contains(&0),
            "zeros reached the client: {} bytes, starting {:?}",
            received.len(),
            &text[..text.len().min(200)]
        );
        assert!(received.len() < 300_000, "a full response arrived");
    }

    #[cfg(all(target_os = "linux", feature = "sendfile"))]
    #[tokio::test]
    async fn the_queue_strategy_sends_the_file_with_sendfile() {
        let before = bytes_sent();
        let (received, content) = serve_through_hyper(true, 300_000).await;
        let split = received.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        assert!(received.starts_with(b"HTTP/1.1 200 OK\r\n"));
        assert_eq!(&received[split..], &content[..]);
        // Other tests may send concurrently, so at least, not exactly.
        assert!(bytes_sent() - before >= content.len() as u64);
    }

    /// A FileSink whose queue holds one queued range of `len` bytes.
    async fn sink_with_queued_range(len: usize) -> (FileSink, TcpStream) {
        let (file, _) = nonzero_file(&format!("sink-{len}"), len);
        let (server, client) = tcp_pair().await;
        let queue = Arc::new(SendfileQueue::default());
        queue.ranges().unwrap().push_back(QueuedRange {
            file,
            offset: 0,
            len,
            done: 0,
            more: false,
            bounce: false,
        });
        (FileSink::new(server, queue), client)
    }

    #[tokio::test]
    async fn a_copied_placeholder_in_a_vectored_write_is_refused() {
        let (mut sink, _client) = sink_with_queued_range(4096).await;
        let mut flattened = b"HTTP/1.1 200 OK\r\ncontent-length: 4096\r\n\r\n".to_vec();
        flattened.extend_from_slice(&marker()[..4096]);
        let err = sink
            .write_vectored(&[IoSlice::new(&flattened)])
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        // A head on its own is fine (and the queued range is still owed).
        let head = b"HTTP/1.1 200 OK\r\n\r\n";
        assert_eq!(
            sink.write_vectored(&[IoSlice::new(head)]).await.unwrap(),
            head.len()
        );
    }

    #[tokio::test]
    async fn a_plain_write_while_ranges_are_queued_is_refused() {
        let (mut sink, _client) = sink_with_queued_range(10).await;
        let err = sink.write(b"HTTP/1.1 200 OK\r\n\r\n").await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[tokio::test]
    async fn a_flush_with_a_range_unsent_is_refused() {
        // A copied frame shorter than the canary is invisible in the bytes; it is
        // caught when hyper flushes with its range still queued.
        let (mut sink, _client) = sink_with_queued_range(10).await;
        let copy = marker()[..10].to_vec();
        let written = sink.write_vectored(&[IoSlice::new(&copy)]).await.unwrap();
        assert_eq!(written, 10);
        let err = sink.flush().await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[cfg(all(target_os = "linux", feature = "sendfile"))]
    fn corked(sink: &FileSink) -> bool {
        let mut value: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: a valid socket, and a c_int with its size.
        let rc = unsafe {
            libc::getsockopt(
                sink.tcp.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_CORK,
                (&mut value as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        assert_eq!(rc, 0);
        value != 0
    }

    #[cfg(all(target_os = "linux", feature = "sendfile"))]
    #[tokio::test]
    async fn the_socket_is_corked_before_the_head_and_uncorked_after_the_range() {
        let (mut sink, mut client) = sink_with_queued_range(100_000).await;
        assert!(!corked(&sink));
        let head = b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n";
        let frame = &marker()[..100_000];
        let n = sink
            .write_vectored(&[IoSlice::new(head), IoSlice::new(frame)])
            .await
            .unwrap();
        assert_eq!(n, head.len(), "the head goes out alone, ahead of the range");
        assert!(corked(&sink), "the head must leave corked");
        let mut at = 0;
        while at < frame.len() {
            at += sink.write(&frame[at..]).await.unwrap();
        }
        assert!(corked(&sink), "still corked until the flush");
        sink.flush().await.unwrap();
        assert!(!corked(&sink));
        let mut got = vec![0u8; head.len() + frame.len()];
        client.read_exact(&mut got).await.unwrap();
        assert!(
            !got[head.len()..].contains(&0),
            "file bytes, not placeholders"
        );
    }

    #[cfg(all(target_os = "linux", feature = "sendfile"))]
    #[tokio::test]
    async fn a_flush_between_ranges_of_one_body_keeps_the_cork() {
        // As hyper does: one frame queued, written and flushed, then the next.
        let (mut sink, _client) = sink_with_queued_range(1000).await;
        let file = Arc::clone(&sink.queue.ranges().unwrap()[0].file);
        sink.queue.ranges().unwrap()[0].more = true;
        for more in [true, false] {
            if !more {
                sink.queue.ranges().unwrap().push_back(QueuedRange {
                    file: Arc::clone(&file),
                    offset: 0,
                    len: 1000,
                    done: 0,
                    more,
                    bounce: false,
                });
            }
            let frame = &marker()[..1000];
            let mut at = 0;
            while at < frame.len() {
                at += sink.write(&frame[at..]).await.unwrap();
            }
            sink.flush().await.unwrap();
            assert_eq!(corked(&sink), more, "more ranges follow: {more}");
        }
    }

    #[tokio::test]
    async fn the_range_queue_is_bounded() {
        let len = (MAX_QUEUED_RANGES + 2) * MARKER_LEN;
        let file = Arc::new(tempfile_sparse(len as u64));
        let queue = Arc::new(SendfileQueue::default());
        let mut body = whole_body(&file, len as u64, &queue);
        // Awaited, not polled once: a range not yet in the page cache is read
        // on the blocking pool before its frame is yielded.
        for _ in 0..MAX_QUEUED_RANGES {
            let frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
            assert!(
                matches!(frame, Some(Ok(_))),
                "{:?}",
                frame.map(|f| f.map(|_| ()))
            );
        }
        let frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
        assert!(matches!(frame, Some(Err(_))));
    }

    fn tempfile_sparse(len: u64) -> File {
        let path =
            std::env::temp_dir().join(format!("bustapi-sendfile-{}-sparse", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        file.set_len(len).unwrap();
        std::fs::remove_file(&path).unwrap();
        file
    }

    #[test]
    fn the_canary_is_random_and_placeholders_start_with_it() {
        let head = &marker()[..CANARY_LEN];
        assert!(head.iter().any(|&b| b != 0));
        assert!(marker()[CANARY_LEN..].iter().take(4096).all(|&b| b == 0));
        assert_eq!(canary().find(&marker()[..MARKER_LEN]), Some(0));
    }
}
