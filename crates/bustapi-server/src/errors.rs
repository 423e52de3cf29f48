//! Short plain-text error responses the engine produces on its own.
//!
//! Messages are fixed strings: nothing from the request is echoed back, so an
//! error body can never carry injected markup or leak internals.

use crate::body::Body;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderValue, Response, StatusCode};

/// The sentence shown for an engine-detected error.
pub fn message(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "The request could not be understood by the server.",
        403 => "You don't have permission to access the requested resource.",
        404 => "The requested URL was not found on the server.",
        405 => "The method is not allowed for the requested URL.",
        410 => "The requested resource is no longer available.",
        408 => "The server timed out waiting for the request.",
        413 => "The request body is larger than the server allows.",
        416 => "The requested range is not satisfiable.",
        431 => "The request header fields are too large.",
        500 => "The server encountered an internal error and was unable to complete your request.",
        503 => "The server is temporarily unable to handle the request.",
        507 => "The server has no space left to store the request.",
        _ => "",
    }
}

pub fn plain(status: StatusCode) -> Response<Body> {
    plain_with(status, message(status))
}

pub fn plain_with(status: StatusCode, detail: &str) -> Response<Body> {
    let reason = status.canonical_reason().unwrap_or("");
    let text = if detail.is_empty() {
        format!("{} {reason}\n", status.as_u16())
    } else {
        format!("{} {reason}: {detail}\n", status.as_u16())
    };
    let mut r = Response::new(Body::Empty);
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(CONTENT_LENGTH, HeaderValue::from(text.len()));
    *r.body_mut() = Body::full(text);
    r
}
