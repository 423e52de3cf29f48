//! Spots HTTP/1.1 request heads that carry both `Content-Length` and
//! `Transfer-Encoding`, which hyper resolves before the engine can see them.
//!
//! hyper's HTTP/1 parser (`proto/h1/role.rs`, `Server::parse`) frames such a
//! request by `Transfer-Encoding` and silently drops `Content-Length` from the
//! headers it hands on (whichever comes first), only disabling keep-alive. The
//! engine's [`framing::check`](crate::framing::check) therefore never sees the
//! conflict, and the request runs. We refuse it instead (400 and close, as nginx
//! does): a proxy in front may have framed it by `Content-Length`, and answering
//! it at all is how request smuggling starts.
//!
//! [`Watched`] wraps a connection's byte stream and follows HTTP/1 framing the
//! way hyper does (heads parsed with `httparse`, hyper's own parser; bodies
//! skipped by `Content-Length` or by chunked framing) and records which request
//! on the connection, counted from 1, had both fields. hyper handles an HTTP/1
//! connection's requests strictly in order, so the service counts its requests
//! and refuses the one that was marked. Anything this watcher does not follow
//! exactly (HTTP/2, an upgrade, a head hyper will reject anyway) turns it off for
//! the rest of the connection: it may miss a conflict, never invent one.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Longest chunk-size line (with extensions) followed before giving up.
const MAX_CHUNK_LINE: usize = 4096;

/// What the service learns from the watcher, shared per connection.
#[derive(Debug, Default)]
pub struct Conflicts {
    /// The number (from 1) of the request whose head had both fields; 0 if none.
    marked: AtomicU64,
    /// Requests the service has taken so far.
    taken: AtomicU64,
}

impl Conflicts {
    /// Called once per HTTP/1 request, in order: whether this request's head
    /// carried both `Content-Length` and `Transfer-Encoding`.
    pub fn next_request_conflicts(&self) -> bool {
        let n = self.taken.fetch_add(1, Ordering::Relaxed) + 1;
        self.marked.load(Ordering::Acquire) == n
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Head,
    Body(u64),
    ChunkSize,
    ChunkData(u64),
    ChunkEnd,
    Trailers,
    /// Not following this connection any more.
    Off,
}

/// Follows request framing over the bytes a connection reads.
#[derive(Debug)]
struct Framing {
    state: State,
    /// Bytes of the current head, chunk-size line, chunk end or trailers.
    pending: Vec<u8>,
    /// How far `pending` was searched for a head's end.
    searched: usize,
    max_head: usize,
    heads: u64,
    conflicts: Arc<Conflicts>,
}

impl Framing {
    fn new(max_head: usize, conflicts: Arc<Conflicts>) -> Self {
        Framing {
            state: State::Head,
            pending: Vec::new(),
            searched: 0,
            max_head,
            heads: 0,
            conflicts,
        }
    }

    fn feed(&mut self, mut input: &[u8]) {
        loop {
            match self.state {
                State::Off => return,
                State::Body(left) | State::ChunkData(left) => {
                    // Bytes carried over in `pending` come before new input.
                    let n = if !self.pending.is_empty() {
                        let n = left.min(self.pending.len() as u64) as usize;
                        self.pending.drain(..n);
                        n
                    } else if !input.is_empty() {
                        let n = left.min(input.len() as u64) as usize;
                        input = &input[n..];
                        n
                    } else {
                        return;
                    };
                    let left = left - n as u64;
                    self.state = match (self.state, left) {
                        (State::Body(_), 0) => State::Head,
                        (State::Body(_), _) => State::Body(left),
                        (_, 0) => State::ChunkEnd,
                        _ => State::ChunkData(left),
                    };
                }
                state => {
                    self.pending.extend_from_slice(input);
                    input = &[];
                    let before = self.pending.len();
                    match state {
                        State::Head => self.head(),
                        State::ChunkSize => self.chunk_size(),
                        State::ChunkEnd => self.chunk_end(),
                        _ => self.trailers(),
                    }
                    if self.state == state && self.pending.len() == before {
                        return; // needs more bytes
                    }
                }
            }
        }
    }

    fn off(&mut self) {
        self.state = State::Off;
        self.pending = Vec::new();
    }

    fn consume(&mut self, n: usize, next: State) {
        self.pending.drain(..n);
        self.searched = 0;
        self.state = next;
    }

    fn head(&mut self) {
        // Parse only once a blank line has arrived: a head sent a byte at a time
        // must not cost a parse per byte.
        let from = self.searched.saturating_sub(2);
        let ends = self.pending[from..]
            .windows(2)
            .any(|w| w == b"\n\n" || w == b"\n\r");
        self.searched = self.pending.len();
        if !ends {
            if self.pending.len() > self.max_head {
                self.off();
            }
            return;
        }
        let mut fields = [httparse::EMPTY_HEADER; 128];
        let mut req = httparse::Request::new(&mut fields);
        let len = match req.parse(&self.pending) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) if self.pending.len() <= self.max_head => return,
            _ => return self.off(), // hyper answers this with an error and closes
        };
        self.heads += 1;
        let mut content_length = None;
        let (mut has_cl, mut te) = (false, None);
        for field in req.headers.iter() {
            if field.name.eq_ignore_ascii_case("content-length") {
                has_cl = true;
                content_length = content_length.or_else(|| digits(field.value));
            } else if field.name.eq_ignore_ascii_case("transfer-encoding") {
                te = Some(field.value);
            } else if field.name.eq_ignore_ascii_case("upgrade") {
                return self.off();
            }
        }
        if req.method == Some("CONNECT") {
            return self.off();
        }
        let next = match (te, has_cl, content_length) {
            (Some(_), true, _) => {
                // hyper closes the connection after this request: nothing later
                // on it is ever parsed.
                self.conflicts.marked.store(self.heads, Ordering::Release);
                return self.off();
            }
            (Some(te), false, _) if ends_chunked(te) => State::ChunkSize,
            (Some(_), false, _) => return self.off(),
            (None, true, Some(0)) | (None, false, _) => State::Head,
            (None, true, Some(n)) => State::Body(n),
            (None, true, None) => return self.off(),
        };
        self.consume(len, next);
    }

    fn chunk_size(&mut self) {
        match httparse::parse_chunk_size(&self.pending) {
            Ok(httparse::Status::Complete((len, 0))) => self.consume(len, State::Trailers),
            Ok(httparse::Status::Complete((len, size))) => {
                self.consume(len, State::ChunkData(size))
            }
            Ok(httparse::Status::Partial) if self.pending.len() <= MAX_CHUNK_LINE => {}
            _ => self.off(),
        }
    }

    fn chunk_end(&mut self) {
        match self.pending.get(..2) {
            Some(b"\r\n") => self.consume(2, State::ChunkSize),
            None if b"\r\n".starts_with(&self.pending) => {} // needs more
            _ => self.off(),
        }
    }

    fn trailers(&mut self) {
        if self.pending.starts_with(b"\r\n") {
            return self.consume(2, State::Head);
        }
        match self.pending.windows(4).position(|w| w == b"\r\n\r\n") {
            Some(at) => self.consume(at + 4, State::Head),
            None if self.pending.len() > self.max_head => self.off(),
            None => {}
        }
    }
}

/// A `Content-Length` value hyper accepts: ASCII digits only.
fn digits(value: &[u8]) -> Option<u64> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

fn ends_chunked(te: &[u8]) -> bool {
    te.rsplit(|&b| b == b',')
        .next()
        .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"))
}

/// A connection's IO with its reads followed by a framing watcher; writes pass
/// straight through (vectored writes included, which the sendfile path relies on).
pub struct Watched<T> {
    inner: T,
    framing: Framing,
}

impl<T> Watched<T> {
    /// `max_head` is the longest head hyper accepts.
    pub fn new(inner: T, max_head: usize, conflicts: Arc<Conflicts>) -> Self {
        Watched {
            inner,
            framing: Framing::new(max_head, conflicts),
        }
    }

    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    pub fn get_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    /// Frees the watcher's buffer if it holds nothing (between requests: a
    /// connection sending owed file bytes for minutes needs none).
    pub fn shed_buffer(&mut self) {
        if self.framing.pending.is_empty() {
            self.framing.pending = Vec::new();
        }
    }

    /// The inner IO, the watcher dropped (a connection going idle).
    pub fn into_inner(self) -> T {
        self.inner
    }

    /// Between requests: what a new watcher starts from (so one made when an
    /// idle connection wakes follows it exactly as this one would have).
    pub fn at_head(&self) -> bool {
        self.framing.state == State::Head && self.framing.pending.is_empty()
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            this.framing.feed(&buf.filled()[before..]);
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `stream` in pieces of `step` bytes; returns the marked request.
    fn marked(stream: &[u8], step: usize) -> u64 {
        let conflicts = Arc::new(Conflicts::default());
        let mut framing = Framing::new(64 * 1024, Arc::clone(&conflicts));
        for piece in stream.chunks(step) {
            framing.feed(piece);
        }
        conflicts.marked.load(Ordering::Relaxed)
    }

    const BOTH: &[u8] =
        b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";

    #[test]
    fn marks_the_request_with_both_fields_after_any_framing() {
        let prefix: &[&[u8]] = &[
            b"",
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
            b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
            // A body that looks like a conflicting head is only a body.
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 70\r\n\r\nGET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n12345",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5;ext=1\r\nhello\r\n11\r\nTransfer-Encoding\r\n0\r\nx-t: 1\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ];
        for p in prefix {
            let expect = if p.is_empty() { 1 } else { 2 };
            let stream = [*p, BOTH].concat();
            for step in [1, 2, 3, 7, 1000] {
                assert_eq!(
                    marked(&stream, step),
                    expect,
                    "{} in steps of {step}",
                    String::from_utf8_lossy(p)
                );
            }
        }
        let te_first =
            b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\ncontent-length: 5\r\n\r\n";
        assert_eq!(marked(te_first, 5), 1);
    }

    #[test]
    fn ordinary_traffic_marks_nothing() {
        let stream: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nPOST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcPOST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n";
        for step in [1, 4, 1000] {
            assert_eq!(marked(stream, step), 0);
        }
    }

    #[test]
    fn stops_watching_what_it_does_not_follow() {
        for stream in [
            // HTTP/2 prior knowledge.
            [b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".as_slice(), BOTH].concat(),
            [
                b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n".as_slice(),
                BOTH,
            ]
            .concat(),
            [
                b"POST / HTTP/1.1\r\nContent-Length: 5x\r\n\r\n".as_slice(),
                BOTH,
            ]
            .concat(),
            [
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".as_slice(),
                BOTH,
            ]
            .concat(),
        ] {
            assert_eq!(
                marked(&stream, 3),
                0,
                "{}",
                String::from_utf8_lossy(&stream)
            );
        }
    }

    #[test]
    fn the_service_refuses_only_the_marked_request() {
        let conflicts = Conflicts::default();
        conflicts.marked.store(2, Ordering::Relaxed);
        assert!(!conflicts.next_request_conflicts());
        assert!(conflicts.next_request_conflicts());
        assert!(!conflicts.next_request_conflicts());
    }
}
