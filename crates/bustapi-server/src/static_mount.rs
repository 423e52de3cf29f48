//! Static folders: a URL prefix mapped onto a directory, served by the engine
//! without the application. A path resolves safely under the root (see
//! `bustapi_files::safe_path`) to a file, served through the mount's
//! [`FileCache`], or to a directory: redirected to its trailing-slash form, then
//! answered with its index file or, where the mount allows, an HTML listing.

use crate::body::Body;
use crate::file_cache::{CachedFile, FileCache};
use crate::file_response::{
    blocking, failure_response, open_error_response, serve_cached, OpenFailure,
};
use crate::listing;
use crate::redirect::slash_redirect;
use bustapi_files::{mp4, open_file, resolve_url_path_detailed, OpenError, Pace, PathPolicy};
use http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Method, Response};
use std::path::PathBuf;
use std::sync::Arc;

/// Per-mount policy of a static folder.
pub struct StaticMount {
    /// URL prefix without trailing slash, e.g. `/static`.
    pub prefix: String,
    /// Canonical root directory.
    pub root: PathBuf,
    pub policy: PathPolicy,
    pub max_age: Option<u64>,
    pub cache: FileCache,
    /// Every request needs a valid signed URL (see [`crate::signed_url`]),
    /// checked before the path is even resolved.
    pub signed: bool,
    /// Pacing of every file response (nginx's `limit_rate`, per response).
    pub pace: Option<Pace>,
}

/// What a static path turned out to be.
enum Found {
    File(Arc<CachedFile>),
    /// A directory asked for without its trailing slash.
    AddSlash,
    Listing(String),
}

fn listing_response(method: &Method, html: String) -> Response<Body> {
    let mut r = Response::new(Body::Empty);
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(CONTENT_LENGTH, HeaderValue::from(html.len()));
    if method != Method::HEAD {
        *r.body_mut() = Body::full(html);
    }
    r
}

/// Serves `raw_rest` (still percent-encoded, after the mount prefix) from a static mount.
pub async fn serve_static(
    mount: &StaticMount,
    method: &Method,
    request_headers: &HeaderMap,
    raw_rest: &str,
    query: Option<&str>,
) -> Response<Body> {
    let hit = match mount.cache.get(raw_rest) {
        Some(hit) => hit,
        None => {
            let root = mount.root.clone();
            let policy = mount.policy.clone();
            let auto_rate = matches!(mount.pace, Some(Pace::Auto { .. }));
            let rest = raw_rest.to_string();
            let url_path = format!("{}/{raw_rest}", mount.prefix);
            let entry = blocking(move || -> Result<Found, OpenFailure> {
                let resolved = resolve_url_path_detailed(&root, &rest, &policy)?;
                let is_directory = resolved.is_index || resolved.is_dir;
                if is_directory && !rest.is_empty() && !rest.ends_with('/') {
                    return Ok(Found::AddSlash); // relative links need `/dir/`, not `/dir`
                }
                if resolved.is_dir {
                    let shown = percent_encoding::percent_decode_str(&url_path).decode_utf8_lossy();
                    let html = listing::render(&resolved.path, &shown).map_err(OpenError::Io)?;
                    return Ok(Found::Listing(html));
                }
                let (file, meta) = open_file(&resolved.path)?;
                let mut entry =
                    CachedFile::new(resolved.path, file, meta).map_err(OpenError::Io)?;
                if auto_rate {
                    entry.average_bitrate = mp4::average_bitrate(&entry.file, meta.len);
                }
                Ok(Found::File(Arc::new(entry)))
            })
            .await;
            match entry {
                Ok(Ok(Found::AddSlash)) => {
                    return slash_redirect(&format!("{}/{raw_rest}/", mount.prefix), query)
                }
                Ok(Ok(Found::Listing(html))) => return listing_response(method, html),
                Ok(Ok(Found::File(entry))) => {
                    mount.cache.insert(raw_rest, Arc::clone(&entry));
                    entry
                }
                // The path no longer resolves as it did (or at all): nobody
                // is served from the old entry any more.
                Ok(Err(f)) => {
                    mount.cache.remove(raw_rest);
                    return failure_response(f);
                }
                Err(e) => {
                    mount.cache.remove(raw_rest);
                    return open_error_response(OpenError::Io(e));
                }
            }
        }
    };
    let rate = mount.pace.and_then(|p| p.rate(hit.average_bitrate));
    serve_cached(method, request_headers, &hit, mount.max_age, rate)
}
