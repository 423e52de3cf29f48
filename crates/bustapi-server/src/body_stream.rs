//! The raw request body, read by a view as it arrives (routes declared with
//! [`RouteBody::stream`](crate::RouteBody::stream)).
//!
//! A small task pulls the body within its limit and read timeout and hands the
//! pieces over a channel of one slot; the view reads them with a blocking call
//! from its own thread. The task pulls the next piece only once the view took
//! the previous one, so a view that reads slowly slows the client down (TCP
//! back-pressure) and nothing piles up in memory.

use crate::request_body::{Arriving, BodyError};
use bytes::Bytes;
use futures_util::StreamExt;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

type Piece = Result<Bytes, BodyError>;

/// The request's end of the body stream. Dropping it (when the request ends)
/// stops the task, whoever still holds a [`BodyReadHandle`].
pub struct BodyReader {
    handle: BodyReadHandle,
    pump: JoinHandle<()>,
}

/// What a view reads through; cheap to clone.
#[derive(Clone)]
pub struct BodyReadHandle(Arc<Mutex<Receiving>>);

struct Receiving {
    rx: Option<mpsc::Receiver<Piece>>,
    rest: Bytes,
}

impl BodyReader {
    pub(crate) fn start<B>(mut body: Arriving<B>) -> Self
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let (tx, rx) = mpsc::channel::<Piece>(1);
        let pump = tokio::spawn(async move {
            while let Some(piece) = body.next().await {
                let failed = piece.is_err();
                if tx.send(piece).await.is_err() || failed {
                    break;
                }
            }
        });
        BodyReader {
            handle: BodyReadHandle(Arc::new(Mutex::new(Receiving {
                rx: Some(rx),
                rest: Bytes::new(),
            }))),
            pump,
        }
    }

    pub fn handle(&self) -> BodyReadHandle {
        self.handle.clone()
    }
}

impl Drop for BodyReader {
    fn drop(&mut self) {
        self.pump.abort();
    }
}

impl BodyReadHandle {
    /// Up to `max` bytes of the body, waiting for them to arrive; empty at the end.
    /// Blocks the calling thread: call it from a view thread, never from async code.
    pub fn read_blocking(&self, max: usize) -> Result<Bytes, BodyError> {
        let mut state = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if state.rest.is_empty() {
            let Some(rx) = state.rx.as_mut() else {
                return Ok(Bytes::new());
            };
            match rx.blocking_recv() {
                Some(Ok(piece)) => state.rest = piece,
                Some(Err(e)) => {
                    state.rx = None;
                    return Err(e);
                }
                None => {
                    state.rx = None;
                    return Ok(Bytes::new());
                }
            }
        }
        let n = state.rest.len().min(max.max(1));
        Ok(state.rest.split_to(n))
    }
}
