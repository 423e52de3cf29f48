//! What the engine knows about the connection a request arrived on, carried as
//! request extensions: serve.rs sets them as it hands a request over, the engine
//! reads them into the `ViewRequest`. Both depend on this module, not on each
//! other.

/// Marks a request that arrived over TLS (a request extension).
#[derive(Clone, Copy, Debug)]
pub struct Secure;
