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
}

impl StreamBody {
    pub fn new(source: Box<dyn ChunkSource>) -> Self {
        StreamBody {
            source,
            pending: None,
            done: false,
        }
    }

    fn poll_chunk(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        loop {
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
                    self.done = true;
                    tracing::warn!("streamed response aborted: {e}");
                    return Poll::Ready(Some(Err(e)));
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
