//! Request-framing checks that close the door on HTTP request smuggling.
//!
//! hyper already refuses differing duplicate `Content-Length`s, obs-fold and
//! unknown transfer codings. What it tolerates, and a proxy in front of us might
//! read differently, is refused here (RFC 9112 §6.1, §6.3): a message that carries
//! both `Content-Length` and `Transfer-Encoding`, repeated `Content-Length` fields
//! (even equal ones), `chunked` given more than once, and HTTP/1.1 without `Host`.
//! The answer is 400 with `Connection: close`, because once framing is in doubt
//! nothing else on the connection can be trusted.

use crate::body::Body;
use crate::errors;
use http::header::{CONNECTION, CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderValue, Response, StatusCode, Version};

/// Why a message with both length fields is refused.
pub const BOTH_LENGTHS: &str = "Content-Length and Transfer-Encoding must not both be present";

/// The answer to a request whose framing is in doubt: 400, and the connection
/// closes after it.
pub fn refusal(why: &'static str) -> Response<Body> {
    let mut r = errors::plain_with(StatusCode::BAD_REQUEST, why);
    r.headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    r
}

/// Why a request's framing is refused, as the short message sent back.
pub fn check(version: Version, headers: &HeaderMap) -> Result<(), &'static str> {
    let has_te = headers.contains_key(TRANSFER_ENCODING);
    let cl_count = headers.get_all(CONTENT_LENGTH).iter().count();
    if has_te && cl_count > 0 {
        return Err(BOTH_LENGTHS);
    }
    if cl_count > 1 {
        return Err("Content-Length must be given once");
    }
    if has_te {
        let chunked = headers
            .get_all(TRANSFER_ENCODING)
            .iter()
            .flat_map(|v| v.to_str().unwrap_or("invalid").split(','))
            .map(str::trim)
            .filter(|coding| !coding.is_empty())
            .collect::<Vec<_>>();
        if chunked.len() != 1 || !chunked[0].eq_ignore_ascii_case("chunked") {
            return Err("the only supported Transfer-Encoding is a single chunked");
        }
    }
    if version == Version::HTTP_11 && headers.get_all(HOST).iter().count() != 1 {
        return Err("an HTTP/1.1 request needs exactly one Host header");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn accepts_ordinary_framing() {
        for h in [
            headers(&[("host", "x")]),
            headers(&[("host", "x"), ("content-length", "5")]),
            headers(&[("host", "x"), ("transfer-encoding", "chunked")]),
            headers(&[("host", "x"), ("transfer-encoding", "Chunked")]),
        ] {
            assert_eq!(check(Version::HTTP_11, &h), Ok(()), "{h:?}");
        }
        assert_eq!(check(Version::HTTP_10, &headers(&[])), Ok(()));
        assert_eq!(check(Version::HTTP_2, &headers(&[])), Ok(()));
    }

    #[test]
    fn refuses_ambiguous_framing() {
        for h in [
            headers(&[
                ("host", "x"),
                ("content-length", "5"),
                ("transfer-encoding", "chunked"),
            ]),
            headers(&[
                ("host", "x"),
                ("content-length", "5"),
                ("content-length", "5"),
            ]),
            headers(&[("host", "x"), ("transfer-encoding", "chunked, chunked")]),
            headers(&[
                ("host", "x"),
                ("transfer-encoding", "chunked"),
                ("transfer-encoding", "chunked"),
            ]),
            headers(&[("host", "x"), ("transfer-encoding", "gzip, chunked")]),
            headers(&[]),
            headers(&[("host", "x"), ("host", "y")]),
        ] {
            assert!(check(Version::HTTP_11, &h).is_err(), "{h:?}");
        }
    }
}
