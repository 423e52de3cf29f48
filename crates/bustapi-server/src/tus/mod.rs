//! Resumable uploads: an engine-served endpoint of the tus 1.0.0 protocol
//! (<https://tus.io/protocols/resumable-upload>), with the creation,
//! creation-with-upload, creation-defer-length, termination, expiration and
//! checksum extensions.
//!
//! Upload bytes go from the socket to disk here ([`append`]) and nowhere else;
//! application code is asked twice per upload — may this creation go ahead, and
//! this upload has completed ([`hooks`]) — never per chunk. State lives on disk
//! ([`store`]), so a restarted server carries on where it stopped.
//!
//! URLs: `POST <prefix>` creates an upload, answered with `Location:
//! <prefix><id>`; `HEAD`, `PATCH` and `DELETE` act on `<prefix><id>`; `OPTIONS`
//! anywhere under the prefix describes the server. `GET` is not part of the
//! protocol and falls through to the rest of the engine, so a static mount or a
//! view may serve finished uploads at the same URLs.

mod append;
mod checksum;
mod creation;
mod hooks;
mod id;
mod metadata;
mod patch;
mod protocol;
mod sidecar;
mod store;

use crate::body::Body;
use crate::dispatch::Dispatcher;
use crate::router::EndpointId;
use http::header::{ALLOW, CACHE_CONTROL};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use protocol::{refuse, response};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use store::{Store, Unavailable};

pub use id::UploadId;

/// How one tus endpoint is set up.
#[derive(Clone, Debug)]
pub struct ResumableConfig {
    /// The URL prefix, e.g. `/files/`.
    pub prefix: String,
    /// Where uploads are kept (partial ones in its hidden `.tus` folder).
    pub folder: PathBuf,
    /// Largest upload accepted (`Tus-Max-Size`); `None` for no limit.
    pub max_size: Option<u64>,
    /// An unfinished upload untouched this long is removed; `None` keeps it forever.
    pub expiration: Option<Duration>,
    /// `fdatasync` before acknowledging each PATCH (else only on completion).
    pub sync_each_patch: bool,
    /// Endpoint asked before an upload is created (a 2xx answer allows it).
    pub authorize: Option<EndpointId>,
    /// Endpoint told, once, that an upload has completed.
    pub on_complete: Option<EndpointId>,
}

pub struct ResumableUploads {
    /// Always ends with `/`.
    prefix: String,
    store: Arc<Store>,
    max_size: Option<u64>,
    expiration: Option<Duration>,
    authorize: Option<EndpointId>,
    on_complete: Option<EndpointId>,
    last_sweep: Mutex<Option<Instant>>,
}

/// What a request under the prefix addresses.
enum Addressed {
    /// The prefix itself: where uploads are created.
    Collection,
    Upload(UploadId),
    Unknown,
}

impl ResumableUploads {
    pub fn new(config: ResumableConfig) -> Self {
        let mut prefix = config.prefix;
        if !prefix.ends_with('/') {
            prefix.push('/');
        }
        ResumableUploads {
            prefix,
            store: Arc::new(Store::new(config.folder, config.sync_each_patch)),
            max_size: config.max_size,
            expiration: config.expiration,
            authorize: config.authorize,
            on_complete: config.on_complete,
            last_sweep: Mutex::new(None),
        }
    }

    /// Whether this endpoint answers the request: everything at or under the
    /// prefix except `GET`, which is not part of the protocol.
    pub fn claims(&self, method: &Method, path: &str) -> bool {
        *method != Method::GET
            && (path.starts_with(&self.prefix) || path == &self.prefix[..self.prefix.len() - 1])
    }

    fn target(&self, path: &str) -> Addressed {
        match path.strip_prefix(&self.prefix) {
            None | Some("") => Addressed::Collection,
            Some(rest) => UploadId::parse(rest).map_or(Addressed::Unknown, Addressed::Upload),
        }
    }

    /// Answers one protocol request. Never panics outward and never answers 5xx
    /// for bad input.
    pub async fn handle<B>(
        &self,
        req: Request<B>,
        remote: Option<SocketAddr>,
        dispatcher: &dyn Dispatcher,
    ) -> Response<Body>
    where
        B: http_body::Body<Data = Bytes> + Send,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let (parts, body) = req.into_parts();
        // For clients whose environment cannot send PATCH or DELETE.
        let method = match parts.headers.get(&protocol::METHOD_OVERRIDE) {
            Some(v) => match Method::from_bytes(v.as_bytes()) {
                Ok(m) => m,
                Err(_) => {
                    return refuse(
                        StatusCode::BAD_REQUEST,
                        "X-HTTP-Method-Override is not a method",
                    )
                }
            },
            None => parts.method.clone(),
        };
        let target = self.target(parts.uri.path());
        let mut r = if method == Method::OPTIONS {
            self.options()
        } else if !protocol::speaks_our_version(&parts.headers) {
            protocol::version_refusal()
        } else {
            let head = hooks::RequestHead {
                secure: parts
                    .extensions
                    .get::<crate::connection::Secure>()
                    .is_some(),
                method: parts.method,
                uri: parts.uri,
                version: parts.version,
                headers: Arc::new(parts.headers),
                extensions: parts.extensions,
                remote,
            };
            match (target, &method) {
                (Addressed::Collection, &Method::POST) => {
                    creation::create(self, head, body, dispatcher).await
                }
                (Addressed::Upload(id), &Method::HEAD) => self.head(id).await,
                (Addressed::Upload(id), &Method::PATCH) => {
                    patch::patch(self, id, head, body, dispatcher).await
                }
                (Addressed::Upload(id), &Method::DELETE) => self.terminate(id).await,
                (Addressed::Unknown, _) => refuse(StatusCode::NOT_FOUND, "no such upload"),
                (Addressed::Collection, _) => not_allowed("POST, OPTIONS"),
                (Addressed::Upload(_), _) => not_allowed("HEAD, PATCH, DELETE, OPTIONS"),
            }
        };
        if method == Method::HEAD {
            *r.body_mut() = Body::Empty;
        }
        r
    }

    fn options(&self) -> Response<Body> {
        let mut r = response(StatusCode::NO_CONTENT);
        let h = r.headers_mut();
        h.insert(
            protocol::TUS_VERSION,
            HeaderValue::from_static(protocol::VERSION),
        );
        let extensions = if self.expiration.is_some() {
            "creation,creation-with-upload,creation-defer-length,termination,checksum,expiration"
        } else {
            "creation,creation-with-upload,creation-defer-length,termination,checksum"
        };
        h.insert(
            protocol::TUS_EXTENSION,
            HeaderValue::from_static(extensions),
        );
        h.insert(
            protocol::TUS_CHECKSUM_ALGORITHM,
            HeaderValue::from_static(checksum::ALGORITHMS),
        );
        if let Some(max) = self.max_size {
            h.insert(protocol::TUS_MAX_SIZE, HeaderValue::from(max));
        }
        h.insert(
            ALLOW,
            HeaderValue::from_static("OPTIONS, POST, HEAD, PATCH, DELETE"),
        );
        r
    }

    async fn head(&self, id: UploadId) -> Response<Body> {
        let store = Arc::clone(&self.store);
        let expiration = self.expiration;
        let status = match blocking(move || store.status(&id, expiration)).await {
            Ok(Ok(status)) => status,
            Ok(Err(e)) => return unavailable(e),
            Err(e) => return unavailable(Unavailable::Io(e)),
        };
        let mut r = response(StatusCode::OK);
        protocol::set_offset(&mut r, status.offset);
        let h = r.headers_mut();
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        match status.info.length {
            Some(n) => {
                h.insert(protocol::UPLOAD_LENGTH, HeaderValue::from(n));
            }
            None => {
                h.insert(protocol::UPLOAD_DEFER_LENGTH, HeaderValue::from_static("1"));
            }
        }
        if !status.info.metadata.is_empty() {
            if let Ok(v) = HeaderValue::from_str(&status.info.metadata) {
                h.insert(protocol::UPLOAD_METADATA, v);
            }
        }
        let expires = status
            .modified
            .and_then(|m| store::expires_at(m, self.expiration));
        protocol::set_expires(&mut r, expires);
        r
    }

    async fn terminate(&self, id: UploadId) -> Response<Body> {
        let store = Arc::clone(&self.store);
        match blocking(move || store.terminate(&id)).await {
            Ok(Ok(())) => response(StatusCode::NO_CONTENT),
            Ok(Err(e)) => unavailable(e),
            Err(e) => unavailable(Unavailable::Io(e)),
        }
    }

    /// Removes expired uploads now and then, off the request path: at the first
    /// creation after a start, then at most every few minutes.
    fn maybe_sweep(&self) {
        let Some(expiration) = self.expiration else {
            return;
        };
        let every = expiration.min(Duration::from_secs(300));
        {
            let Ok(mut last) = self.last_sweep.lock() else {
                return;
            };
            if last.is_some_and(|t| t.elapsed() < every) {
                return;
            }
            *last = Some(Instant::now());
        }
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || store.sweep(expiration));
    }
}

use bytes::Bytes;

fn not_allowed(allow: &'static str) -> Response<Body> {
    let mut r = refuse(
        StatusCode::METHOD_NOT_ALLOWED,
        "the method is not allowed for this URL",
    );
    r.headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    r
}

/// The answer for an upload that cannot be used.
fn unavailable(e: Unavailable) -> Response<Body> {
    match e {
        Unavailable::NotFound => refuse(StatusCode::NOT_FOUND, "no such upload"),
        Unavailable::Expired => refuse(StatusCode::GONE, "the upload expired and was removed"),
        Unavailable::Busy => refuse(
            StatusCode::LOCKED,
            "another request is writing to this upload; retry when it is done",
        ),
        Unavailable::Io(e) => io_failure(&e),
    }
}

/// A filesystem failure: 507 for a full disk (the client may retry later), else 500.
fn io_failure(e: &std::io::Error) -> Response<Body> {
    tracing::error!("resumable upload storage failed: {e}");
    if e.raw_os_error() == Some(libc::ENOSPC) || e.raw_os_error() == Some(libc::EDQUOT) {
        refuse(
            StatusCode::INSUFFICIENT_STORAGE,
            "the server has no room for this upload",
        )
    } else {
        refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the upload could not be stored",
        )
    }
}

/// Blocking filesystem work on tokio's blocking pool, never on an IO thread.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> std::io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| std::io::Error::other(format!("blocking task failed: {e}")))
}
