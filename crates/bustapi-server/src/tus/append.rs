//! The hot path: a request body appended to an upload's file as it arrives.
//!
//! Bytes never wait for the whole body and never enter Python. Frames are
//! gathered into batches of up to [`BATCH`] bytes and written with positioned
//! writes (`pwrite`) on the blocking pool, one batch in flight while the next is
//! read from the socket, so disk and network overlap. When the socket has had
//! nothing more to give for a moment ([`IDLE`]), whatever has been gathered is
//! written: bytes that reached the server are on disk (in the page cache) even
//! if the connection then stalls and the process is killed, and a resumed
//! upload loses none of them. (When the connection breaks, they are written
//! at once.)

use bytes::Bytes;
use futures_util::FutureExt;
use http_body_util::BodyExt;
use ring::digest;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use tokio::task::JoinHandle;

/// Large enough that the blocking-pool hand-off costs nothing per byte, small
/// enough that memory stays flat whatever the upload's size.
const BATCH: usize = 1 << 20;

/// How long the socket may stay quiet before a partial batch is written anyway.
/// A socket drained faster than the client fills it is quiet for microseconds
/// at a time; writing on every such pause would cut the stream into tiny writes.
const IDLE: std::time::Duration = std::time::Duration::from_millis(2);

/// A body that sends nothing for this long is given up on (the protocol's
/// suggested timeout), so a stalled client does not hold the upload's lock —
/// and keep its own resumed PATCH at 423 — until TCP notices.
pub const STALL: std::time::Duration = std::time::Duration::from_secs(30);

#[derive(Debug)]
pub enum AppendEnd {
    /// The body ended; all of it is written.
    Done,
    /// The body went past the bytes allowed; the rest was not read.
    TooLarge,
    /// The body broke off (client gone, connection reset); what arrived is written.
    Interrupted,
    /// Nothing arrived for [`STALL`]; what arrived before is written.
    Stalled,
    /// Writing failed (a full disk…); the file holds what was written before.
    WriteFailed(io::Error),
}

pub struct Appended {
    pub end: AppendEnd,
    /// The digest of the bytes written, when a checksum was asked for.
    pub digest: Option<digest::Context>,
}

/// Appends `body` to `file` from `start`, refusing to go more than `room` bytes
/// past it. `digest` is fed every byte written, in order.
pub async fn append<B>(
    file: Arc<File>,
    start: u64,
    room: u64,
    body: B,
    digest: Option<digest::Context>,
) -> Appended
where
    B: http_body::Body<Data = Bytes>,
{
    let mut body = std::pin::pin!(body);
    let mut writer = Writer {
        file,
        offset: start,
        in_flight: None,
        digest,
    };
    let mut batch: Vec<Bytes> = Vec::new();
    let mut batched = 0usize;
    let mut received = 0u64;
    let end = loop {
        let frame = match body.frame().now_or_never() {
            Some(frame) => frame,
            None if batched == 0 => match tokio::time::timeout(STALL, body.frame()).await {
                Ok(frame) => frame,
                Err(_) => break AppendEnd::Stalled,
            },
            None => match tokio::time::timeout(IDLE, body.frame()).await {
                Ok(frame) => frame,
                Err(_quiet) => {
                    // Nothing more for a while: put what we have on disk meanwhile.
                    batched = 0;
                    if let Err(e) = writer.submit(std::mem::take(&mut batch)).await {
                        break AppendEnd::WriteFailed(e);
                    }
                    continue;
                }
            },
        };
        let data = match frame {
            None => break AppendEnd::Done,
            Some(Err(_)) => break AppendEnd::Interrupted,
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => data,
                Err(_trailers) => continue,
            },
        };
        received += data.len() as u64;
        if received > room {
            break AppendEnd::TooLarge;
        }
        batched += data.len();
        batch.push(data);
        if batched >= BATCH {
            batched = 0;
            if let Err(e) = writer.submit(std::mem::take(&mut batch)).await {
                break AppendEnd::WriteFailed(e);
            }
        }
    };
    let mut end = end;
    if batched > 0
        && matches!(
            end,
            AppendEnd::Done | AppendEnd::Interrupted | AppendEnd::Stalled
        )
    {
        if let Err(e) = writer.submit(batch).await {
            end = AppendEnd::WriteFailed(e);
        }
    }
    if let Err(e) = writer.wait().await {
        if !matches!(end, AppendEnd::WriteFailed(_)) {
            end = AppendEnd::WriteFailed(e);
        }
    }
    Appended {
        end,
        digest: writer.digest,
    }
}

type WriteResult = (io::Result<()>, Option<digest::Context>);

/// One positioned write at a time on the blocking pool; the digest travels with
/// it so bytes are hashed in file order without a lock.
struct Writer {
    file: Arc<File>,
    offset: u64,
    in_flight: Option<JoinHandle<WriteResult>>,
    digest: Option<digest::Context>,
}

impl Writer {
    /// Waits for the previous write (back-pressure: at most one batch waits on
    /// the disk), then starts writing `chunks`.
    async fn submit(&mut self, chunks: Vec<Bytes>) -> io::Result<()> {
        self.wait().await?;
        let file = Arc::clone(&self.file);
        let mut digest = self.digest.take();
        let at = self.offset;
        self.offset += chunks.iter().map(|c| c.len() as u64).sum::<u64>();
        self.in_flight = Some(tokio::task::spawn_blocking(move || {
            let mut pos = at;
            for chunk in &chunks {
                if let Err(e) = file.write_all_at(chunk, pos) {
                    return (Err(e), digest);
                }
                if let Some(d) = digest.as_mut() {
                    d.update(chunk);
                }
                pos += chunk.len() as u64;
            }
            (Ok(()), digest)
        }));
        Ok(())
    }

    async fn wait(&mut self) -> io::Result<()> {
        let Some(task) = self.in_flight.take() else {
            return Ok(());
        };
        let (result, digest) = task
            .await
            .map_err(|e| io::Error::other(format!("the write task failed: {e}")))?;
        self.digest = digest;
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use http_body::Frame;
    use http_body_util::{BodyExt, Full, StreamBody};

    fn temp_file() -> (std::path::PathBuf, Arc<File>) {
        let path = std::env::temp_dir().join(format!(
            "bustapi-append-{}-{}",
            std::process::id(),
            super::super::id::UploadId::generate().unwrap()
        ));
        let file = File::options()
            .create_new(true)
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        (path, Arc::new(file))
    }

    #[tokio::test]
    async fn a_body_lands_after_what_is_there_with_its_digest() {
        let (path, file) = temp_file();
        file.write_all_at(b"head:", 0).unwrap();
        let payload: Vec<u8> = (0..3 * BATCH + 17).map(|i| (i % 251) as u8).collect();
        let body = Full::new(Bytes::from(payload.clone()));
        let ctx = digest::Context::new(&digest::SHA256);
        let out = append(file, 5, u64::MAX, body, Some(ctx)).await;
        assert!(matches!(out.end, AppendEnd::Done), "{:?}", out.end);
        let on_disk = std::fs::read(&path).unwrap();
        assert_eq!(&on_disk[..5], b"head:");
        assert!(on_disk[5..] == payload[..]);
        assert_eq!(
            out.digest.unwrap().finish().as_ref(),
            digest::digest(&digest::SHA256, &payload).as_ref()
        );
        std::fs::remove_file(path).unwrap();
    }

    #[tokio::test]
    async fn an_interrupted_body_keeps_what_arrived() {
        let (path, file) = temp_file();
        let frames: Vec<Result<Frame<Bytes>, io::Error>> = vec![
            Ok(Frame::data(Bytes::from_static(b"abc"))),
            Ok(Frame::data(Bytes::from_static(b"def"))),
            Err(io::Error::new(io::ErrorKind::ConnectionReset, "gone")),
        ];
        let body = StreamBody::new(futures_util::stream::iter(frames));
        let out = append(file, 0, u64::MAX, body, None).await;
        assert!(matches!(out.end, AppendEnd::Interrupted), "{:?}", out.end);
        assert_eq!(std::fs::read(&path).unwrap(), b"abcdef");
        std::fs::remove_file(path).unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_is_given_up_after_its_bytes_are_written() {
        let (path, file) = temp_file();
        let frames = futures_util::stream::iter([Ok::<_, io::Error>(Frame::data(
            Bytes::from_static(b"abc"),
        ))])
        .chain(futures_util::stream::pending());
        let out = append(file, 0, u64::MAX, StreamBody::new(frames), None).await;
        assert!(matches!(out.end, AppendEnd::Stalled), "{:?}", out.end);
        assert_eq!(std::fs::read(&path).unwrap(), b"abc");
        std::fs::remove_file(path).unwrap();
    }

    #[tokio::test]
    async fn a_body_past_its_room_is_refused() {
        let (path, file) = temp_file();
        let body = Full::new(Bytes::from_static(b"0123456789")).boxed();
        let out = append(file, 0, 9, body, None).await;
        assert!(matches!(out.end, AppendEnd::TooLarge), "{:?}", out.end);
        std::fs::remove_file(path).unwrap();
    }
}
