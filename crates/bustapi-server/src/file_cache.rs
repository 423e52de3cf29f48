//! A cache of open, stat-ed files for hot static paths.
//!
//! Without it every static request costs a trip to the blocking pool to resolve
//! the path safely, open and stat the file. With it, a hit costs one `stat(2)` on
//! the IO thread, which is what keeps the cache honest: the entry is used only if
//! device, inode, size, mtime and ctime (nanoseconds) are unchanged, so an edited,
//! replaced, truncated or deleted file is never served from the cache. Path
//! *resolution* (symlinks, containment) is trusted for [`RESOLVE_TTL`] only, then
//! redone, so a re-pointed symlink is noticed within that bound.
//!
//! Small files also keep their bytes, so the hottest requests (CSS, icons, range
//! probes) never touch the disk at all.

use bustapi_files::FileMeta;
use bytes::Bytes;
use std::collections::HashMap;
use std::fs::{File, Metadata};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a path's resolution is trusted before it is redone.
pub const RESOLVE_TTL: Duration = Duration::from_secs(1);
/// Files up to this size keep their content in memory.
pub const INLINE_MAX: u64 = 64 * 1024;
const MAX_ENTRIES: usize = 4096;
const MAX_INLINE_BYTES: usize = 64 * 1024 * 1024;

/// What identifies one version of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(m: &Metadata) -> Self {
        Stamp {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }
}

/// A file as it was when cached.
pub struct CachedFile {
    /// The path a `stat` checks on every hit (for a view's file, the path as
    /// the view named it).
    pub path: PathBuf,
    pub file: Arc<File>,
    pub meta: FileMeta,
    /// Guessed from the extension once, not on every hit.
    pub content_type: http::HeaderValue,
    /// The whole content, for small files.
    pub content: Option<Bytes>,
    /// Bytes per second of an MP4's playback, read once for `rate="auto"`
    /// mounts (see `bustapi_files::mp4`).
    pub average_bitrate: Option<u64>,
    stamp: Stamp,
    resolved_at: Instant,
    /// When the one request that re-resolves the path took the job, once the
    /// resolution was older than [`RESOLVE_TTL`] (see [`FileCache::get`]).
    refreshing: OnceLock<Instant>,
}

impl CachedFile {
    /// Builds an entry from a freshly opened file (blocking: may read a small file).
    pub fn new(path: PathBuf, file: File, meta: FileMeta) -> std::io::Result<Self> {
        let before = file.metadata()?;
        let mut content = None;
        if before.len() <= INLINE_MAX {
            let mut buf = vec![0u8; before.len() as usize];
            file.read_exact_at(&mut buf, 0)?;
            // Keep the bytes only if the file did not change while we read them.
            if Stamp::of(&file.metadata()?) == Stamp::of(&before) {
                content = Some(Bytes::from(buf));
            }
        }
        Ok(CachedFile {
            content_type: bustapi_files::content_type::guess(&path),
            path,
            file: Arc::new(file),
            meta,
            content,
            average_bitrate: None,
            stamp: Stamp::of(&before),
            resolved_at: Instant::now(),
            refreshing: OnceLock::new(),
        })
    }

    /// Whether the file on disk is still exactly this one (one `stat` call).
    fn unchanged(&self) -> bool {
        std::fs::metadata(&self.path).is_ok_and(|m| Stamp::of(&m) == self.stamp)
    }
}

#[derive(Default)]
struct Inner {
    entries: HashMap<String, Arc<CachedFile>>,
    inline_bytes: usize,
}

/// Maps request keys (a mount's raw path remainder) to cached files.
#[derive(Default)]
pub struct FileCache {
    inner: Mutex<Inner>,
}

impl FileCache {
    /// A valid entry for `key`, or `None`: then the caller resolves and opens
    /// the file afresh and inserts it (or [`FileCache::remove`]s the key if
    /// that fails).
    ///
    /// Once the entry's resolution is older than [`RESOLVE_TTL`], only the first
    /// request gets `None`; those that arrive while it re-resolves are served
    /// from the entry (still checked by `stat`) for up to another
    /// `RESOLVE_TTL` from when it began. Otherwise every request in flight for
    /// a hot file missed at once, each sending a re-resolution to the blocking
    /// pool: `heavy.py`'s bursts of 500 clients grew it to tokio's 512 threads
    /// (7 MiB more resident memory until they expired), when the IO thread ran a
    /// burst before any of them.
    pub fn get(&self, key: &str) -> Option<Arc<CachedFile>> {
        let entry = self.inner.lock().ok()?.entries.get(key).cloned()?;
        if entry.resolved_at.elapsed() >= RESOLVE_TTL {
            let mut first = false;
            let started = entry.refreshing.get_or_init(|| {
                first = true;
                Instant::now()
            });
            if first {
                return None; // this request re-resolves
            }
            if started.elapsed() >= RESOLVE_TTL {
                // The re-resolution never came back: start over.
                self.remove(key);
                return None;
            }
        }
        if entry.unchanged() {
            return Some(entry);
        }
        self.remove(key);
        None
    }

    pub fn insert(&self, key: &str, entry: Arc<CachedFile>) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        let size = entry.content.as_ref().map_or(0, Bytes::len);
        // Crude but bounded: when full, start over rather than track recency on
        // every hit (which would put a write on the hot path).
        if inner.entries.len() >= MAX_ENTRIES || inner.inline_bytes + size > MAX_INLINE_BYTES {
            inner.entries.clear();
            inner.inline_bytes = 0;
        }
        inner.inline_bytes += size;
        if let Some(old) = inner.entries.insert(key.to_string(), entry) {
            inner.inline_bytes -= old.content.as_ref().map_or(0, Bytes::len);
        }
    }

    /// Forgets `key`: for a caller whose re-resolution failed.
    pub fn remove(&self, key: &str) {
        if let Ok(mut inner) = self.inner.lock() {
            if let Some(old) = inner.entries.remove(key) {
                inner.inline_bytes -= old.content.as_ref().map_or(0, Bytes::len);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn entry(path: &std::path::Path) -> Arc<CachedFile> {
        let f = File::open(path).unwrap();
        let meta = bustapi_files::open::file_meta(&f.metadata().unwrap());
        Arc::new(CachedFile::new(path.to_path_buf(), f, meta).unwrap())
    }

    fn temp(name: &str, content: &[u8]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("bustapi-cache-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, content).unwrap();
        p
    }

    #[test]
    fn hit_keeps_small_content() {
        let p = temp("small.txt", b"hello");
        let cache = FileCache::default();
        cache.insert("k", entry(&p));
        let hit = cache.get("k").expect("hit");
        assert_eq!(hit.content.as_deref(), Some(&b"hello"[..]));
    }

    #[test]
    fn any_change_invalidates() {
        let cache = FileCache::default();
        // Rewritten in place with the same length: mtime/ctime change.
        let p = temp("rewrite.txt", b"aaaa");
        cache.insert("k", entry(&p));
        std::thread::sleep(Duration::from_millis(5));
        std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .unwrap()
            .write_all(b"bbbb")
            .unwrap();
        assert!(cache.get("k").is_none());
        // Replaced by rename: a different inode.
        let p2 = temp("replace.txt", b"one");
        cache.insert("r", entry(&p2));
        let tmp = p2.with_extension("new");
        std::fs::write(&tmp, b"two").unwrap();
        std::fs::rename(&tmp, &p2).unwrap();
        assert!(cache.get("r").is_none());
        // Deleted.
        let p3 = temp("gone.txt", b"x");
        cache.insert("g", entry(&p3));
        std::fs::remove_file(&p3).unwrap();
        assert!(cache.get("g").is_none());
    }

    /// `entry(path)` resolved `ago` ago.
    fn resolved_ago(path: &std::path::Path, ago: Duration) -> Arc<CachedFile> {
        let mut e = Arc::into_inner(entry(path)).unwrap();
        e.resolved_at = Instant::now() - ago;
        Arc::new(e)
    }

    #[test]
    fn one_request_re_resolves_while_the_others_are_served() {
        let p = temp("hot.css", b"body{}");
        let cache = FileCache::default();
        cache.insert("k", resolved_ago(&p, RESOLVE_TTL));
        assert!(cache.get("k").is_none(), "the first request re-resolves");
        for _ in 0..100 {
            assert!(cache.get("k").is_some(), "the others are served meanwhile");
        }
        // ... unless the file changed: stat still guards every hit.
        std::thread::sleep(Duration::from_millis(5));
        std::fs::write(&p, b"body{color:red}").unwrap();
        assert!(cache.get("k").is_none());
        // The re-resolution lands: a fresh entry, and the cycle starts again.
        cache.insert("k", entry(&p));
        assert!(cache.get("k").is_some());
    }

    #[test]
    fn an_entry_unused_for_long_is_re_resolved_once_too() {
        // Resolved long ago (no request for a while), then a burst arrives:
        // still one re-resolution, not one per request.
        let p = temp("cold.css", b"x");
        let cache = FileCache::default();
        cache.insert("k", resolved_ago(&p, 100 * RESOLVE_TTL));
        assert!(cache.get("k").is_none(), "the first request re-resolves");
        assert!(cache.get("k").is_some(), "the others are served meanwhile");
    }

    #[test]
    fn a_re_resolution_that_never_lands_is_not_waited_for() {
        let p = temp("lost.css", b"x");
        let cache = FileCache::default();
        let e = resolved_ago(&p, RESOLVE_TTL);
        e.refreshing.set(Instant::now() - RESOLVE_TTL).unwrap();
        cache.insert("k", e);
        assert!(cache.get("k").is_none(), "too late to serve the others");
        assert!(cache.get("k").is_none(), "and gone");
        // A failed re-resolution forgets the key at once.
        cache.insert("f", resolved_ago(&p, RESOLVE_TTL));
        assert!(cache.get("f").is_none());
        cache.remove("f");
        assert!(cache.get("f").is_none());
    }

    #[test]
    fn large_files_are_not_inlined() {
        let p = temp("large.bin", &vec![7u8; (INLINE_MAX + 1) as usize]);
        let e = entry(&p);
        assert!(e.content.is_none());
        assert_eq!(e.meta.len, INLINE_MAX + 1);
    }
}
