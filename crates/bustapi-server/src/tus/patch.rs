//! `PATCH`: bytes appended at the upload's offset — and what any request that
//! carries upload bytes shares with it (creation-with-upload): limits, the
//! checksum verdict, keeping or discarding the chunk, and completion.

use super::append::{append, AppendEnd};
use super::checksum::ExpectedChecksum;
use super::hooks::{self, Facts, RequestHead};
use super::id::UploadId;
use super::protocol::{self, refuse, response, Refusal};
use super::sidecar::UploadInfo;
use super::store::{Locked, Unavailable};
use super::{blocking, io_failure, unavailable, ResumableUploads};
use crate::body::Body;
use crate::dispatch::Dispatcher;
use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode};
use std::sync::Arc;
use std::time::SystemTime;

pub async fn patch<B>(
    up: &ResumableUploads,
    id: UploadId,
    head: RequestHead,
    body: B,
    dispatcher: &dyn Dispatcher,
) -> Response<Body>
where
    B: http_body::Body<Data = Bytes> + Send,
{
    let h = &head.headers;
    if !protocol::is_offset_octet_stream(h) {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "PATCH bodies must be application/offset+octet-stream",
        );
    }
    let offset = match protocol::number(h, &protocol::UPLOAD_OFFSET) {
        Ok(Some(n)) => n,
        Ok(None) => return refuse(StatusCode::BAD_REQUEST, "Upload-Offset is required"),
        Err(r) => return r.into(),
    };
    let length = match protocol::number(h, &protocol::UPLOAD_LENGTH) {
        Ok(n) => n,
        Err(r) => return r.into(),
    };
    let checksum = match expected_checksum(h) {
        Ok(c) => c,
        Err(r) => return r.into(),
    };
    let store = Arc::clone(&up.store);
    let expiration = up.expiration;
    let mut locked = match blocking(move || store.lock(&id, expiration)).await {
        Ok(Ok(locked)) => locked,
        Ok(Err(Ok(complete))) => return patch_complete(&complete, offset, h),
        Ok(Err(Err(e))) => return unavailable(e),
        Err(e) => return unavailable(Unavailable::Io(e)),
    };
    if offset != locked.offset {
        let mut r = refuse(
            StatusCode::CONFLICT,
            "Upload-Offset is not the upload's offset (HEAD tells it)",
        );
        protocol::set_offset(&mut r, locked.offset);
        return r;
    }
    if let Some(n) = length {
        match locked.info.length {
            Some(declared) if declared != n => {
                return refuse(StatusCode::BAD_REQUEST, "Upload-Length cannot change")
            }
            Some(_) => {}
            None => {
                if n < locked.offset {
                    return refuse(StatusCode::BAD_REQUEST, "Upload-Length is below the offset");
                }
                if up.max_size.is_some_and(|max| n > max) {
                    return too_large(up.max_size);
                }
                let store = Arc::clone(&up.store);
                locked = match blocking(move || store.set_length(&mut locked, n).map(|()| locked))
                    .await
                {
                    Ok(Ok(l)) => l,
                    Ok(Err(e)) | Err(e) => return io_failure(&e),
                };
            }
        }
    }
    match receive(up, locked, body, &head, checksum, dispatcher).await {
        Ok(received) => received.into_response(StatusCode::NO_CONTENT, up),
        Err(r) => r,
    }
}

/// A PATCH against a finished upload: nothing left to add.
fn patch_complete(info: &UploadInfo, offset: u64, headers: &HeaderMap) -> Response<Body> {
    let length = info.length.unwrap_or(0);
    if offset != length {
        let mut r = refuse(StatusCode::CONFLICT, "the upload is complete");
        protocol::set_offset(&mut r, length);
        return r;
    }
    if protocol::content_length(headers) != Some(0) {
        return too_large(None);
    }
    let mut r = response(StatusCode::NO_CONTENT);
    protocol::set_offset(&mut r, length);
    r
}

pub fn expected_checksum(headers: &HeaderMap) -> Result<Option<ExpectedChecksum>, Refusal> {
    match headers.get(&protocol::UPLOAD_CHECKSUM) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map_err(|_| "Upload-Checksum is not ASCII")
            .and_then(ExpectedChecksum::parse)
            .map(Some)
            .map_err(Refusal::bad_request),
    }
}

pub fn too_large(max_size: Option<u64>) -> Response<Body> {
    refuse(
        StatusCode::PAYLOAD_TOO_LARGE,
        if max_size.is_some() {
            "the upload would be larger than this server accepts (Tus-Max-Size)"
        } else {
            "the body goes past the upload's length"
        },
    )
}

/// The outcome of a request that carried upload bytes.
pub struct Received {
    pub offset: u64,
    pub complete: bool,
    /// The completion hook's answer headers (cookies it set travel on).
    pub hook_headers: Option<HeaderMap>,
}

impl Received {
    pub fn into_response(self, status: StatusCode, up: &ResumableUploads) -> Response<Body> {
        let mut r = response(status);
        protocol::set_offset(&mut r, self.offset);
        if !self.complete {
            // Just written to, so it expires a full period from now.
            protocol::set_expires(
                &mut r,
                super::store::expires_at(SystemTime::now(), up.expiration),
            );
        }
        if let Some(from) = &self.hook_headers {
            hooks::carry_cookies(from, r.headers_mut());
        }
        r
    }
}

/// Appends `body` at the locked upload's offset. A chunk is kept if it arrived
/// whole and its checksum (if any) matches, or — without a checksum — as far as
/// it arrived; a chunk whose checksum fails or cannot be checked, or that runs
/// past the upload's length, is discarded (the file is cut back to where the
/// request started). Then the upload completes if that was its last byte.
pub async fn receive<B>(
    up: &ResumableUploads,
    locked: Locked,
    body: B,
    head: &RequestHead,
    checksum: Option<ExpectedChecksum>,
    dispatcher: &dyn Dispatcher,
) -> Result<Received, Response<Body>>
where
    B: http_body::Body<Data = Bytes> + Send,
{
    let start = locked.offset;
    let limit = locked.info.length.or(up.max_size).unwrap_or(u64::MAX);
    let room = limit.saturating_sub(start);
    let max_size = locked.info.length.is_none().then_some(limit);
    let too_big = || too_large(max_size);
    // Refused before a byte is read when the declared length says so.
    if protocol::content_length(&head.headers).is_some_and(|n| n > room) {
        return Err(too_big());
    }
    let digest = checksum.as_ref().map(ExpectedChecksum::start);
    let appended = append(Arc::clone(&locked.file), start, room, body, digest).await;
    let mismatch = match (&checksum, appended.digest) {
        (Some(expected), Some(digest)) => !expected.matches(digest),
        _ => false,
    };
    let (verdict, discard) = match appended.end {
        AppendEnd::Done if mismatch => (
            Err(refuse(
                protocol::checksum_mismatch(),
                "the chunk does not match Upload-Checksum and was discarded",
            )),
            true,
        ),
        AppendEnd::Done => (Ok(()), false),
        AppendEnd::TooLarge => (Err(too_big()), true),
        AppendEnd::Interrupted => (
            Err(refuse(
                StatusCode::BAD_REQUEST,
                "the request body was cut short",
            )),
            checksum.is_some(),
        ),
        AppendEnd::Stalled => (
            Err(refuse(
                StatusCode::REQUEST_TIMEOUT,
                "no body bytes arrived for 30 seconds",
            )),
            checksum.is_some(),
        ),
        AppendEnd::WriteFailed(e) => (Err(io_failure(&e)), checksum.is_some()),
    };
    let store = Arc::clone(&up.store);
    let settled = blocking(move || -> std::io::Result<(Locked, u64)> {
        if discard {
            locked.file.set_len(start)?;
        }
        // The file says how much is really there, whatever happened above.
        let offset = locked.file.metadata()?.len();
        store.sync(&locked)?;
        Ok((locked, offset))
    })
    .await;
    let (locked, offset) = match settled {
        Ok(Ok(done)) => done,
        Ok(Err(e)) | Err(e) => return Err(io_failure(&e)),
    };
    verdict?;
    complete_if_done(up, locked, offset, head, dispatcher).await
}

/// If `offset` is the upload's length, moves the file into place and tells the
/// application, exactly once: the lock is held until the hook has answered, and
/// afterwards the upload is marked complete, so no later request finishes it again.
pub async fn complete_if_done(
    up: &ResumableUploads,
    mut locked: Locked,
    offset: u64,
    head: &RequestHead,
    dispatcher: &dyn Dispatcher,
) -> Result<Received, Response<Body>> {
    if locked.info.length != Some(offset) {
        return Ok(Received {
            offset,
            complete: false,
            hook_headers: None,
        });
    }
    let store = Arc::clone(&up.store);
    let (locked, path) = match blocking(move || {
        let path = store.finish(&mut locked);
        (locked, path)
    })
    .await
    {
        Ok((locked, Ok(path))) => (locked, path),
        Ok((_, Err(e))) | Err(e) => return Err(io_failure(&e)),
    };
    let mut hook_headers = None;
    if let Some(endpoint) = up.on_complete {
        let facts = Facts {
            id: &locked.id,
            info: &locked.info,
            size: offset,
            path: &path,
        };
        let answer = hooks::call(dispatcher, endpoint, head, facts).await;
        if !answer.status.is_success() {
            return Err(hooks::into_response(head, answer).await);
        }
        hook_headers = Some(answer.headers);
    }
    drop(locked);
    Ok(Received {
        offset,
        complete: true,
        hook_headers,
    })
}
