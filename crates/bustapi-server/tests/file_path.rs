//! A file response end to end, in whichever path this build has: sendfile(2) on
//! Linux, the copy path elsewhere (and with `--no-default-features`, which is how
//! the macOS/BSD variant is tested here). Both must deliver the exact bytes.

mod common;

use bustapi_server::sendfile::{
    bytes_bounced, bytes_sent, AVAILABLE, BOUNCE_MAX, BOUNCE_MIN, SENDFILE_MIN,
};
use bustapi_server::{
    Config, Dispatcher, Engine, FileSpec, Router, ViewBody, ViewFuture, ViewRequest, ViewResponse,
};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

struct SendFile(PathBuf);
impl Dispatcher for SendFile {
    fn dispatch(&self, _req: ViewRequest) -> ViewFuture {
        let spec = FileSpec::path(self.0.clone());
        Box::pin(async move {
            ViewResponse {
                status: http::StatusCode::OK,
                headers: http::HeaderMap::new(),
                body: ViewBody::File(Box::new(spec)),
            }
        })
    }
}

fn start(path: PathBuf, sendfile: bool) -> u16 {
    let mut router = Router::new();
    router.add("/file", &[http::Method::GET], 0).unwrap();
    let config = Config {
        sendfile,
        ..Config::default()
    };
    let engine = Arc::new(Engine::new(
        router,
        vec![],
        Arc::new(SendFile(path)),
        config,
    ));
    common::serve_in_background(engine)
}

/// Sends pipelined requests (the last one closes) and returns the bodies.
fn pipelined(port: u16, ranges: &[&str]) -> Vec<Vec<u8>> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut payload = String::new();
    for (i, range) in ranges.iter().enumerate() {
        let close = if i + 1 == ranges.len() {
            "Connection: close\r\n"
        } else {
            ""
        };
        payload += &format!("GET /file HTTP/1.1\r\nHost: x\r\nRange: bytes={range}\r\n{close}\r\n");
    }
    s.write_all(payload.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let mut bodies = Vec::new();
    let mut rest = &out[..];
    while !rest.is_empty() {
        let end = rest.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let head = String::from_utf8_lossy(&rest[..end]).to_lowercase();
        assert!(head.starts_with("http/1.1 206"), "{head}");
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        bodies.push(rest[end..end + len].to_vec());
        rest = &rest[end + len..];
    }
    bodies
}

#[test]
fn file_bodies_are_exact_and_take_this_builds_path() {
    let content: Vec<u8> = (0..600_000u32).map(|i| (i % 251) as u8 + 1).collect();
    let path = std::env::temp_dir().join(format!("bustapi-file-path-{}", std::process::id()));
    std::fs::write(&path, &content).unwrap();
    let ranges = ["1000-300999", "0-", "-70000"];
    let want = [
        &content[1000..301_000],
        &content[..],
        &content[content.len() - 70_000..],
    ];

    for sendfile in [true, false] {
        let port = start(path.clone(), sendfile);
        let before = (bytes_sent(), bytes_bounced());
        let bodies = pipelined(port, &ranges);
        assert_eq!(bodies.len(), 3);
        for (got, want) in bodies.iter().zip(want) {
            assert!(
                got == want,
                "a body differs from the file (sendfile={sendfile})"
            );
        }
        // The only test in this binary, so the counters moved for these alone:
        // bodies of BOUNCE_MIN..=BOUNCE_MAX through the bounce buffer (300,000
        // and 600,000 bytes here), the 70,000-byte one with sendfile(2).
        let on = sendfile && AVAILABLE;
        let (mut bounced, mut sent) = (0u64, 0u64);
        for w in want.iter().map(|w| w.len() as u64) {
            if (BOUNCE_MIN..=BOUNCE_MAX).contains(&w) {
                bounced += w;
            } else if w >= SENDFILE_MIN {
                sent += w;
            }
        }
        assert_eq!((bounced, sent), (900_000, 70_000));
        let expected = if on { (bounced, sent) } else { (0, 0) };
        let moved = (bytes_bounced() - before.1, bytes_sent() - before.0);
        assert_eq!(moved, expected, "sendfile={sendfile}");
    }
    std::fs::remove_file(&path).unwrap();
}
