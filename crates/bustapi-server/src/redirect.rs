//! The engine's own redirects.

use crate::body::Body;
use http::{HeaderValue, Response, StatusCode};

/// A redirect to `target` (already a valid path), keeping the query string.
pub fn slash_redirect(target: &str, query: Option<&str>) -> Response<Body> {
    let location = match query {
        Some(q) => format!("{target}?{q}"),
        None => target.to_string(),
    };
    let mut r = crate::errors::plain_with(StatusCode::PERMANENT_REDIRECT, "");
    if let Ok(v) = HeaderValue::from_str(&location) {
        r.headers_mut().insert(http::header::LOCATION, v);
    }
    r
}
