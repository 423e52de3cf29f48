//! Responding with a file: open and stat off the IO threads, let
//! `bustapi-files` decide (conditions, ranges), then stream exactly the plan.
//!
//! Static mounts ([`crate::static_mount`]) and file-returning views
//! ([`FileSpec`]) both end here, so a file gets the same RFC 9110 behaviour
//! whichever way it was asked for.

use crate::body::Body;
use crate::file_cache::{CachedFile, FileCache};
use crate::file_spec::{FileSpec, PathOrFile, Validator};
use bustapi_files::{
    content_disposition, content_type, decide, mp4, open::file_meta, open_file, resolve,
    validators, BodySource, FileBody, FileMeta, OpenError, Options, Pace, PathError, PathPolicy,
    Rate, Representation,
};
use http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE, EXPIRES};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use std::path::PathBuf;
use std::sync::{Arc, LazyLock};
use std::time::SystemTime;

/// Open files behind views' `send_file` / `send_from_directory`, as the static
/// mounts keep theirs: a video route answering range after range of one file
/// then costs a `stat` on the IO thread instead of a trip to the blocking pool to
/// open, stat and close it each time (issue 13: `send_file` 1 MiB ranges were
/// 1.13x nginx against the static mount's 1.43x). One cache for the process: its
/// keys are filesystem paths, the same file whichever app or route sends it, and
/// an entry is used only while a `stat` of its path shows the same file.
static VIEW_FILES: LazyLock<FileCache> = LazyLock::new(FileCache::default);

/// The cache key of a file a view names by path; `None` (not cached) for open
/// files, bytes, and paths that are not UTF-8 (a lossy key could make two files
/// share an entry).
fn view_file_key(path_or_file: &PathOrFile) -> Option<String> {
    match path_or_file {
        PathOrFile::Path(p) => p.to_str().map(|p| format!("P{p}")),
        // NUL cannot occur in a root path, so root and rest cannot blur together.
        PathOrFile::Under { root, rel } => root.to_str().map(|r| format!("U{r}\0{rel}")),
        PathOrFile::Open(_) | PathOrFile::Bytes(_) => None,
    }
}

struct Opened {
    source: BodySource,
    meta: FileMeta,
    name: Option<PathBuf>,
    /// Validators can be derived from `meta` (a real file, even if its bytes are
    /// held in memory); bytes handed over by the application have no identity.
    from_file: bool,
}

impl Opened {
    fn from_cache(hit: &CachedFile) -> Self {
        let source = match &hit.content {
            Some(bytes) => BodySource::Bytes(bytes.clone()),
            None => BodySource::File(Arc::clone(&hit.file)),
        };
        Opened {
            source,
            meta: hit.meta,
            name: None, // the content type is cached with the entry
            from_file: true,
        }
    }
}

pub(crate) fn open_error_response(err: OpenError) -> Response<Body> {
    match err {
        OpenError::Io(e) => {
            tracing::error!("file open failed: {e}");
            crate::errors::plain(StatusCode::INTERNAL_SERVER_ERROR)
        }
        other => crate::errors::plain(other.status()),
    }
}

fn path_error_response(err: PathError) -> Response<Body> {
    match err {
        PathError::BadRequest(why) => crate::errors::plain_with(StatusCode::BAD_REQUEST, why),
        other => crate::errors::plain(other.status()),
    }
}

/// Why a file could not be opened: its path was refused, or opening failed.
pub(crate) enum OpenFailure {
    Path(PathError),
    Open(OpenError),
}

impl From<PathError> for OpenFailure {
    fn from(e: PathError) -> Self {
        OpenFailure::Path(e)
    }
}
impl From<OpenError> for OpenFailure {
    fn from(e: OpenError) -> Self {
        OpenFailure::Open(e)
    }
}

fn open_path(path: PathBuf) -> Result<Opened, OpenFailure> {
    let (file, meta) = open_file(&path)?;
    Ok(Opened {
        source: BodySource::File(Arc::new(file)),
        meta,
        name: Some(path),
        from_file: true,
    })
}

fn open(path_or_file: PathOrFile, policy: &PathPolicy) -> Result<Opened, OpenFailure> {
    match path_or_file {
        PathOrFile::Path(p) => open_path(p),
        PathOrFile::Under { root, rel } => open_path(resolve(&root, &rel, policy)?),
        PathOrFile::Open(file) => {
            let meta = file.metadata().map_err(OpenError::Io)?;
            let meta = file_meta(&meta);
            if meta.is_dir {
                return Err(OpenError::IsDirectory.into());
            }
            Ok(Opened {
                source: BodySource::File(Arc::new(file)),
                meta,
                name: None,
                from_file: true,
            })
        }
        PathOrFile::Bytes(b) => Ok(Opened {
            meta: FileMeta {
                len: b.len() as u64,
                modified: None,
                is_dir: false,
            },
            source: BodySource::Bytes(b),
            name: None,
            from_file: false,
        }),
    }
}

/// Runs blocking filesystem work on tokio's blocking pool; never on an IO thread.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| std::io::Error::other(format!("blocking task failed: {e}")))
}

pub(crate) fn failure_response(f: OpenFailure) -> Response<Body> {
    match f {
        OpenFailure::Path(e) => path_error_response(e),
        OpenFailure::Open(e) => open_error_response(e),
    }
}

/// Serves a file from a static mount's cache: its content type and validators
/// come from the file, caching headers from the mount's `max_age`.
pub(crate) fn serve_cached(
    method: &Method,
    request_headers: &HeaderMap,
    hit: &CachedFile,
    max_age: Option<u64>,
    rate: Option<Rate>,
) -> Response<Body> {
    let opened = Opened::from_cache(hit);
    let mut extra = HeaderMap::new();
    insert_caching(&mut extra, max_age);
    let rep = representation(
        &opened,
        hit.content_type.clone(),
        &Validator::Auto,
        &Validator::Auto,
        extra,
    );
    plan_response(
        method,
        request_headers,
        opened.source,
        rep,
        StatusCode::OK,
        true,
        rate,
    )
}

/// Serves a file a view described. `status` and `headers` come from the view.
pub async fn serve_spec(
    method: &Method,
    request_headers: &HeaderMap,
    spec: FileSpec,
    status: StatusCode,
    mut headers: HeaderMap,
) -> Response<Body> {
    let FileSpec {
        path_or_file,
        content_type: explicit_type,
        type_hint_name,
        disposition,
        conditional,
        etag,
        last_modified,
        max_age,
        pace,
    } = spec;
    // `rate="auto"` reads the file's bitrate with the open; it skips the cache.
    let key = view_file_key(&path_or_file).filter(|_| !matches!(pace, Some(Pace::Auto { .. })));
    let hit = key.as_deref().and_then(|k| VIEW_FILES.get(k));
    let (opened, rate, cached_type) = if let Some(hit) = hit {
        let rate = pace.and_then(|p| p.rate(None));
        (
            Opened::from_cache(&hit),
            rate,
            Some(hit.content_type.clone()),
        )
    } else {
        match open_for_view(path_or_file, key, pace).await {
            Ok((opened, rate)) => (opened, rate, None),
            Err(response) => return response,
        }
    };
    let content_type = explicit_type
        .or_else(|| headers.remove(CONTENT_TYPE))
        .or_else(|| type_hint_name.as_deref().map(content_type::guess_str))
        .or(cached_type)
        .or_else(|| opened.name.as_deref().map(content_type::guess))
        .unwrap_or_else(|| HeaderValue::from_static("application/octet-stream"));
    if let Some((kind, name)) = disposition {
        headers.insert(
            CONTENT_DISPOSITION,
            content_disposition(kind, name.as_deref()),
        );
    }
    if !headers.contains_key(CACHE_CONTROL) {
        insert_caching(&mut headers, max_age);
    }
    let rep = representation(&opened, content_type, &etag, &last_modified, headers);
    // A non-200 status chosen by the view is not a representation of the file that
    // ranges or validators could refer to: send it whole, as asked.
    let evaluate = conditional && status == StatusCode::OK;
    plan_response(
        method,
        request_headers,
        opened.source,
        rep,
        status,
        evaluate,
        rate,
    )
}

/// Opens a view's file on the blocking pool; a file named by path is then
/// cached under `key` for the next request.
async fn open_for_view(
    path_or_file: PathOrFile,
    key: Option<String>,
    pace: Option<Pace>,
) -> Result<(Opened, Option<Rate>), Response<Body>> {
    let forget = key.clone();
    let opened = blocking(move || {
        if let Some(key) = key {
            // The entry is checked by a `stat` of the path as the view named it,
            // not as resolved: a symlink re-pointed elsewhere (outside the root,
            // say) then no longer matches, and the next request resolves afresh.
            let (named, path) = match path_or_file {
                PathOrFile::Path(p) => (p.clone(), p),
                PathOrFile::Under { root, rel } => {
                    let resolved = resolve(&root, &rel, &PathPolicy::default())?;
                    (root.join(&rel), resolved)
                }
                _ => unreachable!("only paths have a cache key"),
            };
            let (file, meta) = open_file(&path)?;
            let mut entry = CachedFile::new(named, file, meta).map_err(OpenError::Io)?;
            entry.content_type = content_type::guess(&path);
            let entry = Arc::new(entry);
            VIEW_FILES.insert(&key, Arc::clone(&entry));
            let mut opened = Opened::from_cache(&entry);
            opened.name = Some(path);
            return Ok((opened, pace.and_then(|p| p.rate(None))));
        }
        let opened = open(path_or_file, &PathPolicy::default())?;
        // `rate="auto"` needs the file's bitrate: read with the open, off the IO threads.
        let bitrate = match (&pace, &opened.source) {
            (Some(Pace::Auto { .. }), BodySource::File(file)) => {
                mp4::average_bitrate(file, opened.meta.len)
            }
            _ => None,
        };
        Ok::<_, OpenFailure>((opened, pace.and_then(|p| p.rate(bitrate))))
    })
    .await;
    let failed = match opened {
        Ok(Ok(o)) => return Ok(o),
        Ok(Err(f)) => failure_response(f),
        Err(e) => open_error_response(OpenError::Io(e)),
    };
    // Nobody is served from an entry whose path no longer opens as it did.
    if let Some(key) = forget {
        VIEW_FILES.remove(&key);
    }
    Err(failed)
}

/// `Cache-Control` (and `Expires`, for HTTP/1.0 caches) as Werkzeug's `send_file`
/// sets them, so a Flask app's caching behaviour carries over: no max-age means
/// `no-cache` (always revalidate with the validators); `0` means `no-cache,
/// max-age=0` and an `Expires` of now; `n` means `public, max-age=n` and an
/// `Expires` `n` seconds ahead.
fn insert_caching(headers: &mut HeaderMap, max_age: Option<u64>) {
    let Some(age) = max_age else {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        return;
    };
    let value = if age == 0 {
        HeaderValue::from_static("no-cache, max-age=0")
    } else {
        HeaderValue::from_str(&format!("public, max-age={age}"))
            .unwrap_or_else(|_| HeaderValue::from_static("no-cache"))
    };
    headers.insert(CACHE_CONTROL, value);
    let expires = SystemTime::now()
        .checked_add(std::time::Duration::from_secs(age))
        .unwrap_or_else(SystemTime::now);
    if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(expires)) {
        headers.insert(EXPIRES, v);
    }
}

fn representation(
    opened: &Opened,
    content_type: HeaderValue,
    etag: &Validator<HeaderValue>,
    last_modified: &Validator<SystemTime>,
    extra_headers: HeaderMap,
) -> Representation {
    let last_modified = match last_modified {
        Validator::Auto => opened.meta.modified,
        Validator::Off => None,
        Validator::Set(t) => Some(*t),
    };
    let etag = match etag {
        // Bytes in memory have no stable identity to derive a validator from.
        Validator::Auto if opened.from_file => Some(validators::strong_etag(
            opened.meta.len,
            opened.meta.modified,
        )),
        Validator::Auto | Validator::Off => None,
        Validator::Set(v) => Some(v.clone()),
    };
    Representation {
        len: opened.meta.len,
        last_modified,
        etag,
        content_type,
        extra_headers,
    }
}

fn plan_response(
    method: &Method,
    request_headers: &HeaderMap,
    source: BodySource,
    rep: Representation,
    status: StatusCode,
    evaluate: bool,
    rate: Option<Rate>,
) -> Response<Body> {
    let opts = Options {
        conditional: evaluate,
        ranges: evaluate,
        ..Options::default()
    };
    let plan = decide(method, request_headers, &rep, &opts);
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = if plan.status == StatusCode::OK {
        status
    } else {
        plan.status
    };
    *response.headers_mut() = plan.headers;
    if !matches!(plan.body, bustapi_files::BodyPlan::Empty) {
        let mut body = FileBody::new(source, plan.body);
        if let Some(rate) = rate {
            body.pace(rate);
        }
        *response.body_mut() = Body::File(Box::new(body));
    }
    response
}
