//! Handing freed heap memory back to the kernel once load falls.
//!
//! glibc's malloc keeps what is freed inside its arenas and returns only the
//! free top of each heap. Small blocks from many connections (HTTP/2 streams
//! each holding a file chunk, request heads, buffers) interleave with
//! long-lived ones, so after a burst the process would keep its peak RSS for
//! good: 2,000 stalled HTTP/2 streams left 38 MiB behind (see
//! bench/analysis.md). `malloc_trim(0)` gives the free pages of every arena back
//! (madvise); it is called at most once a [`PERIOD`], and only when clearly
//! fewer connections are open than at the busiest point since the last trim, so
//! a steady server never pays for it. Allocators other than glibc's manage this
//! themselves, so elsewhere this does nothing.

use std::time::Duration;

/// How often the connection count is looked at.
pub const PERIOD: Duration = Duration::from_secs(1);

/// Trims when `open()` has fallen to at most three quarters of its peak since
/// the last trim. Runs until dropped.
pub async fn after_load_falls(open: impl Fn() -> usize) {
    let mut peak = open();
    loop {
        tokio::time::sleep(PERIOD).await;
        let now = open();
        peak = peak.max(now);
        if fell_enough(peak, now) {
            release_free_memory();
            peak = now;
        }
    }
}

fn fell_enough(peak: usize, now: usize) -> bool {
    now < peak && now * 4 <= peak * 3
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn release_free_memory() {
    // SAFETY: malloc_trim only walks and madvises malloc's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_free_memory() {}

#[cfg(test)]
mod tests {
    use super::fell_enough;

    #[test]
    fn trims_after_a_real_drop_only() {
        assert!(fell_enough(1, 0));
        assert!(fell_enough(20, 0));
        assert!(fell_enough(100, 75));
        assert!(!fell_enough(100, 76));
        assert!(!fell_enough(0, 0));
        assert!(!fell_enough(5, 5));
    }
}
