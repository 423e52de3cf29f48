//! Zero-copy file bodies on plain HTTP/1.x connections: `sendfile(2)` behind
//! hyper's back.
//!
//! hyper writes whatever bytes a body yields; it has no notion of a file. So for
//! a file range the body yields *placeholder* frames that point into one shared,
//! never-written buffer ([`marker`]), and queues "send bytes `offset..offset+n` of
//! this file" on the connection's [`Slot`]. hyper hands body buffers to the socket
//! untouched, as `writev` slices over the same memory (its "queue" write
//! strategy, which it uses because [`FileSink`] reports vectored writes). When
//! [`FileSink`] sees a slice that lies inside the placeholder buffer, it does not
//! write those zeros: it calls `sendfile` for the queued range instead, and
//! reports the bytes the kernel sent. hyper keeps framing, keep-alive, pipelining
//! and Content-Length accounting; the file bytes never enter user space, and a
//! slow client pins no buffer (what 10,000 slow video clients need).
//!
//! Safety net: a placeholder slice is only ever turned into file bytes if its
//! position matches the queued job exactly; anything unexpected (no job, a
//! mismatched position, a file that shrank so `sendfile` returns 0) fails the
//! write, and hyper drops the connection. Placeholder zeros are never sent.
//! This path is used only for HTTP/1.x over plain TCP; TLS and HTTP/2 use the
//! ordinary read-and-copy body.

use bustapi_files::multipart::Piece;
use bustapi_files::{BodyPlan, ByteRange, FileBody, Source};
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, IoSlice};
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

/// Largest placeholder frame: one `sendfile` call sends at most this much.
pub const MARKER_LEN: usize = 1 << 20;

/// Bodies smaller than this are copied instead: the headers and a small body then
/// leave in one `writev`, where sendfile would cost a second system call (a
/// `bytes=0-1` probe is all overhead).
pub const SENDFILE_MIN: u64 = 64 * 1024;

/// The placeholder buffer. Allocated zeroed and never written or read, so its
/// pages are never even faulted in.
fn marker() -> &'static [u8] {
    static MARKER: OnceLock<&'static [u8]> = OnceLock::new();
    MARKER.get_or_init(|| Box::leak(vec![0u8; MARKER_LEN].into_boxed_slice()))
}

/// Offset of `slice` inside the placeholder buffer, if it lies there.
fn marker_offset(slice: &[u8]) -> Option<usize> {
    let base = marker().as_ptr() as usize;
    let p = slice.as_ptr() as usize;
    (p >= base && p + slice.len() <= base + MARKER_LEN && !slice.is_empty()).then(|| p - base)
}

struct Job {
    file: Arc<File>,
    offset: u64,
    len: usize,
    done: usize,
}

/// The per-connection queue of file ranges behind placeholder frames, in the
/// order hyper will write them.
#[derive(Default)]
pub struct Slot {
    jobs: Mutex<VecDeque<Job>>,
}

/// A TCP stream that turns placeholder writes into `sendfile`.
pub struct FileSink {
    tcp: TcpStream,
    slot: Arc<Slot>,
}

impl FileSink {
    pub fn new(tcp: TcpStream, slot: Arc<Slot>) -> Self {
        FileSink { tcp, slot }
    }

    fn poll_sendfile(
        &mut self,
        cx: &mut Context<'_>,
        at: usize,
        len: usize,
    ) -> Poll<io::Result<usize>> {
        let mut jobs = self
            .slot
            .jobs
            .lock()
            .map_err(|_| io::Error::other("sendfile queue poisoned"))?;
        let Some(job) = jobs.front_mut() else {
            return Poll::Ready(Err(io::Error::other(
                "placeholder frame without a file range",
            )));
        };
        if at != job.done || job.done + len > job.len {
            return Poll::Ready(Err(io::Error::other(
                "placeholder frame out of step with its file range",
            )));
        }
        let socket = self.tcp.as_raw_fd();
        let file = job.file.as_raw_fd();
        if job.done == 0 {
            // Like nginx's tcp_nopush: only full segments while the file streams;
            // small partial segments cost the receiver far more per byte.
            set_cork(socket, true);
        }
        loop {
            ready!(self.tcp.poll_write_ready(cx))?;
            let start = job.offset + job.done as u64;
            let sent = self.tcp.try_io(Interest::WRITABLE, || {
                let mut off = libc::off_t::try_from(start)
                    .map_err(|_| io::Error::other("offset too large"))?;
                // SAFETY: both descriptors are open for the duration of the call
                // (the job holds the file, self holds the socket).
                let n = unsafe { libc::sendfile(socket, file, &mut off, len) };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(n as usize)
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
                    job.done += n;
                    if job.done == job.len {
                        jobs.pop_front();
                        if jobs.is_empty() {
                            set_cork(socket, false); // flush the tail now
                        }
                    }
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

fn set_cork(socket: std::os::fd::RawFd, on: bool) {
    let value: libc::c_int = on.into();
    // SAFETY: a valid socket and a pointer to a c_int of the given size. Failure
    // only costs efficiency, never correctness, so the result is ignored.
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
        match marker_offset(buf) {
            Some(at) => this.poll_sendfile(cx, at, buf.len()),
            None => Pin::new(&mut this.tcp).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        // Ordinary bytes up to the first placeholder go out with writev; a
        // placeholder at the front goes out with sendfile.
        match bufs.iter().position(|b| marker_offset(b).is_some()) {
            Some(0) => {
                let at = marker_offset(&bufs[0]).unwrap_or(usize::MAX);
                this.poll_sendfile(cx, at, bufs[0].len())
            }
            Some(i) => Pin::new(&mut this.tcp).poll_write_vectored(cx, &bufs[..i]),
            None => Pin::new(&mut this.tcp).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        // Must stay true: it keeps hyper from copying body bytes into its own buffer.
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

enum Segment {
    Framing(Bytes),
    Range(ByteRange),
}

/// A file body that yields placeholder frames and queues their ranges on the slot.
pub struct SendfileBody {
    file: Arc<File>,
    segments: VecDeque<Segment>,
    remaining: u64,
    slot: Arc<Slot>,
}

impl SendfileBody {
    /// Converts a planned file body, if it streams from a file (bytes held in
    /// memory are cheaper to send as they are) and is large enough to gain.
    pub fn from_file_body(body: &FileBody, slot: &Arc<Slot>) -> Option<Self> {
        let Source::File(file) = body.source() else {
            return None;
        };
        if body.remaining() < SENDFILE_MIN {
            return None;
        }
        let mut segments = VecDeque::new();
        match body.plan() {
            BodyPlan::Empty => return None,
            BodyPlan::Whole => segments.push_back(Segment::Range(ByteRange {
                start: 0,
                end: body.total_len(),
            })),
            BodyPlan::Single(r) => segments.push_back(Segment::Range(*r)),
            BodyPlan::Multipart(m) => {
                for piece in m.pieces() {
                    segments.push_back(match piece {
                        Piece::Framing(b) => Segment::Framing(b.clone()),
                        Piece::Range(r) => Segment::Range(r),
                    });
                }
            }
        }
        // An empty range would become an empty frame: skip it.
        segments.retain(|s| !matches!(s, Segment::Range(r) if r.is_empty()));
        Some(SendfileBody {
            file: Arc::clone(file),
            segments,
            remaining: body.remaining(),
            slot: Arc::clone(slot),
        })
    }
}

impl http_body::Body for SendfileBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        let frame = match this.segments.front_mut() {
            None => return Poll::Ready(None),
            Some(Segment::Framing(_)) => match this.segments.pop_front() {
                Some(Segment::Framing(b)) => b,
                _ => unreachable!("front was framing"),
            },
            Some(Segment::Range(r)) => {
                let n = r.len().min(MARKER_LEN as u64) as usize;
                let job = Job {
                    file: Arc::clone(&this.file),
                    offset: r.start,
                    len: n,
                    done: 0,
                };
                match this.slot.jobs.lock() {
                    Ok(mut jobs) => jobs.push_back(job),
                    Err(_) => {
                        return Poll::Ready(Some(Err(io::Error::other("sendfile queue poisoned"))))
                    }
                }
                r.start += n as u64;
                if r.is_empty() {
                    this.segments.pop_front();
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
