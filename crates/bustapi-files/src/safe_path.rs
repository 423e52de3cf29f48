//! Safe resolution of a request path under a root directory.
//!
//! Two entry points, one set of rules:
//!
//! * [`resolve_url_path`] takes the *still percent-encoded* remainder of a URL
//!   path after a mount prefix (`videos/a%20b.mp4`), as a static file mount
//!   sees it. It decodes each segment exactly once, so `%252e%252e` is a file
//!   literally named `%2e%2e`, never `..`.
//! * [`resolve`] takes an already decoded relative path, such as a Flask
//!   `<path:filename>` route parameter passed to `send_from_directory`.
//!
//! Both then check each segment, join it under the canonicalized root,
//! canonicalize the result (resolving symlinks) and require that it is still
//! inside the root, comparing path *components*: `/srv/static` does not contain
//! `/srv/static_secret/x`, which a string-prefix test would get wrong.
//!
//! # Status codes
//!
//! | Request                                                        | Result                 |
//! |----------------------------------------------------------------|------------------------|
//! | NUL or other control character, backslash, `%2F`/`%5C`, bad `%` escape, invalid UTF-8 | 400 [`PathError::BadRequest`] |
//! | `..` segment (literal or `%2e%2e`), absolute path, hidden segment, symlink leaving the root, missing file, directory without index, file with trailing `/`, non-regular file | 404 [`PathError::NotFound`] |
//! | the operating system refuses access while resolving            | 403 [`PathError::Forbidden`] |
//!
//! Malformed input gets 400 because no correct client produces it. Everything
//! that is an attempt to reach something outside the served tree gets the same
//! 404 a missing file gets, so a probe learns nothing about what exists
//! outside the root, or whether a hidden file exists inside it (Flask's
//! `send_from_directory` also answers 404).
//!
//! # Limits
//!
//! The checks run at request time; a process that can write inside the root
//! could still swap a file for a symlink between this check and the `open`.
//! The root is the application's own directory, so that writer is already
//! trusted.

use percent_encoding::percent_decode_str;
use std::borrow::Cow;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

/// How request paths map to files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPolicy {
    /// Serve segments starting with `.` (`.env`, `.git/`, `.well-known/`).
    /// Default `false`.
    pub allow_hidden: bool,
    /// File served for a directory. Default `Some("index.html")`; `None` makes
    /// directories 404.
    pub index_file: Option<String>,
    /// Follow symlinks, as long as the final target is inside the root.
    /// Default `true`; `false` refuses any symlink below the root (the root
    /// itself may be a symlink).
    pub follow_symlinks_inside_root: bool,
    /// A directory without an index file resolves to itself (`is_dir`), for
    /// servers that render a listing. Default `false` (404).
    pub list_directories: bool,
}

impl Default for PathPolicy {
    fn default() -> Self {
        PathPolicy {
            allow_hidden: false,
            index_file: Some("index.html".to_string()),
            follow_symlinks_inside_root: true,
            list_directories: false,
        }
    }
}

/// Why a path was refused. See the module documentation for which is used when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathError {
    /// Malformed path (400); the message is safe to show to the client.
    BadRequest(&'static str),
    /// The operating system denied access (403).
    Forbidden,
    /// Not found, or not servable from this root (404).
    NotFound,
}

impl PathError {
    /// The HTTP status for this error.
    pub fn status(&self) -> http::StatusCode {
        match self {
            PathError::BadRequest(_) => http::StatusCode::BAD_REQUEST,
            PathError::Forbidden => http::StatusCode::FORBIDDEN,
            PathError::NotFound => http::StatusCode::NOT_FOUND,
        }
    }
}

impl std::fmt::Display for PathError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PathError::BadRequest(why) => write!(f, "bad request path: {why}"),
            PathError::Forbidden => f.write_str("forbidden"),
            PathError::NotFound => f.write_str("not found"),
        }
    }
}

impl std::error::Error for PathError {}

/// Resolves a still percent-encoded URL path (the part after the mount
/// prefix; leading slashes are ignored) to a file under `root`.
///
/// ```no_run
/// use bustapi_files::{resolve_url_path, PathPolicy};
/// use std::path::Path;
/// let file = resolve_url_path(Path::new("static"), "videos/a%20b.mp4", &PathPolicy::default());
/// ```
pub fn resolve_url_path(root: &Path, raw: &str, policy: &PathPolicy) -> Result<PathBuf, PathError> {
    resolve_url_path_detailed(root, raw, policy).map(|r| r.path)
}

/// A resolved file, and whether it was reached as a directory's index file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Canonical path of the file to serve.
    pub path: PathBuf,
    /// The request named a directory and this is its index file. A server
    /// should redirect `dir` to `dir/` in that case (when the request had no
    /// trailing slash), or relative links in the index page resolve against
    /// the parent directory.
    pub is_index: bool,
    /// The request named a directory with no index file, and the policy lists
    /// directories: `path` is the directory.
    pub is_dir: bool,
}

/// Like [`resolve_url_path`], also telling whether an index file was used.
pub fn resolve_url_path_detailed(
    root: &Path,
    raw: &str,
    policy: &PathPolicy,
) -> Result<Resolved, PathError> {
    let raw = raw.trim_start_matches('/');
    let segments = raw
        .split('/')
        .map(decode_segment)
        .collect::<Result<Vec<_>, _>>()?;
    resolve_segments(
        root,
        segments.iter().map(|s| s.as_ref()),
        raw.ends_with('/'),
        policy,
    )
}

/// Resolves an already decoded relative path to a file under `root`.
///
/// Absolute paths are refused (404), like Werkzeug's `safe_join`.
///
/// ```no_run
/// use bustapi_files::{resolve, PathPolicy};
/// use std::path::Path;
/// let file = resolve(Path::new("uploads"), "2024/report.pdf", &PathPolicy::default());
/// ```
pub fn resolve(root: &Path, rel: &str, policy: &PathPolicy) -> Result<PathBuf, PathError> {
    if rel.starts_with('/') {
        // Checked after the syntax rules so that "/\0" is still a 400.
        for segment in rel.split('/') {
            check_segment(segment, policy)?;
        }
        return Err(PathError::NotFound);
    }
    resolve_segments(root, rel.split('/'), rel.ends_with('/'), policy).map(|r| r.path)
}

/// Whether a single directory entry called `name` can be reached through a
/// request path: the per-segment checks [`resolve_url_path`] applies. A listing
/// uses it so it never offers a link the resolver would only refuse (a name with
/// a control character or a backslash, a hidden file).
pub fn is_servable_name(name: &str, policy: &PathPolicy) -> bool {
    matches!(check_segment(name, policy), Ok(Segment::Name))
}

/// Percent-decodes one URL path segment, exactly once.
fn decode_segment(segment: &str) -> Result<Cow<'_, str>, PathError> {
    let bytes = segment.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let (Some(hi), Some(lo)) = (hex_digit(bytes.get(i + 1)), hex_digit(bytes.get(i + 2)))
            else {
                return Err(PathError::BadRequest("malformed percent-encoding"));
            };
            let escaped = hi << 4 | lo;
            // An encoded separator inside a segment would change the path's
            // structure after decoding; no legitimate link needs one.
            if escaped == b'/' || escaped == b'\\' {
                return Err(PathError::BadRequest("encoded path separator"));
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    percent_decode_str(segment)
        .decode_utf8()
        .map_err(|_| PathError::BadRequest("path is not valid UTF-8"))
}

fn hex_digit(b: Option<&u8>) -> Option<u8> {
    (*b? as char).to_digit(16).map(|d| d as u8)
}

/// What a single decoded segment contributes to the path.
enum Segment {
    /// Empty or `.`: contributes nothing.
    Skip,
    Name,
}

fn check_segment(segment: &str, policy: &PathPolicy) -> Result<Segment, PathError> {
    if segment.chars().any(char::is_control) {
        return Err(PathError::BadRequest("control character in path"));
    }
    if segment.contains('\\') {
        // A separator on Windows, and a favourite of traversal payloads.
        return Err(PathError::BadRequest("backslash in path"));
    }
    match segment {
        "" | "." => Ok(Segment::Skip),
        ".." => Err(PathError::NotFound),
        s if s.starts_with('.') && !policy.allow_hidden => Err(PathError::NotFound),
        _ => Ok(Segment::Name),
    }
}

fn resolve_segments<'a>(
    root: &Path,
    segments: impl Iterator<Item = &'a str>,
    trailing_slash: bool,
    policy: &PathPolicy,
) -> Result<Resolved, PathError> {
    // Check every segment before touching the file system, so that the answer
    // to a malformed path does not depend on what exists.
    let mut names = Vec::new();
    for segment in segments {
        if let Segment::Name = check_segment(segment, policy)? {
            names.push(segment);
        }
    }

    let root = fs::canonicalize(root).map_err(from_io)?;
    let mut candidate = root.clone();
    candidate.extend(&names);

    let target = inside_root(&root, &candidate, policy)?;
    let meta = fs::metadata(&target).map_err(from_io)?;
    if meta.is_dir() {
        let index = match policy.index_file.as_deref() {
            Some(name) => match inside_root(&root, &target.join(name), policy) {
                Ok(index) => fs::metadata(&index)
                    .ok()
                    .filter(|m| m.is_file())
                    .map(|_| index),
                Err(PathError::NotFound) => None,
                Err(e) => return Err(e),
            },
            None => None,
        };
        return match index {
            Some(path) => Ok(Resolved {
                path,
                is_index: true,
                is_dir: false,
            }),
            None if policy.list_directories => Ok(Resolved {
                path: target,
                is_index: false,
                is_dir: true,
            }),
            None => Err(PathError::NotFound),
        };
    }
    // `a.txt/` names a directory that does not exist; open(2) agrees.
    if trailing_slash || !meta.is_file() {
        return Err(PathError::NotFound);
    }
    Ok(Resolved {
        path: target,
        is_index: false,
        is_dir: false,
    })
}

/// Canonicalizes `candidate` (which starts with the canonical `root`) and
/// checks that the result is still inside `root`, by components.
fn inside_root(root: &Path, candidate: &Path, policy: &PathPolicy) -> Result<PathBuf, PathError> {
    if !policy.follow_symlinks_inside_root {
        refuse_symlinks_below(root, candidate)?;
    }
    let target = fs::canonicalize(candidate).map_err(from_io)?;
    let rel = target.strip_prefix(root).map_err(|_| PathError::NotFound)?;
    // A symlink inside the root may point at a hidden file inside the root;
    // the hidden rule applies to where the bytes come from, not just the URL.
    if !policy.allow_hidden && rel.components().any(is_hidden) {
        return Err(PathError::NotFound);
    }
    Ok(target)
}

fn is_hidden(c: Component<'_>) -> bool {
    match c {
        Component::Normal(name) => name.as_encoded_bytes().starts_with(b"."),
        _ => true, // cannot occur in a canonical relative path; refuse if it does
    }
}

fn refuse_symlinks_below(root: &Path, candidate: &Path) -> Result<(), PathError> {
    let rel = candidate
        .strip_prefix(root)
        .map_err(|_| PathError::NotFound)?;
    let mut path = root.to_path_buf();
    for component in rel.components() {
        path.push(component);
        if fs::symlink_metadata(&path)
            .map_err(from_io)?
            .file_type()
            .is_symlink()
        {
            return Err(PathError::NotFound);
        }
    }
    Ok(())
}

fn from_io(e: io::Error) -> PathError {
    match e.kind() {
        io::ErrorKind::PermissionDenied => PathError::Forbidden,
        // Missing, ENOTDIR, ELOOP, name too long…: nothing servable here.
        _ => PathError::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_segment_table() {
        let ok = [
            ("a%20b.mp4", "a b.mp4"),
            ("plain", "plain"),
            ("%E8%A7%86", "视"),
            ("%252e%252e", "%2e%2e"), // decoded once only
            ("%2e%2e", ".."),         // rejected later by check_segment
            ("100%25", "100%"),
        ];
        for (raw, want) in ok {
            assert_eq!(decode_segment(raw).unwrap(), want, "{raw}");
        }
        let bad = [
            ("%2F", "encoded path separator"),
            ("a%2fb", "encoded path separator"),
            ("%5C", "encoded path separator"),
            ("%5c..", "encoded path separator"),
            ("%", "malformed percent-encoding"),
            ("%4", "malformed percent-encoding"),
            ("%zz", "malformed percent-encoding"),
            ("%+1", "malformed percent-encoding"),
            ("%ff", "path is not valid UTF-8"),
            ("%C3", "path is not valid UTF-8"),
        ];
        for (raw, why) in bad {
            assert_eq!(
                decode_segment(raw),
                Err(PathError::BadRequest(why)),
                "{raw}"
            );
        }
    }

    #[test]
    fn check_segment_table() {
        let p = PathPolicy::default();
        let hidden_ok = PathPolicy {
            allow_hidden: true,
            ..PathPolicy::default()
        };
        assert!(matches!(check_segment("a.txt", &p), Ok(Segment::Name)));
        assert!(matches!(check_segment("", &p), Ok(Segment::Skip)));
        assert!(matches!(check_segment(".", &p), Ok(Segment::Skip)));
        assert_eq!(check_segment("..", &p).err(), Some(PathError::NotFound));
        assert_eq!(
            check_segment("..", &hidden_ok).err(),
            Some(PathError::NotFound)
        );
        assert_eq!(check_segment(".env", &p).err(), Some(PathError::NotFound));
        assert!(matches!(
            check_segment(".env", &hidden_ok),
            Ok(Segment::Name)
        ));
        assert!(matches!(check_segment("a..b", &p), Ok(Segment::Name)));
        for bad in ["a\0b", "\n", "a\rb", "\u{7f}", "a\\b", "..\\x"] {
            assert!(
                matches!(check_segment(bad, &p), Err(PathError::BadRequest(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn statuses() {
        assert_eq!(PathError::BadRequest("x").status(), 400);
        assert_eq!(PathError::Forbidden.status(), 403);
        assert_eq!(PathError::NotFound.status(), 404);
    }
}
