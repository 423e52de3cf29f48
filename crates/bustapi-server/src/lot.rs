//! The lot: where idle keep-alive connections wait, as nginx keeps them.
//!
//! An idle HTTP/1 connection (see [`idle`](crate::idle)) needs nothing but its
//! socket, a deadline and a few bytes to resume it. Kept as a tokio task it
//! still cost ~2.5 KiB: the task and its future, tokio's registration
//! (`ScheduledIo`), per-connection `Arc`s, and the malloc pages those small
//! blocks pinned among freed busy-phase buffers (bench/notes/idle13.md). So an
//! idle connection has no task and no tokio registration: it is *parked* here,
//! an entry of a few dozen bytes in one slab, its descriptor registered in one
//! epoll set (a [`mio::Poll`]) that a single task drives through
//! [`AsyncFd`]. When a parked socket turns readable it leaves the lot and its
//! owner's `wake` rebuilds the connection's task; when its deadline passes, or
//! the server stops, it is closed where it lies.
//!
//! Every idle connection waits the same head timeout, so the deadlines are
//! kept in a plain FIFO, which is their order too.

use mio::net::TcpStream as Parked;
use mio::{Events, Interest, Poll, Registry, Token};
use slab::Slab;
use std::collections::VecDeque;
use std::io;
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::sync::{watch, Notify};
use tokio::time::{sleep_until, Instant};

/// Readiness events taken from the epoll set per system call.
const EVENTS: usize = 256;

/// Idle connections, each with what its owner needs to resume it (`P`).
pub struct Lot<P> {
    registry: Registry,
    state: Mutex<State<P>>,
    /// A deadline was queued while none were: the driver arms its timer.
    first_deadline: Notify,
    parked: AtomicUsize,
}

struct State<P> {
    entries: Slab<Entry<P>>,
    /// `(deadline, key)` in parking order. An entry that left early leaves its
    /// item behind; it is skipped when its time comes (the deadline no longer
    /// matches), and dropped sooner if such items pile up.
    deadlines: VecDeque<(Instant, usize)>,
    /// The server is stopping: nothing more is parked.
    closed: bool,
}

struct Entry<P> {
    socket: Parked,
    deadline: Instant,
    payload: P,
}

/// The epoll set, for the one task that drives the lot ([`Driver::run`]).
pub struct Driver(Poll);

/// A connection leaving the lot to be served again.
pub struct Woken<P> {
    pub socket: TcpStream,
    /// Its request head is still due by then (the idle deadline carries over).
    pub head_by: Instant,
    pub payload: P,
}

impl<P> Lot<P> {
    pub fn new() -> io::Result<(Arc<Self>, Driver)> {
        let poll = Poll::new()?;
        let lot = Lot {
            registry: poll.registry().try_clone()?,
            state: Mutex::new(State {
                entries: Slab::new(),
                deadlines: VecDeque::new(),
                closed: false,
            }),
            first_deadline: Notify::new(),
            parked: AtomicUsize::new(0),
        };
        Ok((Arc::new(lot), Driver(poll)))
    }

    /// Connections parked right now.
    pub fn parked(&self) -> usize {
        self.parked.load(Ordering::Relaxed)
    }

    fn state(&self) -> MutexGuard<'_, State<P>> {
        // Nothing under this lock can panic half-way through an update that
        // matters: a poisoned lock is still a consistent lot.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Parks an idle connection (a non-blocking socket no longer registered
    /// with tokio) until its client sends again, closes it, or `deadline`.
    /// If the server is stopping, or the socket cannot be registered, it is
    /// closed instead (with `payload` dropped), as an idle connection would be.
    pub fn park(&self, socket: TcpStream, deadline: Instant, payload: P) {
        let mut socket = Parked::from_std(socket);
        let mut state = self.state();
        if state.closed {
            return;
        }
        // Threads park concurrently: a deadline a few microseconds earlier than
        // the last one queued waits for it, which keeps the FIFO sorted.
        let deadline = state
            .deadlines
            .back()
            .map_or(deadline, |&(last, _)| deadline.max(last));
        let key = state.entries.vacant_key();
        // Registered under the lock: a readiness event is then never seen
        // before its entry exists (the set is edge-triggered, and registering
        // an already readable socket reports it at once).
        if let Err(e) = self
            .registry
            .register(&mut socket, Token(key), Interest::READABLE)
        {
            tracing::debug!("idle connection closed, not parked: {e}");
            return;
        }
        state.entries.insert(Entry {
            socket,
            deadline,
            payload,
        });
        state.deadlines.push_back((deadline, key));
        let first = state.deadlines.len() == 1;
        self.parked.fetch_add(1, Ordering::Relaxed);
        drop(state);
        if first {
            self.first_deadline.notify_one();
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.state().deadlines.front().map(|&(at, _)| at)
    }

    /// Takes the connections the events are about: those with bytes to read
    /// leave to be woken; those the client closed (or reset) are closed here,
    /// with no task ever built for them.
    fn take_ready(&self, events: &Events) -> Vec<Woken<P>> {
        let mut woken = Vec::new();
        let mut gone = Vec::new();
        let mut state = self.state();
        for event in events {
            let key = event.token().0;
            let Some(entry) = state.entries.get(key) else {
                continue;
            };
            let readable = match entry.socket.peek(&mut [0u8; 1]) {
                // A stale edge: stay parked (the next bytes raise a new one).
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Ok(0) => false,
                Ok(_) => true,
                Err(e) => e.kind() == io::ErrorKind::Interrupted,
            };
            let mut entry = state.entries.remove(key);
            if readable {
                // Before tokio registers the descriptor in its own set.
                let _ = self.registry.deregister(&mut entry.socket);
                woken.push(Woken {
                    socket: entry.socket.into(),
                    head_by: entry.deadline,
                    payload: entry.payload,
                });
            } else {
                gone.push(entry);
            }
        }
        self.left(&mut state, woken.len() + gone.len());
        drop(state);
        drop(gone);
        woken
    }

    /// Closes the connections whose deadline has passed by `now`.
    fn expire(&self, now: Instant) {
        let mut gone = Vec::new();
        let mut state = self.state();
        while let Some(&(deadline, key)) = state.deadlines.front() {
            if deadline > now {
                break;
            }
            state.deadlines.pop_front();
            if state
                .entries
                .get(key)
                .is_some_and(|e| e.deadline == deadline)
            {
                gone.push(state.entries.remove(key));
            }
        }
        self.left(&mut state, gone.len());
        drop(state);
        drop(gone); // closed outside the lock
    }

    /// Bookkeeping after `n` entries left.
    fn left(&self, state: &mut State<P>, n: usize) {
        if n == 0 {
            return;
        }
        self.parked.fetch_sub(n, Ordering::Relaxed);
        if state.entries.is_empty() {
            // Every queued deadline is stale: give the memory back too.
            state.entries = Slab::new();
            state.deadlines = VecDeque::new();
        } else if state.deadlines.len() > 2 * state.entries.len() + 1024 {
            // Connections that wake and park again often leave stale items.
            let entries = &state.entries;
            let live =
                |&(at, key): &(Instant, usize)| entries.get(key).is_some_and(|e| e.deadline == at);
            let kept: VecDeque<_> = state.deadlines.iter().copied().filter(live).collect();
            state.deadlines = kept;
        }
    }

    /// The server is stopping: closes every parked connection, and any parked
    /// from now on.
    fn close(&self) {
        let mut state = self.state();
        state.closed = true;
        let entries = std::mem::take(&mut state.entries);
        state.deadlines = VecDeque::new();
        self.parked.store(0, Ordering::Relaxed);
        drop(state);
        drop(entries);
    }
}

impl Driver {
    /// Drives the lot until `stop` changes (or its sender is gone), then closes
    /// every parked connection. `wake` is called, on this task, for each
    /// connection whose client has sent again, with this task's `stop` for the
    /// task it builds.
    pub async fn run<P>(
        self,
        lot: Arc<Lot<P>>,
        mut stop: watch::Receiver<bool>,
        mut wake: impl FnMut(Woken<P>, &watch::Receiver<bool>),
    ) {
        // SAFETY: a `Poll` owns its epoll descriptor for its whole life and
        // always reports that one; it is only ever polled through the guard
        // below, never replaced.
        let registered =
            unsafe { AsyncFd::register_with_interest(self.0, tokio::io::Interest::READABLE) };
        let mut poll = match registered {
            Ok(poll) => poll,
            Err(e) => {
                // Nothing can be parked then: idle connections close instead.
                tracing::warn!("idle connections cannot be parked: {e}");
                lot.close();
                return;
            }
        };
        let mut events = Events::with_capacity(EVENTS);
        loop {
            let next = lot.next_deadline();
            tokio::select! {
                biased;
                _ = stop.changed() => break,
                ready = poll.readable_mut() => {
                    let mut ready = match ready {
                        Ok(ready) => ready,
                        Err(e) => {
                            tracing::warn!("idle connection set failed: {e}");
                            break;
                        }
                    };
                    events.clear();
                    match ready.get_inner_mut().poll(&mut events, Some(Duration::ZERO)) {
                        Ok(()) => {}
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => {
                            tracing::warn!("idle connection set failed: {e}");
                            break;
                        }
                    }
                    if events.is_empty() {
                        // Drained; tokio keeps any edge that came after this guard.
                        ready.clear_ready();
                        continue;
                    }
                    for woken in lot.take_ready(&events) {
                        wake(woken, &stop);
                    }
                }
                _ = sleep_until(next.unwrap_or_else(Instant::now)), if next.is_some() => {
                    lot.expire(Instant::now());
                }
                _ = lot.first_deadline.notified() => {}
            }
        }
        lot.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    /// A connected pair: the server side non-blocking, as tokio hands it over.
    fn pair(listener: &TcpListener) -> (TcpStream, TcpStream) {
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        (client, server)
    }

    async fn until(what: impl Fn() -> bool) {
        for _ in 0..500 {
            if what() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("timed out waiting");
    }

    // Two threads: the test blocks on its client sockets while the driver runs.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn wakes_on_bytes_closes_on_hangup_expiry_and_stop() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let (lot, driver) = Lot::<u32>::new().unwrap();
        let (stop_tx, stop) = watch::channel(false);
        let (woke_tx, mut woke) = tokio::sync::mpsc::unbounded_channel();
        let driver = tokio::spawn(driver.run(Arc::clone(&lot), stop, move |w, _| {
            woke_tx.send(w).unwrap();
        }));
        let far = Instant::now() + Duration::from_secs(60);

        // Bytes: woken with its payload and deadline, the bytes still unread.
        let (mut talker, server) = pair(&listener);
        lot.park(server, far, 1);
        assert_eq!(lot.parked(), 1);
        talker.write_all(b"GET").unwrap();
        let w = woke.recv().await.unwrap();
        assert_eq!((w.payload, w.head_by), (1, far));
        assert_eq!(lot.parked(), 0);
        let mut buf = [0u8; 3];
        let mut socket = w.socket;
        socket.set_nonblocking(false).unwrap();
        socket.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"GET");

        // The client hangs up: closed in the lot, never woken.
        let (quitter, server) = pair(&listener);
        lot.park(server, far, 2);
        drop(quitter);
        until(|| lot.parked() == 0).await;

        // Expiry: the client sees the close.
        let (mut waiter, server) = pair(&listener);
        lot.park(server, Instant::now() + Duration::from_millis(200), 3);
        assert_eq!(waiter.read(&mut buf).unwrap(), 0);
        assert_eq!(lot.parked(), 0);

        // Stop: every parked connection closes at once, and later parks too.
        let mut idle: Vec<TcpStream> = (0..3)
            .map(|i| {
                let (client, server) = pair(&listener);
                lot.park(server, far, 10 + i);
                client
            })
            .collect();
        assert_eq!(lot.parked(), 3);
        stop_tx.send_replace(true);
        driver.await.unwrap();
        for client in &mut idle {
            assert_eq!(client.read(&mut buf).unwrap(), 0);
        }
        let (mut late, server) = pair(&listener);
        lot.park(server, far, 20);
        assert_eq!(late.read(&mut buf).unwrap(), 0);
        assert!(woke.try_recv().is_err());
    }
}
