//! Validators: the strong `ETag` and `Last-Modified` of a file (RFC 9110 §8.8).
//!
//! The entity tag is derived from the file's size and modification time in
//! nanoseconds, and deliberately *not* from the inode: two servers behind a load
//! balancer that serve replicated copies of the same file must produce the same
//! tag, or a resumed download (`If-Range`) that lands on the other server starts
//! again from zero. Apache 2.4 dropped the inode from its default `FileETag` for
//! the same reason.
//!
//! The tag is strong: it changes whenever the bytes can have changed, as far as
//! the file system can tell. A file rewritten with the same size within the
//! file system's timestamp granularity keeps its tag; every size+mtime scheme
//! shares that limit, and nanosecond mtimes make it rare on modern file systems.

use http::HeaderValue;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The last second an HTTP-date can express (9999-12-31T23:59:59Z).
const MAX_HTTP_SECS: u64 = 253_402_300_799;

/// A strong entity tag, `"<size hex>-<mtime nanoseconds hex>"`, from size and
/// modification time only (see the module documentation for why not the inode).
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// let t = UNIX_EPOCH + Duration::new(1_700_000_000, 5);
/// let tag = bustapi_files::validators::strong_etag(1024, Some(t));
/// assert_eq!(tag, "\"400-17979cfe362a0005\"");
/// ```
pub fn strong_etag(len: u64, modified: Option<SystemTime>) -> HeaderValue {
    let tag = match modified {
        None => format!("\"{len:x}\""),
        Some(t) => match t.duration_since(UNIX_EPOCH) {
            Ok(d) => format!("\"{len:x}-{:x}\"", d.as_nanos()),
            // A modification time before 1970 is odd but legal; keep it distinct
            // from the positive range instead of failing.
            Err(e) => format!("\"{len:x}-n{:x}\"", e.duration().as_nanos()),
        },
    };
    // Only hex digits, '-', 'n' and quotes: always a valid header value.
    HeaderValue::from_str(&tag).expect("entity tag is visible ASCII")
}

/// Formats a time as an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
///
/// Times outside what an HTTP-date can express (before 1970, after year 9999)
/// are clamped rather than panicking, so a file with a strange mtime is still
/// served.
pub fn http_date(t: SystemTime) -> HeaderValue {
    let clamped = UNIX_EPOCH + Duration::from_secs(http_seconds(t));
    HeaderValue::from_str(&httpdate::fmt_http_date(clamped)).expect("HTTP-date is visible ASCII")
}

/// Whole seconds since the epoch as an HTTP-date would carry them: sub-second
/// precision dropped, clamped to the expressible range.
///
/// Date comparisons (`If-Modified-Since`, `If-Range`, …) must use this same
/// truncation, or a client echoing our own `Last-Modified` back would never
/// match a file whose mtime has nanoseconds.
pub fn http_seconds(t: SystemTime) -> u64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs().min(MAX_HTTP_SECS),
        Err(_) => 0,
    }
}

/// Parses an HTTP-date header value into seconds since the epoch.
///
/// Returns `None` for anything that is not a valid HTTP-date; RFC 9110 says
/// such conditional headers are ignored.
pub fn parse_http_date(v: &HeaderValue) -> Option<u64> {
    let s = v.to_str().ok()?;
    let t = httpdate::parse_http_date(s).ok()?;
    Some(http_seconds(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_is_strong_quoted_and_depends_on_size_and_nanos() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        let a = strong_etag(10, Some(t));
        let s = a.to_str().unwrap();
        assert!(s.starts_with('"') && s.ends_with('"') && !s.starts_with("W/"));
        assert_ne!(a, strong_etag(11, Some(t)));
        assert_ne!(a, strong_etag(10, Some(t + Duration::from_nanos(1))));
        assert_eq!(a, strong_etag(10, Some(t)), "same inputs, same tag");
        assert_eq!(strong_etag(0, None), "\"0\"");
    }

    #[test]
    fn etag_before_epoch_does_not_panic_and_is_distinct() {
        let before = UNIX_EPOCH - Duration::from_secs(5);
        let after = UNIX_EPOCH + Duration::from_secs(5);
        assert_ne!(strong_etag(1, Some(before)), strong_etag(1, Some(after)));
    }

    #[test]
    fn http_date_formats_and_clamps() {
        let t = UNIX_EPOCH + Duration::new(784_111_777, 999_999_999);
        assert_eq!(http_date(t), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(
            http_date(UNIX_EPOCH - Duration::from_secs(1)),
            "Thu, 01 Jan 1970 00:00:00 GMT"
        );
        let far = UNIX_EPOCH + Duration::from_secs(400_000_000_000);
        assert_eq!(http_date(far), "Fri, 31 Dec 9999 23:59:59 GMT");
    }

    #[test]
    fn parse_http_date_accepts_the_three_formats_and_rejects_junk() {
        for s in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(
                parse_http_date(&HeaderValue::from_static(s)),
                Some(784_111_777)
            );
        }
        for s in ["", "yesterday", "Sun, 32 Nov 1994 08:49:37 GMT", "0"] {
            assert_eq!(parse_http_date(&HeaderValue::from_static(s)), None, "{s:?}");
        }
        let non_utf8 = HeaderValue::from_bytes(b"\xff\xfe").unwrap();
        assert_eq!(parse_http_date(&non_utf8), None);
    }
}
