//! A socket wrapper that fails a write which makes no progress for too long.
//!
//! hyper bounds how long a request head may take to arrive, but not how long a
//! response may sit unsent: a client that stops reading (a paused phone, a
//! scanner that never drains) would hold its connection, file descriptor and
//! buffers forever. Here a write that stays blocked past the limit becomes a
//! `TimedOut` error, hyper drops the connection, and the file is released.
//! Any byte accepted by the kernel restarts the clock, so slow but live
//! clients are never cut: that includes file bytes a connection owes (owed.rs),
//! whether sent in their own loop or while a write waits behind them.

use crate::owed::Owing;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

pub struct WriteTimeout<T> {
    inner: T,
    limit: Duration,
    /// Allocated on the first blocked write and re-armed after, so a busy
    /// connection does not allocate a timer each time its socket buffer fills.
    deadline: Option<Pin<Box<Sleep>>>,
    /// Whether `deadline` is running (a write is blocked).
    armed: bool,
}

impl<T> WriteTimeout<T> {
    pub fn new(inner: T, limit: Duration) -> Self {
        WriteTimeout {
            inner,
            limit,
            deadline: None,
            armed: false,
        }
    }

    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    pub fn get_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    /// Frees the timer while no write is blocked (owed bytes going out with
    /// their own timer in owed.rs).
    pub fn shed_timer(&mut self) {
        if !self.armed {
            self.deadline = None;
        }
    }

    /// The inner IO, the timer dropped (a connection going idle).
    pub fn into_inner(self) -> T {
        self.inner
    }

    /// Called when the inner write is pending: arms the deadline, or reports that
    /// it has passed.
    fn blocked(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let limit = self.limit;
        let deadline = self
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(Instant::now() + limit)));
        if !self.armed {
            deadline.as_mut().reset(Instant::now() + limit);
            self.armed = true;
        }
        match deadline.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.armed = false;
                Poll::Ready(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("client accepted no data for {limit:?}"),
                ))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn progressed<R>(&mut self, r: R) -> R {
        self.armed = false;
        r
    }
}

impl<T: Owing> WriteTimeout<T> {
    /// The inner write is pending: as [`Self::blocked`], but owed bytes sent
    /// meanwhile are progress that restarts the clock.
    fn stalled(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        if self.inner.take_progress() {
            self.armed = false;
        }
        self.blocked(cx)
    }
}

/// Owed bytes are sent by owed.rs, which applies this limit with a timer of
/// its own (inline in the connection's task, where this one is boxed).
impl<T: Owing> Owing for WriteTimeout<T> {
    fn owes(&self) -> bool {
        self.inner.owes()
    }

    fn poll_send_owed(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        self.inner.poll_send_owed(cx)
    }

    fn take_progress(&mut self) -> bool {
        self.inner.take_progress()
    }

    fn write_limit(&self) -> Option<Duration> {
        Some(self.limit)
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteTimeout<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Owing + Unpin> AsyncWrite for WriteTimeout<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Pending => this.stalled(cx).map(Err),
            ready => this.progressed(ready),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Pending => this.stalled(cx).map(Err),
            ready => this.progressed(ready),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Pending => this.stalled(cx).map(Err),
            ready => this.progressed(ready),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    impl Owing for tokio::io::DuplexStream {}

    #[tokio::test]
    async fn a_write_nobody_reads_times_out() {
        // A duplex pipe with a tiny buffer whose other end never reads.
        let (client, _server_keeps_quiet) = tokio::io::duplex(64);
        let mut guarded = WriteTimeout::new(client, Duration::from_millis(100));
        let started = std::time::Instant::now();
        let err = guarded.write_all(&[0u8; 4096]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(100));
    }

    #[tokio::test]
    async fn a_slow_reader_is_not_cut() {
        let (client, mut server) = tokio::io::duplex(64);
        let mut guarded = WriteTimeout::new(client, Duration::from_millis(200));
        let reader = tokio::spawn(async move {
            let mut got = 0usize;
            let mut buf = [0u8; 16];
            while got < 2048 {
                tokio::time::sleep(Duration::from_millis(2)).await;
                got += tokio::io::AsyncReadExt::read(&mut server, &mut buf)
                    .await
                    .unwrap();
            }
            got
        });
        guarded.write_all(&[1u8; 2048]).await.unwrap();
        assert_eq!(reader.await.unwrap(), 2048);
    }
}
