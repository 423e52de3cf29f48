//! The average bitrate of an MP4 (ISO BMFF) file, for `rate="auto"` pacing:
//! its size divided by the duration in the movie header (`moov`/`mvhd`).
//!
//! Only box headers and the `mvhd` box are read (a few small positioned reads,
//! wherever the `moov` box is: players and this module both find it at the end
//! of a file that was not made "fast start"). A full MP4 parser (the `mp4` or
//! `mp4parse` crates) would read and allocate the whole `moov`, megabytes for a
//! long film, to answer this one question.

use std::fs::File;
use std::os::unix::fs::FileExt;

/// Boxes looked at before giving up (a malformed or hostile file).
const MAX_BOXES: usize = 1024;

/// A box: its type, where its content starts, and where it ends.
struct BoxHeader {
    kind: [u8; 4],
    content: u64,
    end: u64,
}

fn read_at<const N: usize>(file: &File, offset: u64) -> Option<[u8; N]> {
    let mut buf = [0u8; N];
    file.read_exact_at(&mut buf, offset).ok()?;
    Some(buf)
}

fn box_at(file: &File, offset: u64, limit: u64) -> Option<BoxHeader> {
    let head: [u8; 8] = read_at(file, offset)?;
    let size32 = u32::from_be_bytes(head[..4].try_into().ok()?) as u64;
    let kind: [u8; 4] = head[4..].try_into().ok()?;
    let (size, header) = match size32 {
        0 => (limit - offset, 8), // to the end of the enclosing space
        1 => (u64::from_be_bytes(read_at(file, offset + 8)?), 16),
        n => (n, 8),
    };
    let end = offset.checked_add(size)?;
    (size >= header && end <= limit).then_some(BoxHeader {
        kind,
        content: offset + header,
        end,
    })
}

/// The first box of type `kind` among the boxes in `start..end`.
fn find(file: &File, mut start: u64, end: u64, kind: &[u8; 4]) -> Option<BoxHeader> {
    for _ in 0..MAX_BOXES {
        if start >= end {
            return None;
        }
        let b = box_at(file, start, end)?;
        if &b.kind == kind {
            return Some(b);
        }
        start = b.end;
    }
    None
}

/// The movie's duration in seconds, from `moov`/`mvhd`.
pub fn duration_seconds(file: &File, len: u64) -> Option<f64> {
    let moov = find(file, 0, len, b"moov")?;
    let mvhd = find(file, moov.content, moov.end, b"mvhd")?;
    let version: [u8; 1] = read_at(file, mvhd.content)?;
    let (timescale, duration) = match version[0] {
        // version, flags, creation and modification times (32-bit), then these.
        0 => {
            let f: [u8; 8] = read_at(file, mvhd.content + 12)?;
            let unknown = f[4..] == [0xff; 4];
            let duration = u32::from_be_bytes(f[4..].try_into().ok()?) as u64;
            (
                u32::from_be_bytes(f[..4].try_into().ok()?),
                (!unknown).then_some(duration)?,
            )
        }
        1 => {
            let f: [u8; 12] = read_at(file, mvhd.content + 20)?;
            let unknown = f[4..] == [0xff; 8];
            let duration = u64::from_be_bytes(f[4..].try_into().ok()?);
            (
                u32::from_be_bytes(f[..4].try_into().ok()?),
                (!unknown).then_some(duration)?,
            )
        }
        _ => return None,
    };
    if timescale == 0 || duration == 0 {
        return None;
    }
    Some(duration as f64 / timescale as f64)
}

/// Bytes per second the file averages over its duration, if it is an MP4
/// whose duration can be read.
pub fn average_bitrate(file: &File, len: u64) -> Option<u64> {
    let seconds = duration_seconds(file, len)?;
    let rate = (len as f64 / seconds).ceil();
    (rate.is_finite() && rate >= 1.0).then_some(rate as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn bx(kind: &[u8; 4], content: &[u8]) -> Vec<u8> {
        let mut b = ((content.len() + 8) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.extend_from_slice(content);
        b
    }

    fn mvhd_v0(timescale: u32, duration: u32) -> Vec<u8> {
        let mut c = vec![0u8; 12];
        c.extend_from_slice(&timescale.to_be_bytes());
        c.extend_from_slice(&duration.to_be_bytes());
        c.extend_from_slice(&[0u8; 80]);
        bx(b"mvhd", &c)
    }

    fn file_of(bytes: &[u8]) -> File {
        let mut f = tempfile_in_target();
        f.write_all(bytes).unwrap();
        f
    }

    fn tempfile_in_target() -> File {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("bustapi-mp4-{}-{n}", std::process::id()));
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        f
    }

    #[test]
    fn the_duration_comes_from_mvhd_wherever_moov_is() {
        let mut bytes = bx(b"ftyp", b"isom0000");
        bytes.extend(bx(b"mdat", &vec![7u8; 10_000]));
        let mut moov = bx(b"trak", b"");
        moov.extend(mvhd_v0(1000, 4000));
        bytes.extend(bx(b"moov", &moov));
        let f = file_of(&bytes);
        let len = bytes.len() as u64;
        assert_eq!(duration_seconds(&f, len), Some(4.0));
        assert_eq!(average_bitrate(&f, len), Some(len.div_ceil(4)));
    }

    #[test]
    fn what_cannot_be_read_gives_none() {
        for bytes in [
            b"not an mp4 at all".to_vec(),
            bx(b"moov", &mvhd_v0(0, 10)),
            bx(b"moov", &mvhd_v0(1000, 0)),
            bx(b"moov", &mvhd_v0(1000, u32::MAX)),
            bx(b"mdat", b"no moov"),
            // A box claiming more than the file holds.
            [&100u32.to_be_bytes()[..], b"moov"].concat(),
            // A box of size 4: smaller than its own header.
            [&4u32.to_be_bytes()[..], b"moov"].concat(),
        ] {
            let f = file_of(&bytes);
            assert_eq!(average_bitrate(&f, bytes.len() as u64), None, "{bytes:?}");
        }
    }
}
