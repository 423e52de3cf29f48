//! `safe_path` against a real directory tree.

mod support;

use bustapi_files::{resolve, resolve_url_path, resolve_url_path_detailed, PathError, PathPolicy};
use std::os::unix::fs::symlink;
use std::path::PathBuf;
use support::TempDir;

/// ```text
/// <tmp>/static/            root
///     a.txt
///     a b.txt
///     视频.mp4
///     %2e%2e               a file literally named so
///     .env                 hidden
///     .hidden/x.txt
///     dir/index.html
///     dir/sub.txt
///     noindex/file.txt
///     link_in -> a.txt                 symlink inside root
///     link_dir -> dir                  directory symlink inside root
///     link_out -> ../static_secret/secret.txt
///     link_out_dir -> ../static_secret
///     link_hidden -> .env
///     link_abs -> /etc/passwd
///     indexout/index.html -> ../../static_secret/secret.txt
/// <tmp>/static_secret/secret.txt      sibling sharing the root's name as a prefix
/// ```
struct Tree {
    tmp: TempDir,
    root: PathBuf,
}

fn tree() -> Tree {
    let tmp = TempDir::new("safe-path");
    for (rel, body) in [
        ("static/a.txt", "a"),
        ("static/a b.txt", "ab"),
        ("static/视频.mp4", "v"),
        ("static/%2e%2e", "literal"),
        ("static/.env", "SECRET=1"),
        ("static/.hidden/x.txt", "x"),
        ("static/dir/index.html", "<h1>"),
        ("static/dir/sub.txt", "sub"),
        ("static/noindex/file.txt", "f"),
        ("static/indexout/placeholder", ""),
        ("static_secret/secret.txt", "top secret"),
    ] {
        tmp.write(rel, body.as_bytes());
    }
    let root = tmp.path().join("static");
    symlink("a.txt", root.join("link_in")).unwrap();
    symlink("dir", root.join("link_dir")).unwrap();
    symlink("../static_secret/secret.txt", root.join("link_out")).unwrap();
    symlink("../static_secret", root.join("link_out_dir")).unwrap();
    symlink(".env", root.join("link_hidden")).unwrap();
    symlink("/etc/passwd", root.join("link_abs")).unwrap();
    symlink(
        "../../static_secret/secret.txt",
        root.join("indexout/index.html"),
    )
    .unwrap();
    Tree { tmp, root }
}

impl Tree {
    fn canon(&self, rel: &str) -> PathBuf {
        std::fs::canonicalize(self.root.join(rel)).unwrap()
    }
}

use PathError::*;

#[test]
fn url_paths() {
    let t = tree();
    let p = PathPolicy::default();
    let ok: &[(&str, &str)] = &[
        ("a.txt", "a.txt"),
        ("/a.txt", "a.txt"),
        ("//a.txt", "a.txt"),
        ("./a.txt", "a.txt"),
        ("dir/./sub.txt", "dir/sub.txt"),
        ("dir//sub.txt", "dir/sub.txt"),
        ("a%20b.txt", "a b.txt"),
        ("%E8%A7%86%E9%A2%91.mp4", "视频.mp4"),
        ("视频.mp4", "视频.mp4"),
        // Double encoding decodes once: a file literally named "%2e%2e".
        ("%252e%252e", "%2e%2e"),
        // Directory → index file, with or without trailing slash.
        ("dir", "dir/index.html"),
        ("dir/", "dir/index.html"),
        // Symlinks that stay inside the root are followed.
        ("link_in", "a.txt"),
        ("link_dir/sub.txt", "dir/sub.txt"),
        ("link_dir/", "dir/index.html"),
    ];
    for (raw, want) in ok {
        assert_eq!(
            resolve_url_path(&t.root, raw, &p),
            Ok(t.canon(want)),
            "{raw:?}"
        );
    }

    let refused: &[(&str, PathError)] = &[
        // Traversal, plain and encoded: 404, like a missing file.
        ("../static_secret/secret.txt", NotFound),
        ("dir/../../static_secret/secret.txt", NotFound),
        ("%2e%2e/static_secret/secret.txt", NotFound),
        ("%2E%2E/static_secret/secret.txt", NotFound),
        (".%2e/static_secret/secret.txt", NotFound),
        ("dir/..", NotFound),
        ("..", NotFound),
        // Double-encoded traversal is just a (missing) file name.
        ("%252e%252e/static_secret/secret.txt", NotFound),
        // Encoded separators, backslashes, NUL and controls: 400.
        (
            "..%2Fstatic_secret%2Fsecret.txt",
            BadRequest("encoded path separator"),
        ),
        ("dir%2fsub.txt", BadRequest("encoded path separator")),
        ("..%5Cstatic_secret", BadRequest("encoded path separator")),
        (
            "..\\static_secret\\secret.txt",
            BadRequest("backslash in path"),
        ),
        ("dir\\sub.txt", BadRequest("backslash in path")),
        ("a.txt%00.jpg", BadRequest("control character in path")),
        ("a.txt\0", BadRequest("control character in path")),
        ("a%0d%0a.txt", BadRequest("control character in path")),
        ("a%ZZ", BadRequest("malformed percent-encoding")),
        ("a%", BadRequest("malformed percent-encoding")),
        ("%C3%28", BadRequest("path is not valid UTF-8")),
        ("%FF", BadRequest("path is not valid UTF-8")),
        // Hidden segments.
        (".env", NotFound),
        ("%2eenv", NotFound),
        (".hidden/x.txt", NotFound),
        ("link_hidden", NotFound), // a symlink to a hidden file inside root
        // Symlinks leaving the root; the sibling shares the root as a string prefix.
        ("link_out", NotFound),
        ("link_out_dir/secret.txt", NotFound),
        ("link_abs", NotFound),
        ("indexout/", NotFound), // index.html is a symlink out of root
        // Missing things, directories without index, trailing slash on a file.
        ("missing.txt", NotFound),
        ("noindex", NotFound),
        ("noindex/", NotFound),
        ("", NotFound),
        ("a.txt/", NotFound),
        ("a.txt/x", NotFound),
    ];
    for (raw, want) in refused {
        assert_eq!(
            resolve_url_path(&t.root, raw, &p).as_ref(),
            Err(want),
            "{raw:?}"
        );
        assert_eq!(
            want.status().as_u16(),
            if matches!(want, BadRequest(_)) {
                400
            } else {
                404
            }
        );
    }
}

#[test]
fn decoded_relative_paths() {
    let t = tree();
    let p = PathPolicy::default();
    for (rel, want) in [
        ("a.txt", "a.txt"),
        ("a b.txt", "a b.txt"),
        ("%2e%2e", "%2e%2e"), // not decoded again
        ("dir/sub.txt", "dir/sub.txt"),
        ("dir", "dir/index.html"),
        ("link_in", "a.txt"),
    ] {
        assert_eq!(resolve(&t.root, rel, &p), Ok(t.canon(want)), "{rel:?}");
    }
    for (rel, want) in [
        ("../static_secret/secret.txt", NotFound),
        ("dir/../../static_secret/secret.txt", NotFound),
        ("/etc/passwd", NotFound),
        ("/a.txt", NotFound),
        (
            "..\\static_secret\\secret.txt",
            BadRequest("backslash in path"),
        ),
        ("a.txt\0", BadRequest("control character in path")),
        ("/\0", BadRequest("control character in path")),
        (".env", NotFound),
        ("link_out", NotFound),
        ("link_hidden", NotFound),
        ("missing", NotFound),
    ] {
        assert_eq!(resolve(&t.root, rel, &p), Err(want), "{rel:?}");
    }
}

#[test]
fn containment_is_by_component_not_string_prefix() {
    let t = tree();
    let p = PathPolicy::default();
    // The canonical target "<tmp>/static_secret/secret.txt" starts with the
    // string "<tmp>/static", but not with the path.
    let target = t.tmp.path().join("static_secret/secret.txt");
    assert!(target
        .to_str()
        .unwrap()
        .starts_with(t.root.to_str().unwrap()));
    assert_eq!(resolve_url_path(&t.root, "link_out", &p), Err(NotFound));
    // A root given with a trailing slash or through a symlink behaves the same.
    let slash = PathBuf::from(format!("{}/", t.root.display()));
    assert_eq!(resolve_url_path(&slash, "link_out", &p), Err(NotFound));
    assert_eq!(resolve_url_path(&slash, "a.txt", &p), Ok(t.canon("a.txt")));
    let via_link = t.tmp.path().join("root_link");
    symlink(&t.root, &via_link).unwrap();
    assert_eq!(
        resolve_url_path(&via_link, "a.txt", &p),
        Ok(t.canon("a.txt"))
    );
    assert_eq!(resolve_url_path(&via_link, "link_out", &p), Err(NotFound));
}

#[test]
fn policy_knobs() {
    let t = tree();
    let hidden = PathPolicy {
        allow_hidden: true,
        ..PathPolicy::default()
    };
    assert_eq!(
        resolve_url_path(&t.root, ".env", &hidden),
        Ok(t.canon(".env"))
    );
    assert_eq!(
        resolve_url_path(&t.root, ".hidden/x.txt", &hidden),
        Ok(t.canon(".hidden/x.txt"))
    );
    assert_eq!(
        resolve_url_path(&t.root, "link_hidden", &hidden),
        Ok(t.canon(".env"))
    );
    // Still no traversal.
    assert_eq!(
        resolve_url_path(&t.root, "../static_secret/secret.txt", &hidden),
        Err(NotFound)
    );

    let no_index = PathPolicy {
        index_file: None,
        ..PathPolicy::default()
    };
    assert_eq!(resolve_url_path(&t.root, "dir/", &no_index), Err(NotFound));
    assert_eq!(
        resolve_url_path(&t.root, "dir/sub.txt", &no_index),
        Ok(t.canon("dir/sub.txt"))
    );
    let other_index = PathPolicy {
        index_file: Some("sub.txt".into()),
        ..PathPolicy::default()
    };
    assert_eq!(
        resolve_url_path(&t.root, "dir", &other_index),
        Ok(t.canon("dir/sub.txt"))
    );

    let no_links = PathPolicy {
        follow_symlinks_inside_root: false,
        ..PathPolicy::default()
    };
    assert_eq!(
        resolve_url_path(&t.root, "link_in", &no_links),
        Err(NotFound)
    );
    assert_eq!(
        resolve_url_path(&t.root, "link_dir/sub.txt", &no_links),
        Err(NotFound)
    );
    assert_eq!(
        resolve_url_path(&t.root, "a.txt", &no_links),
        Ok(t.canon("a.txt"))
    );
    assert_eq!(
        resolve_url_path(&t.root, "dir/", &no_links),
        Ok(t.canon("dir/index.html"))
    );
    // The root itself may be a symlink.
    let via_link = t.tmp.path().join("root_link2");
    symlink(&t.root, &via_link).unwrap();
    assert_eq!(
        resolve_url_path(&via_link, "a.txt", &no_links),
        Ok(t.canon("a.txt"))
    );
}

#[test]
fn missing_root_is_not_found() {
    let t = tree();
    let gone = t.tmp.path().join("nope");
    assert_eq!(
        resolve_url_path(&gone, "a.txt", &PathPolicy::default()),
        Err(NotFound)
    );
}

#[test]
fn unreadable_directory_is_forbidden() {
    use std::os::unix::fs::PermissionsExt;
    let t = tree();
    let locked = t.root.join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::write(locked.join("f.txt"), "x").unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    let result = resolve_url_path(&t.root, "locked/f.txt", &PathPolicy::default());
    // A privileged user (root in a container) ignores the mode bits.
    let privileged = std::fs::read_dir(&locked).is_ok();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
    if privileged {
        assert_eq!(result, Ok(t.canon("locked/f.txt")));
    } else {
        assert_eq!(result, Err(Forbidden));
    }
}

#[test]
fn detailed_resolution_reports_index_files() {
    let t = tree();
    let p = PathPolicy::default();
    let r = resolve_url_path_detailed(&t.root, "dir", &p).unwrap();
    assert_eq!(r.path, t.canon("dir/index.html"));
    assert!(r.is_index, "a server would redirect /dir to /dir/");
    let r = resolve_url_path_detailed(&t.root, "dir/index.html", &p).unwrap();
    assert!(!r.is_index);
}
