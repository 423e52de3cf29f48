//! The seam between the engine and whatever runs application code.
//!
//! The engine routes, reads the body within limits, and calls a [`Dispatcher`];
//! the dispatcher answers with a [`ViewResponse`] — bytes, or a description of a
//! file that the engine then serves itself (conditions, ranges, streaming). The
//! engine never learns what language the views are written in.

use crate::file_spec::FileSpec;
use crate::request_body::RequestBody;
use crate::router::{Converter, EndpointId};
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, Uri, Version};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

/// What the dispatcher is asked to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A registered view.
    Endpoint(EndpointId),
    /// The application's handler for an error the engine detected (404, 405, 413…).
    Error(StatusCode),
}

/// A routed request, handed to application code with its body read as the
/// route asked (see [`RequestBody`]).
pub struct ViewRequest {
    pub target: Target,
    pub method: Method,
    pub uri: Uri,
    pub version: Version,
    /// Shared so the engine keeps them for file responses without copying.
    pub headers: std::sync::Arc<HeaderMap>,
    pub body: RequestBody,
    pub remote_addr: Option<SocketAddr>,
    /// Arrived over TLS (`https`).
    pub secure: bool,
    /// Decoded, converter-checked route parameters in rule order.
    pub params: Vec<(String, String, Converter)>,
    /// The request's extensions, as the embedder (or the test client) left them:
    /// a way to pass data of its own from the request to its dispatcher.
    pub extensions: http::Extensions,
}

pub enum ViewBody {
    Bytes(Bytes),
    File(Box<FileSpec>),
    /// Produced chunk by chunk (a generator), sent chunked on HTTP/1.1.
    Stream(Box<dyn ChunkSource>),
}

/// The next chunk of a streamed body; `None` at the end.
pub type ChunkFuture = Pin<Box<dyn Future<Output = Option<std::io::Result<Bytes>>> + Send>>;

/// A body produced on demand. The engine asks for the next chunk only once the
/// previous one has been handed to the connection, so a slow client slows the
/// producer down instead of making the server buffer the stream (back-pressure).
/// Dropping the source (the client went away, or HEAD) must release it.
pub trait ChunkSource: Send + 'static {
    fn next_chunk(&mut self) -> ChunkFuture;
}

pub struct ViewResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: ViewBody,
}

impl ViewResponse {
    pub fn text(status: StatusCode, text: impl Into<Bytes>) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        ViewResponse {
            status,
            headers,
            body: ViewBody::Bytes(text.into()),
        }
    }
}

pub type ViewFuture = Pin<Box<dyn Future<Output = ViewResponse> + Send>>;

pub trait Dispatcher: Send + Sync + 'static {
    fn dispatch(&self, request: ViewRequest) -> ViewFuture;

    /// Whether the application wants to render this engine-detected error itself.
    fn handles_error(&self, _status: StatusCode) -> bool {
        false
    }
}
