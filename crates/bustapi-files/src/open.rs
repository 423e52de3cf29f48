//! Open a file and read its metadata from the open descriptor.
//!
//! The metadata comes from `fstat` on the descriptor we will stream from, not
//! from a separate `stat` of the path, so the length and validators describe
//! exactly the file being sent even if the path is replaced meanwhile.
//!
//! This is blocking IO; async callers run it in `spawn_blocking`.

use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::SystemTime;

/// What decisions about a file need: its size and modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileMeta {
    /// Size in bytes.
    pub len: u64,
    /// Modification time, when the platform provides one.
    pub modified: Option<SystemTime>,
    /// Whether it is a directory.
    pub is_dir: bool,
}

/// Why a file could not be opened for serving.
#[derive(Debug)]
pub enum OpenError {
    /// Does not exist (404).
    NotFound,
    /// Access denied, or not a regular file (device, FIFO, socket) (403).
    Forbidden,
    /// A directory (404: a directory is not a file to send).
    IsDirectory,
    /// Any other IO error (500).
    Io(io::Error),
}

impl OpenError {
    /// The HTTP status for this error.
    pub fn status(&self) -> http::StatusCode {
        match self {
            OpenError::NotFound | OpenError::IsDirectory => http::StatusCode::NOT_FOUND,
            OpenError::Forbidden => http::StatusCode::FORBIDDEN,
            OpenError::Io(_) => http::StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::NotFound => f.write_str("file not found"),
            OpenError::Forbidden => f.write_str("access to file forbidden"),
            OpenError::IsDirectory => f.write_str("path is a directory"),
            OpenError::Io(e) => write!(f, "cannot open file: {e}"),
        }
    }
}

impl std::error::Error for OpenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            OpenError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for OpenError {
    fn from(e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::NotFound => OpenError::NotFound,
            io::ErrorKind::PermissionDenied => OpenError::Forbidden,
            _ => match e.raw_os_error() {
                // A path component is a file ("a.txt/b"), or a symlink loop, or
                // a name the file system cannot hold: nothing to find there.
                Some(libc::ENOTDIR) | Some(libc::ELOOP) | Some(libc::ENAMETOOLONG) => {
                    OpenError::NotFound
                }
                Some(libc::EISDIR) => OpenError::IsDirectory,
                _ => OpenError::Io(e),
            },
        }
    }
}

/// The [`FileMeta`] of some metadata.
pub fn file_meta(m: &Metadata) -> FileMeta {
    FileMeta {
        len: m.len(),
        modified: m.modified().ok(),
        is_dir: m.is_dir(),
    }
}

/// Opens `path` read-only and returns it with its metadata.
///
/// Directories give [`OpenError::IsDirectory`]; other non-regular files
/// (FIFOs, devices, sockets) give [`OpenError::Forbidden`]: `/dev/zero` or a
/// FIFO would otherwise stream forever or hang a blocking thread.
pub fn open_file(path: &Path) -> Result<(File, FileMeta), OpenError> {
    // O_NONBLOCK so that opening a FIFO returns at once instead of blocking
    // until a writer appears; it has no effect on reads of regular files.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if meta.is_dir() {
        return Err(OpenError::IsDirectory);
    }
    if !meta.is_file() {
        return Err(OpenError::Forbidden);
    }
    Ok((file, file_meta(&meta)))
}
