//! Precondition evaluation (RFC 9110 §13.1), in the order of §13.2.2.
//!
//! 1. `If-Match` present: false → 412.
//! 2. else `If-Unmodified-Since` present: false → 412.
//! 3. `If-None-Match` present: false → 304 for GET/HEAD, 412 otherwise.
//! 4. else, for GET/HEAD, `If-Modified-Since` present: false → 304.
//! 5. GET with `Range` and `If-Range`: if `If-Range` does not match, the
//!    `Range` is ignored and the whole representation is sent (see
//!    [`if_range_matches`]).
//!
//! The order matters: `If-None-Match` is checked before any range logic, so a
//! cached, unchanged file gets 304 even when the request also carries `Range`.
//!
//! Dates are compared at one-second precision, the precision of an HTTP-date.
//! Invalid dates make their header ignored, as the RFC requires.

use crate::validators::{http_seconds, parse_http_date};
use http::header::{IF_MATCH, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE, IF_UNMODIFIED_SINCE};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use std::time::SystemTime;

/// What the preconditions say about the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Carry on: serve the representation (possibly a range of it).
    Proceed,
    /// 304 Not Modified: the client's cached copy is current.
    NotModified,
    /// 412 Precondition Failed.
    PreconditionFailed,
}

/// Evaluates `If-Match`, `If-Unmodified-Since`, `If-None-Match` and
/// `If-Modified-Since` against the current validators, in RFC 9110 §13.2.2
/// order. `If-Range` is separate ([`if_range_matches`]) because it never fails
/// a request, it only decides whether `Range` applies.
pub fn evaluate(
    method: &Method,
    request: &HeaderMap,
    etag: Option<&HeaderValue>,
    last_modified: Option<SystemTime>,
) -> Outcome {
    let current = etag.and_then(|v| EntityTag::parse(v.as_bytes()));
    let modified = last_modified.map(http_seconds);
    let safe = method == Method::GET || method == Method::HEAD;

    // Step 1 / 2.
    if request.contains_key(IF_MATCH) {
        if !if_match(request, current) {
            return Outcome::PreconditionFailed;
        }
    } else if let (Some(date), Some(modified)) =
        (single_date(request, IF_UNMODIFIED_SINCE), modified)
    {
        // §13.1.4: false if the representation changed after the date.
        if modified > date {
            return Outcome::PreconditionFailed;
        }
    }

    // Step 3 / 4.
    if request.contains_key(IF_NONE_MATCH) {
        if !if_none_match(request, current) {
            return if safe {
                Outcome::NotModified
            } else {
                Outcome::PreconditionFailed
            };
        }
    } else if safe {
        if let (Some(date), Some(modified)) = (single_date(request, IF_MODIFIED_SINCE), modified) {
            // §13.1.3: false (not modified) if not changed since the date.
            if modified <= date {
                return Outcome::NotModified;
            }
        }
    }

    Outcome::Proceed
}

/// Whether a `Range` request may be honoured given its `If-Range` (§13.1.5).
///
/// Returns `true` when there is no `If-Range`. Otherwise the validator must
/// match exactly: an entity tag by *strong* comparison (so a weak tag, on
/// either side, never matches), or an HTTP-date equal to the `Last-Modified`
/// we would send. Anything else, including an unparseable value or several
/// `If-Range` fields, means "ignore the Range and send everything", which is
/// always safe: a resumed download can never splice two versions of a file.
pub fn if_range_matches(
    request: &HeaderMap,
    etag: Option<&HeaderValue>,
    last_modified: Option<SystemTime>,
) -> bool {
    let mut values = request.get_all(IF_RANGE).iter();
    let Some(value) = values.next() else {
        return true;
    };
    if values.next().is_some() {
        return false;
    }
    let bytes = trim_ows(value.as_bytes());
    if bytes.starts_with(b"\"") || bytes.starts_with(b"W/") {
        let (Some(theirs), Some(ours)) = (
            EntityTag::parse(bytes),
            etag.and_then(|v| EntityTag::parse(v.as_bytes())),
        ) else {
            return false;
        };
        return theirs.strong_eq(&ours);
    }
    match (parse_http_date(value), last_modified) {
        (Some(date), Some(modified)) => http_seconds(modified) == date,
        _ => false,
    }
}

/// §13.1.1: `*` matches any current representation; otherwise a listed tag must
/// match by strong comparison. A malformed list matches nothing (→ 412): when a
/// client asks to act only on a specific version, failing is the safe side.
fn if_match(request: &HeaderMap, current: Option<EntityTag<'_>>) -> bool {
    match tag_list(request, IF_MATCH) {
        TagList::Any => true,
        TagList::Tags(tags) => current.is_some_and(|cur| tags.iter().any(|t| t.strong_eq(&cur))),
    }
}

/// §13.1.2: false if `*` or if any listed tag matches by weak comparison.
fn if_none_match(request: &HeaderMap, current: Option<EntityTag<'_>>) -> bool {
    match tag_list(request, IF_NONE_MATCH) {
        TagList::Any => false,
        TagList::Tags(tags) => !current.is_some_and(|cur| tags.iter().any(|t| t.weak_eq(&cur))),
    }
}

/// The value of a date header that must have exactly one member; `None` (the
/// header is ignored) if absent, repeated, or not a valid HTTP-date.
fn single_date(request: &HeaderMap, name: HeaderName) -> Option<u64> {
    let mut values = request.get_all(name).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    parse_http_date(value)
}

enum TagList<'a> {
    Any,
    Tags(Vec<EntityTag<'a>>),
}

/// Parses `"*" / #entity-tag` across all fields with this name. Parsing stops
/// at the first malformed element: the tags before it still count, nothing
/// after it does (so junk can never make a list *more* permissive).
fn tag_list(request: &HeaderMap, name: HeaderName) -> TagList<'_> {
    let mut tags = Vec::new();
    for value in request.get_all(name).iter() {
        let mut rest = value.as_bytes();
        loop {
            rest = trim_ows(rest);
            match rest {
                [] => break,
                [b',', tail @ ..] => rest = tail, // empty list element
                [b'*', tail @ ..] if is_list_end(tail) => return TagList::Any,
                _ => match EntityTag::split_first(rest) {
                    Some((tag, tail)) if is_list_end(tail) => {
                        tags.push(tag);
                        rest = tail;
                    }
                    _ => return TagList::Tags(tags),
                },
            }
        }
    }
    TagList::Tags(tags)
}

fn is_list_end(rest: &[u8]) -> bool {
    matches!(trim_ows(rest), [] | [b',', ..])
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// An entity tag (§8.8.3): `[ W/ ] DQUOTE *etagc DQUOTE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntityTag<'a> {
    /// Marked `W/`.
    pub weak: bool,
    /// The opaque tag, without quotes.
    pub opaque: &'a [u8],
}

impl<'a> EntityTag<'a> {
    /// Parses exactly one entity tag, optionally surrounded by whitespace.
    pub fn parse(s: &'a [u8]) -> Option<Self> {
        match Self::split_first(trim_ows(s)) {
            Some((tag, [])) => Some(tag),
            _ => None,
        }
    }

    /// Parses an entity tag at the start of `s`, returning the rest.
    fn split_first(s: &'a [u8]) -> Option<(Self, &'a [u8])> {
        let (weak, s) = match s.strip_prefix(b"W/") {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let s = s.strip_prefix(b"\"")?;
        let close = s.iter().position(|&b| b == b'"')?;
        let opaque = &s[..close];
        // etagc = %x21 / %x23-7E / obs-text: no controls, spaces or DQUOTE.
        if !opaque
            .iter()
            .all(|&b| b == 0x21 || (b >= 0x23 && b != 0x7f))
        {
            return None;
        }
        Some((EntityTag { weak, opaque }, &s[close + 1..]))
    }

    /// Strong comparison (§8.8.3.2): both strong and identical.
    pub fn strong_eq(&self, other: &EntityTag<'_>) -> bool {
        !self.weak && !other.weak && self.opaque == other.opaque
    }

    /// Weak comparison: identical opaque tags, weakness ignored.
    pub fn weak_eq(&self, other: &EntityTag<'_>) -> bool {
        self.opaque == other.opaque
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    const ETAG: &str = "\"abc\"";
    // 1994-11-06 08:49:37 UTC, plus nanoseconds that an HTTP-date cannot carry.
    fn modified() -> SystemTime {
        UNIX_EPOCH + Duration::new(784_111_777, 500_000_000)
    }
    const LM: &str = "Sun, 06 Nov 1994 08:49:37 GMT";
    const BEFORE: &str = "Sun, 06 Nov 1994 08:49:36 GMT";
    const AFTER: &str = "Sun, 06 Nov 1994 08:49:38 GMT";

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn eval(method: Method, pairs: &[(&str, &str)]) -> Outcome {
        let etag = HeaderValue::from_static(ETAG);
        evaluate(&method, &headers(pairs), Some(&etag), Some(modified()))
    }

    use Outcome::*;

    /// Request header name/value pairs in a table row.
    type Pairs = &'static [(&'static str, &'static str)];

    #[test]
    fn precondition_table() {
        let g = Method::GET;
        let cases: &[(Method, Pairs, Outcome)] = &[
            (g.clone(), &[], Proceed),
            // If-Match: strong comparison, `*`, lists.
            (g.clone(), &[("if-match", ETAG)], Proceed),
            (g.clone(), &[("if-match", "*")], Proceed),
            (g.clone(), &[("if-match", "\"x\", \"abc\"")], Proceed),
            (g.clone(), &[("if-match", "\"x\"")], PreconditionFailed),
            (g.clone(), &[("if-match", "W/\"abc\"")], PreconditionFailed),
            (g.clone(), &[("if-match", "abc")], PreconditionFailed),
            (
                g.clone(),
                &[("if-match", "\"x\""), ("if-match", ETAG)],
                Proceed,
            ),
            // If-Unmodified-Since.
            (g.clone(), &[("if-unmodified-since", LM)], Proceed),
            (g.clone(), &[("if-unmodified-since", AFTER)], Proceed),
            (
                g.clone(),
                &[("if-unmodified-since", BEFORE)],
                PreconditionFailed,
            ),
            (g.clone(), &[("if-unmodified-since", "garbage")], Proceed),
            // If-Match takes precedence: IUS is not evaluated at all.
            (
                g.clone(),
                &[("if-match", ETAG), ("if-unmodified-since", BEFORE)],
                Proceed,
            ),
            // If-None-Match: weak comparison; GET/HEAD → 304, others → 412.
            (g.clone(), &[("if-none-match", ETAG)], NotModified),
            (g.clone(), &[("if-none-match", "W/\"abc\"")], NotModified),
            (g.clone(), &[("if-none-match", "*")], NotModified),
            (
                g.clone(),
                &[("if-none-match", "\"x\" , W/\"abc\"")],
                NotModified,
            ),
            (g.clone(), &[("if-none-match", "\"x\"")], Proceed),
            (Method::HEAD, &[("if-none-match", ETAG)], NotModified),
            (Method::POST, &[("if-none-match", ETAG)], PreconditionFailed),
            (Method::PUT, &[("if-none-match", "*")], PreconditionFailed),
            (Method::POST, &[("if-none-match", "\"x\"")], Proceed),
            // If-Modified-Since: GET/HEAD only, ignored when INM present.
            (g.clone(), &[("if-modified-since", LM)], NotModified),
            (g.clone(), &[("if-modified-since", AFTER)], NotModified),
            (g.clone(), &[("if-modified-since", BEFORE)], Proceed),
            (g.clone(), &[("if-modified-since", "not a date")], Proceed),
            (
                g.clone(),
                &[("if-modified-since", LM), ("if-modified-since", LM)],
                Proceed,
            ),
            (Method::HEAD, &[("if-modified-since", LM)], NotModified),
            (Method::POST, &[("if-modified-since", LM)], Proceed),
            (
                g.clone(),
                &[("if-none-match", "\"x\""), ("if-modified-since", LM)],
                Proceed,
            ),
            // Order: If-Match failure wins over a would-be 304.
            (
                g.clone(),
                &[("if-match", "\"x\""), ("if-none-match", ETAG)],
                PreconditionFailed,
            ),
            (
                g.clone(),
                &[("if-unmodified-since", BEFORE), ("if-none-match", ETAG)],
                PreconditionFailed,
            ),
            (
                g.clone(),
                &[("if-match", ETAG), ("if-none-match", ETAG)],
                NotModified,
            ),
        ];
        for (method, pairs, want) in cases {
            assert_eq!(eval(method.clone(), pairs), *want, "{method} {pairs:?}");
        }
    }

    #[test]
    fn without_validators() {
        let h = headers(&[("if-match", ETAG)]);
        assert_eq!(evaluate(&Method::GET, &h, None, None), PreconditionFailed);
        let h = headers(&[("if-match", "*")]);
        assert_eq!(evaluate(&Method::GET, &h, None, None), Proceed);
        let h = headers(&[("if-none-match", ETAG), ("if-unmodified-since", BEFORE)]);
        assert_eq!(evaluate(&Method::GET, &h, None, None), Proceed);
        let h = headers(&[("if-modified-since", LM)]);
        assert_eq!(evaluate(&Method::GET, &h, None, None), Proceed);
    }

    #[test]
    fn weak_current_tag_fails_if_match_but_satisfies_if_none_match() {
        let weak = HeaderValue::from_static("W/\"abc\"");
        let h = headers(&[("if-match", ETAG)]);
        assert_eq!(
            evaluate(&Method::GET, &h, Some(&weak), None),
            PreconditionFailed
        );
        let h = headers(&[("if-none-match", ETAG)]);
        assert_eq!(evaluate(&Method::GET, &h, Some(&weak), None), NotModified);
    }

    #[test]
    fn malformed_lists_never_become_more_permissive() {
        // Junk before a matching tag stops parsing: If-Match fails...
        assert_eq!(
            eval(Method::GET, &[("if-match", "junk, \"abc\"")]),
            PreconditionFailed
        );
        // ...and If-None-Match proceeds (serves the file).
        assert_eq!(
            eval(Method::GET, &[("if-none-match", "junk, \"abc\"")]),
            Proceed
        );
        // A tag before the junk still counts.
        assert_eq!(
            eval(Method::GET, &[("if-none-match", "\"abc\", junk")]),
            NotModified
        );
        // `*` must be alone as an element.
        assert_eq!(eval(Method::GET, &[("if-none-match", "*junk")]), Proceed);
        assert_eq!(
            eval(Method::GET, &[("if-none-match", "\"a\"\"abc\"")]),
            Proceed
        );
        assert_eq!(
            eval(Method::GET, &[("if-none-match", ",, \"abc\" ,")]),
            NotModified
        );
    }

    #[test]
    fn if_range_table() {
        let strong = HeaderValue::from_static(ETAG);
        let weak = HeaderValue::from_static("W/\"abc\"");
        let m = Some(modified());
        let cases: &[(Pairs, Option<&HeaderValue>, bool)] = &[
            (&[], Some(&strong), true),
            (&[("if-range", ETAG)], Some(&strong), true),
            (&[("if-range", " \"abc\" ")], Some(&strong), true),
            (&[("if-range", "\"other\"")], Some(&strong), false),
            // A weak tag never matches, on either side.
            (&[("if-range", "W/\"abc\"")], Some(&strong), false),
            (&[("if-range", ETAG)], Some(&weak), false),
            (&[("if-range", "W/\"abc\"")], Some(&weak), false),
            (&[("if-range", ETAG)], None, false),
            // Dates must equal Last-Modified exactly (to the second).
            (&[("if-range", LM)], Some(&strong), true),
            (&[("if-range", AFTER)], Some(&strong), false),
            (&[("if-range", BEFORE)], Some(&strong), false),
            (&[("if-range", "garbage")], Some(&strong), false),
            (
                &[("if-range", ETAG), ("if-range", ETAG)],
                Some(&strong),
                false,
            ),
        ];
        for (pairs, etag, want) in cases {
            assert_eq!(
                if_range_matches(&headers(pairs), *etag, m),
                *want,
                "{pairs:?} vs {etag:?}"
            );
        }
        assert!(!if_range_matches(&headers(&[("if-range", LM)]), None, None));
    }

    #[test]
    fn entity_tag_parsing() {
        assert_eq!(
            EntityTag::parse(b"W/\"x\""),
            Some(EntityTag {
                weak: true,
                opaque: b"x"
            })
        );
        assert_eq!(
            EntityTag::parse(b"\"\""),
            Some(EntityTag {
                weak: false,
                opaque: b""
            })
        );
        for bad in [
            &b"x"[..],
            b"\"x",
            b"w/\"x\"",
            b"\"a b\"",
            b"\"x\"y",
            b"W/ \"x\"",
        ] {
            assert_eq!(
                EntityTag::parse(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
