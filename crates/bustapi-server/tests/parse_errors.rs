//! Request parsing at the socket: malformed input gets a 4xx, never silence.

mod common;

use bustapi_server::{Config, Dispatcher, Engine, Router, ViewFuture, ViewRequest, ViewResponse};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

struct Hello;
impl Dispatcher for Hello {
    fn dispatch(&self, _req: ViewRequest) -> ViewFuture {
        Box::pin(async { ViewResponse::text(http::StatusCode::OK, "hello") })
    }
}

fn start() -> u16 {
    let mut router = Router::new();
    router.add("/hello", &[http::Method::GET], 0).unwrap();
    let engine = Arc::new(Engine::new(
        router,
        vec![],
        Arc::new(Hello),
        Config::default(),
    ));
    common::serve_in_background(engine)
}

fn exchange(port: u16, payload: &[u8]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(payload).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn well_formed_request_is_served() {
    let port = start();
    let out = exchange(
        port,
        b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(out.ends_with("hello"), "{out}");
}

#[test]
fn malformed_requests_get_400() {
    let port = start();
    for payload in [
        &b"THIS IS NOT HTTP AT ALL, REALLY\r\n\r\n"[..],
        b"GET /hello HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n",
        b"GET /hello HTTP/9.9\r\nHost: x\r\n\r\n",
        b"G\x01T /hello HTTP/1.1\r\nHost: x\r\n\r\n",
    ] {
        let out = exchange(port, payload);
        assert!(
            out.starts_with("HTTP/1.1 400"),
            "{:?} -> {out:?}",
            String::from_utf8_lossy(payload)
        );
    }
}
