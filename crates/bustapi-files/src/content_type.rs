//! File extension → media type, for the `Content-Type` of a served file.
//!
//! The base is `mime_guess`'s table. A few entries are overridden because the
//! table's choice is wrong *for browsers and players*: a video element or an
//! HLS/DASH player looks at these types, and e.g. `.ts` as
//! `video/vnd.dlna.mpeg-tts` or `.m3u8` as `audio/x-mpegurl` breaks playback in
//! some of them.
//!
//! Textual types get `; charset=utf-8`, as Flask does, so that browsers do not
//! guess an encoding. Unknown extensions are `application/octet-stream`,
//! which browsers download instead of rendering: the safe default.

use http::HeaderValue;
use std::path::Path;

/// The fallback for unknown extensions.
pub const OCTET_STREAM: &str = "application/octet-stream";

/// Extensions whose type we set ourselves (lower-case extension, type).
const OVERRIDES: &[(&str, &str)] = &[
    // Video: the types browsers' media elements and MSE recognise.
    ("mp4", "video/mp4"),
    ("m4v", "video/mp4"),
    ("webm", "video/webm"),
    ("ogv", "video/ogg"),
    ("mkv", "video/x-matroska"),
    ("mov", "video/quicktime"),
    // Streaming: MPEG-TS segments, HLS playlists, DASH manifests and segments.
    ("ts", "video/mp2t"),
    ("m3u8", "application/vnd.apple.mpegurl"),
    ("mpd", "application/dash+xml"),
    ("m4s", "video/iso.segment"),
    // Audio.
    ("m4a", "audio/mp4"),
    ("mp3", "audio/mpeg"),
    ("aac", "audio/aac"),
    ("oga", "audio/ogg"),
    ("ogg", "audio/ogg"),
    ("opus", "audio/ogg"),
    ("flac", "audio/flac"),
    ("wav", "audio/wav"),
    ("weba", "audio/webm"),
    // Images that older tables miss or get wrong.
    ("avif", "image/avif"),
    ("webp", "image/webp"),
    ("svg", "image/svg+xml"),
    ("ico", "image/x-icon"),
    // Web text: RFC 9239 made text/javascript the one JavaScript type.
    ("js", "text/javascript"),
    ("mjs", "text/javascript"),
    ("json", "application/json"),
    ("map", "application/json"),
    ("webmanifest", "application/manifest+json"),
    ("wasm", "application/wasm"),
    ("vtt", "text/vtt"),
];

/// Non-`text/*` types that are text and get a charset too.
const TEXTUAL: &[&str] = &[
    "application/javascript",
    "application/x-javascript",
    "application/ecmascript",
    "application/json",
    "application/ld+json",
    "application/manifest+json",
    "application/xml",
];

/// Guesses the `Content-Type` of a file from its name.
///
/// ```
/// use bustapi_files::content_type::guess;
/// use std::path::Path;
/// assert_eq!(guess(Path::new("static/video.mp4")), "video/mp4");
/// assert_eq!(guess(Path::new("app.js")), "text/javascript; charset=utf-8");
/// assert_eq!(guess(Path::new("blob")), "application/octet-stream");
/// ```
pub fn guess(path: &Path) -> HeaderValue {
    match path.file_name() {
        Some(name) => guess_str(&name.to_string_lossy()),
        None => HeaderValue::from_static(OCTET_STREAM),
    }
}

/// Like [`guess`], for a file name or path given as a string.
pub fn guess_str(name: &str) -> HeaderValue {
    // `Path::extension` gives no extension for dotfiles like `.bashrc`, which
    // is what we want: they are not "files of type bashrc".
    let ext = match Path::new(name).extension() {
        Some(ext) => ext.to_string_lossy().to_ascii_lowercase(),
        None => return HeaderValue::from_static(OCTET_STREAM),
    };
    let essence = OVERRIDES
        .iter()
        .find(|(e, _)| *e == ext)
        .map(|(_, t)| *t)
        .or_else(|| mime_guess::from_ext(&ext).first_raw())
        .unwrap_or(OCTET_STREAM);
    with_charset(essence)
}

/// Adds `; charset=utf-8` to textual types.
fn with_charset(essence: &'static str) -> HeaderValue {
    if essence.starts_with("text/") || TEXTUAL.contains(&essence) {
        HeaderValue::from_str(&format!("{essence}; charset=utf-8"))
            .unwrap_or_else(|_| HeaderValue::from_static(OCTET_STREAM))
    } else {
        HeaderValue::from_static(essence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases = [
            ("video.mp4", "video/mp4"),
            ("VIDEO.MP4", "video/mp4"),
            ("clip.m4v", "video/mp4"),
            ("clip.webm", "video/webm"),
            ("seg0001.ts", "video/mp2t"),
            ("master.m3u8", "application/vnd.apple.mpegurl"),
            ("manifest.mpd", "application/dash+xml"),
            ("movie.mkv", "video/x-matroska"),
            ("movie.mov", "video/quicktime"),
            ("song.mp3", "audio/mpeg"),
            ("song.m4a", "audio/mp4"),
            ("song.ogg", "audio/ogg"),
            ("song.flac", "audio/flac"),
            ("photo.jpg", "image/jpeg"),
            ("photo.jpeg", "image/jpeg"),
            ("photo.png", "image/png"),
            ("photo.gif", "image/gif"),
            ("photo.webp", "image/webp"),
            ("photo.avif", "image/avif"),
            ("icon.svg", "image/svg+xml"),
            ("index.html", "text/html; charset=utf-8"),
            ("style.css", "text/css; charset=utf-8"),
            ("notes.txt", "text/plain; charset=utf-8"),
            ("data.csv", "text/csv; charset=utf-8"),
            ("subs.vtt", "text/vtt; charset=utf-8"),
            ("app.js", "text/javascript; charset=utf-8"),
            ("app.mjs", "text/javascript; charset=utf-8"),
            ("data.json", "application/json; charset=utf-8"),
            ("doc.pdf", "application/pdf"),
            ("lib.wasm", "application/wasm"),
            ("font.woff2", "font/woff2"),
            ("archive.tar.gz", "application/gzip"),
            ("unknown.zzzzqq", "application/octet-stream"),
            ("noextension", "application/octet-stream"),
            (".bashrc", "application/octet-stream"),
            ("", "application/octet-stream"),
            ("dir/sub/clip.mp4", "video/mp4"),
        ];
        for (name, want) in cases {
            assert_eq!(guess_str(name), want, "{name}");
            assert_eq!(guess(Path::new(name)), want, "{name}");
        }
    }
}
