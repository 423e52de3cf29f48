//! Listening sockets, the accept loop, connections, graceful shutdown.
//!
//! HTTP/1.1 (keep-alive, pipelining) and HTTP/2 with prior knowledge (h2c) are
//! served on the same port by hyper-util's auto builder, which sniffs the preface.

use crate::engine::Engine;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use socket2::{Domain, Protocol, Socket, Type};
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

/// Binds a listening socket. `reuse_port` lets several worker processes share the
/// port, with the kernel spreading connections among them.
pub fn bind(addr: SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.set_tcp_nodelay(true)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

fn connection_builder(engine: &Engine) -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .keep_alive(true)
        .header_read_timeout(engine.config.header_read_timeout)
        .max_buf_size(engine.config.max_header_bytes.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)));
    builder
}

/// Serves `listener` until `shutdown` resolves, then stops accepting and waits up
/// to `config.shutdown_timeout` for in-flight responses to finish.
pub async fn serve(
    engine: Arc<Engine>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let builder = Arc::new(connection_builder(&engine));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            biased;
            _ = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, remote) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // EMFILE/ENFILE/ENOBUFS and friends: back off instead of spinning or
                // exiting; connections already open keep being served.
                tracing::warn!("accept failed: {e}; retrying shortly");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let engine = Arc::clone(&engine);
        let service = service_fn(move |req: Request<Incoming>| {
            let engine = Arc::clone(&engine);
            async move { Ok::<_, Infallible>(engine.handle(req, Some(remote)).await) }
        });
        let conn = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("connection from {remote} ended: {e}");
            }
        });
    }
    drop(listener);
    let timeout = engine.config.shutdown_timeout;
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(timeout) => {
            tracing::warn!("graceful shutdown timed out after {timeout:?}; closing remaining connections");
        }
    }
    Ok(())
}
