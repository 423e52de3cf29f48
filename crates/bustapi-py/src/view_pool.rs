//! The queue between the IO threads and the view threads, and the policy that
//! decides which thread runs what.
//!
//! Python runs one thread at a time (the GIL), so under load the cheapest
//! schedule is one thread that keeps the GIL and drains the queue: no GIL
//! hand-off and no context switch between two view threads per request. The
//! pool therefore wakes a parked thread only when no thread is draining, and
//! wakes the one that parked last (its stack and caches are warm).
//!
//! A view that blocks (sleeps, waits on a socket, a lock or another request)
//! must not hold up the requests queued behind it. While jobs wait behind
//! running threads, a single watchdog ticks: when a job that was queued at the
//! previous tick is still queued, it looks at the running threads' kernel
//! state, and if none of them is running or ready to run — all are blocked —
//! it wakes one more thread (and a tick later another, if that one blocks too).
//! A thread that is only waiting for the CPU (on a busy machine, or behind the
//! IO thread on the same core) is not blocked: waking a second one then would
//! only make the two trade the GIL. Progress alone ("no job taken for a tick")
//! cannot tell the two apart, and woke threads needlessly on a loaded machine.
//! The watchdog sleeps while nothing waits, so an idle server has no timer;
//! under load it costs one wake-up per tick, not one per request (a timer per
//! queued request woke far more often than it saved), and it reads `/proc`
//! only when the queue stops turning over within a tick. When the running
//! threads take no job at all for [`STARVED`] ticks in a row (a long
//! computation), a second thread is woken all the same, so the queued requests
//! share the GIL with it instead of waiting for it to finish.

//! Waiting uses the mutex and `thread::park` alone: no spinning or
//! `sched_yield` (the channel this replaced yielded the CPU in a loop before
//! parking, which on a loaded core hands it to whoever else is runnable).

use crate::thread_state::ThreadState;
use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::{self, Thread};
use std::time::Duration;

/// How often the watchdog looks while jobs wait behind running threads: about
/// the most a request waits behind each view that blocks.
const TICK: Duration = Duration::from_millis(1);

/// The longest the running threads may go without taking a single job while
/// jobs wait (all running, none blocked) before one more thread is woken anyway. A view that computes for
/// seconds (a report, a thumbnail in Python) must not hold every other request
/// for that long: with a second thread waiting for the GIL, Python's switch
/// interval (5 ms) lets the queued requests through, as threads under Flask
/// would. Long enough that a draining thread merely preempted for a moment on a
/// busy machine does not wake others.
const STARVED: u32 = 20;

pub struct Pool<J> {
    state: Mutex<State<J>>,
    /// Wakes the watchdog (when it sleeps) and tells it about closing.
    watchdog: Condvar,
    /// Each worker's kernel state, registered by the worker itself.
    threads: Vec<OnceLock<ThreadState>>,
}

struct State<J> {
    queue: VecDeque<J>,
    /// Parked threads, the one that parked last on top, with the flag that
    /// says whether each is still parked (a waker clears it: a wake-up that
    /// finds its flag set was spurious).
    parked: Vec<(usize, Thread)>,
    is_parked: Vec<bool>,
    /// Threads that will look at the queue again before parking: running a
    /// job, or woken and not yet running.
    busy: usize,
    /// Jobs queued and taken so far: a job queued when `submitted` was `n` is
    /// still waiting while `taken <= n`.
    submitted: u64,
    taken: u64,
    watchdog_ticking: bool,
    closed: bool,
}

impl<J> State<J> {
    fn take(&mut self) -> Option<J> {
        let job = self.queue.pop_front()?;
        self.taken += 1;
        Some(job)
    }

    /// Wakes the thread that parked last, if any is parked.
    fn wake_one(&mut self) {
        if let Some((id, thread)) = self.parked.pop() {
            self.is_parked[id] = false;
            self.busy += 1;
            thread.unpark();
        }
    }
}

impl<J> Pool<J> {
    /// A pool for `threads` workers, each of which calls [`Pool::register`]
    /// and then [`Pool::next`] with its own index in `0..threads`.
    pub fn new(threads: usize) -> Self {
        Pool {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                parked: Vec::with_capacity(threads),
                is_parked: vec![false; threads],
                // Every worker starts out busy and parks on its first empty look.
                busy: threads,
                submitted: 0,
                taken: 0,
                watchdog_ticking: false,
                closed: false,
            }),
            watchdog: Condvar::new(),
            threads: (0..threads).map(|_| OnceLock::new()).collect(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<J>> {
        // Every critical section is a few field updates that cannot panic half
        // way, so a poisoned lock still guards a consistent state.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Called by worker `id` on its own thread before it takes jobs.
    pub fn register(&self, id: usize) {
        let _ = self.threads[id].set(ThreadState::of_current());
    }

    /// Queues a job; gives it back if the pool is closed.
    pub fn submit(&self, job: J) -> Result<(), J> {
        let mut s = self.lock();
        if s.closed {
            return Err(job);
        }
        s.queue.push_back(job);
        s.submitted += 1;
        if s.busy == 0 {
            s.wake_one();
        } else if !s.watchdog_ticking {
            // The job waits for a running thread: have someone notice if that
            // thread is stuck in a blocking view.
            s.watchdog_ticking = true;
            self.watchdog.notify_one();
        }
        Ok(())
    }

    /// The next job for worker `id`, parking (without the GIL) while there is
    /// none; `None` once the pool is closed and drained.
    pub fn next(&self, id: usize) -> Option<J> {
        let mut s = self.lock();
        loop {
            if let Some(job) = s.take() {
                return Some(job);
            }
            if s.closed {
                return None;
            }
            s.busy -= 1;
            s.is_parked[id] = true;
            s.parked.push((id, thread::current()));
            while s.is_parked[id] && !s.closed {
                drop(s);
                thread::park();
                s = self.lock();
            }
        }
    }

    /// The next job if one is queued, for a thread that holds the GIL and
    /// would rather keep it than park.
    pub fn try_next(&self) -> Option<J> {
        self.lock().take()
    }

    /// The watchdog's loop; returns once the pool is closed.
    pub fn watch(&self) {
        let mut running = Vec::with_capacity(self.threads.len());
        let mut s = self.lock();
        // Jobs queued up to this count were waiting at the previous tick.
        let mut waiting_before = s.submitted;
        // Ticks in a row in which no job was taken at all, and the count then.
        let mut stalled: u32 = 0;
        let mut taken_before = s.taken;
        while !s.closed {
            if !s.watchdog_ticking {
                s = self.watchdog.wait(s).unwrap_or_else(|e| e.into_inner());
                waiting_before = s.submitted;
                taken_before = s.taken;
                stalled = 0;
                continue;
            }
            s = self
                .watchdog
                .wait_timeout(s, TICK)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            if s.queue.is_empty() {
                s.watchdog_ticking = false;
                continue;
            }
            let turned_over = s.taken >= waiting_before;
            waiting_before = s.submitted;
            // Not "the queue turned over": a deep queue drained by one busy
            // thread (a slow page under load) takes many ticks and must not
            // wake rivals for the GIL; a thread stuck in one long computation
            // takes nothing at all.
            stalled = if s.taken == taken_before {
                stalled + 1
            } else {
                0
            };
            taken_before = s.taken;
            if stalled >= STARVED {
                // Running, not blocked, but taking no jobs: a long computation.
                // Another thread takes turns at the GIL with it.
                stalled = 0;
                s.wake_one();
                continue;
            }
            if turned_over {
                // Everything that waited a tick ago has been taken since: the
                // running threads keep up, whatever their state.
                continue;
            }
            running.clear();
            running.extend((0..s.is_parked.len()).filter(|&id| !s.is_parked[id]));
            // The kernel is asked without the lock, so submits never wait on it.
            drop(s);
            let all_blocked = running
                .iter()
                .all(|&id| self.threads[id].get().is_none_or(ThreadState::blocked));
            s = self.lock();
            if all_blocked && !s.queue.is_empty() {
                s.wake_one();
            }
        }
    }

    /// Refuses new jobs; the workers finish the queued ones and return.
    pub fn close(&self) {
        let mut s = self.lock();
        s.closed = true;
        for (_, thread) in s.parked.drain(..) {
            thread.unpark();
        }
        self.watchdog.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{mpsc, Arc};
    use std::time::Duration;

    type Job = Box<dyn FnOnce() + Send>;

    /// A pool of `threads` workers running boxed closures, and its watchdog.
    fn start(threads: usize) -> Arc<Pool<Job>> {
        let pool = Arc::new(Pool::<Job>::new(threads));
        for id in 0..threads {
            let pool = Arc::clone(&pool);
            thread::spawn(move || {
                pool.register(id);
                while let Some(job) = pool.next(id) {
                    job();
                }
            });
        }
        let watchdog = Arc::clone(&pool);
        thread::spawn(move || watchdog.watch());
        // Until every worker has parked once, a starting worker takes whatever
        // is queued on its way to its first park.
        while pool.lock().parked.len() < threads {
            thread::sleep(Duration::from_millis(1));
        }
        pool
    }

    fn submit(pool: &Pool<Job>, job: impl FnOnce() + Send + 'static) {
        assert!(pool.submit(Box::new(job)).is_ok());
    }

    #[test]
    fn a_job_that_blocks_does_not_hold_up_the_ones_queued_behind_it() {
        // The first job waits for the second: with the second left queued for
        // the (blocked) running thread, neither would ever finish.
        let pool = start(2);
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let (done_tx, done_rx) = mpsc::channel();
        let first_done = done_tx.clone();
        submit(&pool, move || {
            let _ = first_done.send(go_rx.recv_timeout(Duration::from_secs(30)).is_ok());
        });
        submit(&pool, move || {
            let _ = go_tx.send(());
            let _ = done_tx.send(true);
        });
        for _ in 0..2 {
            let done = done_rx.recv_timeout(Duration::from_secs(30));
            assert_eq!(done, Ok(true), "a job waited behind a blocked one");
        }
        pool.close();
    }

    #[test]
    fn a_busy_running_thread_takes_the_queued_jobs_itself() {
        // The first job keeps its thread running (not blocked) until released;
        // what was queued meanwhile must run on that same thread, not wake others.
        let pool = start(4);
        let release = Arc::new(AtomicBool::new(false));
        let (ran_tx, ran_rx) = mpsc::channel();
        let hold = Arc::clone(&release);
        let first = ran_tx.clone();
        submit(&pool, move || {
            let _ = first.send(thread::current().id());
            while !hold.load(Ordering::Acquire) {
                std::hint::spin_loop();
            }
        });
        let runner = ran_rx.recv_timeout(Duration::from_secs(30)).unwrap();
        for _ in 0..10 {
            let ran = ran_tx.clone();
            submit(&pool, move || {
                let _ = ran.send(thread::current().id());
            });
        }
        // Several watchdog ticks with jobs waiting behind a running thread
        // (fewer than STARVED).
        thread::sleep(Duration::from_millis(5));
        release.store(true, Ordering::Release);
        for _ in 0..10 {
            let ran = ran_rx.recv_timeout(Duration::from_secs(30)).unwrap();
            assert_eq!(ran, runner, "a second thread was woken for a running one");
        }
        pool.close();
    }

    #[test]
    fn a_deep_queue_drained_by_a_running_thread_wakes_no_rival() {
        // 200 short jobs (~100 ms in all) queued at once: the queue takes many
        // ticks to turn over, but jobs are taken every tick, so no thread is
        // woken to trade the GIL with the one draining it (two at most: the
        // machine may preempt the drainer for a moment).
        let pool = start(4);
        let (ran_tx, ran_rx) = mpsc::channel();
        for _ in 0..200 {
            let ran = ran_tx.clone();
            submit(&pool, move || {
                let until = std::time::Instant::now() + Duration::from_micros(500);
                while std::time::Instant::now() < until {
                    std::hint::spin_loop();
                }
                let _ = ran.send(thread::current().id());
            });
        }
        let mut threads = std::collections::HashSet::new();
        for _ in 0..200 {
            threads.insert(ran_rx.recv_timeout(Duration::from_secs(60)).unwrap());
        }
        assert!(
            threads.len() <= 2,
            "{} threads drained one queue",
            threads.len()
        );
        pool.close();
    }

    #[test]
    fn a_long_computation_does_not_hold_the_queue_for_its_whole_length() {
        // The first job runs (never blocks) until the second has run: with the
        // second left queued behind it for good, it would spin to the timeout.
        let pool = start(2);
        let second_ran = Arc::new(AtomicBool::new(false));
        let (done_tx, done_rx) = mpsc::channel();
        let seen = Arc::clone(&second_ran);
        submit(&pool, move || {
            let until = std::time::Instant::now() + Duration::from_secs(30);
            while !seen.load(Ordering::Acquire) && std::time::Instant::now() < until {
                std::hint::spin_loop();
            }
            let _ = done_tx.send(seen.load(Ordering::Acquire));
        });
        thread::sleep(Duration::from_millis(2));
        let flag = Arc::clone(&second_ran);
        submit(&pool, move || flag.store(true, Ordering::Release));
        let done = done_rx.recv_timeout(Duration::from_secs(60));
        assert_eq!(
            done,
            Ok(true),
            "the queued job waited for the whole computation"
        );
        pool.close();
    }

    #[test]
    fn closing_runs_what_is_queued_then_refuses_and_stops() {
        let pool = Arc::new(Pool::<Job>::new(1));
        let (ran_tx, ran_rx) = mpsc::channel();
        for i in 0..3 {
            let ran = ran_tx.clone();
            submit(&pool, move || {
                let _ = ran.send(i);
            });
        }
        pool.close();
        assert!(
            pool.submit(Box::new(|| {})).is_err(),
            "a closed pool took a job"
        );
        let worker = {
            let pool = Arc::clone(&pool);
            thread::spawn(move || {
                while let Some(job) = pool.next(0) {
                    job();
                }
            })
        };
        worker.join().unwrap();
        assert_eq!(ran_rx.try_iter().collect::<Vec<_>>(), vec![0, 1, 2]);
    }
}
