//! `POST <prefix>`: the creation extension, with creation-with-upload (a first
//! chunk in the same request) and creation-defer-length.

use super::hooks::{self, Facts, RequestHead};
use super::id::UploadId;
use super::metadata;
use super::patch::{self, expected_checksum, too_large};
use super::protocol::{self, refuse};
use super::sidecar::UploadInfo;
use super::{blocking, io_failure, ResumableUploads};
use crate::body::Body;
use crate::dispatch::Dispatcher;
use bytes::Bytes;
use http::header::LOCATION;
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use std::sync::Arc;

pub async fn create<B>(
    up: &ResumableUploads,
    head: RequestHead,
    body: B,
    dispatcher: &dyn Dispatcher,
) -> Response<Body>
where
    B: http_body::Body<Data = Bytes> + Send,
{
    let h = &head.headers;
    let length = match protocol::number(h, &protocol::UPLOAD_LENGTH) {
        Ok(n) => n,
        Err(r) => return r.into(),
    };
    let deferred = match h.get(&protocol::UPLOAD_DEFER_LENGTH) {
        None => false,
        Some(v) if v == "1" => true,
        Some(_) => return refuse(StatusCode::BAD_REQUEST, "Upload-Defer-Length must be 1"),
    };
    if length.is_some() == deferred {
        return refuse(
            StatusCode::BAD_REQUEST,
            "send either Upload-Length or Upload-Defer-Length: 1",
        );
    }
    if let (Some(n), Some(max)) = (length, up.max_size) {
        if n > max {
            return too_large(Some(max));
        }
    }
    let metadata = match h.get(&protocol::UPLOAD_METADATA) {
        None => String::new(),
        Some(v) => match v.to_str().map_err(|_| "Upload-Metadata is not ASCII") {
            Ok(text) => match metadata::normalise(text) {
                Ok(m) => m,
                Err(why) => return refuse(StatusCode::BAD_REQUEST, why),
            },
            Err(why) => return refuse(StatusCode::BAD_REQUEST, why),
        },
    };
    // Creation-with-upload: a first chunk in the body.
    let with_upload = protocol::is_offset_octet_stream(h);
    let checksum = if with_upload {
        match expected_checksum(h) {
            Ok(c) => c,
            Err(r) => return r.into(),
        }
    } else {
        None
    };
    let limit = length.or(up.max_size);
    if with_upload && limit.is_some_and(|l| protocol::content_length(h).is_some_and(|n| n > l)) {
        return too_large(length.is_none().then_some(limit).flatten());
    }
    let id = match UploadId::generate() {
        Ok(id) => id,
        Err(e) => return io_failure(&e),
    };
    let info = UploadInfo {
        length,
        metadata,
        complete: false,
    };
    // Asked before anything is stored or a body byte read (so `Expect:
    // 100-continue` gets its answer before the client sends the chunk).
    let mut cookies = HeaderMap::new();
    if let Some(endpoint) = up.authorize {
        let path = up.store.final_path(&id);
        let facts = Facts {
            id: &id,
            info: &info,
            size: 0,
            path: &path,
        };
        let answer = hooks::call(dispatcher, endpoint, &head, facts).await;
        if !answer.status.is_success() {
            return hooks::into_response(&head, answer).await;
        }
        hooks::carry_cookies(&answer.headers, &mut cookies);
    }
    up.maybe_sweep();
    let store = Arc::clone(&up.store);
    let locked = match blocking(move || store.create(id, info)).await {
        Ok(Ok(locked)) => locked,
        Ok(Err(e)) | Err(e) => return io_failure(&e),
    };
    let location = format!("{}{}", up.prefix, locked.id);
    let received = if with_upload {
        patch::receive(up, locked, body, &head, checksum, dispatcher).await
    } else {
        patch::complete_if_done(up, locked, 0, &head, dispatcher).await
    };
    // The upload exists even when its first chunk was refused: the client is
    // told where, and may carry on with PATCH.
    let mut r = match received {
        Ok(received) => received.into_response(StatusCode::CREATED, up),
        Err(r) => r,
    };
    if let Ok(v) = HeaderValue::from_str(&location) {
        r.headers_mut().insert(LOCATION, v);
    }
    hooks::carry_cookies(&cookies, r.headers_mut());
    r
}
