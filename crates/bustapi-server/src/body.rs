//! The one response body type the engine writes: nothing, a buffer, or a planned file.
//!
//! An enum rather than a boxed trait object: the file case stays visible to the
//! connection code (which is where zero-copy paths hook in) and the common small
//! bodies cost no allocation beyond their bytes.

use crate::dispatch::{ChunkFuture, ChunkSource};
use crate::sendfile::SendfileBody;
use bustapi_files::FileBody;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

pub enum Body {
    Empty,
    Full(Option<Bytes>),
    File(Box<FileBody>),
    Stream(StreamBody),
    /// A file sent with sendfile(2) on a plain HTTP/1.x connection.
    Sendfile(SendfileBody),
}

/// Pulls a [`ChunkSource`] one chunk at a time, as the connection drains.
pub struct StreamBody {
    source: Box<dyn ChunkSource>,
    pending: Option<ChunkFuture>,
    done: bool,
    /// The producer failed: reported at the next poll, not this one (below).
    failed: Option<io::Error>,
}

impl StreamBody {
    pub fn new(source: Box<dyn ChunkSource>) -> Self {
        StreamBody {
            source,
            pending: None,
            done: false,
            failed: None,
        }
    }

    fn poll_chunk(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        loop {
            if let Some(e) = self.failed.take() {
                self.done = true;
                return Poll::Ready(Some(Err(e)));
            }
            if self.done {
                return Poll::Ready(None);
            }
            let pending = self.pending.get_or_insert_with(|| self.source.next_chunk());
            let ready = std::task::ready!(pending.as_mut().poll(cx));
            self.pending = None;
            match ready {
                Some(Ok(chunk)) if chunk.is_empty() => continue, // an empty frame would end chunked encoding
                Some(Ok(chunk)) => return Poll::Ready(Some(Ok(Frame::data(chunk)))),
                Some(Err(e)) => {
                    // Not `done` yet: a body that says it has ended would get
                    // the clean end of a chunked stream written for it.
                    tracing::warn!("streamed response aborted: {e}");
                    // hyper aborts the connection on a body error without
                    // writing what it still buffers: the chunks produced before
                    // the failure would be lost, depending on timing. Pending
                    // once (woken at once) lets it flush them first; the client
                    // still sees the stream cut, never a clean end.
                    self.failed = Some(e);
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                None => {
                    self.done = true;
                    return Poll::Ready(None);
                }
            }
        }
    }
}

impl Body {
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        if bytes.is_empty() {
            Body::Empty
        } else {
            Body::Full(Some(bytes))
        }
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match self.get_mut() {
            Body::Empty => Poll::Ready(None),
            Body::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Body::Stream(s) => s.poll_chunk(cx),
            Body::Sendfile(s) => Pin::new(s).poll_frame(cx),
            Body::File(f) => {
                let polled = Pin::new(f.as_mut()).poll_frame(cx);
                if let Poll::Ready(Some(Err(e))) = &polled {
                    // The connection is aborted (the announced length cannot be
                    // honoured); say why, since the client only sees a cut.
                    tracing::warn!("file response aborted: {e}");
                }
                polled
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Empty => true,
            Body::Full(b) => b.is_none(),
            Body::File(f) => f.is_end_stream(),
            Body::Stream(s) => s.done,
            Body::Sendfile(s) => s.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Empty => SizeHint::with_exact(0),
            Body::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Body::File(f) => f.size_hint(),
            Body::Stream(_) => SizeHint::default(),
            Body::Sendfile(s) => s.size_hint(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body::Body as _;
    use std::collections::VecDeque;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::{Wake, Waker};

    /// Yields its items in order, each ready at once.
    struct Items(VecDeque<io::Result<Bytes>>);

    impl ChunkSource for Items {
        fn next_chunk(&mut self) -> ChunkFuture {
            let next = self.0.pop_front();
            Box::pin(async move { next })
        }
    }

    struct CountWakes(AtomicUsize);

    impl Wake for CountWakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn a_failed_stream_yields_once_before_its_error_and_never_ends_cleanly() {
        let mut body = Body::Stream(StreamBody::new(Box::new(Items(VecDeque::from([
            Ok(Bytes::from_static(b"first\n")),
            Err(io::Error::other("generator failed")),
        ])))));
        let wakes = Arc::new(CountWakes(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&wakes));
        let mut cx = Context::from_waker(&waker);
        let mut poll = || Pin::new(&mut body).poll_frame(&mut cx);
        let Poll::Ready(Some(Ok(frame))) = poll() else {
            panic!("the first chunk")
        };
        assert_eq!(frame.into_data().unwrap(), &b"first\n"[..]);
        // The connection gets a turn to write that chunk before the error.
        assert!(poll().is_pending());
        assert_eq!(wakes.0.load(Ordering::Relaxed), 1, "woken to poll again");
        assert!(!body.is_end_stream(), "a failed stream must not look ended");
        let mut poll = || Pin::new(&mut body).poll_frame(&mut cx);
        assert!(matches!(poll(), Poll::Ready(Some(Err(_)))));
        assert!(matches!(poll(), Poll::Ready(None)));
    }
}
