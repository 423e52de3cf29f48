//! The tus 1.0.0 wire format: header names, the version negotiation, header
//! parsing, and responses carrying `Tus-Resumable`.

use crate::body::Body;
use crate::errors;
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use std::time::SystemTime;

pub const VERSION: &str = "1.0.0";

pub const TUS_RESUMABLE: HeaderName = HeaderName::from_static("tus-resumable");
pub const TUS_VERSION: HeaderName = HeaderName::from_static("tus-version");
pub const TUS_EXTENSION: HeaderName = HeaderName::from_static("tus-extension");
pub const TUS_MAX_SIZE: HeaderName = HeaderName::from_static("tus-max-size");
pub const TUS_CHECKSUM_ALGORITHM: HeaderName = HeaderName::from_static("tus-checksum-algorithm");
pub const UPLOAD_OFFSET: HeaderName = HeaderName::from_static("upload-offset");
pub const UPLOAD_LENGTH: HeaderName = HeaderName::from_static("upload-length");
pub const UPLOAD_DEFER_LENGTH: HeaderName = HeaderName::from_static("upload-defer-length");
pub const UPLOAD_METADATA: HeaderName = HeaderName::from_static("upload-metadata");
pub const UPLOAD_EXPIRES: HeaderName = HeaderName::from_static("upload-expires");
pub const UPLOAD_CHECKSUM: HeaderName = HeaderName::from_static("upload-checksum");
pub const METHOD_OVERRIDE: HeaderName = HeaderName::from_static("x-http-method-override");

/// The media type of every PATCH body (and of a creation-with-upload body).
pub const OFFSET_OCTET_STREAM: &str = "application/offset+octet-stream";

/// The extension's own status for a checksum mismatch.
pub fn checksum_mismatch() -> StatusCode {
    StatusCode::from_u16(460).expect("460 is a valid status code")
}

/// A response of the protocol: every one carries `Tus-Resumable`.
pub fn response(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(Body::Empty);
    *r.status_mut() = status;
    r.headers_mut()
        .insert(TUS_RESUMABLE, HeaderValue::from_static(VERSION));
    r
}

/// A refusal with a short fixed explanation (nothing from the request is echoed).
pub fn refuse(status: StatusCode, why: &str) -> Response<Body> {
    let mut r = errors::plain_with(status, why);
    r.headers_mut()
        .insert(TUS_RESUMABLE, HeaderValue::from_static(VERSION));
    r
}

/// Whether the client speaks our version (`Tus-Resumable: 1.0.0`).
pub fn speaks_our_version(headers: &HeaderMap) -> bool {
    headers.get(&TUS_RESUMABLE).map(HeaderValue::as_bytes) == Some(VERSION.as_bytes())
}

/// For any other version: 412 and the list of versions we do speak; the
/// request is not processed.
pub fn version_refusal() -> Response<Body> {
    let mut r = refuse(
        StatusCode::PRECONDITION_FAILED,
        "this server speaks tus 1.0.0 (send Tus-Resumable: 1.0.0)",
    );
    r.headers_mut()
        .insert(TUS_VERSION, HeaderValue::from_static(VERSION));
    r
}

/// A request the protocol refuses, small enough to pass around in a `Result`.
#[derive(Debug)]
pub struct Refusal {
    pub status: StatusCode,
    pub why: &'static str,
}

impl Refusal {
    pub fn bad_request(why: &'static str) -> Self {
        Refusal {
            status: StatusCode::BAD_REQUEST,
            why,
        }
    }
}

impl From<Refusal> for Response<Body> {
    fn from(r: Refusal) -> Self {
        refuse(r.status, r.why)
    }
}

/// A non-negative integer header (`Upload-Offset`, `Upload-Length`): absent is
/// `Ok(None)`, anything but plain digits is a 400.
pub fn number(headers: &HeaderMap, name: &HeaderName) -> Result<Option<u64>, Refusal> {
    let Some(value) = headers.get(name) else {
        return Ok(None);
    };
    let digits = value.as_bytes();
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(Refusal::bad_request(
            "Upload-Offset and Upload-Length must be non-negative integers",
        ));
    }
    let text = std::str::from_utf8(digits).expect("ASCII digits");
    Ok(Some(text.parse().expect("at most 19 digits fit in u64")))
}

/// Whether the request's `Content-Type` is `application/offset+octet-stream`
/// (parameters and case aside).
pub fn is_offset_octet_stream(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case(OFFSET_OCTET_STREAM))
}

/// The declared body length, if any (hyper has already checked its syntax).
pub fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

pub fn set_offset(r: &mut Response<Body>, offset: u64) {
    r.headers_mut()
        .insert(UPLOAD_OFFSET, HeaderValue::from(offset));
}

pub fn set_expires(r: &mut Response<Body>, at: Option<SystemTime>) {
    if let Some(at) = at {
        if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(at)) {
            r.headers_mut().insert(UPLOAD_EXPIRES, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(name: &HeaderName, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn numbers_are_plain_non_negative_integers() {
        assert_eq!(number(&HeaderMap::new(), &UPLOAD_OFFSET).ok(), Some(None));
        assert_eq!(
            number(&with(&UPLOAD_OFFSET, "0"), &UPLOAD_OFFSET).ok(),
            Some(Some(0))
        );
        assert_eq!(
            number(
                &with(&UPLOAD_OFFSET, "18446744073709551615"),
                &UPLOAD_OFFSET
            )
            .ok(),
            None,
            "20 digits"
        );
        for bad in [
            "",
            "-1",
            "+1",
            " 1",
            "1.0",
            "0x10",
            "1e3",
            "99999999999999999999",
        ] {
            assert!(
                number(&with(&UPLOAD_OFFSET, bad), &UPLOAD_OFFSET).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn version_negotiation() {
        assert!(speaks_our_version(&with(&TUS_RESUMABLE, "1.0.0")));
        assert!(!speaks_our_version(&HeaderMap::new()));
        assert!(!speaks_our_version(&with(&TUS_RESUMABLE, "0.2.2")));
        let r = version_refusal();
        assert_eq!(r.status(), StatusCode::PRECONDITION_FAILED);
        assert_eq!(r.headers()[&TUS_VERSION], "1.0.0");
    }

    #[test]
    fn content_type_match_ignores_case_and_parameters() {
        let ct = http::header::CONTENT_TYPE;
        assert!(is_offset_octet_stream(&with(
            &ct,
            "application/offset+octet-stream"
        )));
        assert!(is_offset_octet_stream(&with(
            &ct,
            "Application/Offset+Octet-Stream; x=1"
        )));
        assert!(!is_offset_octet_stream(&with(
            &ct,
            "application/octet-stream"
        )));
        assert!(!is_offset_octet_stream(&HeaderMap::new()));
    }
}
