//! Request bodies as the engine reads them, within the limits, while they arrive.
//!
//! A route gets one of three bodies (see [`RequestBody`]): the bytes, collected
//! (small JSON and form posts: no temp file, no task, no copy for a one-frame
//! body); a `multipart/form-data` form, parsed as it arrives with its file parts
//! already on disk ([`crate::form_data`]); or, for routes declared with
//! [`RouteBody::stream`], a reader the view pulls the raw body from
//! ([`crate::body_stream`]).
//!
//! Every byte passes through [`Arriving`], which enforces the size limit as the
//! bytes are counted (a chunked body has no Content-Length to check up front) and
//! cuts a client that stops sending for longer than the read timeout.

use crate::body::Body;
use crate::body_stream::BodyReader;
use crate::errors;
use crate::form_data::{self, Form, TempFiles};
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use http::header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// How request bodies are read; part of the engine [`Config`](crate::Config).
#[derive(Clone, Debug)]
pub struct BodyConfig {
    /// Where multipart file parts are written as they arrive; `None` is the
    /// system temp folder. On the filesystem of the uploads' destination, a
    /// view's `save()` is a rename instead of a copy.
    pub temp_folder: Option<PathBuf>,
    /// Largest non-file field of a multipart form, kept in memory (Werkzeug's
    /// `MAX_FORM_MEMORY_SIZE`); a larger one gets 413.
    pub max_form_memory_size: u64,
    /// Most parts one multipart form may have (`MAX_FORM_PARTS`); more get 400.
    pub max_form_parts: usize,
    /// Longest wait for the next body bytes: a client that sends nothing for this
    /// long is answered 408 and its connection closed (slow-body defence).
    pub read_timeout: Duration,
}

impl Default for BodyConfig {
    fn default() -> Self {
        BodyConfig {
            temp_folder: None,
            max_form_memory_size: 500_000,
            max_form_parts: 1_000,
            read_timeout: Duration::from_secs(30),
        }
    }
}

impl BodyConfig {
    pub fn temp_folder(&self) -> PathBuf {
        self.temp_folder.clone().unwrap_or_else(std::env::temp_dir)
    }
}

/// A route's own body settings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RouteBody {
    /// Hand the raw body to the view as it arrives (no buffering, no parsing).
    pub stream: bool,
    /// Overrides [`Config::max_body_size`](crate::Config::max_body_size) for this route.
    pub max_size: Option<u64>,
}

/// The body a view receives.
pub enum RequestBody {
    /// Collected bytes (empty for a request without a body).
    Bytes(Bytes),
    /// A parsed `multipart/form-data` form. Its temp files are removed when this
    /// value is dropped, at the end of the request, except those the view moved away.
    Form {
        form: Arc<Form>,
        temp_files: TempFiles,
    },
    /// The raw body, read by the view as it arrives.
    Stream(BodyReader),
}

impl RequestBody {
    pub fn empty() -> Self {
        RequestBody::Bytes(Bytes::new())
    }
}

/// Why a body was refused; each has its status.
#[derive(Debug)]
pub enum BodyError {
    /// Past the size limit (declared or counted): 413.
    TooLarge,
    /// A non-file form field past `max_form_memory_size`: 413.
    FieldTooLarge,
    /// Not a well-formed body of its kind: 400.
    Malformed(&'static str),
    /// The client stopped sending for longer than the read timeout: 408.
    TimedOut,
    /// The client went away or broke the framing mid-body: 400 (rarely seen by anyone).
    Aborted,
    /// The temp folder's filesystem is full: 507.
    DiskFull,
    /// The temp folder is unusable for another reason (missing, not writable): 500.
    Storage(std::io::Error),
}

impl BodyError {
    pub fn status(&self) -> StatusCode {
        match self {
            BodyError::TooLarge | BodyError::FieldTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::Malformed(_) | BodyError::Aborted => StatusCode::BAD_REQUEST,
            BodyError::TimedOut => StatusCode::REQUEST_TIMEOUT,
            BodyError::DiskFull => StatusCode::INSUFFICIENT_STORAGE,
            BodyError::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A fixed sentence for the error page (nothing from the request is echoed).
    pub fn detail(&self) -> &'static str {
        match self {
            BodyError::TooLarge => errors::message(StatusCode::PAYLOAD_TOO_LARGE),
            BodyError::FieldTooLarge => "A form field is larger than the server allows.",
            BodyError::Malformed(why) => why,
            BodyError::TimedOut => "The request body did not arrive in time.",
            BodyError::Aborted => "The request body was cut short.",
            BodyError::DiskFull => "There is no space left to store the upload.",
            BodyError::Storage(_) => errors::message(StatusCode::INTERNAL_SERVER_ERROR),
        }
    }
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyError::Storage(e) => write!(f, "upload temp folder: {e}"),
            other => f.write_str(other.detail()),
        }
    }
}

impl std::error::Error for BodyError {}

/// The answer to a refused body. The connection closes after it: the rest of
/// the body is unread, or its framing cannot be trusted.
pub fn refusal(error: &BodyError) -> Response<Body> {
    if let BodyError::Storage(e) = error {
        tracing::error!("cannot store an upload: {e}");
    }
    let mut r = errors::plain_with(error.status(), error.detail());
    r.headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    r
}

/// [`read`] for a body already known to be at its end (a GET, a HEAD), without
/// an await: the same checks, and an empty body.
pub(crate) fn no_body(
    headers: &HeaderMap,
    route: RouteBody,
    max_body_size: u64,
) -> Result<RequestBody, BodyError> {
    check_declared_length(headers, route.max_size.unwrap_or(max_body_size))?;
    Ok(RequestBody::empty())
}

/// The declared length is checked first, so an oversized upload is refused
/// before a byte of it is read (and `Expect: 100-continue` gets no 100).
fn check_declared_length(headers: &HeaderMap, limit: u64) -> Result<(), BodyError> {
    if let Some(len) = headers.get(CONTENT_LENGTH) {
        match len.to_str().ok().and_then(|s| s.trim().parse::<u64>().ok()) {
            Some(n) if n > limit => return Err(BodyError::TooLarge),
            Some(_) => {}
            None => return Err(BodyError::Malformed("The Content-Length is not a number.")),
        }
    }
    Ok(())
}

/// Reads a routed request's body as `route` asks, within its limit.
pub(crate) async fn read<B>(
    headers: &HeaderMap,
    body: B,
    route: RouteBody,
    max_body_size: u64,
    config: &BodyConfig,
) -> Result<RequestBody, BodyError>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let limit = route.max_size.unwrap_or(max_body_size);
    check_declared_length(headers, limit)?;
    if route.stream {
        return Ok(RequestBody::Stream(BodyReader::start(Arriving::new(
            body,
            limit,
            config.read_timeout,
        ))));
    }
    // GET /hello and friends: nothing to read, nothing to set up.
    if body.is_end_stream() {
        return Ok(RequestBody::empty());
    }
    let boundary = multipart_boundary(headers)?;
    read_arriving(
        Arriving::new(body, limit, config.read_timeout),
        boundary,
        config,
    )
    .await
}

async fn read_arriving<B>(
    mut arriving: Arriving<B>,
    boundary: Option<String>,
    config: &BodyConfig,
) -> Result<RequestBody, BodyError>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    if let Some(boundary) = boundary {
        let (form, temp_files) = form_data::read(&mut arriving, boundary, config).await?;
        return Ok(RequestBody::Form {
            form: Arc::new(form),
            temp_files,
        });
    }
    collect(&mut arriving).await.map(RequestBody::Bytes)
}

/// The boundary of a `multipart/form-data` body; `None` for other content types.
fn multipart_boundary(headers: &HeaderMap) -> Result<Option<String>, BodyError> {
    let Some(value) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("multipart/form-data") {
        return Ok(None);
    }
    multer::parse_boundary(value)
        .map(Some)
        .map_err(|_| BodyError::Malformed("The multipart Content-Type has no boundary."))
}

/// The whole body in one buffer; a body that arrives in one frame is not copied.
async fn collect<B>(arriving: &mut Arriving<B>) -> Result<Bytes, BodyError>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let mut first: Option<Bytes> = None;
    let mut joined = BytesMut::new();
    while let Some(piece) = arriving.next().await {
        let piece = piece?;
        match first.take() {
            None if joined.is_empty() => first = Some(piece),
            held => {
                if let Some(held) = held {
                    joined.extend_from_slice(&held);
                }
                joined.extend_from_slice(&piece);
            }
        }
    }
    Ok(first.unwrap_or_else(|| joined.freeze()))
}

/// Largest piece handed on at once: a frame of the test client's in-memory body
/// can be the whole upload, and a view reading the stream gets it in pieces.
pub(crate) const PIECE: usize = 64 * 1024;

/// No allowance set: bytes are not being rationed.
pub(crate) const UNRATIONED: u64 = u64::MAX;

/// A request body as a stream of byte pieces, counted against the size limit as
/// they arrive, with the read timeout armed whenever the client is waited for.
pub(crate) struct Arriving<B> {
    body: Pin<Box<B>>,
    limit: u64,
    seen: u64,
    read_timeout: Duration,
    timer: Option<Pin<Box<Sleep>>>,
    waiting: bool,
    /// The rest of the current frame, handed on a [`PIECE`] at a time.
    frame: Bytes,
    /// One piece per poll (see [`Arriving::paced`]).
    paced: bool,
    just_yielded: bool,
    /// Bytes the consumer may still take before it errs, or [`UNRATIONED`].
    allowance: Arc<AtomicU64>,
    done: bool,
}

impl<B> Arriving<B> {
    pub(crate) fn new(body: B, limit: u64, read_timeout: Duration) -> Self {
        Arriving {
            body: Box::pin(body),
            limit,
            seen: 0,
            read_timeout,
            timer: None,
            waiting: false,
            frame: Bytes::new(),
            paced: false,
            just_yielded: false,
            allowance: Arc::new(AtomicU64::new(UNRATIONED)),
            done: false,
        }
    }

    /// Hands on one piece per poll, then yields to the consumer. A parser that
    /// pulls "everything available" (multer does) then buffers at most a piece
    /// beyond what it needs, and the [`allowance`](Self::allowance) it is given
    /// bounds what it may buffer while looking for the end of part headers.
    pub(crate) fn paced(&mut self) {
        self.paced = true;
    }

    /// A shared counter of the bytes the consumer may still take; see [`UNRATIONED`].
    pub(crate) fn allowance(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.allowance)
    }

    fn fail(&mut self, error: BodyError) -> Poll<Option<Result<Bytes, BodyError>>> {
        self.done = true;
        Poll::Ready(Some(Err(error)))
    }

    fn ration(&self, n: usize) -> bool {
        let left = self.allowance.load(Ordering::Relaxed);
        if left == UNRATIONED {
            return true;
        }
        let n = n as u64;
        if n > left {
            return false;
        }
        self.allowance.store(left - n, Ordering::Relaxed);
        true
    }
}

impl<B> Stream for Arriving<B>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    type Item = Result<Bytes, BodyError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        if this.paced && this.just_yielded {
            this.just_yielded = false;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        loop {
            if !this.frame.is_empty() {
                let piece = this.frame.split_to(this.frame.len().min(PIECE));
                if !this.ration(piece.len()) {
                    return this.fail(BodyError::Malformed(
                        crate::form_data::PART_HEADER_TOO_LARGE,
                    ));
                }
                this.just_yielded = true;
                return Poll::Ready(Some(Ok(piece)));
            }
            match this.body.as_mut().poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    this.waiting = false;
                    if let Ok(data) = frame.into_data() {
                        this.seen += data.len() as u64;
                        if this.seen > this.limit {
                            return this.fail(BodyError::TooLarge);
                        }
                        this.frame = data;
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    tracing::debug!("request body failed: {e}");
                    return this.fail(BodyError::Aborted);
                }
                Poll::Ready(None) => {
                    this.done = true;
                    return Poll::Ready(None);
                }
                Poll::Pending => {
                    // The timeout runs only while the client is waited for, not
                    // while the consumer (a view reading slowly, the disk) is.
                    let deadline = Instant::now() + this.read_timeout;
                    let timer = this
                        .timer
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                    if !this.waiting {
                        timer.as_mut().reset(deadline);
                        this.waiting = true;
                    }
                    if timer.as_mut().poll(cx).is_ready() {
                        return this.fail(BodyError::TimedOut);
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{Full, StreamBody};

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    async fn read_bytes(
        h: &HeaderMap,
        body: Full<Bytes>,
        limit: u64,
    ) -> Result<RequestBody, BodyError> {
        read(h, body, RouteBody::default(), limit, &BodyConfig::default()).await
    }

    #[tokio::test]
    async fn collects_small_bodies_without_copying_one_frame() {
        let data = Bytes::from_static(b"{\"a\": 1}");
        let got = read_bytes(&headers(&[]), Full::new(data.clone()), 100).await;
        match got {
            Ok(RequestBody::Bytes(b)) => {
                assert_eq!(b, data);
                assert_eq!(b.as_ptr(), data.as_ptr(), "a one-frame body is not copied");
            }
            _ => panic!("expected bytes"),
        }
    }

    #[tokio::test]
    async fn refuses_a_declared_length_over_the_limit_and_a_bad_one() {
        let h = headers(&[("content-length", "101")]);
        let got = read_bytes(&h, Full::new(Bytes::new()), 100).await;
        assert!(matches!(got, Err(BodyError::TooLarge)));
        let h = headers(&[("content-length", "ten")]);
        let got = read_bytes(&h, Full::new(Bytes::new()), 100).await;
        assert!(matches!(got, Err(BodyError::Malformed(_))));
    }

    #[tokio::test]
    async fn counts_undeclared_bodies_against_the_limit() {
        let chunks = (0..5)
            .map(|_| Ok::<_, std::io::Error>(http_body::Frame::data(Bytes::from(vec![0u8; 30]))));
        let body = StreamBody::new(futures_util::stream::iter(chunks));
        let got = read(
            &headers(&[]),
            body,
            RouteBody::default(),
            100,
            &BodyConfig::default(),
        )
        .await;
        assert!(matches!(got, Err(BodyError::TooLarge)));
        // The per-route limit wins over the global one.
        let chunks = (0..5)
            .map(|_| Ok::<_, std::io::Error>(http_body::Frame::data(Bytes::from(vec![0u8; 30]))));
        let body = StreamBody::new(futures_util::stream::iter(chunks));
        let route = RouteBody {
            stream: false,
            max_size: Some(1000),
        };
        match read(&headers(&[]), body, route, 100, &BodyConfig::default()).await {
            Ok(RequestBody::Bytes(b)) => assert_eq!(b.len(), 150),
            _ => panic!("the route's larger limit applies"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_times_out() {
        let (_tx, rx) =
            tokio::sync::mpsc::channel::<Result<http_body::Frame<Bytes>, std::io::Error>>(1);
        let body = StreamBody::new(tokio_stream_from(rx));
        let config = BodyConfig {
            read_timeout: Duration::from_secs(5),
            ..BodyConfig::default()
        };
        let got = read(&headers(&[]), body, RouteBody::default(), 100, &config).await;
        assert!(matches!(got, Err(BodyError::TimedOut)));
    }

    fn tokio_stream_from<T: Send + 'static>(
        mut rx: tokio::sync::mpsc::Receiver<T>,
    ) -> impl Stream<Item = T> + Send {
        futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
    }

    #[tokio::test]
    async fn pieces_are_at_most_piece_sized() {
        let big = Bytes::from(vec![7u8; PIECE * 2 + 5]);
        let mut arriving = Arriving::new(Full::new(big), u64::MAX, Duration::from_secs(1));
        let mut sizes = Vec::new();
        while let Some(p) = arriving.next().await {
            sizes.push(p.unwrap().len());
        }
        assert_eq!(sizes, vec![PIECE, PIECE, 5]);
    }
}
