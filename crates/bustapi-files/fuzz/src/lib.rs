//! Fuzz target bodies, shared by the libFuzzer targets (`fuzz_targets/`) and
//! the stable, libFuzzer-free driver (`src/bin/smoke.rs`).
//!
//! Each target does more than "does not panic": it checks the plan against
//! an oracle (bytes produced == planned slices == Content-Length; resolved
//! paths inside the root).

use bustapi_files::multipart::Piece;
use bustapi_files::{
    decide, resolve, resolve_url_path, BodyPlan, BodySource, FileBody, Options, PathPolicy,
    Representation,
};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use http_body::Body;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, UNIX_EPOCH};

const CONDITIONAL_HEADERS: [&str; 6] = [
    "range",
    "if-range",
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
];

/// Input layout: byte 0 picks the method and options, bytes 1..3 the
/// representation length (little-endian u16), the rest is split on `\n` into
/// header values, each prefixed by one byte choosing which If-*/Range header
/// it is. So the fuzzer can repeat headers and combine them freely.
pub fn range_conditional(data: &[u8]) {
    let [flags, l0, l1, rest @ ..] = data else {
        return;
    };
    let method = match flags % 3 {
        0 => Method::GET,
        1 => Method::HEAD,
        _ => Method::POST,
    };
    let opts = Options {
        conditional: flags & 0x10 == 0,
        ranges: flags & 0x20 == 0,
        max_ranges: if flags & 0x40 == 0 { 16 } else { 2 },
    };
    let len = u64::from(u16::from_le_bytes([*l0, *l1]));

    let mut headers = HeaderMap::new();
    for line in rest.split(|&b| b == b'\n') {
        let [which, value @ ..] = line else { continue };
        let name = CONDITIONAL_HEADERS[usize::from(*which) % CONDITIONAL_HEADERS.len()];
        if let Ok(v) = HeaderValue::from_bytes(value) {
            headers.append(HeaderName::from_static(name), v);
        }
    }

    let rep = Representation {
        len,
        last_modified: Some(UNIX_EPOCH + Duration::new(784_111_777, 123)),
        etag: Some(HeaderValue::from_static("\"abc\"")),
        content_type: HeaderValue::from_static("text/plain"),
        extra_headers: HeaderMap::new(),
    };
    let plan = decide(&method, &headers, &rep, &opts);

    let status = plan.status.as_u16();
    assert!(
        [200, 206, 304, 412, 416].contains(&status),
        "status {status}"
    );
    if plan.status == StatusCode::PARTIAL_CONTENT {
        assert!(method != Method::POST && opts.ranges && len > 0);
    }
    let declared: Option<u64> = plan
        .headers
        .get("content-length")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    if method == Method::HEAD {
        assert_eq!(plan.body, BodyPlan::Empty);
    } else if plan.status != StatusCode::NOT_MODIFIED {
        assert_eq!(declared, Some(plan.content_length()));
    }

    // Stream the plan from memory and compare with the slices it names.
    let content: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    let want = expected(&plan.body, &content);
    let got = drain(FileBody::new(
        BodySource::Bytes(Bytes::from(content)),
        plan.body.clone(),
    ));
    assert_eq!(got.len() as u64, plan.content_length());
    assert!(got == want, "body differs from plan");
}

fn expected(plan: &BodyPlan, data: &[u8]) -> Vec<u8> {
    let slice = |s: u64, e: u64| {
        assert!(
            s < e && e <= data.len() as u64,
            "range {s}..{e} out of bounds"
        );
        data[s as usize..e as usize].to_vec()
    };
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
        BodyPlan::Single(r) => slice(r.start, r.end),
        BodyPlan::Multipart(m) => {
            assert!(m.parts().len() >= 2);
            m.pieces()
                .flat_map(|p| match p {
                    Piece::Framing(b) => b.to_vec(),
                    Piece::Range(r) => slice(r.start, r.end),
                })
                .collect()
        }
    }
}

/// Polls a body to the end without a runtime (a `Bytes` source never waits).
fn drain(mut body: FileBody) -> Vec<u8> {
    struct Noop;
    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
    let waker = Waker::from(Arc::new(Noop));
    let mut cx = Context::from_waker(&waker);
    let mut out = Vec::new();
    loop {
        match Pin::new(&mut body).poll_frame(&mut cx) {
            Poll::Ready(Some(Ok(frame))) => out.extend_from_slice(&frame.into_data().unwrap()),
            Poll::Ready(None) => return out,
            Poll::Ready(Some(Err(e))) => panic!("body error: {e}"),
            Poll::Pending => panic!("a Bytes source must never be pending"),
        }
    }
}

/// A fixed tree under the temp dir (shared by runs and parallel jobs, so it
/// is not re-created per input):
///
/// ```text
/// bustapi-files-fuzz/static/{a.txt, dir/index.html, .env, link_in -> a.txt,
///                             out -> ../static_secret, out_file -> ../static_secret/s.txt}
/// bustapi-files-fuzz/static_secret/s.txt
/// ```
fn fuzz_root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let base = std::env::temp_dir().join("bustapi-files-fuzz");
        let root = base.join("static");
        std::fs::create_dir_all(root.join("dir")).unwrap();
        std::fs::create_dir_all(base.join("static_secret")).unwrap();
        std::fs::write(root.join("a.txt"), "a").unwrap();
        std::fs::write(root.join("dir/index.html"), "i").unwrap();
        std::fs::write(root.join(".env"), "secret").unwrap();
        std::fs::write(base.join("static_secret/s.txt"), "s").unwrap();
        for (target, link) in [
            ("a.txt", "link_in"),
            ("../static_secret", "out"),
            ("../static_secret/s.txt", "out_file"),
        ] {
            let _ = std::os::unix::fs::symlink(target, root.join(link)); // may exist
        }
        std::fs::canonicalize(root).unwrap()
    })
}

/// Input: the raw URL path (lossily decoded as UTF-8). Both entry points must
/// return only regular, non-hidden files inside the root.
pub fn safe_path(data: &[u8]) {
    let root = fuzz_root();
    let raw = String::from_utf8_lossy(data);
    let policy = PathPolicy::default();
    for result in [
        resolve_url_path(root, &raw, &policy),
        resolve(root, &raw, &policy),
    ] {
        match result {
            Ok(p) => {
                assert!(p.starts_with(root), "{raw:?} escaped to {p:?}");
                let rel = p.strip_prefix(root).unwrap();
                assert!(
                    !rel.iter().any(|c| c.as_encoded_bytes().starts_with(b".")),
                    "{raw:?} reached hidden {p:?}"
                );
                assert!(p.is_file(), "{raw:?} → {p:?} is not a file");
            }
            Err(e) => {
                let s = e.status().as_u16();
                assert!([400, 403, 404].contains(&s));
            }
        }
    }
}
