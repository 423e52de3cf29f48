//! The kernel scheduling policy of every thread the engine starts: IO
//! threads, view threads and the view pool's watchdog all run as
//! `SCHED_BATCH`.
//!
//! `SCHED_BATCH` keeps a thread's fair share of the CPU; what it gives up is
//! *wake-up preemption*: when it wakes, it does not push the thread running on
//! that core off at once, but waits for that thread to block or use up its
//! slice. On a core shared by an IO thread and a view thread (a one-core
//! container, or the benchmarks' server pinned to one core) the default policy
//! interleaves them per request: every reply the view thread sends wakes the
//! IO thread, which preempts it to write that one response, and every new
//! request wakes the IO thread again. Each switch throws the other thread's
//! caches away. With batch threads the view thread answers the queued
//! requests in one run and the IO thread then writes all the responses and
//! reads the next requests in one run. `bench/ab_dispatch.py` against the build
//! before (4 interleaved rounds; `AB_THREADS=1` shows who preempts whom): the
//! logged-in page went from 3.55 context switches per request to 0.20 and from
//! 3,453 to 4,539 requests per second, `/hello` from 56.1k to 60.5k.
//!
//! The cost is latency on a *contended* core only: a waking thread waits for
//! the running one's slice (a few milliseconds at most) instead of taking the
//! core at once. On an idle core it starts at once as before, and threads and
//! processes the application starts get the default policy back
//! (`SCHED_RESET_ON_FORK`).

/// Puts the calling thread under `SCHED_BATCH`. A sandbox that forbids the
/// call leaves the default policy, which only costs the speed above.
pub fn batch() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        let policy = libc::SCHED_BATCH | libc::SCHED_RESET_ON_FORK;
        // SAFETY: a plain syscall on the calling thread with a valid parameter.
        unsafe { libc::sched_setscheduler(0, policy, &param) };
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_os = "linux")]
    #[test]
    fn only_the_calling_thread_becomes_batch() {
        std::thread::spawn(|| {
            super::batch();
            // SAFETY: plain syscall on the calling thread.
            let policy = unsafe { libc::sched_getscheduler(0) };
            assert_eq!(policy & !libc::SCHED_RESET_ON_FORK, libc::SCHED_BATCH);
            assert_ne!(policy & libc::SCHED_RESET_ON_FORK, 0, "reset on fork");
        })
        .join()
        .unwrap();
        // SAFETY: as above; the test thread itself was left alone.
        assert_eq!(unsafe { libc::sched_getscheduler(0) }, libc::SCHED_OTHER);
    }
}
