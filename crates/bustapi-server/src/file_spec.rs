//! [`FileSpec`]: a view's description of a file response (which file, type,
//! disposition, validators, caching). The view describes; the engine opens,
//! decides and streams it ([`crate::file_response`]).

use bustapi_files::{DispositionType, Pace};
use bytes::Bytes;
use http::HeaderValue;
use std::path::PathBuf;
use std::time::SystemTime;

/// The file a view asks to send, as Flask's `send_file(path_or_file)` (and
/// `send_from_directory`) take it: a path, or a file already open or in memory.
pub enum PathOrFile {
    /// A path opened as given (the application chose it: `send_file`).
    Path(PathBuf),
    /// A path relative to a root, resolved safely (`send_from_directory`).
    Under { root: PathBuf, rel: String },
    /// A descriptor the application already opened.
    Open(std::fs::File),
    /// Bytes held in memory (a `BytesIO`).
    Bytes(Bytes),
}

impl PathOrFile {
    /// A copy for another response; an open file is duplicated (`dup`), so
    /// each response reads through its own descriptor.
    pub fn try_clone(&self) -> std::io::Result<Self> {
        Ok(match self {
            PathOrFile::Path(p) => PathOrFile::Path(p.clone()),
            PathOrFile::Under { root, rel } => PathOrFile::Under {
                root: root.clone(),
                rel: rel.clone(),
            },
            PathOrFile::Open(f) => PathOrFile::Open(f.try_clone()?),
            PathOrFile::Bytes(b) => PathOrFile::Bytes(b.clone()),
        })
    }
}

/// A validator that can be derived from the file, switched off, or given.
#[derive(Clone, Debug, Default)]
pub enum Validator<T> {
    #[default]
    Auto,
    Off,
    Set(T),
}

/// A view's description of a file response; the engine does the rest.
pub struct FileSpec {
    pub path_or_file: PathOrFile,
    /// Explicit media type; otherwise guessed from `type_hint_name` or the path.
    pub content_type: Option<HeaderValue>,
    /// A name to guess the type from when the source has none (download name).
    pub type_hint_name: Option<String>,
    pub disposition: Option<(DispositionType, Option<String>)>,
    /// Evaluate `If-*` and `Range`; `false` always sends the whole file with 200.
    pub conditional: bool,
    pub etag: Validator<HeaderValue>,
    pub last_modified: Validator<SystemTime>,
    /// `Some(n)`: `public, max-age=n`; `None`: `no-cache` (revalidate with the validators).
    pub max_age: Option<u64>,
    /// Pacing of the body (`send_file(rate=..., rate_after=...)`).
    pub pace: Option<Pace>,
}

impl FileSpec {
    pub fn path(path: impl Into<PathBuf>) -> Self {
        FileSpec {
            path_or_file: PathOrFile::Path(path.into()),
            content_type: None,
            type_hint_name: None,
            disposition: None,
            conditional: true,
            etag: Validator::Auto,
            last_modified: Validator::Auto,
            max_age: None,
            pace: None,
        }
    }
}
