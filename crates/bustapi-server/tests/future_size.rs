//! The future `Engine::handle` returns is moved several times per request
//! (into hyper's dispatcher, and on HTTP/2 into a spawned task per stream), so
//! its size is a per-request memcpy. Rare, heavy branches (tus, form parsing,
//! error pages) are boxed to keep it small; this guards against an unboxed
//! await of one of them growing it back (it was 5,472 bytes before).

use bustapi_server::{Config, Dispatcher, Engine, Router, ViewFuture, ViewRequest, ViewResponse};
use std::sync::Arc;

struct Hello;
impl Dispatcher for Hello {
    fn dispatch(&self, _req: ViewRequest) -> ViewFuture {
        Box::pin(async { ViewResponse::text(http::StatusCode::OK, "hello") })
    }
}

#[test]
fn the_request_future_stays_small() {
    let engine = Arc::new(Engine::new(
        Router::new(),
        vec![],
        Arc::new(Hello),
        Config::default(),
    ));
    let req = http::Request::new(http_body_util::Empty::<bytes::Bytes>::new());
    let future = engine.handle(req, None);
    let size = std::mem::size_of_val(&future);
    assert!(size <= 2048, "Engine::handle's future is {size} bytes");
}
