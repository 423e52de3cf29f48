//! HTTP file semantics, with no sockets.
//!
//! `bustapi-files` answers the question "given this request and this file,
//! what exactly should the response be?" and then streams the answer. It is
//! the file-serving core of BustAPI's engine, and usable on its own from any
//! hyper or axum program:
//!
//! * [`safe_path`]: map a request path to a file under a root, refusing
//!   traversal, encoded separators, hidden files and symlinks that leave it;
//! * [`open`]: open the file and read its size and mtime from the descriptor;
//! * [`validators`], [`content_type`], [`disposition`]: `ETag`,
//!   `Last-Modified`, `Content-Type`, `Content-Disposition`;
//! * [`decide`]: a pure function from (method, request headers, representation)
//!   to a [`Plan`]: status (200, 206, 304, 412, 416), complete headers, and
//!   which bytes, following RFC 9110's [`conditional`] and [`range`] rules;
//! * [`FileBody`]: an `http_body::Body` that streams a plan, reading files off
//!   the async threads, with [`multipart`] framing for multi-range responses.
//!
//! Deciding is separate from streaming so that the rules can be table-tested
//! against the RFC without any IO, and so a server can stream a plan its own
//! way (e.g. with `sendfile`): [`BodyPlan::pieces`] cuts a plan into framing
//! bytes and byte ranges, the same pieces [`FileBody`] sends.
//!
//! # Example
//!
//! ```no_run
//! use bustapi_files::{content_type, decide, open_file, resolve_url_path};
//! use bustapi_files::{BodySource, FileBody, Options, PathPolicy, Representation};
//! use http::{Request, Response};
//! use std::path::Path;
//! use std::sync::Arc;
//!
//! // Call from inside a Tokio runtime; run the blocking part in spawn_blocking.
//! fn serve(req: &Request<()>, root: &Path) -> Response<FileBody> {
//!     let rel = req.uri().path().trim_start_matches("/static/");
//!     let path = resolve_url_path(root, rel, &PathPolicy::default()).expect("404/400 here");
//!     let (file, meta) = open_file(&path).expect("404/403 here");
//!
//!     let rep = Representation::for_file(&meta, content_type::guess(&path));
//!     let plan = decide(req.method(), req.headers(), &rep, &Options::default());
//!
//!     let mut res = Response::new(FileBody::new(BodySource::File(Arc::new(file)), plan.body));
//!     *res.status_mut() = plan.status;
//!     *res.headers_mut() = plan.headers;
//!     res
//! }
//! ```

pub mod body;
pub mod conditional;
pub mod content_type;
pub mod disposition;
pub mod mp4;
pub mod multipart;
pub mod open;
pub mod pace;
pub mod plan;
pub mod range;
pub mod safe_path;
pub mod validators;

pub use body::{BodySource, FileBody};
pub use disposition::{content_disposition, DispositionType};
pub use open::{file_meta, open_file, FileMeta, OpenError};
pub use pace::{Pace, Pacer, Rate};
pub use plan::{decide, BodyPlan, Options, Piece, Plan, Representation};
pub use range::ByteRange;
pub use safe_path::{
    is_servable_name, resolve, resolve_url_path, resolve_url_path_detailed, PathError, PathPolicy,
    Resolved,
};
