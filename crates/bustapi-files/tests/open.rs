//! `open_file` against real files, directories and special files.

mod support;

use bustapi_files::{content_type, decide, open_file, OpenError, Options, Representation};
use http::{HeaderMap, Method, StatusCode};
use support::TempDir;

#[test]
fn opens_regular_files_with_metadata_from_the_descriptor() {
    let dir = TempDir::new("open");
    let path = dir.write("clip.mp4", b"0123456789");
    let (file, meta) = open_file(&path).unwrap();
    assert_eq!(meta.len, 10);
    assert!(!meta.is_dir);
    assert_eq!(meta.modified, file.metadata().unwrap().modified().ok());
    let rep = Representation::for_file(&meta, content_type::guess(&path));
    let plan = decide(&Method::GET, &HeaderMap::new(), &rep, &Options::default());
    assert_eq!(plan.status, StatusCode::OK);
    assert_eq!(plan.headers["content-type"], "video/mp4");
    assert!(plan.headers.contains_key("etag"));
    assert!(plan.headers.contains_key("last-modified"));
}

#[test]
fn errors_map_to_statuses() {
    let dir = TempDir::new("open-err");
    let file = dir.write("f.txt", b"x");

    let e = open_file(&dir.path().join("missing")).unwrap_err();
    assert!(matches!(e, OpenError::NotFound), "{e:?}");
    assert_eq!(e.status(), StatusCode::NOT_FOUND);

    let e = open_file(dir.path()).unwrap_err();
    assert!(matches!(e, OpenError::IsDirectory), "{e:?}");
    assert_eq!(e.status(), StatusCode::NOT_FOUND);

    // A path "through" a regular file (ENOTDIR) is simply not found.
    let e = open_file(&file.join("child")).unwrap_err();
    assert!(matches!(e, OpenError::NotFound), "{e:?}");

    assert_eq!(OpenError::Forbidden.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        OpenError::Io(std::io::Error::other("x")).status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );
}

#[test]
fn special_files_are_refused_without_blocking() {
    let dir = TempDir::new("open-fifo");
    let fifo = dir.path().join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    // Without O_NONBLOCK this open would wait forever for a writer.
    let e = open_file(&fifo).unwrap_err();
    assert!(matches!(e, OpenError::Forbidden), "{e:?}");

    let e = open_file(std::path::Path::new("/dev/zero")).unwrap_err();
    assert!(matches!(e, OpenError::Forbidden), "{e:?}");
}
