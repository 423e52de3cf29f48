//! Whether a thread is running (or ready to run) or blocked, as the kernel sees
//! it: the state letter of its `/proc` stat file.
//!
//! The view pool asks this of a thread that is running a view while requests
//! wait: a thread that is blocked (sleeping, waiting on a socket or a lock) will
//! not get to them soon, one that is merely waiting for a CPU will.

use std::fs::File;
use std::os::unix::fs::FileExt;

pub struct ThreadState {
    /// `None` where there is no procfs to ask.
    tid: Option<libc::pid_t>,
}

impl ThreadState {
    /// The calling thread's.
    pub fn of_current() -> Self {
        #[cfg(target_os = "linux")]
        // SAFETY: gettid has no preconditions.
        let tid = Some(unsafe { libc::gettid() });
        #[cfg(not(target_os = "linux"))]
        let tid = None;
        ThreadState { tid }
    }

    /// `false` only when the kernel says the thread is running or runnable;
    /// without procfs every thread counts as blocked (the pool then wakes more
    /// threads than it needs, as a plain thread pool would).
    pub fn blocked(&self) -> bool {
        // Opened for each look (open, pread, close): the pool looks at most
        // once per tick, and holds no descriptor between looks.
        let Some(tid) = self.tid else { return true };
        let Ok(file) = File::open(format!("/proc/self/task/{tid}/stat")) else {
            return true;
        };
        // "tid (name) S ...": the name is at most 15 bytes, and no field after
        // the state contains ')'.
        let mut head = [0u8; 64];
        let Ok(n) = file.read_at(&mut head, 0) else {
            return true;
        };
        let head = &head[..n];
        let state = head
            .iter()
            .rposition(|&b| b == b')')
            .and_then(|close| head.get(close + 2));
        state != Some(&b'R')
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    #[test]
    fn a_running_thread_is_not_blocked_and_a_sleeping_one_is() {
        assert!(
            !ThreadState::of_current().blocked(),
            "the caller is running"
        );

        let (tx, rx) = mpsc::channel();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let sleeper = std::thread::spawn(move || {
            tx.send(ThreadState::of_current()).unwrap();
            let _ = stop_rx.recv();
        });
        let state = rx.recv().unwrap();
        // It blocks in recv() right after sending; give it time to get there.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !state.blocked() {
            assert!(
                Instant::now() < deadline,
                "the sleeping thread never showed as blocked"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        stop_tx.send(()).unwrap();
        sleeper.join().unwrap();
    }
}
