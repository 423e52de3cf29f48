//! PyO3 bindings: the `bustapi._core` extension module.
//!
//! This layer only translates: Python routes and settings into a
//! `bustapi_server::Engine`, requests into `RequestData`, and Python return values
//! into engine responses. Views run on a dedicated thread pool ([`executor`]);
//! all IO happens with the GIL released.

mod app;
mod convert;
mod executor;
mod file_spec;
mod request;
mod scheduling;
mod signing;
mod stream;
mod thread_state;
mod view_pool;

use pyo3::prelude::*;

/// Engine log lines go to stderr; `BUSTAPI_LOG` sets the filter (default `warn`).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BUSTAPI_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// File bytes this process has sent with sendfile(2) so far: tests read it to
/// prove a response really went through the zero-copy path.
#[pyfunction]
fn sendfile_bytes() -> u64 {
    bustapi_server::sendfile::bytes_sent()
}

/// File bytes written from the bounce buffer (file bodies of at most 1 MiB on
/// plain HTTP/1.x: pread + write per IO thread, nothing kept per connection).
#[pyfunction]
fn bounce_bytes() -> u64 {
    bustapi_server::sendfile::bytes_bounced()
}

/// File bytes of large bodies that hyper handed over to the connection's
/// sendfile sink (which sends them after hyper has finished the response):
/// tests read it to see the takeover really happened.
#[pyfunction]
fn taken_over_bytes() -> u64 {
    bustapi_server::sendfile::bytes_taken_over()
}

/// File bytes read into the page cache on the blocking pool because a range
/// about to go out with sendfile(2) was not cached (so no IO thread waited for
/// the disk): tests read it to see cold files take that path.
#[pyfunction]
fn page_cache_warmed_bytes() -> u64 {
    bustapi_server::page_cache::warmed_bytes()
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    init_logging();
    m.add_class::<app::CoreApp>()?;
    m.add_class::<app::Listener>()?;
    m.add_class::<app::ServerHandle>()?;
    m.add_class::<file_spec::PyFileSpec>()?;
    m.add_class::<request::RequestData>()?;
    m.add_class::<signing::PyUrlSigner>()?;
    m.add("BodyReadError", m.py().get_type::<request::BodyReadError>())?;
    #[cfg(feature = "panic-probe")]
    m.add_class::<convert::PanicProbe>()?;
    m.add_class::<stream::PyChunkStream>()?;
    m.add_function(wrap_pyfunction!(sendfile_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(page_cache_warmed_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(bounce_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(taken_over_bytes, m)?)?;
    m.add("sendfile_available", bustapi_server::sendfile::AVAILABLE)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
