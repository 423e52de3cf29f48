//! The two moments an upload involves application code: authorizing a creation
//! and learning of a completion. Both go through the engine's [`Dispatcher`] as
//! calls of endpoints the application registered for the purpose (they have no
//! URL of their own), with the request that caused them, so the application
//! runs them like views — with its request context, session and hooks.
//!
//! The facts of the upload travel as route parameters: `id`, `length` (empty
//! while deferred), `size` (bytes received), `metadata` (the `Upload-Metadata`
//! header as the client sent it at creation) and `path` (where the finished file
//! is, or will be).

use crate::body::Body;
use crate::dispatch::{Dispatcher, Target, ViewRequest, ViewResponse};
use crate::router::{Converter, EndpointId};
use bytes::Bytes;
use http::{HeaderMap, Method, Response, Uri, Version};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use super::id::UploadId;
use super::sidecar::UploadInfo;

/// What a hook needs of the request that triggers it (the body is the upload's
/// and is never handed over).
pub struct RequestHead {
    pub method: Method,
    pub uri: Uri,
    pub version: Version,
    pub headers: Arc<HeaderMap>,
    pub extensions: http::Extensions,
    pub remote: Option<SocketAddr>,
    pub secure: bool,
}

/// Facts about one upload, as the hook sees them.
pub struct Facts<'a> {
    pub id: &'a UploadId,
    pub info: &'a UploadInfo,
    pub size: u64,
    pub path: &'a Path,
}

pub async fn call(
    dispatcher: &dyn Dispatcher,
    endpoint: EndpointId,
    head: &RequestHead,
    facts: Facts<'_>,
) -> ViewResponse {
    let text = |name: &str, value: String| (name.to_string(), value, Converter::String);
    let params = vec![
        text("id", facts.id.to_string()),
        text(
            "length",
            facts.info.length.map(|n| n.to_string()).unwrap_or_default(),
        ),
        text("size", facts.size.to_string()),
        text("metadata", facts.info.metadata.clone()),
        text("path", facts.path.to_string_lossy().into_owned()),
    ];
    let request = ViewRequest {
        target: Target::Endpoint(endpoint),
        method: head.method.clone(),
        uri: head.uri.clone(),
        version: head.version,
        headers: Arc::clone(&head.headers),
        body: crate::request_body::RequestBody::Bytes(Bytes::new()),
        remote_addr: head.remote,
        secure: head.secure,
        params,
        extensions: head.extensions.clone(),
    };
    dispatcher.dispatch(request).await
}

/// Cookies a hook set (a session it changed) go out with the protocol's answer.
pub fn carry_cookies(from: &HeaderMap, to: &mut HeaderMap) {
    for cookie in from.get_all(http::header::SET_COOKIE) {
        to.append(http::header::SET_COOKIE, cookie.clone());
    }
}

/// A hook's refusal (or failure), sent to the client as the application made it.
pub async fn into_response(head: &RequestHead, answer: ViewResponse) -> Response<Body> {
    let mut r = crate::engine::finish(&head.method, &head.headers, answer).await;
    r.headers_mut().insert(
        super::protocol::TUS_RESUMABLE,
        http::HeaderValue::from_static(super::protocol::VERSION),
    );
    r
}
