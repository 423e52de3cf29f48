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
//! **Takeover** (owed bytes). A large unpaced body (one range above
//! [`BOUNCE_MAX`]) would otherwise keep hyper's connection, with its buffers,
//! alive for as long as a slow client takes to read it (hours for a video at
//! 4 KiB/s). So when hyper writes such a range's placeholder, the sink sends what
//! the socket takes now and accepts the rest as *owed*: it reports the whole
//! frame written, consecutive frames of the same file extend one owed range, and
//! hyper sees the body end and goes quiet. The owed bytes then keep flowing
//! whenever hyper polls the sink (reads included), and once hyper is quiet the
//! connection drops hyper and sends them in a lean loop (owed.rs). The checks
//! above hold unchanged, because an owed range has left the queue only by
//! matching a placeholder exactly: a copied placeholder still leaves its range
//! queued (caught by the canary or at the flush). Nothing overtakes owed bytes:
//! any write that does not extend them (a pipelined response's head, another
//! file's placeholder) and the shutdown wait until they are sent.
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
static TAKEN_OVER: AtomicU64 = AtomicU64::new(0);

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

/// File bytes this process has taken over from hyper (accepted as written and
/// owed, see the module docs); they are counted in [`bytes_sent`] as they go.
pub fn bytes_taken_over() -> u64 {
    TAKEN_OVER.load(Ordering::Relaxed)
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
/// The queued range a placeholder slice at offset `at`, `len` long, stands
/// for: it must be the front range, exactly where that range has got to.
/// Anything else means hyper copied, split or reordered placeholder bytes.
fn front_in_step(
    ranges: &mut VecDeque<QueuedRange>,
    at: usize,
    len: usize,
) -> io::Result<&mut QueuedRange> {
    let queued = ranges
        .front_mut()
        .ok_or_else(|| io::Error::other("placeholder frame without a file range"))?;
    if at != queued.done || queued.done + len > queued.len {
        return Err(io::Error::other(
            "placeholder frame out of step with its file range",
        ));
    }
    Ok(queued)
}

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

/// The error for a file that has nothing left where its response still needs
/// bytes; the connection is aborted, so say why (the client only sees a cut).
fn shrank(offset: u64) -> io::Error {
    let e = io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("file shrank while streaming: nothing left at offset {offset}"),
    );
    tracing::warn!("file response aborted: {e}");
    e
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
    /// Taken over by the sink when hyper writes its placeholder (see the
    /// module docs): an unpaced single range above [`BOUNCE_MAX`].
    takeover: bool,
}

/// File bytes the sink accepted from hyper as written and still has to send.
struct Owed {
    file: Arc<File>,
    /// Next byte to send, and how many are left.
    offset: u64,
    len: u64,
    /// Bytes from `offset` known to be in the page cache (checked or read a
    /// [`MARKER_LEN`] at a time, as the body checks its frames).
    resident: u64,
    /// A cold stretch being read into the page cache on the blocking pool.
    warming: Option<tokio::task::JoinHandle<io::Result<()>>>,
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
    /// Owed bytes went out since [`FileSink::take_progress`] was last asked.
    progress: bool,
    /// File bytes taken over from hyper. Inline, not boxed: a block allocated
    /// while hyper's buffers are live and kept after they are freed pins a page
    /// of the worker thread's malloc arena per connection (bench/notes/owed13.md).
    owed: Option<Owed>,
}

impl FileSink {
    pub fn new(tcp: TcpStream, queue: Arc<SendfileQueue>) -> Self {
        FileSink {
            tcp,
            queue,
            corked: false,
            more: false,
            progress: false,
            owed: None,
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

    /// `n` bytes of the front range went out (or were owed); a finished range
    /// leaves the queue, and whether its body has more ranges decides the cork.
    fn advance(&mut self, ranges: &mut VecDeque<QueuedRange>, n: usize) {
        let Some(queued) = ranges.front_mut() else {
            return;
        };
        queued.done += n;
        if queued.done == queued.len {
            self.more = queued.more;
            ranges.pop_front();
        }
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
        let queued = front_in_step(&mut ranges, at, placeholder.len())?;
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
                    self.advance(&mut ranges, body);
                    return Poll::Ready(Ok(w));
                }
                Ok(None) => return Poll::Ready(Err(shrank(start))),
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
        let queued = front_in_step(&mut ranges, at, len)?;
        if queued.takeover {
            let start = queued.offset + queued.done as u64;
            // Cloned only for a new owed range: following frames extend it.
            let file = self.owed.is_none().then(|| Arc::clone(&queued.file));
            self.advance(&mut ranges, len);
            drop(ranges);
            return self.poll_take_over(cx, file, start, len);
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
                Ok(0) => return Poll::Ready(Err(shrank(start))),
                Ok(n) => {
                    let counter = if bounce { &BOUNCED } else { &SENT };
                    counter.fetch_add(n as u64, Ordering::Relaxed);
                    self.advance(&mut ranges, n);
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl FileSink {
    /// Accepts `len` file bytes at `start` (a placeholder frame that matched
    /// its takeover range) as owed: extends what is owed when they follow on,
    /// else owes them afresh and sends what the socket takes now.
    fn poll_take_over(
        &mut self,
        cx: &mut Context<'_>,
        file: Option<Arc<File>>,
        start: u64,
        len: usize,
    ) -> Poll<io::Result<usize>> {
        TAKEN_OVER.fetch_add(len as u64, Ordering::Relaxed);
        if let Some(owed) = self.owed.as_mut() {
            // `poll_owed_first` lets a frame through while bytes are owed only
            // if it follows on from them.
            owed.len += len as u64;
            return Poll::Ready(Ok(len));
        }
        let Some(file) = file else {
            return Poll::Ready(Err(io::Error::other("takeover without its file")));
        };
        self.cork();
        self.owed = Some(Owed {
            file,
            offset: start,
            len: len as u64,
            resident: 0,
            warming: None,
        });
        if let Poll::Ready(Err(e)) = self.poll_send_owed(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(len))
    }

    /// Whether file bytes taken over from hyper are still to be sent.
    pub fn owes(&self) -> bool {
        self.owed.is_some()
    }

    /// Whether owed bytes went out since the last call (inside a write that
    /// still had to wait for the rest: progress the write timeout must see).
    pub fn take_progress(&mut self) -> bool {
        std::mem::take(&mut self.progress)
    }

    /// Sends owed bytes once: `true` when some went out, `false` when none are
    /// owed (any more), `Pending` while the socket is full (woken when it
    /// drains) or a cold stretch is being read into the page cache on the
    /// blocking pool (an IO thread never waits for the disk).
    pub fn poll_send_owed(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        let FileSink {
            tcp,
            owed: owed_slot,
            corked,
            more,
            progress,
            ..
        } = self;
        let Some(owed) = owed_slot.as_mut() else {
            return Poll::Ready(Ok(false));
        };
        while owed.resident == 0 {
            let stretch = owed.len.min(MARKER_LEN as u64);
            if let Some(task) = &mut owed.warming {
                let warmed = ready!(Pin::new(task).poll(cx));
                owed.warming = None;
                warmed
                    .unwrap_or_else(|e| Err(io::Error::other(format!("page-cache read: {e}"))))?;
                owed.resident = stretch;
            } else if page_cache::resident(&owed.file, owed.offset, stretch) {
                owed.resident = stretch;
            } else if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let (file, start) = (Arc::clone(&owed.file), owed.offset);
                owed.warming = Some(
                    runtime
                        .spawn_blocking(move || page_cache::warm(&file, start, stretch as usize)),
                );
            } else {
                owed.resident = stretch;
            }
        }
        let (socket, file) = (tcp.as_raw_fd(), owed.file.as_raw_fd());
        let (start, len) = (owed.offset, owed.resident as usize);
        loop {
            ready!(tcp.poll_write_ready(cx))?;
            match tcp.try_io(Interest::WRITABLE, || {
                sys::sendfile(socket, file, start, len)
            }) {
                Ok(0) => return Poll::Ready(Err(shrank(start))),
                Ok(n) => {
                    SENT.fetch_add(n as u64, Ordering::Relaxed);
                    *progress = true;
                    owed.offset += n as u64;
                    owed.len -= n as u64;
                    owed.resident -= n as u64;
                    if owed.len == 0 {
                        *owed_slot = None;
                        if *corked && !*more {
                            // The tail of the response leaves now.
                            sys::set_cork(socket, false);
                            *corked = false;
                        }
                    }
                    return Poll::Ready(Ok(true));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    /// Ready once nothing is owed.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while ready!(self.poll_send_owed(cx))? {}
        Poll::Ready(Ok(()))
    }

    /// Ready when a write starting with `first` may go ahead: nothing is owed,
    /// or `first` is the placeholder of the takeover range that follows on
    /// from what is owed (it extends it). Anything else waits until the owed
    /// bytes are sent, so that it cannot overtake them.
    fn poll_owed_first(&mut self, cx: &mut Context<'_>, first: &[u8]) -> Poll<io::Result<()>> {
        let Some(owed) = self.owed.as_ref() else {
            return Poll::Ready(Ok(()));
        };
        let follows_on = marker_offset(first).is_some_and(|at| {
            self.queue.ranges().is_ok_and(|ranges| {
                ranges.front().is_some_and(|q| {
                    q.takeover
                        && at == q.done
                        && Arc::ptr_eq(&q.file, &owed.file)
                        && q.offset + q.done as u64 == owed.offset + owed.len
                })
            })
        });
        if follows_on {
            return Poll::Ready(Ok(()));
        }
        self.poll_drain(cx)
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
        let this = self.get_mut();
        // hyper reads between and after responses: owed bytes keep flowing
        // while it lives (and the task is woken when the socket drains).
        if this.owed.is_some() {
            if let Poll::Ready(Err(e)) = this.poll_drain(cx) {
                return Poll::Ready(Err(e));
            }
        }
        Pin::new(&mut this.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for FileSink {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_owed_first(cx, buf))?;
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
        ready!(this.poll_owed_first(cx, bufs.first().map_or(&[][..], |b| &b[..])))?;
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
        // Owed bytes are not unsent placeholders: they were taken over (the
        // check above still catches any placeholder that was not), and they
        // uncork the socket themselves once sent.
        if this.corked && !this.more && this.owed.is_none() {
            // End of the response's file bytes: let the tail go out now.
            sys::set_cork(this.tcp.as_raw_fd(), false);
            this.corked = false;
        }
        Pin::new(&mut this.tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // The end of the stream comes after every owed byte.
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.tcp).poll_shutdown(cx)
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
    /// The sink takes the range over (see the module docs): its frames are not
    /// warmed here, the sink warms what it owes as it sends it.
    takeover: bool,
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
        let pieces: VecDeque<Piece> = body.plan().pieces().collect();
        // One range and nothing else: multipart framing between ranges would
        // have to wait for the owed bytes anyway.
        let single_range = matches!(pieces.front(), Some(Piece::Range(_))) && pieces.len() == 1;
        Some(SendfileBody {
            file: Arc::clone(file),
            pieces,
            remaining: body.remaining(),
            queue: Arc::clone(queue),
            warming: None,
            resident_from: None,
            pacer: body.rate().map(Pacer::new),
            bounce: (BOUNCE_MIN..=BOUNCE_MAX).contains(&body.remaining()),
            takeover: single_range && body.rate().is_none() && body.remaining() > BOUNCE_MAX,
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
        if let (Some(Piece::Range(r)), false) = (this.pieces.front(), this.takeover) {
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
                    takeover: this.takeover,
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
pub(crate) mod tests {
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
            takeover: false,
        }
    }

    pub(crate) async fn tcp_pair() -> (TcpStream, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap());
        let (client, accepted) = tokio::join!(client, listener.accept());
        (accepted.unwrap().0, client.unwrap())
    }

    /// Serves one file response through hyper over a FileSink and returns what
    /// the client received before the connection closed.
    async fn serve_through_hyper(writev: bool, content_len: usize) -> (Vec<u8>, Vec<u8>) {
        let request = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        let (received, content, _) = hyper_exchange(writev, false, content_len, request).await;
        (received, content)
    }

    /// Sends `request` to hyper serving a file body of `content_len` bytes
    /// (taken over by the sink if `takeover`) over a FileSink; returns what the
    /// client received until the connection closed, the file, and how the
    /// connection ended.
    async fn hyper_exchange(
        writev: bool,
        takeover: bool,
        content_len: usize,
        request: &[u8],
    ) -> (Vec<u8>, Vec<u8>, Result<(), hyper::Error>) {
        let (file, content) = nonzero_file(&format!("hyper-{writev}-{takeover}"), content_len);
        let (server, mut client) = tcp_pair().await;
        let queue = Arc::new(SendfileQueue::default());
        let body_queue = Arc::clone(&queue);
        let service = hyper::service::service_fn(move |_req| {
            let mut body = whole_body(&file, content_len as u64, &body_queue);
            body.takeover = takeover;
            async move { Ok::<_, std::convert::Infallible>(http::Response::new(body)) }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .writev(writev)
            .serve_connection(TokioIo::new(FileSink::new(server, queue)), service);
        let served = tokio::spawn(conn);
        client.write_all(request).await.unwrap();
        let mut received = Vec::new();
        // A reset is also an ending; whatever arrived before it is in `received`.
        let _ = client.read_to_end(&mut received).await;
        let served = served.await.unwrap();
        (received, content, served)
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
            takeover: false,
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
                    takeover: false,
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

    /// A FileSink whose queue holds `frames` takeover ranges of one file,
    /// each one placeholder frame of [`MARKER_LEN`], as a large unpaced body
    /// queues them.
    async fn sink_with_takeover(frames: usize) -> (FileSink, TcpStream, Vec<u8>) {
        let (file, content) = nonzero_file("takeover", frames * MARKER_LEN);
        let (server, client) = tcp_pair().await;
        let queue = Arc::new(SendfileQueue::default());
        for i in 0..frames {
            queue.ranges().unwrap().push_back(QueuedRange {
                file: Arc::clone(&file),
                offset: (i * MARKER_LEN) as u64,
                len: MARKER_LEN,
                done: 0,
                more: i + 1 < frames,
                bounce: false,
                takeover: true,
            });
        }
        (FileSink::new(server, queue), client, content)
    }

    /// Writes `frames` whole placeholder frames, as hyper would, each accepted at once.
    #[cfg(all(target_os = "linux", feature = "sendfile"))]
    async fn owe_all_frames(sink: &mut FileSink, frames: usize) {
        for _ in 0..frames {
            let n = sink
                .write_vectored(&[IoSlice::new(&marker()[..MARKER_LEN])])
                .await
                .unwrap();
            assert_eq!(n, MARKER_LEN);
        }
    }

    /// Polls once, without waiting.
    #[cfg(all(target_os = "linux", feature = "sendfile"))]
    async fn poll_once<R>(mut f: impl FnMut(&mut Context<'_>) -> Poll<R>) -> Poll<R> {
        std::future::poll_fn(|cx| Poll::Ready(f(cx))).await
    }

    #[cfg(all(target_os = "linux", feature = "sendfile"))]
    #[tokio::test]
    async fn taken_over_frames_are_written_at_once_and_owed_as_one_range() {
        // 24 MiB: far more than loopback's socket buffers take, so most is owed.
        let (mut sink, mut client, content) = sink_with_takeover(24).await;
        let head = b"HTTP/1.1 200 OK\r\ncontent-length: 25165824\r\n\r\n";
        assert_eq!(
            sink.write_vectored(&[IoSlice::new(head)]).await.unwrap(),
            head.len()
        );
        for _ in 0..24 {
            let frame = &marker()[..MARKER_LEN];
            let n =
                poll_once(|cx| Pin::new(&mut sink).poll_write_vectored(cx, &[IoSlice::new(frame)]))
                    .await;
            assert!(
                matches!(n, Poll::Ready(Ok(MARKER_LEN))),
                "a whole frame accepted at once"
            );
        }
        assert!(sink.queue.ranges().unwrap().is_empty());
        assert!(sink.owes());
        // hyper's flush after the body: not a copied placeholder, nothing refused.
        assert!(matches!(
            poll_once(|cx| Pin::new(&mut sink).poll_flush(cx)).await,
            Poll::Ready(Ok(()))
        ));
        let reader = tokio::spawn(async move {
            let mut got = vec![0u8; head.len() + content.len()];
            client.read_exact(&mut got).await.unwrap();
            (got, content)
        });
        assert!(crate::owed::send(&mut sink).await.unwrap().is_some());
        assert!(!sink.owes());
        assert!(
            !corked(&sink),
            "the tail is uncorked once owed bytes are sent"
        );
        let (got, content) = reader.await.unwrap();
        assert_eq!(&got[..head.len()], head);
        assert!(
            got[head.len()..] == content[..],
            "file bytes in order, no zeros"
        );
    }

    #[cfg(all(target_os = "linux", feature = "sendfile"))]
    #[tokio::test]
    async fn an_ordinary_write_waits_behind_owed_bytes() {
        let (mut sink, mut client, content) = sink_with_takeover(24).await;
        owe_all_frames(&mut sink, 24).await;
        assert!(sink.owes());
        // A pipelined response's head cannot go out before the file bytes.
        let next = b"HTTP/1.1 204 No Content\r\n\r\n";
        let polled =
            poll_once(|cx| Pin::new(&mut sink).poll_write_vectored(cx, &[IoSlice::new(next)]))
                .await;
        assert!(polled.is_pending());
        let reader = tokio::spawn(async move {
            let mut got = vec![0u8; content.len() + next.len()];
            client.read_exact(&mut got).await.unwrap();
            (got, content)
        });
        assert_eq!(
            sink.write_vectored(&[IoSlice::new(next)]).await.unwrap(),
            next.len()
        );
        let (got, content) = reader.await.unwrap();
        assert!(got[..content.len()] == content[..]);
        assert_eq!(&got[content.len()..], next);
    }

    #[cfg(all(target_os = "linux", feature = "sendfile"))]
    #[tokio::test]
    async fn a_write_behind_owed_bytes_that_flow_is_not_timed_out() {
        // The pipelined head waits far longer than the write timeout, but owed
        // bytes keep going out meanwhile: progress, so no timeout.
        use crate::write_timeout::WriteTimeout;
        let (mut sink, mut client, content) = sink_with_takeover(24).await;
        owe_all_frames(&mut sink, 24).await;
        let limit = std::time::Duration::from_millis(300);
        let mut guarded = WriteTimeout::new(sink, limit);
        let next = b"HTTP/1.1 204 No Content\r\n\r\n";
        let reader = tokio::spawn(async move {
            // ~24 MiB at 64 KiB per 5 ms: about two seconds, many limits.
            let mut got = Vec::new();
            let mut buf = vec![0u8; 64 * 1024];
            while got.len() < content.len() + next.len() {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                let n = client.read(&mut buf).await.unwrap();
                assert!(n > 0);
                got.extend_from_slice(&buf[..n]);
            }
            (got, content)
        });
        let started = std::time::Instant::now();
        guarded.write_all(next).await.unwrap();
        assert!(
            started.elapsed() > limit,
            "the head really waited behind the file"
        );
        let (got, content) = reader.await.unwrap();
        assert!(got[..content.len()] == content[..]);
        assert_eq!(&got[content.len()..], next);
    }

    #[tokio::test]
    async fn a_copied_placeholder_of_a_takeover_range_is_still_refused() {
        let (mut sink, _client, _) = sink_with_takeover(1).await;
        let copy = marker()[..10].to_vec();
        assert_eq!(
            sink.write_vectored(&[IoSlice::new(&copy)]).await.unwrap(),
            10
        );
        assert!(
            !sink.owes(),
            "a copy is not a placeholder: nothing taken over"
        );
        let err = sink.flush().await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[cfg(all(target_os = "linux", feature = "sendfile"))]
    #[tokio::test]
    async fn a_file_that_shrinks_while_owed_fails_the_send() {
        let len = 4 * MARKER_LEN;
        let path =
            std::env::temp_dir().join(format!("bustapi-sendfile-{}-shrinks", std::process::id()));
        std::fs::write(&path, vec![1u8; len]).unwrap();
        let file = Arc::new(File::open(&path).unwrap());
        let (server, mut client) = tcp_pair().await;
        let queue = Arc::new(SendfileQueue::default());
        let mut sink = FileSink::new(server, Arc::clone(&queue));
        // The socket full of other bytes first, so that nothing of the file is
        // in flight when it shrinks (bytes the kernel already holds by
        // reference to the page cache are beyond any server's control).
        let filler = vec![2u8; 1 << 16];
        let mut filled = 0;
        while let Poll::Ready(n) = poll_once(|cx| Pin::new(&mut sink).poll_write(cx, &filler)).await
        {
            filled += n.unwrap();
        }
        for i in 0..4 {
            queue.ranges().unwrap().push_back(QueuedRange {
                file: Arc::clone(&file),
                offset: (i * MARKER_LEN) as u64,
                len: MARKER_LEN,
                done: 0,
                more: i < 3,
                bounce: false,
                takeover: true,
            });
            let n = sink
                .write_vectored(&[IoSlice::new(&marker()[..MARKER_LEN])])
                .await
                .unwrap();
            assert_eq!(n, MARKER_LEN);
        }
        assert!(sink.owes());
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(4096)
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            let _ = client.read_to_end(&mut got).await;
            got
        });
        let err = crate::owed::send(&mut sink).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        drop(sink);
        let got = reader.await.unwrap();
        assert_eq!(
            got.len(),
            filled + 4096,
            "what the file still had, then a cut"
        );
        assert!(!got.contains(&0), "never zeros");
    }

    #[cfg(all(target_os = "linux", feature = "sendfile"))]
    #[tokio::test]
    async fn hyper_finishes_a_taken_over_body_and_the_owed_bytes_follow() {
        // Plain hyper over the sink (no idle phases): owed bytes flow while
        // hyper reads for the next request, and its shutdown waits for them.
        let len = 20 * MARKER_LEN + 12345;
        let request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        let (mut received, content, served) = hyper_exchange(true, true, len, request).await;
        served.unwrap();
        for _ in 0..2 {
            let split = received.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            assert!(received.starts_with(b"HTTP/1.1 200 OK\r\n"));
            assert!(received[split..split + len] == content[..]);
            received.drain(..split + len);
        }
        assert!(received.is_empty());
    }

    #[test]
    fn the_canary_is_random_and_placeholders_start_with_it() {
        let head = &marker()[..CANARY_LEN];
        assert!(head.iter().any(|&b| b != 0));
        assert!(marker()[CANARY_LEN..].iter().take(4096).all(|&b| b == 0));
        assert_eq!(canary().find(&marker()[..MARKER_LEN]), Some(0));
    }
}
