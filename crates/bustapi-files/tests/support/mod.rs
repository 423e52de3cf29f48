//! Helpers shared by the integration tests.
#![allow(dead_code)] // each test binary uses a different subset

use bustapi_files::FileBody;
use http_body::Body;
use std::future::poll_fn;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};

/// A directory under `std::env::temp_dir()`, removed (with its contents) on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let dir = std::env::temp_dir().join(format!(
            "bustapi-files-{tag}-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `contents` to `rel` (creating parent directories).
    pub fn write(&self, rel: &str, contents: &[u8]) -> PathBuf {
        let p = self.0.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, contents).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Deterministic test content: byte `i` is a function of `i`, with a period
/// that is not a power of two, so misplaced offsets show up.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 251) as u8 ^ (i / 251) as u8)
        .collect()
}

/// Everything the body produced, and the error it ended with, if any. Checks
/// that `size_hint` stays exact along the way.
pub async fn collect(mut body: FileBody) -> (Vec<u8>, Option<std::io::Error>) {
    let mut out = Vec::new();
    loop {
        let before = body.size_hint().exact().expect("exact size hint");
        match poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
            None => {
                assert_eq!(before, 0, "ended with bytes still promised");
                assert!(body.is_end_stream());
                return (out, None);
            }
            Some(Ok(frame)) => {
                let data = frame.into_data().expect("only data frames");
                assert!(!data.is_empty(), "no empty frames");
                assert_eq!(body.size_hint().exact(), Some(before - data.len() as u64));
                out.extend_from_slice(&data);
            }
            Some(Err(e)) => return (out, Some(e)),
        }
    }
}
