//! The request path: static mounts, routing, body limits, dispatch, and turning a
//! view's answer into an HTTP response.
//!
//! Sockets and the test client both call [`Engine::handle`], so what a test sees
//! is what a browser gets.

use crate::body::{Body, StreamBody};
use crate::connection::Secure;
use crate::dispatch::{Dispatcher, Target, ViewBody, ViewRequest, ViewResponse};
use crate::errors;
use crate::file_response::serve_spec;
use crate::framing;
use crate::redirect::slash_redirect;
use crate::request_body::{self, BodyConfig, BodyError, RequestBody, RouteBody};
use crate::router::{EndpointId, Match, Router};
use crate::signed_url::{self, Refusal, UrlSigner};
use crate::static_mount::{serve_static, StaticMount};
use crate::tus::ResumableUploads;
use bytes::Bytes;
use futures_util::FutureExt;
use http::header::{ALLOW, CONNECTION, CONTENT_LENGTH};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

/// Engine limits and timeouts. Defaults are documented in the README.
#[derive(Clone, Debug)]
pub struct Config {
    /// Largest accepted request body; larger ones get 413 before being read (or,
    /// without a Content-Length, as soon as the bytes counted pass it).
    pub max_body_size: u64,
    /// Multipart forms, upload temp files and the body read timeout.
    pub body: BodyConfig,
    /// Time allowed for a request's header to arrive (slowloris defence).
    pub header_read_timeout: Duration,
    /// Bound on the graceful-shutdown wait for in-flight responses.
    pub shutdown_timeout: Duration,
    /// Largest request head hyper buffers (431 beyond).
    pub max_header_bytes: usize,
    /// A response write that makes no progress for this long closes the connection.
    pub write_timeout: Duration,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// One line per request on stderr (method, path, status, bytes, range, time).
    pub access_log: bool,
    /// A status line on stderr, refreshed every second, with bytes/s served.
    pub live_stats: bool,
    /// Send file bodies with sendfile(2) on plain HTTP/1.x connections (Linux
    /// builds; elsewhere file bodies are always copied).
    pub sendfile: bool,
    /// Serve HTTPS (HTTP/2 by ALPN) instead of plain HTTP.
    pub tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_body_size: 16 * 1024 * 1024,
            body: BodyConfig::default(),
            header_read_timeout: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(10),
            max_header_bytes: 64 * 1024,
            write_timeout: Duration::from_secs(60),
            max_connections: 20_000,
            access_log: false,
            live_stats: false,
            sendfile: true,
            tls: None,
        }
    }
}

pub struct Engine {
    router: Router,
    statics: Vec<StaticMount>,
    dispatcher: Arc<dyn Dispatcher>,
    pub config: Config,
    /// Routes with body settings of their own (streamed, another size limit).
    route_bodies: HashMap<EndpointId, RouteBody>,
    resumable: Vec<ResumableUploads>,
    /// Checks the signed URLs of signed static mounts and routes.
    signer: Option<Arc<UrlSigner>>,
    /// Routes answered only for a validly signed URL.
    signed_routes: HashSet<EndpointId>,
}

impl Engine {
    pub fn new(
        router: Router,
        statics: Vec<StaticMount>,
        dispatcher: Arc<dyn Dispatcher>,
        config: Config,
    ) -> Self {
        Engine {
            router,
            statics,
            dispatcher,
            config,
            route_bodies: HashMap::new(),
            resumable: Vec::new(),
            signer: None,
            signed_routes: HashSet::new(),
        }
    }

    /// The keys signed mounts and routes are checked with. Without them a
    /// signed mount or route refuses every request (403): fail closed.
    pub fn with_url_signer(mut self, signer: Option<Arc<UrlSigner>>) -> Self {
        self.signer = signer;
        self
    }

    /// Declares routes that are answered only for a validly signed URL: the
    /// engine checks it before reading the body or calling the application.
    pub fn with_signed_routes(mut self, routes: impl IntoIterator<Item = EndpointId>) -> Self {
        self.signed_routes.extend(routes);
        self
    }

    /// Gives routes body settings of their own: `(endpoint, settings)` pairs.
    pub fn with_route_bodies(
        mut self,
        routes: impl IntoIterator<Item = (EndpointId, RouteBody)>,
    ) -> Self {
        self.route_bodies.extend(routes);
        self
    }

    /// Serves a tus endpoint (see [`crate::tus`]); its URLs take precedence
    /// over static mounts and routes, except for `GET`.
    pub fn add_resumable_uploads(&mut self, uploads: ResumableUploads) {
        self.resumable.push(uploads);
    }

    /// Answers one request. Never fails and never panics outward: a panic inside is
    /// logged and becomes a 500 for this request only.
    pub async fn handle<B>(&self, req: Request<B>, remote: Option<SocketAddr>) -> Response<Body>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        match AssertUnwindSafe(self.route(req, remote))
            .catch_unwind()
            .await
        {
            Ok(response) => response,
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                tracing::error!("panic while handling a request: {what}");
                errors::plain(StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }

    async fn route<B>(&self, req: Request<B>, remote: Option<SocketAddr>) -> Response<Body>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let path = req.uri().path();
        if !path.starts_with('/') {
            if req.method() == Method::OPTIONS && path == "*" {
                return allow_response(
                    StatusCode::OK,
                    "GET, HEAD, OPTIONS, POST, PUT, PATCH, DELETE",
                );
            }
            return errors::plain_with(
                StatusCode::BAD_REQUEST,
                "the request target must be an absolute path",
            );
        }
        if let Err(why) = framing::check(req.version(), req.headers()) {
            return framing::refusal(why);
        }
        // The branches that are not a plain view call are boxed: their futures are
        // large, and unboxed they would make every request's future (moved into
        // place by hyper per request) as large as the largest of them, ~5 KiB.
        if let Some(tus) = self.resumable.iter().find(|t| t.claims(req.method(), path)) {
            return Box::pin(tus.handle(req, remote, self.dispatcher.as_ref())).await;
        }
        if let Some(mount) = self.static_mount(path) {
            if mount.signed {
                if let Err(refusal) = self.check_signature(&req, remote) {
                    return Box::pin(self.refuse_signature(refusal, req, remote)).await;
                }
            }
            return Box::pin(static_response(mount, &req)).await;
        }
        match self.router.lookup(req.method(), path) {
            Match::Found { endpoint, params } => {
                if self.signed_routes.contains(&endpoint) {
                    if let Err(refusal) = self.check_signature(&req, remote) {
                        return Box::pin(self.refuse_signature(refusal, req, remote)).await;
                    }
                }
                let method = req.method().clone();
                let (parts, body) = req.into_parts();
                let route = self
                    .route_bodies
                    .get(&endpoint)
                    .copied()
                    .unwrap_or_default();
                let max = self.config.max_body_size;
                let read = if !route.stream && body.is_end_stream() {
                    // GET and friends: nothing to read, nothing to wait for.
                    request_body::no_body(&parts.headers, route, max)
                } else {
                    Box::pin(request_body::read(
                        &parts.headers,
                        body,
                        route,
                        max,
                        &self.config.body,
                    ))
                    .await
                };
                let body = match read {
                    Ok(b) => b,
                    Err(e) => return Box::pin(self.refuse_body(e, parts, remote)).await,
                };
                let request = ViewRequest {
                    secure: parts.extensions.get::<Secure>().is_some(),
                    target: Target::Endpoint(endpoint),
                    method: parts.method,
                    uri: parts.uri,
                    version: parts.version,
                    headers: Arc::new(parts.headers),
                    body,
                    remote_addr: remote,
                    params,
                    extensions: parts.extensions,
                };
                let headers = Arc::clone(&request.headers);
                let answer = self.dispatcher.dispatch(request).await;
                Box::pin(finish(&method, &headers, answer)).await
            }
            Match::Options(allow) => allow_response(StatusCode::OK, &allow),
            Match::RedirectSlash => slash_redirect(&format!("{path}/"), req.uri().query()),
            Match::MethodNotAllowed(allow) => {
                let (parts, _) = req.into_parts();
                Box::pin(self.error(StatusCode::METHOD_NOT_ALLOWED, Some(&allow), parts, remote))
                    .await
            }
            Match::NotFound => {
                let (parts, _) = req.into_parts();
                Box::pin(self.error(StatusCode::NOT_FOUND, None, parts, remote)).await
            }
        }
    }

    /// The static mount `path` falls under, if any.
    fn static_mount(&self, path: &str) -> Option<&StaticMount> {
        self.statics.iter().find(|m| {
            path.strip_prefix(m.prefix.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
        })
    }

    /// Verifies a signed URL; the signature's query parameters are only read
    /// here (ranges, conditionals and the static cache never see the query).
    fn check_signature<B>(
        &self,
        req: &Request<B>,
        remote: Option<SocketAddr>,
    ) -> Result<(), Refusal> {
        let signer = self
            .signer
            .as_ref()
            .ok_or(Refusal::Forbidden("no URL signing keys are configured"))?;
        let uri = req.uri();
        signer.verify(
            uri.path(),
            uri.query(),
            remote.map(|r| r.ip()),
            signed_url::now(),
        )
    }

    /// 403 or 410 for a refused signature, before any file is opened or any
    /// view runs; the application's error handler renders it when it has one.
    async fn refuse_signature<B>(
        &self,
        refusal: Refusal,
        req: Request<B>,
        remote: Option<SocketAddr>,
    ) -> Response<Body> {
        let status = refusal.status();
        let (parts, _) = req.into_parts();
        if self.dispatcher.handles_error(status) {
            return self.error(status, None, parts, remote).await;
        }
        let mut r = errors::plain_with(status, refusal.reason());
        if parts.method == Method::HEAD {
            *r.body_mut() = Body::Empty;
        }
        r
    }

    /// A body the engine refused (too large, malformed, too slow, disk full):
    /// the application's handler renders it when it has one; the connection
    /// closes after the answer unless nothing of the body was read.
    async fn refuse_body(
        &self,
        error: BodyError,
        parts: http::request::Parts,
        remote: Option<SocketAddr>,
    ) -> Response<Body> {
        let status = error.status();
        if !self.dispatcher.handles_error(status) {
            return request_body::refusal(&error);
        }
        let mut response = self.error(status, None, parts, remote).await;
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
        response
    }

    /// An engine-detected error, rendered by the application's handler when it has one.
    async fn error(
        &self,
        status: StatusCode,
        allow: Option<&str>,
        parts: http::request::Parts,
        remote: Option<SocketAddr>,
    ) -> Response<Body> {
        let mut response = if self.dispatcher.handles_error(status) {
            let method = parts.method.clone();
            let headers = Arc::new(parts.headers);
            let request = ViewRequest {
                secure: parts.extensions.get::<Secure>().is_some(),
                target: Target::Error(status),
                method: parts.method,
                uri: parts.uri,
                version: parts.version,
                headers: Arc::clone(&headers),
                body: RequestBody::empty(),
                remote_addr: remote,
                params: Vec::new(),
                extensions: parts.extensions,
            };
            finish(&method, &headers, self.dispatcher.dispatch(request).await).await
        } else {
            let mut r = errors::plain(status);
            if parts.method == Method::HEAD {
                *r.body_mut() = Body::Empty;
            }
            r
        };
        if let Some(allow) = allow.and_then(|a| HeaderValue::from_str(a).ok()) {
            response.headers_mut().insert(ALLOW, allow);
        }
        response
    }
}

async fn static_response<B>(mount: &StaticMount, req: &Request<B>) -> Response<Body> {
    let path = req.uri().path();
    let rest = &path[mount.prefix.len() + 1..];
    let method = req.method();
    if method == Method::GET || method == Method::HEAD {
        serve_static(mount, method, req.headers(), rest, req.uri().query()).await
    } else if method == Method::OPTIONS {
        allow_response(StatusCode::OK, "GET, HEAD, OPTIONS")
    } else {
        let mut r = errors::plain(StatusCode::METHOD_NOT_ALLOWED);
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD, OPTIONS"));
        r
    }
}

fn allow_response(status: StatusCode, allow: &str) -> Response<Body> {
    let mut r = Response::new(Body::Empty);
    *r.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(allow) {
        r.headers_mut().insert(ALLOW, v);
    }
    r.headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
    r
}

/// Turns a view's answer into the response: bytes get an exact Content-Length
/// (HEAD keeps it and drops the body), files go through `bustapi-files`.
pub(crate) async fn finish(
    method: &Method,
    request_headers: &HeaderMap,
    answer: ViewResponse,
) -> Response<Body> {
    let ViewResponse {
        status,
        mut headers,
        body,
    } = answer;
    match body {
        ViewBody::Bytes(bytes) => {
            let bodyless = *method == Method::HEAD
                || status.is_informational()
                || status == StatusCode::NO_CONTENT
                || status == StatusCode::NOT_MODIFIED;
            if !(status == StatusCode::NO_CONTENT || status.is_informational()) {
                headers.insert(CONTENT_LENGTH, HeaderValue::from(bytes.len()));
            }
            let mut r = Response::new(if bodyless {
                Body::Empty
            } else {
                Body::full(bytes)
            });
            *r.status_mut() = status;
            *r.headers_mut() = headers;
            r
        }
        ViewBody::File(spec) => {
            Box::pin(serve_spec(method, request_headers, *spec, status, headers)).await
        }
        ViewBody::Stream(source) => {
            // The length is unknown: HTTP/1.1 gets chunked encoding. HEAD never
            // starts the producer; dropping it here releases it.
            headers.remove(CONTENT_LENGTH);
            let body = if *method == Method::HEAD {
                Body::Empty
            } else {
                Body::Stream(StreamBody::new(source))
            };
            let mut r = Response::new(body);
            *r.status_mut() = status;
            *r.headers_mut() = headers;
            r
        }
    }
}
