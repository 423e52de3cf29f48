//! Whether a file range is in the page cache, and bringing it in off the IO
//! threads.
//!
//! `sendfile(2)` reads the file inside the system call, so on a range that is
//! not cached it waits for the disk on the calling thread — an IO thread that
//! serves every other connection too (a cold 2 GiB video would stall them all
//! for each disk read). The copy path never has this problem (it asks
//! `preadv2(RWF_NOWAIT)` first and reads on the blocking pool otherwise); the
//! zero-copy path asks [`resident`] before each range it queues and, when the
//! answer is no, has [`warm`] read the range on the blocking pool first, so the
//! `sendfile` that follows finds every page cached. Hot files, the common case
//! for a video site's popular content, pay one `cachestat(2)` per MiB.

use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};

static WARMED: AtomicU64 = AtomicU64::new(0);

/// File bytes read into the page cache on the blocking pool before a
/// `sendfile` (tests read it to see that a cold range was not read on an IO
/// thread).
pub fn warmed_bytes() -> u64 {
    WARMED.load(Ordering::Relaxed)
}

/// Whether every page of `offset..offset + len` is cached. Without
/// `cachestat(2)` (Linux before 6.5, other systems) the answer is "yes", which
/// is how sendfile behaved before this check existed.
pub fn resident(file: &File, offset: u64, len: u64) -> bool {
    sys::resident(file, offset, len).unwrap_or(true)
}

/// Reads `offset..offset + len` through a per-thread scratch buffer so the
/// pages are cached. Blocking: run it on the blocking pool.
pub fn warm(file: &File, offset: u64, len: usize) -> std::io::Result<()> {
    use std::cell::RefCell;
    use std::os::unix::fs::FileExt;
    const SCRATCH: usize = 256 * 1024;
    thread_local! {
        static BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }
    BUF.with(|buf| {
        let mut buf = buf.borrow_mut();
        buf.resize(SCRATCH, 0);
        let mut done = 0;
        while done < len {
            let want = (len - done).min(SCRATCH);
            let n = file.read_at(&mut buf[..want], offset + done as u64)?;
            if n == 0 {
                break; // the file shrank: sendfile will report it
            }
            done += n;
        }
        WARMED.fetch_add(done as u64, Ordering::Relaxed);
        Ok(())
    })
}

#[cfg(target_os = "linux")]
mod sys {
    use std::fs::File;
    use std::os::fd::AsRawFd;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// `cachestat(2)`'s number on every architecture (added after the
    /// syscall tables were unified); the libc crate does not name it for all.
    const SYS_CACHESTAT: libc::c_long = 451;
    const PAGE: u64 = 4096;

    #[repr(C)]
    struct Range {
        off: u64,
        len: u64,
    }

    #[repr(C)]
    #[derive(Default)]
    struct Stat {
        nr_cache: u64,
        nr_dirty: u64,
        nr_writeback: u64,
        nr_evicted: u64,
        nr_recently_evicted: u64,
    }

    static UNSUPPORTED: AtomicBool = AtomicBool::new(false);

    pub fn resident(file: &File, offset: u64, len: u64) -> Option<bool> {
        if len == 0 || UNSUPPORTED.load(Ordering::Relaxed) {
            return None;
        }
        let range = Range { off: offset, len };
        let mut stat = Stat::default();
        // SAFETY: a valid descriptor and pointers to live, correctly laid out
        // structs; the kernel writes only `stat`.
        let r = unsafe {
            libc::syscall(
                SYS_CACHESTAT,
                file.as_raw_fd(),
                &range as *const Range,
                &mut stat as *mut Stat,
                0,
            )
        };
        if r != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ENOSYS) {
                UNSUPPORTED.store(true, Ordering::Relaxed);
                tracing::debug!("cachestat(2) unavailable: sendfile cannot tell cold ranges");
            }
            return None;
        }
        let pages = (offset + len - 1) / PAGE - offset / PAGE + 1;
        Some(stat.nr_cache >= pages)
    }
}

#[cfg(not(target_os = "linux"))]
mod sys {
    pub fn resident(_file: &std::fs::File, _offset: u64, _len: u64) -> Option<bool> {
        None
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsRawFd;

    #[test]
    fn an_evicted_range_is_not_resident_until_warmed() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&vec![7u8; 4 << 20]).unwrap();
        f.sync_all().unwrap();
        // SAFETY: a valid descriptor; DONTNEED drops the file's clean pages.
        unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        if sys::resident(&f, 0, 1 << 20).is_none() {
            return; // a kernel without cachestat: nothing to check
        }
        assert!(!resident(&f, 1 << 20, 1 << 20));
        let before = warmed_bytes();
        warm(&f, 1 << 20, 1 << 20).unwrap();
        assert!(warmed_bytes() - before >= 1 << 20);
        assert!(resident(&f, 1 << 20, 1 << 20));
    }
}
