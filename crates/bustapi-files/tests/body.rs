//! `FileBody` streaming `decide`'s plans from files and from memory.

mod support;

use bustapi_files::body::CHUNK_SIZE;
use bustapi_files::multipart::Piece;
use bustapi_files::{
    decide, BodyPlan, BodySource, ByteRange, FileBody, Options, Plan, Representation,
};
use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, RANGE};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use http_body::Body;
use proptest::prelude::*;
use std::fs::{File, OpenOptions};
use std::future::poll_fn;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use support::{collect, pattern, TempDir};

fn rep(len: u64) -> Representation {
    Representation {
        len,
        last_modified: None,
        etag: Some(HeaderValue::from_static("\"t\"")),
        content_type: HeaderValue::from_static("application/octet-stream"),
        extra_headers: HeaderMap::new(),
    }
}

fn plan_for(range: Option<&str>, len: u64) -> Plan {
    let mut h = HeaderMap::new();
    if let Some(r) = range {
        h.insert(RANGE, HeaderValue::from_str(r).unwrap());
    }
    decide(&Method::GET, &h, &rep(len), &Options::default())
}

/// The body a plan should produce, built from the plan and the data alone.
fn expected(plan: &BodyPlan, data: &[u8]) -> Vec<u8> {
    let slice = |r: ByteRange| data[r.start as usize..r.end as usize].to_vec();
    match plan {
        BodyPlan::Empty => vec![],
        BodyPlan::Whole(len) => {
            assert_eq!(
                *len,
                data.len() as u64,
                "whole means the whole representation"
            );
            data.to_vec()
        }
        BodyPlan::Single(r) => slice(*r),
        BodyPlan::Multipart(m) => m
            .pieces()
            .flat_map(|p| match p {
                Piece::Framing(b) => b.to_vec(),
                Piece::Range(r) => slice(r),
            })
            .collect(),
    }
}

/// Independently parses a multipart/byteranges body and checks every part's
/// `Content-Range` against its bytes.
fn check_multipart(body: &[u8], boundary: &str, data: &[u8]) -> usize {
    let text = body;
    let delim = format!("--{boundary}");
    let close = format!("\r\n--{boundary}--\r\n");
    assert!(text.ends_with(close.as_bytes()), "closing delimiter");
    let mut rest = &text[..text.len() - close.len()];
    let mut parts = 0;
    loop {
        let prefix = if parts == 0 {
            delim.clone()
        } else {
            format!("\r\n{delim}")
        };
        assert!(
            rest.starts_with(prefix.as_bytes()),
            "delimiter of part {parts}"
        );
        rest = &rest[prefix.len()..];
        let head_end = rest.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = std::str::from_utf8(&rest[..head_end]).unwrap();
        let cr = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Range: bytes "))
            .unwrap();
        let (span, total) = cr.split_once('/').unwrap();
        assert_eq!(total.parse::<usize>().unwrap(), data.len());
        let (a, b) = span.split_once('-').unwrap();
        let (a, b): (usize, usize) = (a.parse().unwrap(), b.parse().unwrap());
        rest = &rest[head_end + 4..];
        let n = b + 1 - a;
        assert_eq!(&rest[..n], &data[a..=b], "part {parts} bytes");
        rest = &rest[n..];
        parts += 1;
        if rest.is_empty() {
            return parts;
        }
    }
}

/// Shrinks the file `temp_file` wrote, as if someone truncated it meanwhile.
fn cut_to(dir: &TempDir, len: u64) {
    OpenOptions::new()
        .write(true)
        .open(dir.path().join("data.bin"))
        .unwrap()
        .set_len(len)
        .unwrap();
}

fn temp_file(dir: &TempDir, data: &[u8]) -> Arc<File> {
    let path = dir.write("data.bin", data);
    Arc::new(File::open(path).unwrap())
}

/// A chunk size that divides nothing evenly, for the on-demand reads.
const ODD_CHUNK: usize = 1000;

/// The plan streamed from memory, from the file with read-ahead, and from the
/// file read on demand in small chunks (as for HTTP/2).
async fn stream_both(plan: &Plan, data: &[u8], file: Arc<File>) -> [Vec<u8>; 3] {
    let from_bytes = FileBody::new(
        BodySource::Bytes(Bytes::copy_from_slice(data)),
        plan.body.clone(),
    );
    let from_file = FileBody::new(BodySource::File(file.clone()), plan.body.clone());
    let mut on_demand = FileBody::new(BodySource::File(file), plan.body.clone());
    on_demand.read_on_demand(ODD_CHUNK);
    let mut out = Vec::new();
    for body in [from_bytes, from_file, on_demand] {
        let (got, err) = collect(body).await;
        assert!(err.is_none(), "{err:?}");
        out.push(got);
    }
    out.try_into().unwrap()
}

fn content_length(plan: &Plan) -> u64 {
    plan.headers[CONTENT_LENGTH]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn streams_whole_single_and_multipart_across_chunk_boundaries() {
    let len = 2 * CHUNK_SIZE + 12_345;
    let data = pattern(len);
    let dir = TempDir::new("body");
    let file = temp_file(&dir, &data);
    let last = len - 1;
    for range in [
        None,
        Some("bytes=0-".to_string()),
        Some(format!("bytes={}-{}", CHUNK_SIZE - 3, CHUNK_SIZE + 3)),
        Some("bytes=-1".to_string()),
        Some(format!(
            "bytes=0-0,{}-{}",
            CHUNK_SIZE - 1,
            2 * CHUNK_SIZE + 1
        )),
        Some(format!("bytes=-10,100-200,{last}-")),
    ] {
        let plan = plan_for(range.as_deref(), len as u64);
        assert!(plan.status.is_success(), "{range:?}");
        for got in stream_both(&plan, &data, file.clone()).await {
            assert_eq!(got.len() as u64, content_length(&plan), "{range:?}");
            assert_eq!(got.len() as u64, plan.content_length(), "{range:?}");
            assert!(got == expected(&plan.body, &data), "{range:?}");
            if let BodyPlan::Multipart(m) = &plan.body {
                assert_eq!(check_multipart(&got, m.boundary(), &data), m.parts().len());
            }
        }
    }
}

#[tokio::test]
async fn empty_plans_produce_nothing() {
    let dir = TempDir::new("empty");
    let file = temp_file(&dir, b"");
    let plan = plan_for(None, 0);
    assert_eq!(plan.status, StatusCode::OK);
    let got = stream_both(&plan, b"", file.clone()).await;
    assert!(got.iter().all(Vec::is_empty));
    let body = FileBody::new(BodySource::File(file), BodyPlan::Empty);
    assert!(body.is_end_stream());
    assert_eq!(collect(body).await.0, b"");
}

#[tokio::test]
async fn accessors_expose_source_and_plan_for_sendfile() {
    let dir = TempDir::new("accessors");
    let file = temp_file(&dir, b"hello");
    let r = ByteRange { start: 1, end: 3 };
    let body = FileBody::new(BodySource::File(file.clone()), BodyPlan::Single(r));
    assert!(matches!(body.source(), BodySource::File(f) if Arc::ptr_eq(f, &file)));
    assert_eq!(body.plan(), &BodyPlan::Single(r));
    assert_eq!(body.remaining(), 2);
    assert_eq!(body.size_hint().exact(), Some(2));
}

#[tokio::test]
async fn truncated_before_streaming_yields_error_and_only_existing_bytes() {
    let len = 3 * CHUNK_SIZE;
    let data = pattern(len);
    let dir = TempDir::new("trunc-before");
    let file = temp_file(&dir, &data);
    let plan = plan_for(None, len as u64);
    // The file shrinks between planning and streaming.
    let cut = CHUNK_SIZE + 7;
    cut_to(&dir, cut as u64);
    let (got, err) = collect(FileBody::new(BodySource::File(file), plan.body)).await;
    let err = err.expect("a truncated file must end the body with an error");
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    assert!(
        got.len() <= cut,
        "sent {} bytes of a {cut}-byte file",
        got.len()
    );
    assert_eq!(got[..], data[..got.len()], "never padded or garbled");

    // Truncated to nothing: the very first frame is the error.
    let file = temp_file(&dir, b"");
    let (got, err) = collect(FileBody::new(BodySource::File(file), BodyPlan::Whole(100))).await;
    assert!(got.is_empty());
    assert!(err.is_some());
}

#[tokio::test]
async fn truncated_while_streaming_yields_error() {
    let len = 8 * CHUNK_SIZE;
    let data = pattern(len);
    let dir = TempDir::new("trunc-during");
    let file = temp_file(&dir, &data);
    let mut body = FileBody::new(BodySource::File(file), BodyPlan::Whole(len as u64));
    let first = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx))
        .await
        .unwrap()
        .unwrap()
        .into_data()
        .unwrap();
    assert_eq!(first[..], data[..first.len()]);
    // Shrink to just past what has been sent: at most the read already in
    // flight can still succeed; everything after must fail.
    let cut = 2 * CHUNK_SIZE + 100;
    cut_to(&dir, cut as u64);
    let (rest, err) = collect(body).await;
    assert!(err.is_some(), "must not end cleanly");
    let sent = first.len() + rest.len();
    assert!(sent <= cut, "sent {sent} bytes of a {cut}-byte file");
    assert_eq!(rest[..], data[first.len()..sent]);
}

async fn next_frame(body: &mut FileBody) -> Result<http_body::Frame<Bytes>, std::io::Error> {
    poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx))
        .await
        .expect("the body ended early")
}

/// Read on demand, a body holds no more than the chunk it hands over: frames are
/// at most the chunk size, and nothing is read before the next poll (a file
/// cut after the first frame fails the second poll, where a read-ahead body
/// would still deliver the chunk it had read early).
#[tokio::test]
async fn read_on_demand_reads_small_chunks_and_nothing_ahead() {
    let len = 2 * CHUNK_SIZE;
    let data = pattern(len);
    let dir = TempDir::new("on-demand");
    let file = temp_file(&dir, &data);
    let body = |plan: BodyPlan, read_ahead: bool| {
        let mut body = FileBody::new(BodySource::File(file.clone()), plan);
        if !read_ahead {
            body.read_on_demand(ODD_CHUNK);
        }
        body
    };
    let mut small = body(
        BodyPlan::Single(ByteRange {
            start: 7,
            end: 7 + 10 * ODD_CHUNK as u64,
        }),
        false,
    );
    let mut sizes = Vec::new();
    while !small.is_end_stream() {
        sizes.push(
            next_frame(&mut small)
                .await
                .unwrap()
                .into_data()
                .unwrap()
                .len(),
        );
    }
    assert_eq!(sizes, vec![ODD_CHUNK; 10]);

    for read_ahead in [true, false] {
        std::fs::write(dir.path().join("data.bin"), &data).unwrap();
        let mut whole = body(BodyPlan::Whole(len as u64), read_ahead);
        assert!(next_frame(&mut whole).await.is_ok());
        cut_to(&dir, 0);
        assert_eq!(
            next_frame(&mut whole).await.is_ok(),
            read_ahead,
            "read_ahead={read_ahead}"
        );
    }
}

#[tokio::test]
async fn bytes_source_shorter_than_plan_is_an_error() {
    let body = FileBody::new(
        BodySource::Bytes(Bytes::from_static(b"abc")),
        BodyPlan::Whole(10),
    );
    let (got, err) = collect(body).await;
    assert!(got.is_empty());
    assert!(err.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_body_releases_the_file() {
    let len = 4 * CHUNK_SIZE;
    let dir = TempDir::new("drop");
    let file = temp_file(&dir, &pattern(len));
    let mut body = FileBody::new(BodySource::File(file.clone()), BodyPlan::Whole(len as u64));
    // One frame out, and the next read in flight.
    poll_fn(|cx| Pin::new(&mut body).poll_frame(cx))
        .await
        .unwrap()
        .unwrap();
    assert!(Arc::strong_count(&file) >= 2);
    drop(body);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while Arc::strong_count(&file) > 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "file still held after drop"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[test]
fn works_without_a_tokio_runtime() {
    use std::task::{Context, Poll, Wake, Waker};
    struct Noop;
    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
    let waker = Waker::from(Arc::new(Noop));
    let mut cx = Context::from_waker(&waker);
    let len = CHUNK_SIZE + 1;
    let data = pattern(len);
    let dir = TempDir::new("no-rt");
    let mut body = FileBody::new(
        BodySource::File(temp_file(&dir, &data)),
        BodyPlan::Whole(len as u64),
    );
    let mut got = Vec::new();
    loop {
        match Pin::new(&mut body).poll_frame(&mut cx) {
            Poll::Ready(Some(Ok(f))) => got.extend_from_slice(&f.into_data().unwrap()),
            Poll::Ready(None) => break,
            other => panic!("{other:?}"),
        }
    }
    assert!(got == data);
}

/// A sparse 5 GiB file: ranges past 4 GiB (u32 overflow territory) come back
/// byte-exact, and Content-Range carries 64-bit positions.
#[tokio::test]
async fn sparse_file_past_4_gib() {
    const FOUR_GIB: u64 = 4 << 30;
    const LEN: u64 = 5 << 30;
    let dir = TempDir::new("sparse");
    let path = dir.path().join("sparse.bin");
    let mut f = File::create(&path).unwrap();
    f.set_len(LEN).unwrap();
    f.seek(SeekFrom::Start(FOUR_GIB + 3)).unwrap();
    f.write_all(b"MARKER").unwrap();
    f.write_all_at(b"END", LEN - 3).unwrap();
    drop(f);

    let file = Arc::new(File::open(&path).unwrap());
    let meta = file.metadata().unwrap();
    assert_eq!(meta.len(), LEN);

    let first = FOUR_GIB - 5;
    let last = FOUR_GIB + 20;
    let plan = plan_for(Some(&format!("bytes={first}-{last}")), LEN);
    assert_eq!(plan.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        plan.headers[CONTENT_RANGE],
        format!("bytes {first}-{last}/{LEN}").as_str()
    );
    let (got, err) = collect(FileBody::new(BodySource::File(file.clone()), plan.body)).await;
    assert!(err.is_none());
    let mut want = vec![0u8; 26];
    want[8..14].copy_from_slice(b"MARKER");
    assert_eq!(got, want);

    // Multipart across the boundary and at the very end.
    let plan = plan_for(
        Some(&format!("bytes={}-{},-3", FOUR_GIB + 3, FOUR_GIB + 8)),
        LEN,
    );
    assert_eq!(
        plan.headers[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .split(';')
            .next(),
        Some("multipart/byteranges")
    );
    let (got, err) = collect(FileBody::new(BodySource::File(file), plan.body)).await;
    assert!(err.is_none());
    let text = String::from_utf8_lossy(&got);
    assert!(text.contains(&format!(
        "Content-Range: bytes {}-{}/{LEN}\r\n\r\nMARKER\r\n",
        FOUR_GIB + 3,
        FOUR_GIB + 8
    )));
    assert!(text.contains(&format!(
        "Content-Range: bytes {}-{}/{LEN}\r\n\r\nEND\r\n",
        LEN - 3,
        LEN - 1
    )));
    drop(dir);
    assert!(!path.exists(), "the 5 GiB file is removed");
}

/// A range-spec as a client might send it, relative to the length.
#[derive(Debug, Clone)]
enum Spec {
    Int(u64, Option<u64>),
    Suffix(u64),
}

fn spec(len: u64) -> impl Strategy<Value = Spec> {
    let max = len + 16;
    prop_oneof![
        (0..max, 0..max).prop_map(|(a, b)| Spec::Int(a.min(b), Some(a.max(b)))),
        (0..max).prop_map(|a| Spec::Int(a, None)),
        (0..max).prop_map(Spec::Suffix),
    ]
}

fn header_for(specs: &[Spec], ows: bool) -> String {
    let sep = if ows { " , " } else { "," };
    let items: Vec<String> = specs
        .iter()
        .map(|s| match s {
            Spec::Int(a, Some(b)) => format!("{a}-{b}"),
            Spec::Int(a, None) => format!("{a}-"),
            Spec::Suffix(n) => format!("-{n}"),
        })
        .collect();
    format!("bytes={}", items.join(sep))
}

fn case() -> impl Strategy<Value = (u64, Vec<Spec>, bool)> {
    prop_oneof![4 => 0..3_000u64, 1 => (CHUNK_SIZE as u64 - 10)..(2 * CHUNK_SIZE as u64 + 10)]
        .prop_flat_map(|len| {
            (
                Just(len),
                prop::collection::vec(spec(len), 1..8),
                any::<bool>(),
            )
        })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// For any length and well-formed range set: the body is exactly the
    /// planned bytes, from memory and from a real file, and Content-Length
    /// (in the headers and from `Plan::content_length`) is what is produced.
    #[test]
    fn body_matches_plan((len, specs, ows) in case()) {
        let data = pattern(len as usize);
        let dir = TempDir::new("prop");
        let file = temp_file(&dir, &data);
        let header = header_for(&specs, ows);
        for method in [Method::GET, Method::HEAD] {
            let mut h = HeaderMap::new();
            h.insert(RANGE, HeaderValue::from_str(&header).unwrap());
            let plan = decide(&method, &h, &rep(len), &Options::default());
            prop_assert!(plan.status != StatusCode::PARTIAL_CONTENT || len > 0);
            let [a, b, c] = runtime().block_on(stream_both(&plan, &data, file.clone()));
            let want = expected(&plan.body, &data);
            prop_assert!(a == want, "bytes source, {}", header);
            prop_assert!(b == want, "file source, {}", header);
            prop_assert!(c == want, "file source read on demand, {}", header);
            prop_assert_eq!(a.len() as u64, plan.content_length());
            if method == Method::GET {
                prop_assert_eq!(a.len() as u64, content_length(&plan));
                if let BodyPlan::Multipart(m) = &plan.body {
                    prop_assert_eq!(check_multipart(&a, m.boundary(), &data), m.parts().len());
                    prop_assert!(m.parts().len() >= 2);
                }
            } else {
                prop_assert!(a.is_empty());
            }
        }
    }
}
