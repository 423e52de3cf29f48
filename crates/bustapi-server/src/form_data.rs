//! `multipart/form-data` bodies, parsed by multer as they arrive: file parts go
//! straight to temp files, other fields are kept in memory (bounded).
//!
//! Nothing of a file part is held beyond the parser's current piece and the
//! write buffer, so memory stays flat with the upload's size. Temp files belong
//! to the request ([`TempFiles`]): whatever the view did not move away is removed
//! when the request ends, and everything written so far is removed when the
//! body is refused (too large, malformed, too slow, disk full, client gone).

use crate::request_body::{Arriving, BodyConfig, BodyError, PIECE, UNRATIONED};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use http::HeaderMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use tempfile::TempPath;
use tokio::io::AsyncWriteExt;

/// Largest header block of one part (its Content-Disposition, Content-Type...).
const MAX_PART_HEADER: u64 = 16 * 1024;

pub(crate) const PART_HEADER_TOO_LARGE: &str =
    "A multipart part's header is larger than the server allows.";

/// File bytes gathered before one write to the temp file.
const WRITE_BUFFER: usize = 1024 * 1024;

/// Temp files start with this, so a folder shared with other programs shows whose they are.
pub const TEMP_PREFIX: &str = "bustapi-upload-";

/// A parsed form, in the order the parts arrived.
#[derive(Debug, Default)]
pub struct Form {
    pub fields: Vec<FormField>,
    pub files: Vec<UploadedFile>,
}

/// A part without a filename: a form field, its value in memory.
#[derive(Debug)]
pub struct FormField {
    pub name: String,
    pub value: Bytes,
}

/// A part with a filename, its content in a temp file.
#[derive(Debug)]
pub struct UploadedFile {
    /// The form field's name.
    pub name: String,
    /// The filename as the client sent it: untrusted (`../x`, any Unicode).
    pub filename: String,
    /// The part's own header fields (Content-Type among them).
    pub headers: HeaderMap,
    pub path: PathBuf,
    pub size: u64,
}

/// The temp files of one request, removed when dropped. A file the view moved
/// away (`save()` renames it) is simply no longer there to remove.
#[derive(Debug, Default)]
pub struct TempFiles(Vec<TempPath>);

/// Parses a multipart body of `boundary`, writing file parts under the temp folder.
pub(crate) async fn read<B>(
    body: &mut Arriving<B>,
    boundary: String,
    config: &BodyConfig,
) -> Result<(Form, TempFiles), BodyError>
where
    B: http_body::Body<Data = Bytes> + Send,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let mut temp_files = TempFiles::default();
    let mut form = Form::default();
    let folder = config.temp_folder();
    // What the parser may pull while it looks for a part's header: the header,
    // the delimiter line, and the piece that holds their end.
    let header_allowance = MAX_PART_HEADER + PIECE as u64 + boundary.len() as u64 + 8;
    body.paced();
    let allowance = body.allowance();
    {
        let mut multipart = multer::Multipart::new(&mut *body, boundary);
        loop {
            allowance.store(header_allowance, Ordering::Relaxed);
            let next = multipart.next_field().await;
            allowance.store(UNRATIONED, Ordering::Relaxed);
            let Some(mut field) = next.map_err(refused)? else {
                break;
            };
            // The allowance only bounds what the parser buffers; this is the limit.
            if header_size(field.headers()) > MAX_PART_HEADER {
                return Err(BodyError::Malformed(PART_HEADER_TOO_LARGE));
            }
            if form.fields.len() + form.files.len() >= config.max_form_parts {
                return Err(BodyError::Malformed(
                    "The form has more parts than the server allows.",
                ));
            }
            let name = field.name().unwrap_or("").to_string();
            match field.file_name().map(str::to_string) {
                Some(filename) => {
                    let headers = field.headers().clone();
                    let (path, size) = write_temp(&mut field, &folder, &mut temp_files).await?;
                    form.files.push(UploadedFile {
                        name,
                        filename,
                        headers,
                        path,
                        size,
                    });
                }
                None => {
                    let mut value = BytesMut::new();
                    while let Some(chunk) = field.chunk().await.map_err(refused)? {
                        if (value.len() + chunk.len()) as u64 > config.max_form_memory_size {
                            return Err(BodyError::FieldTooLarge);
                        }
                        value.extend_from_slice(&chunk);
                    }
                    form.fields.push(FormField {
                        name,
                        value: value.freeze(),
                    });
                }
            }
        }
    }
    // The epilogue after the closing delimiter (a CRLF, usually) is read too, so
    // the connection is in step for its next request.
    while let Some(piece) = body.next().await {
        piece?;
    }
    Ok((form, temp_files))
}

/// Streams one file part into a new temp file; returns its path and size.
async fn write_temp(
    field: &mut multer::Field<'_>,
    folder: &Path,
    temp_files: &mut TempFiles,
) -> Result<(PathBuf, u64), BodyError> {
    // O_EXCL with a random name (mode 0600): nothing else can claim or read it.
    let file = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .tempfile_in(folder)
        .map_err(stored)?;
    let (file, path) = file.into_parts();
    let kept = path.to_path_buf();
    // Registered before the first write, so any failure below removes it.
    temp_files.0.push(path);
    let mut out =
        tokio::io::BufWriter::with_capacity(WRITE_BUFFER, tokio::fs::File::from_std(file));
    let mut size = 0u64;
    while let Some(chunk) = field.chunk().await.map_err(refused)? {
        size += chunk.len() as u64;
        out.write_all(&chunk).await.map_err(stored)?;
    }
    out.flush().await.map_err(stored)?;
    Ok((kept, size))
}

/// A part's header block size, as sent (`name: value` lines).
fn header_size(headers: &HeaderMap) -> u64 {
    headers
        .iter()
        .map(|(name, value)| (name.as_str().len() + value.len() + 4) as u64)
        .sum()
}

/// A temp-file error: a full disk is the client's to know (507); anything else
/// is the server's problem (500, logged).
fn stored(e: std::io::Error) -> BodyError {
    match e.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::EDQUOT) => BodyError::DiskFull,
        _ => BodyError::Storage(e),
    }
}

/// A multer error: ours (size, timeout, client gone) come back through it.
fn refused(e: multer::Error) -> BodyError {
    match e {
        multer::Error::StreamReadFailed(inner) => match inner.downcast::<BodyError>() {
            Ok(ours) => *ours,
            Err(_) => BodyError::Aborted,
        },
        multer::Error::IncompleteStream | multer::Error::IncompleteFieldData { .. } => {
            BodyError::Malformed("The multipart body ends before its closing boundary.")
        }
        multer::Error::IncompleteHeaders | multer::Error::ReadHeaderFailed(_) => {
            BodyError::Malformed("A multipart part has a malformed header.")
        }
        multer::Error::FieldSizeExceeded { .. } | multer::Error::StreamSizeExceeded { .. } => {
            BodyError::TooLarge
        }
        _ => BodyError::Malformed("The multipart body is malformed."),
    }
}
