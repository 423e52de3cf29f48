//! Pacing a response body, as nginx's `limit_rate` / `limit_rate_after` do: the
//! first `after` bytes go at full speed, then the body is held to
//! `bytes_per_second` on average, counted from the start of the response (so the
//! whole of a body of `n` bytes takes `(n - after) / rate` seconds at least).
//!
//! A [`Pacer`] holds no thread and no buffer: before a frame goes out, the body
//! asks it whether that many bytes may leave now; if not, a Tokio timer wakes
//! the body when they may. Frames are kept to about a tenth of a second of
//! data, so the bytes leave smoothly rather than in one late burst.
//!
//! `rate="auto"` for MP4 files is [`crate::mp4::average_bitrate`] times
//! [`AUTO_RATE_MULTIPLE`].

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::time::{Instant, Sleep};

/// `rate="auto"` paces at this multiple of the file's average bitrate: enough
/// headroom above real-time playback for bitrate peaks and a player's buffer,
/// while an abandoned view stops pulling at about twice the speed it plays.
pub const AUTO_RATE_MULTIPLE: u64 = 2;

/// Frames carry at most this many seconds' worth of bytes (1/N s).
const FRAMES_PER_SECOND: u64 = 10;

/// The smallest paced frame: below this, per-frame overhead dominates.
const MIN_FRAME: u64 = 1024;

/// How fast a response may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Average bytes per second once `after` bytes have been sent (at least 1).
    pub bytes_per_second: u64,
    /// Bytes sent at full speed first.
    pub after: u64,
}

/// What an application asked for: a rate, or one derived from the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    Fixed(Rate),
    /// [`AUTO_RATE_MULTIPLE`] times the MP4's average bitrate; no pacing when
    /// the file's duration cannot be read.
    Auto {
        after: u64,
    },
}

impl Pace {
    /// The rate for a file whose average bitrate (bytes per second) is
    /// `average`, if known.
    pub fn rate(self, average: Option<u64>) -> Option<Rate> {
        match self {
            Pace::Fixed(rate) => Some(rate),
            Pace::Auto { after } => average.map(|avg| Rate {
                bytes_per_second: avg.saturating_mul(AUTO_RATE_MULTIPLE).max(1),
                after,
            }),
        }
    }
}

/// The pacing state of one response.
#[derive(Debug)]
pub struct Pacer {
    rate: Rate,
    /// When the first byte was asked for.
    start: Option<Instant>,
    sent: u64,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl Pacer {
    pub fn new(rate: Rate) -> Self {
        Pacer {
            rate: Rate {
                bytes_per_second: rate.bytes_per_second.max(1),
                after: rate.after,
            },
            start: None,
            sent: 0,
            sleep: None,
        }
    }

    pub fn rate(&self) -> Rate {
        self.rate
    }

    /// The largest frame worth sending next: the rest of the free burst, then
    /// a tenth of a second of data.
    pub fn frame_limit(&self) -> usize {
        let limit = if self.sent < self.rate.after {
            self.rate.after - self.sent
        } else {
            (self.rate.bytes_per_second / FRAMES_PER_SECOND).max(MIN_FRAME)
        };
        usize::try_from(limit).unwrap_or(usize::MAX)
    }

    /// Ready when `n` more bytes may leave; until then a timer is armed that
    /// wakes `cx`. Call [`Pacer::sent`] once they have been handed over.
    pub fn poll_ready(&mut self, cx: &mut Context<'_>, n: u64) -> Poll<()> {
        let start = *self.start.get_or_insert_with(Instant::now);
        let owed = (self.sent + n).saturating_sub(self.rate.after);
        if owed == 0 {
            return Poll::Ready(());
        }
        let secs = owed as f64 / self.rate.bytes_per_second as f64;
        let Some(due) = std::time::Duration::try_from_secs_f64(secs)
            .ok()
            .and_then(|d| start.checked_add(d))
        else {
            return Poll::Pending; // centuries away: never
        };
        if Instant::now() >= due {
            self.sleep = None;
            return Poll::Ready(());
        }
        let sleep = match &mut self.sleep {
            Some(s) => {
                if s.deadline() != due {
                    s.as_mut().reset(due);
                }
                s
            }
            None => self.sleep.insert(Box::pin(tokio::time::sleep_until(due))),
        };
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.sleep = None;
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }

    /// Counts `n` bytes as sent.
    pub fn sent(&mut self, n: u64) {
        self.sent += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn auto_needs_a_known_bitrate() {
        assert_eq!(Pace::Auto { after: 5 }.rate(None), None);
        assert_eq!(
            Pace::Auto { after: 5 }.rate(Some(1000)),
            Some(Rate {
                bytes_per_second: 2000,
                after: 5
            })
        );
    }

    #[test]
    fn frames_are_the_rest_of_the_burst_then_a_tenth_of_a_second() {
        let mut p = Pacer::new(Rate {
            bytes_per_second: 1_000_000,
            after: 250_000,
        });
        assert_eq!(p.frame_limit(), 250_000);
        p.sent(250_000);
        assert_eq!(p.frame_limit(), 100_000);
        let slow = Pacer::new(Rate {
            bytes_per_second: 10,
            after: 0,
        });
        assert_eq!(slow.frame_limit(), 1024);
    }

    #[tokio::test(start_paused = true)]
    async fn bytes_past_the_burst_wait_for_their_time() {
        let mut p = Pacer::new(Rate {
            bytes_per_second: 1000,
            after: 500,
        });
        let began = Instant::now();
        // The burst is free; the next 1000 bytes are due one second in.
        std::future::poll_fn(|cx| p.poll_ready(cx, 500)).await;
        p.sent(500);
        assert_eq!(Instant::now(), began);
        std::future::poll_fn(|cx| p.poll_ready(cx, 1000)).await;
        p.sent(1000);
        assert_eq!(Instant::now() - began, Duration::from_secs(1));
        // Time already spent counts: after a pause, bytes owed go at once.
        tokio::time::advance(Duration::from_secs(5)).await;
        let at = Instant::now();
        std::future::poll_fn(|cx| p.poll_ready(cx, 3000)).await;
        assert_eq!(Instant::now(), at);
    }
}
