//! `multipart/byteranges` framing (RFC 9110 §14.6).
//!
//! A multi-range 206 body is, for each range, a delimiter line and part
//! headers followed by the bytes, then a closing delimiter:
//!
//! ```text
//! --BOUNDARY\r\n
//! Content-Type: video/mp4\r\n
//! Content-Range: bytes 0-499/10000\r\n
//! \r\n
//! <500 bytes>\r\n
//! --BOUNDARY\r\n
//! ...
//! <bytes>\r\n
//! --BOUNDARY--\r\n
//! ```
//!
//! All framing bytes are computed up front, so `Content-Length` is exact and
//! the body can interleave them with file reads without buffering ranges.
//!
//! The boundary must not occur in the content. It is 32 hex digits drawn from
//! std's randomly keyed hasher, a process-wide counter and the clock: not
//! guessable by whoever chose the file's content, with no extra dependency.
//! Its length is fixed, so a HEAD response's `Content-Length` equals the GET's.

use crate::range::ByteRange;
// Re-exported so `multipart::Piece` keeps naming the type it always has.
pub use crate::plan::Piece;
use bytes::Bytes;
use http::HeaderValue;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

/// One part: its delimiter and headers, then the bytes of its range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Everything before the part's bytes: the delimiter line (preceded by
    /// CRLF for all but the first part), part headers and the blank line.
    pub header: Bytes,
    /// The bytes of the representation that follow.
    pub range: ByteRange,
}

/// A complete `multipart/byteranges` body description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Multipart {
    boundary: String,
    parts: Vec<Part>,
    closing: Bytes,
}

impl Multipart {
    /// Frames `ranges` (in the order given) of a representation of `total_len`
    /// bytes with the given part `Content-Type`, under a fresh random boundary.
    pub fn new(ranges: &[ByteRange], content_type: &HeaderValue, total_len: u64) -> Self {
        Self::with_boundary(new_boundary(), ranges, content_type, total_len)
    }

    /// Like [`Multipart::new`] with a chosen boundary (for tests and
    /// reproducible output). The boundary must be 1–70 characters from
    /// RFC 2046's `bchars`; it is not checked.
    pub fn with_boundary(
        boundary: String,
        ranges: &[ByteRange],
        content_type: &HeaderValue,
        total_len: u64,
    ) -> Self {
        let parts = ranges
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let mut header = Vec::with_capacity(128);
                if i > 0 {
                    // The CRLF that ends the previous part's bytes belongs to
                    // this delimiter (RFC 2046 §5.1.1).
                    header.extend_from_slice(b"\r\n");
                }
                header.extend_from_slice(b"--");
                header.extend_from_slice(boundary.as_bytes());
                header.extend_from_slice(b"\r\nContent-Type: ");
                header.extend_from_slice(content_type.as_bytes());
                header.extend_from_slice(b"\r\nContent-Range: ");
                header.extend_from_slice(content_range(*r, total_len).as_bytes());
                header.extend_from_slice(b"\r\n\r\n");
                Part {
                    header: Bytes::from(header),
                    range: *r,
                }
            })
            .collect();
        let closing = Bytes::from(format!("\r\n--{boundary}--\r\n"));
        Multipart {
            boundary,
            parts,
            closing,
        }
    }

    /// The boundary, without leading dashes.
    pub fn boundary(&self) -> &str {
        &self.boundary
    }

    /// The response `Content-Type`: `multipart/byteranges; boundary=…`.
    pub fn content_type(&self) -> HeaderValue {
        HeaderValue::from_str(&format!("multipart/byteranges; boundary={}", self.boundary))
            .expect("boundary is visible ASCII")
    }

    /// The parts, in order.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// The closing delimiter, sent after the last part's bytes.
    pub fn closing(&self) -> &Bytes {
        &self.closing
    }

    /// Total body length: all part headers, range bytes and the closing delimiter.
    pub fn content_length(&self) -> u64 {
        self.parts
            .iter()
            .map(|p| p.header.len() as u64 + p.range.len())
            .sum::<u64>()
            + self.closing.len() as u64
    }

    /// The body as a sequence of pieces, in order: framing bytes and ranges of
    /// the representation. A body writer copies `Framing` and reads `Range`.
    /// (Framing bytes are shared, not copied: cloning `Bytes` is a refcount.)
    pub fn pieces(&self) -> impl Iterator<Item = Piece> + '_ {
        self.parts
            .iter()
            .flat_map(|p| [Piece::Framing(p.header.clone()), Piece::Range(p.range)])
            .chain(std::iter::once(Piece::Framing(self.closing.clone())))
    }
}

/// `bytes first-last/complete` for a non-empty range (inclusive positions).
pub fn content_range(r: ByteRange, total_len: u64) -> String {
    format!("bytes {}-{}/{}", r.start, r.end - 1, total_len)
}

/// 32 lower-case hex digits, different for every call.
fn new_boundary() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    // Each RandomState has fresh random keys (SipHash), so the output is not
    // predictable from the counter and clock alone.
    let word = |salt: u64| {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(salt);
        h.write_u64(n);
        h.write_u128(now);
        h.finish()
    };
    format!("{:016x}{:016x}", word(1), word(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_matches_rfc_shape() {
        let ct = HeaderValue::from_static("text/plain");
        let ranges = [
            ByteRange { start: 0, end: 2 },
            ByteRange { start: 8, end: 10 },
        ];
        let m = Multipart::with_boundary("B".into(), &ranges, &ct, 10);
        let data = b"0123456789";
        let mut body = Vec::new();
        for piece in m.pieces() {
            match piece {
                Piece::Framing(b) => body.extend_from_slice(&b),
                Piece::Range(r) => body.extend_from_slice(&data[r.start as usize..r.end as usize]),
            }
        }
        let want = "--B\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-1/10\r\n\r\n01\
                    \r\n--B\r\nContent-Type: text/plain\r\nContent-Range: bytes 8-9/10\r\n\r\n89\
                    \r\n--B--\r\n";
        assert_eq!(String::from_utf8(body).unwrap(), want);
        assert_eq!(m.content_length(), want.len() as u64);
        assert_eq!(m.content_type(), "multipart/byteranges; boundary=B");
    }

    #[test]
    fn boundaries_are_fixed_length_and_distinct() {
        let a = new_boundary();
        let b = new_boundary();
        assert_eq!(a.len(), 32);
        assert_eq!(b.len(), 32);
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    }
}
