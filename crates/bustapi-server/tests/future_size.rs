//! Every request's future is moved into place by hyper (a memcpy of all of it), so
//! the branches a plain view call does not take (static files, tus, bodies, error
//! pages, file responses) are boxed in `Engine::route`. This keeps it that way.

use bustapi_server::{Config, Dispatcher, Engine, Router, ViewFuture, ViewRequest, ViewResponse};
use std::sync::Arc;

struct Hello;
impl Dispatcher for Hello {
    fn dispatch(&self, _req: ViewRequest) -> ViewFuture {
        Box::pin(async { ViewResponse::text(http::StatusCode::OK, "hello") })
    }
}

#[test]
fn the_future_of_a_request_stays_small() {
    let engine = Engine::new(Router::new(), vec![], Arc::new(Hello), Config::default());
    let request = http::Request::new(http_body_util::Empty::<bytes::Bytes>::new());
    let future = engine.handle(request, None);
    // 5,472 bytes before the rare branches were boxed; 1,648 after.
    let size = std::mem::size_of_val(&future);
    assert!(size <= 2048, "Engine::handle's future is {size} bytes");
}
