//! Sending the file bytes a connection still owes once hyper is done with it.
//!
//! A large file body on a plain HTTP/1 connection is taken over by its
//! [`FileSink`] (sendfile.rs): hyper sees the body written as soon as its
//! placeholder frames are, while the sink still owes the client most of the
//! file. A slow client (a video player reading at its bitrate) would otherwise
//! keep hyper's connection, with its read and write buffers and dispatcher
//! state (~18 KiB), for the hours the response takes. Here the connection,
//! hyper gone, holds only its socket, the owed range and its task: [`send`]
//! awaits writability, has cold stretches read into the page cache on the
//! blocking pool, sends with `sendfile`, and fails after the write timeout
//! without progress, exactly as a blocked hyper write would. Its timer lives
//! inline in the task: a block allocated now would land among the hyper
//! buffers just freed and keep a page of them resident per connection.
//!
//! A graceful shutdown lets owed bytes finish (each stall bounded by the write
//! timeout, the whole by the server's shutdown timeout), as it lets a response
//! hyper is still writing finish. The access log records a response when hyper
//! has finished it, which with a takeover means when all its bytes were handed
//! to the kernel or owed (nginx, too, logs when the last byte is handed over).

use crate::framing_watch::Watched;
use crate::sendfile::FileSink;
use std::future::poll_fn;
use std::future::Future;
use std::io;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::{sleep, Instant};

/// A connection's IO that may owe file bytes (only a [`FileSink`] ever does;
/// the wrappers around it pass the question down).
pub trait Owing {
    /// Whether file bytes are owed.
    fn owes(&self) -> bool {
        false
    }

    /// Sends owed bytes once: `true` when some went out, `false` when none
    /// are owed, `Pending` until the socket (or the page cache) is ready.
    fn poll_send_owed(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        Poll::Ready(Ok(false))
    }

    /// Whether owed bytes went out since the last call: progress made inside
    /// a write that still returned `Pending` (it waits for them to be sent).
    fn take_progress(&mut self) -> bool {
        false
    }

    /// The longest a write may make no progress (write_timeout.rs).
    fn write_limit(&self) -> Option<Duration> {
        None
    }
}

impl Owing for TcpStream {}

impl Owing for FileSink {
    fn owes(&self) -> bool {
        FileSink::owes(self)
    }

    fn poll_send_owed(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        FileSink::poll_send_owed(self, cx)
    }

    fn take_progress(&mut self) -> bool {
        FileSink::take_progress(self)
    }
}

impl<T: Owing> Owing for Watched<T> {
    fn owes(&self) -> bool {
        self.get_ref().owes()
    }

    fn poll_send_owed(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        self.get_mut().poll_send_owed(cx)
    }

    fn take_progress(&mut self) -> bool {
        self.get_mut().take_progress()
    }

    fn write_limit(&self) -> Option<Duration> {
        self.get_ref().write_limit()
    }
}

/// Sends everything `io` owes. `None` when it owed nothing, else when it
/// finished (the moment the connection really went quiet). An error (the
/// client gone, the write timeout, the file shrunk) means the response could
/// not be completed: the connection must be dropped, not reused.
pub async fn send<T: Owing>(io: &mut T) -> io::Result<Option<Instant>> {
    if !io.owes() {
        return Ok(None);
    }
    let limit = io.write_limit();
    let deadline = limit.map(sleep);
    tokio::pin!(deadline);
    let mut stalled = false;
    poll_fn(|cx| loop {
        // Each step is one sendfile; tokio's cooperative budget (spent by
        // every readiness check) makes a fast client yield the thread now
        // and then.
        match io.poll_send_owed(cx) {
            Poll::Ready(Ok(true)) => stalled = false,
            Poll::Ready(Ok(false)) => return Poll::Ready(Ok(())),
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => {
                let (Some(limit), Some(mut deadline)) = (limit, deadline.as_mut().as_pin_mut())
                else {
                    return Poll::Pending;
                };
                // Any byte accepted restarts the clock, as in write_timeout.rs.
                if !stalled {
                    stalled = true;
                    deadline.as_mut().reset(Instant::now() + limit);
                }
                ready!(deadline.poll(cx));
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("client accepted no data for {limit:?}"),
                )));
            }
        }
    })
    .await?;
    Ok(Some(Instant::now()))
}
