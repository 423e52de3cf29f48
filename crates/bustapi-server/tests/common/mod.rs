//! Shared by the integration tests: a real server on an ephemeral port.

use bustapi_server::Engine;
use std::sync::Arc;

/// Serves `engine` on 127.0.0.1 from a background runtime; returns the port.
pub fn serve_in_background(engine: Arc<Engine>) -> u16 {
    let listener = bustapi_server::bind("127.0.0.1:0".parse().unwrap(), false).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(bustapi_server::serve(
            engine,
            listener,
            std::future::pending(),
        ))
        .unwrap();
    });
    port
}
