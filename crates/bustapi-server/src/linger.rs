//! Lingering close: before the server closes a connection, it lets the bytes
//! the client is still sending arrive, and drops them.
//!
//! Closing a socket whose receive queue holds unread bytes, or that receives
//! more after the close, makes the kernel answer with a reset. A client that
//! sends a whole request body before it reads (a browser posting a file over
//! the size limit, a form posted to a wrong URL) then has its send fail, and
//! often never reads the 413 or 404 that was already on its way. So the server
//! half-closes (FIN after its response), reads and drops what still comes, and
//! closes once the client closes too — or after [`LINGER`], so a client that
//! keeps sending cannot hold the connection. nginx does the same
//! (`lingering_close`).

use crate::owed::Owing;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

/// The longest a closing connection is read from after its last response.
pub const LINGER: Duration = Duration::from_secs(5);

/// Reads and drops what `socket` still receives until the client closes, an
/// error, `limit` has passed, or the server stops. Call it after shutting the
/// write side down, so the client sees the end of the response first.
pub async fn drain(socket: &TcpStream, limit: Duration, stop: &mut watch::Receiver<bool>) {
    if *stop.borrow() {
        return;
    }
    let deadline = Instant::now() + limit;
    // Allocated only here: a buffer in the connection's future would be carried
    // by every connection for its whole life.
    let mut sink = vec![0u8; 16 * 1024];
    loop {
        tokio::select! {
            ready = socket.readable() => {
                if ready.is_err() {
                    return;
                }
                match socket.try_read(&mut sink) {
                    Ok(0) => return,
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => return,
                }
            }
            () = tokio::time::sleep_until(deadline) => return,
            _ = stop.changed() => return,
        }
    }
}

/// A TCP stream that an IO stack owns (TLS above it, then hyper) while the
/// connection's task keeps a [`Shared::socket`] handle to it.
///
/// hyper-util's protocol-detecting server takes its IO by value and drops it
/// when the connection ends, so the task that spawned it cannot get the socket
/// back to linger on it. Sharing the stream lets the task drain it after the
/// stack is gone; the socket closes when the last handle goes.
pub struct Shared(Arc<TcpStream>);

impl Shared {
    pub fn new(stream: TcpStream) -> Self {
        Shared(Arc::new(stream))
    }

    /// A handle that outlives the IO stack, for [`drain`].
    pub fn socket(&self) -> Arc<TcpStream> {
        Arc::clone(&self.0)
    }

    /// One write, once the socket takes bytes (a stale readiness is cleared
    /// by the WouldBlock and waited for again).
    fn poll_writing(
        &self,
        cx: &mut Context<'_>,
        write: impl Fn(&TcpStream) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.0.poll_write_ready(cx))?;
            match write(&self.0) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                written => return Poll::Ready(written),
            }
        }
    }
}

impl Owing for Shared {}

impl AsyncRead for Shared {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            ready!(self.0.poll_read_ready(cx))?;
            // A readiness can be stale: `try_read` clears it on WouldBlock and
            // the next poll waits for a fresh one.
            match self.0.try_read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for Shared {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_writing(cx, |s| s.try_write(buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_writing(cx, |s| s.try_write_vectored(bufs))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// The write side only, as `TcpStream`'s own: the client's bytes are still
    /// let in, for the drain.
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(half_close(&self.0))
    }
}

/// Sends FIN after what was written; reading goes on.
pub fn half_close(socket: &TcpStream) -> io::Result<()> {
    match socket2::SockRef::from(socket).shutdown(std::net::Shutdown::Write) {
        // Already reset or shut down by the client: nothing left to send.
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
        done => done,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sendfile::tests::tcp_pair;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// What a browser posting a too-large file does: the whole body, then the
    /// answer. Far more than the socket buffers hold: without the drain, the
    /// server's close resets the connection and the write fails.
    async fn send_a_body_then_read(client: &mut TcpStream) -> Vec<u8> {
        let body = vec![b'u'; 16 * 1024 * 1024];
        client.write_all(&body).await.expect("the body went out");
        let mut answer = Vec::new();
        client.read_to_end(&mut answer).await.unwrap();
        answer
    }

    #[tokio::test]
    async fn a_body_the_server_never_read_does_not_reset_the_answer() {
        let (mut server, mut client) = tcp_pair().await;
        let (_stop_tx, mut stop) = watch::channel(false);
        let served = tokio::spawn(async move {
            server
                .write_all(b"HTTP/1.1 413 Payload Too Large\r\n\r\n")
                .await
                .unwrap();
            server.shutdown().await.unwrap();
            drain(&server, LINGER, &mut stop).await;
        });
        let answer = send_a_body_then_read(&mut client).await;
        assert!(answer.starts_with(b"HTTP/1.1 413"));
        drop(client);
        served.await.unwrap();
    }

    #[tokio::test]
    async fn a_client_that_keeps_sending_is_cut_at_the_limit() {
        let (mut server, mut client) = tcp_pair().await;
        let (_stop_tx, mut stop) = watch::channel(false);
        server.shutdown().await.unwrap();
        let feeder = tokio::spawn(async move {
            let block = [b'x'; 4096];
            while client.write_all(&block).await.is_ok() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        // Only the limit can end this drain: the client neither closes nor stops.
        let limit = Duration::from_millis(300);
        let started = std::time::Instant::now();
        tokio::time::timeout(Duration::from_secs(10), drain(&server, limit, &mut stop))
            .await
            .expect("the drain ended at its limit");
        assert!(started.elapsed() >= limit, "it lingered until the limit");
        drop(server);
        // The feeder stops once the closed socket resets it.
        tokio::time::timeout(Duration::from_secs(10), feeder)
            .await
            .expect("the client was cut off")
            .unwrap();
    }

    #[tokio::test]
    async fn a_shared_socket_drains_after_its_io_stack_is_dropped() {
        let (server, mut client) = tcp_pair().await;
        let (_stop_tx, mut stop) = watch::channel(false);
        let mut stack = Shared::new(server);
        let socket = stack.socket();
        stack
            .write_all(b"HTTP/1.1 413 Payload Too Large\r\n\r\n")
            .await
            .unwrap();
        stack.shutdown().await.unwrap();
        drop(stack); // what hyper-util does with the TLS stream at the end
        let drained = tokio::spawn(async move { drain(&socket, LINGER, &mut stop).await });
        let answer = send_a_body_then_read(&mut client).await;
        assert_eq!(answer, b"HTTP/1.1 413 Payload Too Large\r\n\r\n");
        drop(client);
        tokio::time::timeout(Duration::from_secs(2), drained)
            .await
            .expect("the drain ended when the client closed")
            .unwrap();
    }

    #[tokio::test]
    async fn a_stopping_server_does_not_linger() {
        let (server, _client) = tcp_pair().await;
        let (stop_tx, mut stop) = watch::channel(false);
        let drained = tokio::spawn(async move { drain(&server, LINGER, &mut stop).await });
        stop_tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(2), drained)
            .await
            .expect("drain returned when the server stopped")
            .unwrap();
    }
}
