//! [`FileBody`]: an `http_body::Body` that streams a [`BodyPlan`].
//!
//! File bytes are read with positioned reads (64-bit offsets, so files past
//! 4 GiB work), [`CHUNK_SIZE`] bytes at a time: inline when the bytes are in the
//! page cache (`preadv2(RWF_NOWAIT)` on Linux), otherwise on Tokio's blocking
//! pool, so a disk read never stalls an IO thread. One read is kept in flight: as soon as a chunk is handed to the
//! server, the next read starts, so disk and socket work overlap while memory
//! stays bounded at about two chunks per response, whatever the file size.
//!
//! On a multiplexed connection (HTTP/2) that read-ahead is a liability: the
//! server polls a stream's body before it knows the peer will accept its bytes,
//! so a peer that never opens a stream's flow-control window would pin two full
//! chunks per stream. [`FileBody::read_on_demand`] switches a body to small
//! chunks, each read only when the body is polled.
//! Multipart delimiters and part headers are interleaved on the fly.
//!
//! If the file turns out shorter than planned (it was truncated while
//! streaming), the body yields an `io::Error` instead of padding or sending
//! anything that was not read from the file. The response's `Content-Length`
//! can then no longer be honoured, and the server must abort the connection;
//! hyper does exactly that when a body errors.
//!
//! [`FileBody::pace`] holds the body to a rate (nginx's `limit_rate`, see
//! [`crate::pace`]): frames shrink to a tenth of a second of data and wait on a
//! timer, so a paced body holds no thread and no more memory than an unpaced one.
//!
//! Dropping the body releases the file: an in-flight read finishes on its
//! blocking thread and then drops its handle to the file.
//!
//! Servers that can use `sendfile(2)` for plain connections can inspect
//! [`FileBody::source`] and [`FileBody::plan`] and bypass the read loop,
//! sending the plan's [`BodyPlan::pieces`] exactly as this body would.

use crate::pace::{Pacer, Rate};
use crate::plan::{BodyPlan, Piece};
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::collections::VecDeque;
use std::fs::File;
use std::future::Future;
use std::io;
use std::os::unix::fs::FileExt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::task::JoinHandle;

/// Bytes per read. Large enough that per-read overhead (a thread hand-off and
/// a syscall) is small next to the copy, small enough that a slow client does
/// not pin much memory.
pub const CHUNK_SIZE: usize = 256 * 1024;

/// Where the representation's bytes come from.
#[derive(Debug, Clone)]
pub enum BodySource {
    /// An open file, read with positioned reads (shared, never seeked).
    File(Arc<File>),
    /// Bytes already in memory; ranges are zero-copy slices.
    Bytes(Bytes),
}

/// A read of the front range, started but not yet delivered.
enum Read {
    /// On the blocking pool.
    Pending(JoinHandle<io::Result<Bytes>>),
    /// Done inline (no Tokio runtime was available).
    Done(io::Result<Bytes>),
}

/// Streams the bytes a [`BodyPlan`] selects from a [`BodySource`].
pub struct FileBody {
    source: BodySource,
    plan: BodyPlan,
    /// What remains to be sent, from [`BodyPlan::pieces`]; the front range
    /// shrinks as its bytes go out.
    pieces: VecDeque<Piece>,
    /// Bytes not yet yielded; `size_hint` is exact.
    remaining: u64,
    read: Option<Read>,
    /// Largest read, in bytes.
    chunk_size: usize,
    /// Start the next read as soon as a chunk is handed over.
    read_ahead: bool,
    pacer: Option<Pacer>,
    /// Bytes produced but held back by the pacer.
    held: Bytes,
}

impl FileBody {
    /// A body producing `plan` from `source`.
    ///
    /// Polling must happen inside a Tokio runtime for reads to run on the
    /// blocking pool; outside one, reads are done inline.
    pub fn new(source: BodySource, plan: BodyPlan) -> Self {
        FileBody {
            source,
            pieces: plan.pieces().collect(),
            remaining: plan.content_length(),
            plan,
            read: None,
            chunk_size: CHUNK_SIZE,
            read_ahead: true,
            pacer: None,
            held: Bytes::new(),
        }
    }

    /// Paces the body to `rate` (call before the first poll).
    pub fn pace(&mut self, rate: Rate) {
        let pacer = Pacer::new(rate);
        // Reads need not be larger than what a paced frame carries.
        let frame = (rate.bytes_per_second / 10).max(1024);
        self.chunk_size = self
            .chunk_size
            .min(usize::try_from(frame).unwrap_or(CHUNK_SIZE));
        self.pacer = Some(pacer);
    }

    /// The rate this body is paced to, if any (zero-copy bodies honour it too).
    pub fn rate(&self) -> Option<Rate> {
        self.pacer.as_ref().map(Pacer::rate)
    }

    /// Reads at most `chunk_size` bytes at a time (at least 1), and each read
    /// only when the body is polled, never ahead. A consumer that stops polling
    /// then holds at most one chunk of this body. Meant for multiplexed
    /// connections, where a stalled stream must cost little; call it before the
    /// first poll.
    pub fn read_on_demand(&mut self, chunk_size: usize) {
        self.chunk_size = chunk_size.max(1);
        self.read_ahead = false;
    }

    /// The source (e.g. to `sendfile` from the file instead of polling).
    pub fn source(&self) -> &BodySource {
        &self.source
    }

    /// The plan this body streams.
    pub fn plan(&self) -> &BodyPlan {
        &self.plan
    }

    /// Bytes not yet produced.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// Marks `n` bytes of the front piece as sent.
    fn advance(&mut self, n: u64) {
        self.remaining -= n;
        match self.pieces.front_mut() {
            Some(Piece::Range(r)) if r.len() > n => r.start += n,
            _ => {
                self.pieces.pop_front();
            }
        }
    }

    /// After an error nothing more is sent; hyper aborts the connection.
    fn fail(&mut self, e: io::Error) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.pieces.clear();
        self.remaining = 0;
        self.read = None;
        self.held = Bytes::new();
        Poll::Ready(Some(Err(e)))
    }

    /// Starts reading the next chunk of the front range, if the front is a
    /// file range and no read is in flight.
    fn start_read(&mut self) {
        let (None, BodySource::File(file), Some(Piece::Range(r))) =
            (&self.read, &self.source, self.pieces.front())
        else {
            return;
        };
        let want = r.len().min(self.chunk_size as u64) as usize;
        let offset = r.start;
        // Bytes already in the page cache are read right here: a hop to the
        // blocking pool costs two context switches, far more than the copy.
        if let Some(result) = read_cached(file, offset, want) {
            self.read = Some(Read::Done(result));
            return;
        }
        let file = Arc::clone(file);
        self.read = Some(match tokio::runtime::Handle::try_current() {
            Ok(rt) => Read::Pending(rt.spawn_blocking(move || read_chunk(&file, offset, want))),
            Err(_) => Read::Done(read_chunk(&file, offset, want)),
        });
    }
}

/// Reads exactly `want` bytes at `offset`, or fails: a short read means the
/// file shrank under us, and the bytes we promised no longer exist.
fn read_chunk(file: &File, offset: u64, want: usize) -> io::Result<Bytes> {
    // `vec!` of zeros is a calloc, cheap for fresh pages; the zeroing buys a
    // read without unsafe code into uninitialised memory.
    let mut buf = vec![0u8; want];
    match file.read_exact_at(&mut buf, offset) {
        Ok(()) => Ok(Bytes::from(buf)),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("file shrank while streaming: fewer than {want} bytes at offset {offset}"),
        )),
        Err(e) => Err(e),
    }
}

/// Reads what of `offset..offset+want` is in the page cache without blocking
/// (`preadv2` with `RWF_NOWAIT`). `None` means "would block" (or the kernel lacks
/// the flag): the caller reads on the blocking pool instead. A short read is
/// returned as is; the rest is read next time.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn read_cached(file: &File, offset: u64, want: usize) -> Option<io::Result<Bytes>> {
    use std::os::fd::AsRawFd;
    use std::sync::atomic::{AtomicBool, Ordering};
    static UNSUPPORTED: AtomicBool = AtomicBool::new(false);
    if UNSUPPORTED.load(Ordering::Relaxed) {
        return None;
    }
    let mut buf = Vec::<u8>::with_capacity(want);
    let iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: want,
    };
    let offset = libc::off_t::try_from(offset).ok()?;
    // SAFETY: the iovec points at `want` bytes of spare capacity owned by `buf`,
    // which outlives the call; the kernel writes at most `iov_len` bytes.
    let n = unsafe { libc::preadv2(file.as_raw_fd(), &iov, 1, offset, libc::RWF_NOWAIT) };
    if n < 0 {
        let err = io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::EAGAIN) => None,
            Some(libc::EOPNOTSUPP) | Some(libc::EINVAL) | Some(libc::ENOSYS) => {
                UNSUPPORTED.store(true, Ordering::Relaxed);
                None
            }
            _ => Some(Err(err)),
        };
    }
    if n == 0 {
        // End of file before the planned end: let the blocking path report it
        // with its full message (and double-check without NOWAIT).
        return None;
    }
    // SAFETY: the kernel initialised the first `n` bytes, and n <= want.
    unsafe { buf.set_len(n as usize) };
    Some(Ok(Bytes::from(buf)))
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn read_cached(_file: &File, _offset: u64, _want: usize) -> Option<io::Result<Bytes>> {
    None
}

impl FileBody {
    /// The next frame as the pacer allows it: a produced frame is held and
    /// handed out in pieces, each once its time has come.
    fn poll_paced(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if self.held.is_empty() {
            match std::task::ready!(self.poll_unpaced(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => self.held = data,
                    Err(frame) => return Poll::Ready(Some(Ok(frame))),
                },
                other => return Poll::Ready(other),
            }
        }
        let Some(pacer) = self.pacer.as_mut() else {
            return Poll::Ready(Some(Ok(Frame::data(std::mem::take(&mut self.held)))));
        };
        let n = self.held.len().min(pacer.frame_limit().max(1));
        std::task::ready!(pacer.poll_ready(cx, n as u64));
        pacer.sent(n as u64);
        Poll::Ready(Some(Ok(Frame::data(self.held.split_to(n)))))
    }

    fn poll_unpaced(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self;
        loop {
            // A read in flight is always for the front range: deliver it first.
            if let Some(read) = this.read.take() {
                let result = match read {
                    Read::Done(result) => result,
                    Read::Pending(mut handle) => match Pin::new(&mut handle).poll(cx) {
                        Poll::Pending => {
                            this.read = Some(Read::Pending(handle));
                            return Poll::Pending;
                        }
                        Poll::Ready(Ok(result)) => result,
                        Poll::Ready(Err(join)) => Err(io::Error::other(join)),
                    },
                };
                return match result {
                    Ok(chunk) => {
                        this.advance(chunk.len() as u64);
                        if this.read_ahead {
                            this.start_read(); // overlap the next read with this write
                        }
                        Poll::Ready(Some(Ok(Frame::data(chunk))))
                    }
                    Err(e) => this.fail(e),
                };
            }

            let front = match this.pieces.front() {
                None => return Poll::Ready(None),
                Some(Piece::Framing(b)) => Ok(b.clone()),
                Some(Piece::Range(r)) => Err(*r),
            };
            match (front, &this.source) {
                (Ok(framing), _) => {
                    this.advance(framing.len() as u64);
                    if this.read_ahead {
                        this.start_read();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(framing))));
                }
                (Err(r), BodySource::Bytes(bytes)) => {
                    if r.end > bytes.len() as u64 {
                        return this.fail(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!(
                                "source has {} bytes, plan needs {}..{}",
                                bytes.len(),
                                r.start,
                                r.end
                            ),
                        ));
                    }
                    let chunk = bytes.slice(r.start as usize..r.end as usize);
                    this.advance(r.len());
                    return Poll::Ready(Some(Ok(Frame::data(chunk))));
                }
                (Err(_), BodySource::File(_)) => this.start_read(),
            }
        }
    }
}

impl Body for FileBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        if this.pacer.is_none() {
            return this.poll_unpaced(cx);
        }
        this.poll_paced(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0 && self.held.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining + self.held.len() as u64)
    }
}

impl std::fmt::Debug for FileBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileBody")
            .field("source", &self.source)
            .field("plan", &self.plan)
            .field("remaining", &self.remaining)
            .field("read_in_flight", &self.read.is_some())
            .field("chunk_size", &self.chunk_size)
            .field("read_ahead", &self.read_ahead)
            .field("pacer", &self.pacer)
            .field("held", &self.held.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync_unpin<T: Send + Sync + Unpin + 'static>() {}

    #[test]
    fn body_is_send_sync_unpin() {
        assert_send_sync_unpin::<FileBody>();
    }
}
