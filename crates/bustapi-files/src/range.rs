//! `Range` header parsing (RFC 9110 §14.1, §14.2).
//!
//! ```text
//! Range          = ranges-specifier
//! ranges-specifier = range-unit "=" range-set
//! range-set      = 1#range-spec
//! range-spec     = int-range / suffix-range / other-range
//! int-range      = first-pos "-" [ last-pos ]
//! suffix-range   = "-" suffix-length
//! ```
//!
//! Parsing is deliberately forgiving where the RFC allows it and strict where
//! being lenient would change which bytes are sent:
//!
//! * the unit `bytes` is matched case-insensitively; any other unit makes the
//!   whole header ignored (§14.2: a server MUST ignore units it does not
//!   understand), so the answer is a plain 200;
//! * optional whitespace around elements and commas, and empty list elements
//!   (`bytes=0-1,,5-6`), are accepted, as the list rule (§5.6.1) asks;
//! * anything else that does not match the grammar (`bytes=5-1`, `bytes=abc`,
//!   `bytes=1-2-3`, signs, …) makes the whole header ignored rather than
//!   rejected: §14.2 lets a server ignore an invalid ranges-specifier, and a 200
//!   is always a correct answer, whereas a 416 could stop a confused client;
//! * numbers too large for `u64` are clamped to `u64::MAX` (they are past the end
//!   of any file anyway), so no input can overflow or panic.
//!
//! Satisfiability (§14.1.1): an int-range is satisfiable if its first byte is
//! inside the representation; a suffix-range if its length is non-zero. A
//! `last-pos` past the end is clamped to the last byte, and a suffix longer than
//! the representation selects all of it.
//!
//! Policy decisions about *how many* ranges to serve live in [`crate::plan`];
//! [`coalesce`] merges overlapping and adjacent ranges; [`ByteRange`] is the
//! unit every other module (plans, multipart framing, bodies) speaks in.

/// A half-open byte range `[start, end)` of a representation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

impl ByteRange {
    /// Number of bytes.
    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// Whether the range selects no bytes.
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }
}

/// Outcome of parsing a `Range` header against a representation length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParsedRange {
    /// Unknown unit, invalid syntax, or nothing that a 206 could express:
    /// serve the whole representation with 200.
    Ignore,
    /// Syntactically valid, but no range-spec is satisfiable: 416.
    Unsatisfiable,
    /// The satisfiable ranges, in the order the client listed them, each
    /// clamped to the representation and non-empty. Never empty.
    Ranges(Vec<ByteRange>),
}

/// One syntactically valid range-spec, before it meets a length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spec {
    /// `first-last`, or `first-` (last = None).
    Int { first: u64, last: Option<u64> },
    /// `-suffix`.
    Suffix(u64),
}

/// Parses a `Range` header value for a representation of `len` bytes.
///
/// ```
/// use bustapi_files::range::{parse, ParsedRange};
/// use bustapi_files::ByteRange;
/// assert_eq!(
///     parse(b"bytes=0-499", 10_000),
///     ParsedRange::Ranges(vec![ByteRange { start: 0, end: 500 }])
/// );
/// assert_eq!(parse(b"bytes=10000-", 10_000), ParsedRange::Unsatisfiable);
/// assert_eq!(parse(b"items=0-5", 10_000), ParsedRange::Ignore);
/// ```
pub fn parse(header: &[u8], len: u64) -> ParsedRange {
    let Some(specs) = parse_specs(header) else {
        return ParsedRange::Ignore;
    };

    let mut ranges = Vec::new();
    let mut selects_nothing = false;
    for spec in specs {
        match satisfy(spec, len) {
            Satisfied::Range(r) => ranges.push(r),
            Satisfied::EmptyRepresentation => selects_nothing = true,
            Satisfied::No => {}
        }
    }

    if !ranges.is_empty() {
        ParsedRange::Ranges(ranges)
    } else if selects_nothing {
        // A suffix-range on an empty representation is satisfiable (§14.1.1)
        // but selects zero bytes, which a 206 cannot express (`bytes 0--1/0`).
        // The whole, empty representation is the honest answer.
        ParsedRange::Ignore
    } else {
        ParsedRange::Unsatisfiable
    }
}

enum Satisfied {
    Range(ByteRange),
    EmptyRepresentation,
    No,
}

fn satisfy(spec: Spec, len: u64) -> Satisfied {
    match spec {
        Spec::Int { first, last } => {
            if first >= len {
                return Satisfied::No;
            }
            // `last` is inclusive; past the end means "to the end".
            let end = match last {
                Some(last) => last.saturating_add(1).min(len),
                None => len,
            };
            Satisfied::Range(ByteRange { start: first, end })
        }
        Spec::Suffix(0) => Satisfied::No,
        Spec::Suffix(_) if len == 0 => Satisfied::EmptyRepresentation,
        Spec::Suffix(n) => Satisfied::Range(ByteRange {
            start: len.saturating_sub(n),
            end: len,
        }),
    }
}

/// Splits `bytes=<range-set>` into range-specs; `None` means "ignore the header".
fn parse_specs(header: &[u8]) -> Option<Vec<Spec>> {
    let eq = header.iter().position(|&b| b == b'=')?;
    let (unit, set) = (trim_ows(&header[..eq]), &header[eq + 1..]);
    if !unit.eq_ignore_ascii_case(b"bytes") {
        return None;
    }

    let mut specs = Vec::new();
    for element in set.split(|&b| b == b',') {
        let element = trim_ows(element);
        if element.is_empty() {
            continue; // the list rule tolerates empty elements
        }
        specs.push(parse_spec(element)?);
    }
    // range-set is `1#range-spec`: at least one real element.
    if specs.is_empty() {
        None
    } else {
        Some(specs)
    }
}

fn parse_spec(s: &[u8]) -> Option<Spec> {
    let dash = s.iter().position(|&b| b == b'-')?;
    let (first, last) = (&s[..dash], &s[dash + 1..]);
    if first.is_empty() {
        return Some(Spec::Suffix(parse_digits(last)?));
    }
    let first = parse_digits(first)?;
    let last = if last.is_empty() {
        None
    } else {
        Some(parse_digits(last)?)
    };
    // §14.1.1: an int-range with last-pos < first-pos is invalid.
    if matches!(last, Some(l) if l < first) {
        return None;
    }
    Some(Spec::Int { first, last })
}

/// `1*DIGIT`, saturating at `u64::MAX` instead of overflowing: a position that
/// large is past the end of any representation, which is all that matters.
fn parse_digits(s: &[u8]) -> Option<u64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0u64, |acc, &d| {
        acc.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

/// Optional whitespace is spaces and horizontal tabs (RFC 9110 §5.6.3).
fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Merges ranges that overlap or touch, as RFC 9110 §14.6 permits.
///
/// The result keeps the client's order (§14.6 asks that parts follow the order
/// of the range-specs): each merged range takes the position of the earliest
/// range-spec it absorbed.
///
/// ```
/// use bustapi_files::{range::coalesce, ByteRange};
/// let r = |start, end| ByteRange { start, end };
/// assert_eq!(coalesce(&[r(500, 701), r(601, 1000)]), vec![r(500, 1000)]);
/// assert_eq!(coalesce(&[r(90, 100), r(0, 1)]), vec![r(90, 100), r(0, 1)]);
/// ```
pub fn coalesce(ranges: &[ByteRange]) -> Vec<ByteRange> {
    let mut by_start: Vec<(ByteRange, usize)> = ranges.iter().copied().zip(0..).collect::<Vec<_>>();
    by_start.sort_by_key(|(r, _)| (r.start, r.end));

    let mut merged: Vec<(ByteRange, usize)> = Vec::with_capacity(by_start.len());
    for (r, order) in by_start {
        match merged.last_mut() {
            // `<=`: adjacent ranges (end == next start) merge too.
            Some((last, first_seen)) if r.start <= last.end => {
                last.end = last.end.max(r.end);
                *first_seen = (*first_seen).min(order);
            }
            _ => merged.push((r, order)),
        }
    }
    merged.sort_by_key(|&(_, order)| order);
    merged.into_iter().map(|(r, _)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(start: u64, end: u64) -> ByteRange {
        ByteRange { start, end }
    }

    fn ranges(v: &[(u64, u64)]) -> ParsedRange {
        ParsedRange::Ranges(v.iter().map(|&(s, e)| r(s, e)).collect())
    }

    /// RFC 9110 §14.1.2, for a representation of length 10000. Ranges are
    /// half-open here; the RFC's are inclusive.
    #[test]
    fn rfc9110_examples() {
        let cases: &[(&str, ParsedRange)] = &[
            // The first 500 bytes.
            ("bytes=0-499", ranges(&[(0, 500)])),
            // The second 500 bytes.
            ("bytes=500-999", ranges(&[(500, 1000)])),
            // The final 500 bytes (two spellings).
            ("bytes=-500", ranges(&[(9500, 10000)])),
            ("bytes=9500-", ranges(&[(9500, 10000)])),
            // The first and last bytes only.
            ("bytes=0-0,-1", ranges(&[(0, 1), (9999, 10000)])),
            // Other valid (but not canonical) specifications of the second 500 bytes.
            ("bytes=500-600,601-999", ranges(&[(500, 601), (601, 1000)])),
            ("bytes=500-700,601-999", ranges(&[(500, 701), (601, 1000)])),
            // The RFC's multi-range example with whitespace.
            (
                "bytes= 0-999, 4500-5499, -1000",
                ranges(&[(0, 1000), (4500, 5500), (9000, 10000)]),
            ),
        ];
        for (header, want) in cases {
            assert_eq!(&parse(header.as_bytes(), 10_000), want, "{header}");
        }
        // The two "second 500 bytes" spellings coalesce to exactly that.
        for header in ["bytes=500-600,601-999", "bytes=500-700,601-999"] {
            let ParsedRange::Ranges(v) = parse(header.as_bytes(), 10_000) else {
                panic!()
            };
            assert_eq!(coalesce(&v), vec![r(500, 1000)], "{header}");
        }
    }

    #[test]
    fn syntax_table() {
        let len = 1000;
        let cases: &[(&[u8], ParsedRange)] = &[
            // Unit is case-insensitive.
            (b"BYTES=0-0", ranges(&[(0, 1)])),
            (b"Bytes=1-1", ranges(&[(1, 2)])),
            // bytes=0- is a valid range for the whole file: 206, not 200.
            (b"bytes=0-", ranges(&[(0, 1000)])),
            // OWS and empty list elements.
            (b"bytes=\t0-1 ,\t, 3-4 ,", ranges(&[(0, 2), (3, 5)])),
            (b"bytes=,0-1", ranges(&[(0, 2)])),
            // last-pos past the end is clamped.
            (b"bytes=900-5000", ranges(&[(900, 1000)])),
            // Suffix longer than the representation selects all of it.
            (b"bytes=-5000", ranges(&[(0, 1000)])),
            // Huge numbers clamp instead of overflowing.
            (b"bytes=0-99999999999999999999999999", ranges(&[(0, 1000)])),
            (b"bytes=-99999999999999999999999999", ranges(&[(0, 1000)])),
            (b"bytes=18446744073709551615-", ParsedRange::Unsatisfiable),
            (
                b"bytes=18446744073709551614-18446744073709551615",
                ParsedRange::Unsatisfiable,
            ),
            // Unsatisfiable.
            (b"bytes=1000-", ParsedRange::Unsatisfiable),
            (b"bytes=1000-2000", ParsedRange::Unsatisfiable),
            (b"bytes=-0", ParsedRange::Unsatisfiable),
            (b"bytes=1000-,-0", ParsedRange::Unsatisfiable),
            // One satisfiable spec is enough; the others are dropped.
            (b"bytes=5000-,10-19", ranges(&[(10, 20)])),
            // Unknown unit: ignored.
            (b"items=0-1", ParsedRange::Ignore),
            (b"bytes2=0-1", ParsedRange::Ignore),
            (b"none", ParsedRange::Ignore),
            // Invalid syntax: ignored.
            (b"", ParsedRange::Ignore),
            (b"bytes=", ParsedRange::Ignore),
            (b"bytes=,", ParsedRange::Ignore),
            (b"bytes=-", ParsedRange::Ignore),
            (b"bytes=5-1", ParsedRange::Ignore),
            (b"bytes=abc", ParsedRange::Ignore),
            (b"bytes=1-2-3", ParsedRange::Ignore),
            (b"bytes=+1-2", ParsedRange::Ignore),
            (b"bytes=-+1", ParsedRange::Ignore),
            (b"bytes=1 -2", ParsedRange::Ignore),
            (b"bytes=0x10-", ParsedRange::Ignore),
            (b"bytes=0-1,junk", ParsedRange::Ignore),
            (b"bytes=0-1;q=1", ParsedRange::Ignore),
            (b"bytes=\xff-1", ParsedRange::Ignore),
        ];
        for (header, want) in cases {
            assert_eq!(
                &parse(header, len),
                want,
                "{:?}",
                String::from_utf8_lossy(header)
            );
        }
    }

    #[test]
    fn empty_representation_never_yields_a_range() {
        assert_eq!(parse(b"bytes=0-", 0), ParsedRange::Unsatisfiable);
        assert_eq!(parse(b"bytes=0-0", 0), ParsedRange::Unsatisfiable);
        // Satisfiable per §14.1.1 but selects nothing: serve the empty 200.
        assert_eq!(parse(b"bytes=-5", 0), ParsedRange::Ignore);
        assert_eq!(parse(b"bytes=-0", 0), ParsedRange::Unsatisfiable);
    }

    #[test]
    fn coalesce_merges_overlapping_and_adjacent_and_keeps_client_order() {
        assert_eq!(coalesce(&[r(0, 10), r(10, 20)]), vec![r(0, 20)]);
        assert_eq!(coalesce(&[r(0, 10), r(11, 20)]), vec![r(0, 10), r(11, 20)]);
        assert_eq!(coalesce(&[r(5, 6), r(0, 100)]), vec![r(0, 100)]);
        assert_eq!(
            coalesce(&[r(50, 60), r(0, 1), r(55, 70)]),
            vec![r(50, 70), r(0, 1)]
        );
        assert_eq!(
            coalesce(&[r(9, 10), r(0, 1), r(5, 6), r(0, 1)]),
            vec![r(9, 10), r(0, 1), r(5, 6)]
        );
        assert!(coalesce(&[]).is_empty());
    }
}
