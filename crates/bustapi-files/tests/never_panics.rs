//! Property tests: hostile input never panics, and what is accepted is sane.

mod support;

use bustapi_files::range::{self, ParsedRange};
use bustapi_files::{
    content_disposition, content_type, decide, resolve, resolve_url_path, DispositionType, Options,
    PathPolicy, Representation,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use proptest::prelude::*;
use std::time::{Duration, UNIX_EPOCH};
use support::TempDir;

/// Header-ish strings: mostly built from the characters that matter to the
/// parsers, sometimes anything at all.
fn headerish() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[bytesBYTES=0-9 ,\t\"W/*-]{0,40}",
        1 => "bytes=[0-9,\\- ]{0,60}",
        1 => "(\"[a-z0-9]{0,3}\"|W/\"[a-z0-9]{0,3}\"|\\*|,| ){0,6}",
        1 => "(Sun, 06 Nov 1994 08:49:3[5-9] GMT|[A-Za-z0-9 ,:]{0,30})",
        1 => any::<String>(),
    ]
}

fn rep(len: u64) -> Representation {
    Representation {
        len,
        last_modified: Some(UNIX_EPOCH + Duration::new(784_111_777, 9)),
        etag: Some(HeaderValue::from_static("\"abc\"")),
        content_type: HeaderValue::from_static("text/plain"),
        extra_headers: HeaderMap::new(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn range_parse_never_panics_and_ranges_are_in_bounds(
        s in prop_oneof![headerish(), any::<String>()],
        bytes in prop::collection::vec(any::<u8>(), 0..64),
        len in prop_oneof![Just(0u64), 0..20_000u64, Just(u64::MAX)],
    ) {
        for input in [s.as_bytes(), &bytes[..]] {
            if let ParsedRange::Ranges(rs) = range::parse(input, len) {
                prop_assert!(!rs.is_empty());
                for r in &rs {
                    prop_assert!(r.start < r.end && r.end <= len, "{r:?} of {len}");
                }
                let merged = range::coalesce(&rs);
                prop_assert!(merged.len() <= rs.len());
                let mut sorted = merged.clone();
                sorted.sort_by_key(|r| r.start);
                for w in sorted.windows(2) {
                    prop_assert!(w[0].end < w[1].start, "coalesced ranges overlap or touch");
                }
            }
        }
    }

    #[test]
    fn decide_never_panics_and_plans_are_consistent(
        values in prop::collection::vec((0..6usize, headerish()), 0..6),
        len in prop_oneof![Just(0u64), 0..5_000u64],
        method in prop_oneof![Just(Method::GET), Just(Method::HEAD), Just(Method::POST)],
    ) {
        let names = ["range", "if-range", "if-match", "if-none-match",
                     "if-modified-since", "if-unmodified-since"];
        let mut h = HeaderMap::new();
        for (i, v) in &values {
            if let Ok(v) = HeaderValue::from_str(v) {
                h.append(HeaderName::from_static(names[*i]), v);
            }
        }
        let plan = decide(&method, &h, &rep(len), &Options::default());
        let allowed = [200, 206, 304, 412, 416];
        prop_assert!(allowed.contains(&plan.status.as_u16()));
        if plan.status != StatusCode::NOT_MODIFIED {
            let cl: u64 = plan.headers["content-length"].to_str().unwrap().parse().unwrap();
            if method == Method::HEAD {
                prop_assert_eq!(plan.content_length(), 0);
            } else {
                prop_assert_eq!(plan.content_length(), cl);
            }
        } else {
            prop_assert!(plan.headers.get("content-length").is_none());
        }
        if plan.status == StatusCode::PARTIAL_CONTENT {
            prop_assert!(method != Method::POST && len > 0);
        }
    }

    #[test]
    fn disposition_never_panics_or_leaks_controls(name in any::<String>()) {
        for kind in [DispositionType::Inline, DispositionType::Attachment] {
            let v = content_disposition(kind, Some(&name));
            prop_assert!(v.as_bytes().iter().all(|&b| (0x20..0x7f).contains(&b)));
            let s = v.to_str().unwrap();
            prop_assert!(s.starts_with(kind.as_str()));
            prop_assert!(!s.contains('/'));
        }
    }

    #[test]
    fn content_type_never_panics(name in any::<String>()) {
        let v = content_type::guess_str(&name);
        prop_assert!(!v.is_empty());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    /// Whatever the path, a resolved file is inside the root and never hidden.
    #[test]
    fn resolved_paths_stay_inside_root(
        raw in prop_oneof![
            "(/|\\.|\\.\\.|%2[eEfF]|%5[cC]|%00|%25|a|b|index.html|\\.env|\\\\|sub|out){0,8}",
            any::<String>(),
        ]
    ) {
        thread_local! {
            static TREE: (TempDir, std::path::PathBuf) = {
                let t = TempDir::new("prop-path");
                t.write("root/a", b"a");
                t.write("root/sub/index.html", b"i");
                t.write("root/.env", b"secret");
                t.write("secret/b", b"b");
                std::os::unix::fs::symlink("../secret", t.path().join("root/out")).unwrap();
                let root = std::fs::canonicalize(t.path().join("root")).unwrap();
                (t, root)
            };
        }
        TREE.with(|(_, root)| {
            let policy = PathPolicy::default();
            let results = [resolve_url_path(root, &raw, &policy), resolve(root, &raw, &policy)];
            for p in results.into_iter().flatten() {
                prop_assert!(p.starts_with(root), "{raw:?} → {p:?}");
                let rel = p.strip_prefix(root).unwrap();
                prop_assert!(!rel.to_string_lossy().split('/').any(|s| s.starts_with('.')));
                prop_assert!(p.is_file());
            }
            Ok(())
        })?;
    }
}
