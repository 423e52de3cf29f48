//! [`decide`]: from request headers and a representation's metadata to a
//! response plan (status, complete headers, which bytes). Pure: no IO, no clock.
//!
//! The order follows RFC 9110 §13.2.2: preconditions first (412/304), then
//! `If-Range`, then `Range` (206/416), else 200.
//!
//! # Range policy
//!
//! * `Range` applies to GET only; HEAD is decided exactly as GET (same status,
//!   same headers, `Content-Length` included) and then sent without a body.
//!   Other methods get the whole representation.
//! * Overlapping and adjacent ranges are coalesced (§14.6); if one range
//!   remains, the answer is a single-part 206, not multipart.
//! * **Too many ranges**: if the request lists more satisfiable ranges than
//!   [`Options::max_ranges`] (default 16, counted before coalescing), the
//!   `Range` is ignored and the whole representation is sent with 200, as
//!   nginx does with `max_ranges`. Real clients (browsers, download managers,
//!   PDF viewers) stay far below 16.
//! * **Amplification**: if the requested ranges add up to more bytes than the
//!   representation (`bytes=0-,0-,0-…` or heavily overlapping ranges), the
//!   `Range` is ignored and the whole representation is sent with 200, as Go's
//!   `net/http` does: a request can then never make us send more than one copy
//!   of the file.
//! * An empty representation never gets a 206: `Range` on it yields 416
//!   (`bytes */0`) or, for a suffix range, 200 (see [`crate::range`]).
//! * `Range` on a request whose `If-Range` does not match is ignored (200).

use crate::conditional::{self, Outcome};
use crate::multipart::{content_range, Multipart};
use crate::open::FileMeta;
// Re-exported so `plan::ByteRange` keeps naming the type it always has.
pub use crate::range::ByteRange;
use crate::range::{self, ParsedRange};
use crate::validators;
use bytes::Bytes;
use http::header::{
    ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_LOCATION, CONTENT_RANGE, CONTENT_TYPE, ETAG, IF_RANGE,
    LAST_MODIFIED, RANGE, TRANSFER_ENCODING,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use std::time::SystemTime;

/// What is being served, as far as HTTP semantics are concerned.
#[derive(Debug, Clone)]
pub struct Representation {
    /// Length in bytes.
    pub len: u64,
    /// Modification time, for `Last-Modified` and date preconditions.
    pub last_modified: Option<SystemTime>,
    /// Entity tag (quoted, optionally `W/`), for `ETag` and tag preconditions.
    pub etag: Option<HeaderValue>,
    /// `Content-Type` of the whole representation (and of multipart parts).
    pub content_type: HeaderValue,
    /// Headers copied onto 200, 206 and 304 responses: `Cache-Control`,
    /// `Content-Disposition`, `Vary`, `Expires`, application headers…
    /// Framing headers (`Content-Length`, `Content-Range`, `Transfer-Encoding`,
    /// `Accept-Ranges`) in here are ignored, since the plan owns them; so are
    /// `Content-Type`, `ETag` and `Last-Modified` when the fields above set them.
    pub extra_headers: HeaderMap,
}

impl Representation {
    /// A file's representation: strong ETag from size and mtime, Last-Modified
    /// from mtime, no extra headers.
    pub fn for_file(meta: &FileMeta, content_type: HeaderValue) -> Self {
        Representation {
            len: meta.len,
            last_modified: meta.modified,
            etag: Some(validators::strong_etag(meta.len, meta.modified)),
            content_type,
            extra_headers: HeaderMap::new(),
        }
    }
}

/// Which HTTP features [`decide`] applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Evaluate `If-Match`, `If-None-Match`, `If-Modified-Since`,
    /// `If-Unmodified-Since` and `If-Range`. Default `true`. When `false`,
    /// a `Range` accompanied by `If-Range` is ignored, because it cannot be
    /// validated safely.
    pub conditional: bool,
    /// Honour `Range` (and send `Accept-Ranges: bytes`). Default `true`.
    /// When `false`, responses carry `Accept-Ranges: none`.
    pub ranges: bool,
    /// Most ranges served in one response; more → 200 with the whole
    /// representation. Default 16.
    pub max_ranges: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            conditional: true,
            ranges: true,
            max_ranges: 16,
        }
    }
}

/// The decided response.
#[derive(Debug, Clone)]
pub struct Plan {
    /// 200, 206, 304, 412 or 416.
    pub status: StatusCode,
    /// The complete response headers (no `Date`, no `Server`: those belong to
    /// the server).
    pub headers: HeaderMap,
    /// Which bytes to send.
    pub body: BodyPlan,
}

impl Plan {
    /// Bytes the body will produce (0 for HEAD, 304, 412, 416).
    pub fn content_length(&self) -> u64 {
        self.body.content_length()
    }
}

/// Which bytes of the representation the body carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyPlan {
    /// No body (HEAD, 304, 412, 416).
    Empty,
    /// The whole representation: bytes `0..len`, `len` carried here so the
    /// plan alone says which bytes to send.
    Whole(u64),
    /// One range (206 with `Content-Range`).
    Single(ByteRange),
    /// Several ranges as `multipart/byteranges`.
    Multipart(Multipart),
}

impl BodyPlan {
    /// Bytes this body produces.
    pub fn content_length(&self) -> u64 {
        match self {
            BodyPlan::Empty => 0,
            BodyPlan::Whole(len) => *len,
            BodyPlan::Single(r) => r.len(),
            BodyPlan::Multipart(m) => m.content_length(),
        }
    }

    /// The body as pieces, in the order they are sent, with empty ranges left
    /// out (they would become empty frames). This is the one place a plan is
    /// cut into what to copy and what to read: [`crate::FileBody`] and a
    /// server's own writer (BustAPI's sendfile body) both stream these, so they
    /// cannot disagree about which bytes a plan sends.
    pub fn pieces(&self) -> impl Iterator<Item = Piece> + '_ {
        let (range, multipart) = match self {
            BodyPlan::Empty => (None, None),
            BodyPlan::Whole(len) => (
                Some(ByteRange {
                    start: 0,
                    end: *len,
                }),
                None,
            ),
            BodyPlan::Single(r) => (Some(*r), None),
            BodyPlan::Multipart(m) => (None, Some(m.pieces())),
        };
        range
            .map(Piece::Range)
            .into_iter()
            .chain(multipart.into_iter().flatten())
            .filter(|p| !matches!(p, Piece::Range(r) if r.is_empty()))
    }
}

/// One piece of a planned body, see [`BodyPlan::pieces`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Multipart delimiters and part headers, sent as they are.
    Framing(Bytes),
    /// Bytes of the representation, to be read from the source.
    Range(ByteRange),
}

/// Decides the response to `method` with `request` headers for `rep`.
///
/// ```
/// use bustapi_files::{decide, BodyPlan, ByteRange, Options, Representation};
/// use http::{header, HeaderMap, HeaderValue, Method, StatusCode};
///
/// let rep = Representation {
///     len: 10_000,
///     last_modified: None,
///     etag: Some(HeaderValue::from_static("\"v1\"")),
///     content_type: HeaderValue::from_static("video/mp4"),
///     extra_headers: HeaderMap::new(),
/// };
/// let mut req = HeaderMap::new();
/// req.insert(header::RANGE, HeaderValue::from_static("bytes=0-"));
/// let plan = decide(&Method::GET, &req, &rep, &Options::default());
/// assert_eq!(plan.status, StatusCode::PARTIAL_CONTENT);
/// assert_eq!(plan.headers[header::CONTENT_RANGE], "bytes 0-9999/10000");
/// assert_eq!(plan.body, BodyPlan::Single(ByteRange { start: 0, end: 10_000 }));
/// ```
pub fn decide(method: &Method, request: &HeaderMap, rep: &Representation, opts: &Options) -> Plan {
    if opts.conditional {
        match conditional::evaluate(method, request, rep.etag.as_ref(), rep.last_modified) {
            Outcome::Proceed => {}
            Outcome::NotModified => return not_modified(rep),
            Outcome::PreconditionFailed => return precondition_failed(),
        }
    }

    let head = method == Method::HEAD;
    let mut plan = match requested_ranges(method, request, rep, opts) {
        Selection::Whole => whole(rep, opts),
        Selection::Unsatisfiable => range_not_satisfiable(rep.len),
        Selection::Single(r) => single(rep, opts, r),
        Selection::Multi(ranges) => multipart(rep, opts, &ranges),
    };
    if head {
        plan.body = BodyPlan::Empty;
    }
    plan
}

/// The outcome of range negotiation.
enum Selection {
    Whole,
    Unsatisfiable,
    Single(ByteRange),
    Multi(Vec<ByteRange>),
}

fn requested_ranges(
    method: &Method,
    request: &HeaderMap,
    rep: &Representation,
    opts: &Options,
) -> Selection {
    // HEAD is answered exactly as GET would be.
    if !opts.ranges || !(method == Method::GET || method == Method::HEAD) {
        return Selection::Whole;
    }
    let mut values = request.get_all(RANGE).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        // Absent, or repeated (Range is a singleton field): no range.
        return Selection::Whole;
    };
    if request.contains_key(IF_RANGE)
        && !(opts.conditional
            && conditional::if_range_matches(request, rep.etag.as_ref(), rep.last_modified))
    {
        return Selection::Whole;
    }

    let ranges = match range::parse(value.as_bytes(), rep.len) {
        ParsedRange::Ignore => return Selection::Whole,
        ParsedRange::Unsatisfiable => return Selection::Unsatisfiable,
        ParsedRange::Ranges(ranges) => ranges,
    };
    if ranges.len() > opts.max_ranges {
        return Selection::Whole;
    }
    let requested: u64 = ranges
        .iter()
        .fold(0u64, |sum, r| sum.saturating_add(r.len()));
    if ranges.len() > 1 && requested > rep.len {
        return Selection::Whole;
    }
    let mut ranges = range::coalesce(&ranges);
    if ranges.len() == 1 {
        Selection::Single(ranges.remove(0))
    } else {
        Selection::Multi(ranges)
    }
}

/// Headers every successful (200/206) response carries.
fn representation_headers(rep: &Representation, opts: &Options) -> HeaderMap {
    let mut h = HeaderMap::with_capacity(rep.extra_headers.len() + 6);
    copy_extra(&mut h, rep, |name| !is_framing(name));
    h.insert(CONTENT_TYPE, rep.content_type.clone());
    insert_validators(&mut h, rep);
    h.insert(
        ACCEPT_RANGES,
        HeaderValue::from_static(if opts.ranges { "bytes" } else { "none" }),
    );
    h
}

fn whole(rep: &Representation, opts: &Options) -> Plan {
    let mut headers = representation_headers(rep, opts);
    headers.insert(CONTENT_LENGTH, HeaderValue::from(rep.len));
    Plan {
        status: StatusCode::OK,
        headers,
        body: BodyPlan::Whole(rep.len),
    }
}

fn single(rep: &Representation, opts: &Options, r: ByteRange) -> Plan {
    let mut headers = representation_headers(rep, opts);
    headers.insert(CONTENT_LENGTH, HeaderValue::from(r.len()));
    headers.insert(CONTENT_RANGE, header_value(content_range(r, rep.len)));
    Plan {
        status: StatusCode::PARTIAL_CONTENT,
        headers,
        body: BodyPlan::Single(r),
    }
}

fn multipart(rep: &Representation, opts: &Options, ranges: &[ByteRange]) -> Plan {
    let m = Multipart::new(ranges, &rep.content_type, rep.len);
    let mut headers = representation_headers(rep, opts);
    // The response is the multipart; each part carries the real type.
    headers.insert(CONTENT_TYPE, m.content_type());
    headers.insert(CONTENT_LENGTH, HeaderValue::from(m.content_length()));
    Plan {
        status: StatusCode::PARTIAL_CONTENT,
        headers,
        body: BodyPlan::Multipart(m),
    }
}

/// 304: the validators and caching headers a 200 would carry (§15.4.5), no
/// body and no representation metadata.
fn not_modified(rep: &Representation) -> Plan {
    let mut headers = HeaderMap::new();
    copy_extra(&mut headers, rep, |name| {
        !is_framing(name) && !is_body_metadata(name)
    });
    insert_validators(&mut headers, rep);
    Plan {
        status: StatusCode::NOT_MODIFIED,
        headers,
        body: BodyPlan::Empty,
    }
}

fn precondition_failed() -> Plan {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_LENGTH, HeaderValue::from(0u64));
    Plan {
        status: StatusCode::PRECONDITION_FAILED,
        headers,
        body: BodyPlan::Empty,
    }
}

/// 416 with `Content-Range: bytes */len` (§15.5.17), telling the client the
/// current length so it can recover.
fn range_not_satisfiable(len: u64) -> Plan {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_RANGE, header_value(format!("bytes */{len}")));
    headers.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(0u64));
    Plan {
        status: StatusCode::RANGE_NOT_SATISFIABLE,
        headers,
        body: BodyPlan::Empty,
    }
}

fn insert_validators(h: &mut HeaderMap, rep: &Representation) {
    if let Some(etag) = &rep.etag {
        h.insert(ETAG, etag.clone());
    }
    if let Some(t) = rep.last_modified {
        h.insert(LAST_MODIFIED, validators::http_date(t));
    }
}

fn copy_extra(h: &mut HeaderMap, rep: &Representation, keep: impl Fn(&HeaderName) -> bool) {
    // `iter` yields each value of multi-valued headers; `append` keeps them all.
    for (name, value) in rep.extra_headers.iter() {
        if keep(name) {
            h.append(name.clone(), value.clone());
        }
    }
}

/// Headers whose value the plan computes; an application's copy would lie.
fn is_framing(name: &HeaderName) -> bool {
    name == CONTENT_LENGTH
        || name == CONTENT_RANGE
        || name == TRANSFER_ENCODING
        || name == ACCEPT_RANGES
}

/// Representation metadata a 304 should not carry (§15.4.5): `Content-*`
/// except `Content-Location`.
fn is_body_metadata(name: &HeaderName) -> bool {
    name.as_str().starts_with("content-") && name != CONTENT_LOCATION
}

fn header_value(s: String) -> HeaderValue {
    HeaderValue::from_str(&s).expect("digits, spaces, '-', '/' and '*' are valid")
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::*;
    use std::time::{Duration, UNIX_EPOCH};

    /// Request header name/value pairs in a table row.
    type Pairs = &'static [(&'static str, &'static str)];

    const ETAG_V: &str = "\"v1\"";
    const LM: &str = "Sun, 06 Nov 1994 08:49:37 GMT";

    fn rep(len: u64) -> Representation {
        let mut extra = HeaderMap::new();
        extra.insert(CACHE_CONTROL, HeaderValue::from_static("max-age=60"));
        extra.insert(VARY, HeaderValue::from_static("Accept-Encoding"));
        extra.append(VARY, HeaderValue::from_static("Origin"));
        extra.insert(
            EXPIRES,
            HeaderValue::from_static("Thu, 01 Dec 2094 16:00:00 GMT"),
        );
        extra.insert(CONTENT_LOCATION, HeaderValue::from_static("/v.mp4"));
        extra.insert(CONTENT_DISPOSITION, HeaderValue::from_static("inline"));
        extra.insert(CONTENT_LANGUAGE, HeaderValue::from_static("en"));
        extra.insert("x-custom", HeaderValue::from_static("1"));
        // Framing headers from the application must not survive.
        extra.insert(CONTENT_LENGTH, HeaderValue::from_static("999"));
        extra.insert(CONTENT_RANGE, HeaderValue::from_static("bytes 0-0/1"));
        extra.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        Representation {
            len,
            last_modified: Some(UNIX_EPOCH + Duration::new(784_111_777, 123)),
            etag: Some(HeaderValue::from_static(ETAG_V)),
            content_type: HeaderValue::from_static("video/mp4"),
            extra_headers: extra,
        }
    }

    fn req(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn get(pairs: &[(&str, &str)]) -> Plan {
        decide(&Method::GET, &req(pairs), &rep(10_000), &Options::default())
    }

    fn r(start: u64, end: u64) -> ByteRange {
        ByteRange { start, end }
    }

    fn header(p: &Plan, name: HeaderName) -> Option<&str> {
        p.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// Lengths of a plan's pieces, framing as `F(n)` and ranges as `R(start, end)`.
    fn piece_shapes(body: &BodyPlan) -> Vec<String> {
        body.pieces()
            .map(|p| match p {
                Piece::Framing(b) => format!("F({})", b.len()),
                Piece::Range(r) => format!("R({}, {})", r.start, r.end),
            })
            .collect()
    }

    #[test]
    fn pieces_cut_every_plan_and_leave_out_empty_ranges() {
        assert!(piece_shapes(&BodyPlan::Empty).is_empty());
        // Nothing to send must not become an empty frame.
        assert!(piece_shapes(&BodyPlan::Whole(0)).is_empty());
        assert!(piece_shapes(&BodyPlan::Single(r(7, 7))).is_empty());
        assert_eq!(piece_shapes(&BodyPlan::Whole(10)), ["R(0, 10)"]);
        assert_eq!(piece_shapes(&BodyPlan::Single(r(2, 5))), ["R(2, 5)"]);
        let multi = Multipart::with_boundary(
            "B".into(),
            &[r(0, 1), r(8, 10)],
            &HeaderValue::from_static("text/plain"),
            10,
        );
        let shapes = piece_shapes(&BodyPlan::Multipart(multi));
        assert_eq!(shapes.len(), 5, "{shapes:?}");
        assert_eq!(
            (shapes[1].as_str(), shapes[3].as_str()),
            ("R(0, 1)", "R(8, 10)")
        );
        // Whatever the request, the pieces add up to the planned length.
        for range in [
            "",
            "bytes=0-",
            "bytes=-1",
            "bytes=0-0,-1",
            "bytes=1-2,5-9,100-",
        ] {
            let p = get(&[("range", range)]);
            let sum: u64 = p
                .body
                .pieces()
                .map(|piece| match piece {
                    Piece::Framing(b) => b.len() as u64,
                    Piece::Range(r) => r.len(),
                })
                .sum();
            assert_eq!(sum, p.content_length(), "{range}");
        }
    }

    /// Every header value of the plan except the named ones, for comparisons.
    fn headers_except(p: &Plan, skip: &[HeaderName]) -> Vec<(String, String)> {
        let mut v: Vec<_> = p
            .headers
            .iter()
            .filter(|(k, _)| !skip.contains(k))
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn plain_get_is_200_with_complete_headers() {
        let p = get(&[]);
        assert_eq!(p.status, StatusCode::OK);
        assert_eq!(p.body, BodyPlan::Whole(10_000));
        assert_eq!(p.content_length(), 10_000);
        assert_eq!(header(&p, CONTENT_LENGTH), Some("10000"));
        assert_eq!(header(&p, CONTENT_TYPE), Some("video/mp4"));
        assert_eq!(header(&p, ACCEPT_RANGES), Some("bytes"));
        assert_eq!(header(&p, ETAG), Some(ETAG_V));
        assert_eq!(header(&p, LAST_MODIFIED), Some(LM));
        assert_eq!(header(&p, CACHE_CONTROL), Some("max-age=60"));
        assert_eq!(header(&p, CONTENT_DISPOSITION), Some("inline"));
        assert_eq!(header(&p, "x-custom".parse().unwrap()), Some("1"));
        assert_eq!(p.headers.get_all(VARY).iter().count(), 2);
        assert_eq!(p.headers.get_all(CONTENT_LENGTH).iter().count(), 1);
        assert!(p.headers.get(CONTENT_RANGE).is_none());
        assert!(p.headers.get(TRANSFER_ENCODING).is_none());
    }

    #[test]
    fn head_has_get_status_and_headers_but_no_body() {
        for pairs in [
            &[][..],
            &[("range", "bytes=0-499")],
            &[("range", "bytes=0-0,-1")],
            &[("range", "bytes=20000-")],
            &[("if-none-match", ETAG_V)],
            &[("if-match", "\"nope\"")],
        ] {
            let g = decide(&Method::GET, &req(pairs), &rep(10_000), &Options::default());
            let h = decide(
                &Method::HEAD,
                &req(pairs),
                &rep(10_000),
                &Options::default(),
            );
            assert_eq!(h.status, g.status, "{pairs:?}");
            // Multipart boundaries are random; everything else is identical.
            let ct = [CONTENT_TYPE];
            assert_eq!(
                headers_except(&h, &ct),
                headers_except(&g, &ct),
                "{pairs:?}"
            );
            assert_eq!(h.headers.get(CONTENT_LENGTH), g.headers.get(CONTENT_LENGTH));
            assert_eq!(h.body, BodyPlan::Empty);
            assert_eq!(h.content_length(), 0);
        }
    }

    /// RFC 9110 §14.1.2 examples (10000 bytes) plus our policies.
    #[test]
    fn range_table() {
        use BodyPlan::*;
        enum Want {
            Ok,
            Partial(ByteRange),
            Multi(Vec<ByteRange>),
            Unsatisfiable,
        }
        use Want::*;
        let seventeen: String = (0..17)
            .map(|i| format!("{}-{}", i * 10, i * 10))
            .collect::<Vec<_>>()
            .join(",");
        let sixteen: String = (0..16)
            .map(|i| format!("{}-{}", i * 10, i * 10))
            .collect::<Vec<_>>()
            .join(",");
        let cases: Vec<(String, Want)> = vec![
            ("bytes=0-499".into(), Partial(r(0, 500))),
            ("bytes=500-999".into(), Partial(r(500, 1000))),
            ("bytes=-500".into(), Partial(r(9500, 10_000))),
            ("bytes=9500-".into(), Partial(r(9500, 10_000))),
            ("bytes=0-0,-1".into(), Multi(vec![r(0, 1), r(9999, 10_000)])),
            (
                "bytes= 0-999, 4500-5499, -1000".into(),
                Multi(vec![r(0, 1000), r(4500, 5500), r(9000, 10_000)]),
            ),
            // Coalesced into one range: a single-part 206.
            ("bytes=500-600,601-999".into(), Partial(r(500, 1000))),
            ("bytes=500-700,601-999".into(), Partial(r(500, 1000))),
            // bytes=0- is 206 (browsers probe with it), not 200.
            ("bytes=0-".into(), Partial(r(0, 10_000))),
            ("bytes=0-99999".into(), Partial(r(0, 10_000))),
            // Client order is kept for parts.
            (
                "bytes=9000-9099,0-99".into(),
                Multi(vec![r(9000, 9100), r(0, 100)]),
            ),
            ("bytes=10000-".into(), Unsatisfiable),
            ("bytes=10000-,20000-30000".into(), Unsatisfiable),
            ("bytes=-0".into(), Unsatisfiable),
            ("bytes=10000-,5-5".into(), Partial(r(5, 6))),
            // Ignored: unknown unit, invalid syntax.
            ("items=0-1".into(), Ok),
            ("bytes=abc".into(), Ok),
            ("bytes=5-1".into(), Ok),
            ("bytes=".into(), Ok),
            // Too many ranges → whole; the limit itself is fine.
            (format!("bytes={seventeen}"), Ok),
            (
                format!("bytes={sixteen}"),
                Multi((0..16).map(|i| r(i * 10, i * 10 + 1)).collect()),
            ),
            // Amplification: ranges adding up to more than the file → whole.
            ("bytes=0-,0-".into(), Ok),
            ("bytes=0-6000,4000-".into(), Ok),
            ("bytes=-6000,0-5000".into(), Ok),
            // Overlap within the file size is fine (coalesced).
            ("bytes=0-4999,4000-4999".into(), Partial(r(0, 5000))),
        ];
        for (range, want) in cases {
            let p = get(&[("range", &range)]);
            match want {
                Ok => {
                    assert_eq!(p.status, StatusCode::OK, "{range}");
                    assert_eq!(p.body, Whole(10_000), "{range}");
                    assert!(p.headers.get(CONTENT_RANGE).is_none(), "{range}");
                }
                Partial(want) => {
                    assert_eq!(p.status, StatusCode::PARTIAL_CONTENT, "{range}");
                    assert_eq!(p.body, Single(want), "{range}");
                    assert_eq!(
                        header(&p, CONTENT_RANGE).unwrap(),
                        format!("bytes {}-{}/10000", want.start, want.end - 1),
                    );
                    assert_eq!(header(&p, CONTENT_TYPE), Some("video/mp4"));
                }
                Multi(want) => {
                    assert_eq!(p.status, StatusCode::PARTIAL_CONTENT, "{range}");
                    let Multipart(m) = &p.body else {
                        panic!("{range}: {:?}", p.body)
                    };
                    let got: Vec<_> = m.parts().iter().map(|p| p.range).collect();
                    assert_eq!(got, want, "{range}");
                    assert!(p.headers.get(CONTENT_RANGE).is_none());
                    assert_eq!(
                        header(&p, CONTENT_TYPE).unwrap(),
                        format!("multipart/byteranges; boundary={}", m.boundary())
                    );
                    for part in m.parts() {
                        let text = std::str::from_utf8(&part.header).unwrap();
                        assert!(text.contains("Content-Type: video/mp4\r\n"), "{text}");
                    }
                }
                Unsatisfiable => {
                    assert_eq!(p.status, StatusCode::RANGE_NOT_SATISFIABLE, "{range}");
                    assert_eq!(header(&p, CONTENT_RANGE), Some("bytes */10000"));
                    assert_eq!(header(&p, CONTENT_LENGTH), Some("0"));
                    assert_eq!(p.body, Empty);
                    // No caching or application headers on an error.
                    assert!(p.headers.get(CACHE_CONTROL).is_none());
                }
            }
            assert_eq!(
                header(&p, CONTENT_LENGTH).unwrap(),
                p.content_length().to_string(),
                "{range}"
            );
        }
    }

    #[test]
    fn partial_content_carries_the_same_validators_and_caching_headers_as_200() {
        let ok = get(&[]);
        let partial = get(&[("range", "bytes=0-1")]);
        let skip = [CONTENT_LENGTH, CONTENT_RANGE];
        assert_eq!(headers_except(&partial, &skip), headers_except(&ok, &skip));
        let multi = get(&[("range", "bytes=0-1,5-6")]);
        let skip = [CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE];
        assert_eq!(headers_except(&multi, &skip), headers_except(&ok, &skip));
    }

    #[test]
    fn range_applies_to_get_only() {
        let p = decide(
            &Method::POST,
            &req(&[("range", "bytes=0-1")]),
            &rep(10_000),
            &Options::default(),
        );
        assert_eq!(
            (p.status, p.body),
            (StatusCode::OK, BodyPlan::Whole(10_000))
        );
        let two = req(&[("range", "bytes=0-1"), ("range", "bytes=2-3")]);
        let p = decide(&Method::GET, &two, &rep(10_000), &Options::default());
        assert_eq!(p.status, StatusCode::OK, "repeated Range is ignored");
    }

    #[test]
    fn if_range() {
        let cases: &[(&str, &str, StatusCode)] = &[
            (ETAG_V, "bytes=0-1", StatusCode::PARTIAL_CONTENT),
            ("\"v0\"", "bytes=0-1", StatusCode::OK),
            ("W/\"v1\"", "bytes=0-1", StatusCode::OK),
            (LM, "bytes=0-1", StatusCode::PARTIAL_CONTENT),
            ("Sun, 06 Nov 1994 08:49:38 GMT", "bytes=0-1", StatusCode::OK),
            ("Sun, 06 Nov 1994 08:49:36 GMT", "bytes=0-1", StatusCode::OK),
            ("not a validator", "bytes=0-1", StatusCode::OK),
            // A stale If-Range beats an unsatisfiable range: full 200, not 416.
            ("\"v0\"", "bytes=20000-", StatusCode::OK),
            (ETAG_V, "bytes=20000-", StatusCode::RANGE_NOT_SATISFIABLE),
        ];
        for (if_range, range, want) in cases {
            let p = get(&[("if-range", if_range), ("range", range)]);
            assert_eq!(p.status, *want, "If-Range: {if_range}, Range: {range}");
        }
        // If-Range without Range is ignored.
        assert_eq!(get(&[("if-range", "\"v0\"")]).status, StatusCode::OK);
        // A weak current ETag never satisfies If-Range.
        let mut weak = rep(10_000);
        weak.etag = Some(HeaderValue::from_static("W/\"v1\""));
        let h = req(&[("if-range", "W/\"v1\""), ("range", "bytes=0-1")]);
        assert_eq!(
            decide(&Method::GET, &h, &weak, &Options::default()).status,
            StatusCode::OK
        );
    }

    #[test]
    fn preconditions_come_first() {
        let cases: &[(Method, Pairs, StatusCode)] = &[
            // If-None-Match beats Range.
            (
                Method::GET,
                &[("if-none-match", ETAG_V), ("range", "bytes=0-1")],
                StatusCode::NOT_MODIFIED,
            ),
            (
                Method::GET,
                &[("if-modified-since", LM), ("range", "bytes=0-1")],
                StatusCode::NOT_MODIFIED,
            ),
            // If-Match failure beats everything.
            (
                Method::GET,
                &[("if-match", "\"v0\""), ("range", "bytes=0-1")],
                StatusCode::PRECONDITION_FAILED,
            ),
            (
                Method::GET,
                &[("if-match", ETAG_V), ("range", "bytes=0-1")],
                StatusCode::PARTIAL_CONTENT,
            ),
            (
                Method::GET,
                &[("if-unmodified-since", "Sun, 06 Nov 1994 08:49:36 GMT")],
                StatusCode::PRECONDITION_FAILED,
            ),
            (
                Method::POST,
                &[("if-none-match", "*")],
                StatusCode::PRECONDITION_FAILED,
            ),
            (
                Method::GET,
                &[("if-none-match", "\"v0\""), ("if-modified-since", LM)],
                StatusCode::OK,
            ),
            (
                Method::GET,
                &[("if-modified-since", "garbage")],
                StatusCode::OK,
            ),
        ];
        for (method, pairs, want) in cases {
            let p = decide(method, &req(pairs), &rep(10_000), &Options::default());
            assert_eq!(p.status, *want, "{method} {pairs:?}");
            if p.status == StatusCode::PRECONDITION_FAILED {
                assert_eq!(header(&p, CONTENT_LENGTH), Some("0"));
                assert_eq!(p.body, BodyPlan::Empty);
                assert!(p.headers.get(CACHE_CONTROL).is_none());
            }
        }
    }

    #[test]
    fn not_modified_header_set() {
        let p = get(&[("if-none-match", ETAG_V)]);
        assert_eq!(p.status, StatusCode::NOT_MODIFIED);
        assert_eq!(p.body, BodyPlan::Empty);
        assert_eq!(p.content_length(), 0);
        let mut names: Vec<_> = p.headers.keys().map(|k| k.as_str()).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "cache-control",
                "content-location",
                "etag",
                "expires",
                "last-modified",
                "vary",
                "x-custom"
            ]
        );
        assert_eq!(p.headers.get_all(VARY).iter().count(), 2);
        assert_eq!(header(&p, ETAG), Some(ETAG_V));
        assert_eq!(header(&p, LAST_MODIFIED), Some(LM));
    }

    #[test]
    fn options() {
        let no_ranges = Options {
            ranges: false,
            ..Options::default()
        };
        let p = decide(
            &Method::GET,
            &req(&[("range", "bytes=0-1")]),
            &rep(10),
            &no_ranges,
        );
        assert_eq!((p.status, &p.body), (StatusCode::OK, &BodyPlan::Whole(10)));
        assert_eq!(header(&p, ACCEPT_RANGES), Some("none"));

        let no_cond = Options {
            conditional: false,
            ..Options::default()
        };
        let p = decide(
            &Method::GET,
            &req(&[("if-none-match", ETAG_V)]),
            &rep(10),
            &no_cond,
        );
        assert_eq!(p.status, StatusCode::OK);
        let h = req(&[("if-range", ETAG_V), ("range", "bytes=0-1")]);
        assert_eq!(
            decide(&Method::GET, &h, &rep(10), &no_cond).status,
            StatusCode::OK
        );
        let h = req(&[("range", "bytes=0-1")]);
        assert_eq!(
            decide(&Method::GET, &h, &rep(10), &no_cond).status,
            StatusCode::PARTIAL_CONTENT
        );

        let two = Options {
            max_ranges: 2,
            ..Options::default()
        };
        let h = req(&[("range", "bytes=0-0,2-2,4-4")]);
        assert_eq!(
            decide(&Method::GET, &h, &rep(10), &two).status,
            StatusCode::OK
        );
        let h = req(&[("range", "bytes=0-0,2-2")]);
        assert_eq!(
            decide(&Method::GET, &h, &rep(10), &two).status,
            StatusCode::PARTIAL_CONTENT
        );
    }

    #[test]
    fn empty_representation_never_gets_206() {
        for (range, want) in [
            ("bytes=0-", StatusCode::RANGE_NOT_SATISFIABLE),
            ("bytes=0-0", StatusCode::RANGE_NOT_SATISFIABLE),
            ("bytes=-1", StatusCode::OK),
            ("bytes=junk", StatusCode::OK),
        ] {
            let p = decide(
                &Method::GET,
                &req(&[("range", range)]),
                &rep(0),
                &Options::default(),
            );
            assert_eq!(p.status, want, "{range}");
            assert_eq!(p.content_length(), 0);
            if want == StatusCode::RANGE_NOT_SATISFIABLE {
                assert_eq!(header(&p, CONTENT_RANGE), Some("bytes */0"));
            } else {
                assert_eq!(header(&p, CONTENT_LENGTH), Some("0"));
            }
        }
    }

    #[test]
    fn for_file_fills_validators() {
        let t = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let meta = FileMeta {
            len: 42,
            modified: Some(t),
            is_dir: false,
        };
        let rep = Representation::for_file(&meta, HeaderValue::from_static("text/plain"));
        assert_eq!(rep.len, 42);
        assert_eq!(rep.last_modified, Some(t));
        assert_eq!(rep.etag, Some(validators::strong_etag(42, Some(t))));
        assert!(rep.extra_headers.is_empty());
    }
}
