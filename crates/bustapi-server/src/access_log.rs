//! The access log (one line per request, written when its response ends) and
//! the live throughput line of `python -m bustapi serve`.
//!
//! A line is written when the body finishes *or is dropped*, so it reports the
//! bytes actually handed to the connection: a client that leaves mid-video shows
//! up with the bytes it really got, marked `aborted`. A large file body that
//! the connection's sendfile sink takes over (owed.rs) ends, for hyper and so
//! for this log, once all its bytes are handed to the kernel or owed: like
//! nginx, which logs when the last byte is handed over, not when it is read.
//!
//! Only a terminal gets the live line and the escape codes that draw it; a log
//! redirected to a file or a pipe holds plain lines.

use crate::body::Body;
use bytes::Bytes;
use http_body::{Body as _, Frame, SizeHint};
use std::io::{self, IsTerminal, Write};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// Bytes sent by a server, for the live line.
#[derive(Default)]
pub struct Traffic {
    pub bytes: AtomicU64,
    /// The live line is being drawn: access-log lines must first erase it.
    live: AtomicBool,
}

/// What the line says about a request, gathered before the body streams.
pub struct Record {
    pub remote: Option<SocketAddr>,
    pub method: http::Method,
    pub target: String,
    pub version: http::Version,
    pub status: u16,
    pub range: Option<String>,
    pub started: Instant,
}

/// A response body that counts what it yields and logs when it ends.
pub struct Logged {
    inner: Body,
    record: Option<Box<Record>>,
    traffic: Option<Arc<Traffic>>,
    sent: u64,
    complete: bool,
}

impl Logged {
    pub fn new(inner: Body, record: Option<Box<Record>>, traffic: Option<Arc<Traffic>>) -> Self {
        Logged {
            inner,
            record,
            traffic,
            sent: 0,
            complete: false,
        }
    }
}

impl http_body::Body for Logged {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let n = data.len() as u64;
                    this.sent += n;
                    if let Some(t) = &this.traffic {
                        t.bytes.fetch_add(n, Ordering::Relaxed);
                    }
                }
            }
            Poll::Ready(None) => this.complete = true,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        let Some(r) = self.record.take() else { return };
        let complete = self.complete || self.inner.is_end_stream();
        let over_live_line = self
            .traffic
            .as_ref()
            .is_some_and(|t| t.live.load(Ordering::Relaxed));
        let line = format_line(&r, self.sent, complete, r.started.elapsed(), over_live_line);
        // One write per line, so lines from concurrent requests never interleave.
        let _ = io::stderr().lock().write_all(line.as_bytes());
    }
}

fn format_line(
    r: &Record,
    sent: u64,
    complete: bool,
    took: Duration,
    over_live_line: bool,
) -> String {
    let remote = r
        .remote
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|| "-".into());
    let version = match r.version {
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2",
        _ => "HTTP/1.1",
    };
    let range = r.range.as_deref().unwrap_or("-");
    let outcome = if complete { "" } else { " aborted" };
    // \r and the erase-line escape put the line over the live status line.
    let erase = if over_live_line { ERASE_LINE } else { "" };
    format!(
        "{erase}{remote} \"{} {} {version}\" {} {sent} {range} {:.1}ms{outcome}\n",
        r.method,
        r.target.escape_debug(),
        r.status,
        took.as_secs_f64() * 1000.0
    )
}

/// Back to the start of the line and erase it (a terminal control sequence).
const ERASE_LINE: &str = "\r\x1b[K";

/// Prints the live throughput line every second until the server stops, if
/// stderr is a terminal; elsewhere the line would only litter the log.
pub async fn live_line(traffic: Arc<Traffic>, connections: impl Fn() -> usize) {
    if !io::stderr().is_terminal() {
        return;
    }
    traffic.live.store(true, Ordering::Relaxed);
    let mut last = traffic.bytes.load(Ordering::Relaxed);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    loop {
        tick.tick().await;
        let now = traffic.bytes.load(Ordering::Relaxed);
        let line = format!(
            "{ERASE_LINE}serving {}/s, {} open connections, {} sent in all",
            human(now.saturating_sub(last)),
            connections(),
            human(now)
        );
        last = now;
        let _ = io::stderr().lock().write_all(line.as_bytes());
    }
}

fn human(n: u64) -> String {
    let mut v = n as f64;
    for unit in ["B", "KB", "MB", "GB"] {
        if v < 1000.0 {
            return format!("{v:.1} {unit}");
        }
        v /= 1000.0;
    }
    format!("{v:.1} TB")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_has_method_path_status_bytes_range_duration() {
        let r = Record {
            remote: Some("10.0.0.7:5555".parse().unwrap()),
            method: http::Method::GET,
            target: "/video.mp4?x=\"1\"".into(),
            version: http::Version::HTTP_11,
            status: 206,
            range: Some("bytes=0-1".into()),
            started: Instant::now(),
        };
        let line = format_line(&r, 2, true, Duration::from_micros(1500), false);
        assert_eq!(
            line,
            "10.0.0.7 \"GET /video.mp4?x=\\\"1\\\" HTTP/1.1\" 206 2 bytes=0-1 1.5ms\n"
        );
        assert!(format_line(&r, 1, false, Duration::ZERO, false).ends_with("aborted\n"));
        let over = format_line(&r, 2, true, Duration::ZERO, true);
        assert!(over.starts_with("\r\x1b[K10.0.0.7 "), "{over:?}");
        assert_eq!(human(1_500_000), "1.5 MB");
    }
}
