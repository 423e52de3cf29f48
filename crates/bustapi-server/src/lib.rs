//! BustAPI's HTTP engine: tokio + hyper 1, a Flask-style router, static mounts,
//! limits, timeouts and graceful shutdown. It knows nothing of Python.
//!
//! An embedder supplies a [`Dispatcher`] that runs application code and answers
//! with bytes or a [`FileSpec`]; the engine does everything else, including the
//! full RFC 9110 file semantics from `bustapi-files` (re-exported as [`files`],
//! so this crate is the only dependency an embedder needs).
//!
//! ```no_run
//! use bustapi_server::{Config, Dispatcher, Engine, Router, ViewFuture, ViewRequest, ViewResponse};
//! use std::sync::Arc;
//!
//! struct Hello;
//! impl Dispatcher for Hello {
//!     fn dispatch(&self, _req: ViewRequest) -> ViewFuture {
//!         Box::pin(async { ViewResponse::text(http::StatusCode::OK, "hello") })
//!     }
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let mut router = Router::new();
//! router.add("/", &[http::Method::GET], 0).unwrap();
//! let engine = Arc::new(Engine::new(router, vec![], Arc::new(Hello), Config::default()));
//! let listener = bustapi_server::bind("127.0.0.1:8000".parse().unwrap(), false)?;
//! bustapi_server::serve(engine, listener, std::future::pending()).await
//! # }
//! ```

pub mod access_log;
pub mod body;
pub mod body_stream;
pub mod connection;
pub mod dispatch;
pub mod engine;
pub mod errors;
pub mod file_cache;
pub mod file_response;
pub mod file_spec;
pub mod form_data;
pub mod framing;
pub mod framing_watch;
pub mod idle;
pub mod linger;
pub mod listing;
pub mod lot;
pub mod owed;
pub mod page_cache;
pub mod redirect;
pub mod request_body;
pub mod router;
pub mod sendfile;
pub mod serve;
pub mod signed_url;
pub mod static_mount;
pub mod tls;
pub mod trim;
pub mod tus;
pub mod write_timeout;

pub use body::{Body, StreamBody};
pub use body_stream::{BodyReadHandle, BodyReader};
/// The file-semantics crate this API is built on, for the types it carries
/// (`FileBody`, `FileMeta`, `BodyPlan`, ...): an embedder needs no dependency
/// of its own on `bustapi-files`, nor a second copy of it at another version.
pub use bustapi_files as files;
/// `bustapi-files` types in the fields and variants of this crate's API.
pub use bustapi_files::{DispositionType, FileBody, PathPolicy};
pub use dispatch::{
    ChunkFuture, ChunkSource, Dispatcher, Target, ViewBody, ViewFuture, ViewRequest, ViewResponse,
};
pub use engine::{Config, Engine};
pub use file_spec::{FileSpec, PathOrFile, Validator};
pub use form_data::{Form, FormField, TempFiles, UploadedFile};
pub use request_body::{BodyConfig, BodyError, RequestBody, RouteBody};
pub use router::{Converter, Match, Router, RuleError};
pub use serve::{bind, serve};
pub use signed_url::UrlSigner;
pub use static_mount::StaticMount;
pub use tus::{ResumableConfig, ResumableUploads};
