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

use std::time::Duration;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sendfile::tests::tcp_pair;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
        // Far more than the socket buffers hold: without the drain, the server's
        // close resets the connection and this write fails.
        let body = vec![b'u'; 16 * 1024 * 1024];
        client.write_all(&body).await.expect("the body went out");
        let mut answer = Vec::new();
        client.read_to_end(&mut answer).await.unwrap();
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
