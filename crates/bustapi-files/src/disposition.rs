//! `Content-Disposition` (RFC 6266) with RFC 8187 encoding for non-ASCII names.
//!
//! The file name usually comes from user data (an upload's name, a database
//! row), so it is treated as hostile:
//!
//! * only the last path segment is kept (`/` and `\` are separators), so a name
//!   can never suggest a directory to the browser;
//! * control characters (C0, DEL, C1) are removed, so CR/LF can never reach
//!   the header and split the response; so are the Unicode bidirectional
//!   controls (U+202E makes `gnp.exe` display as `exe.png`) and line/paragraph
//!   separators;
//! * ASCII names are sent as a quoted-string with `\` and `"` escaped;
//! * other names get an ASCII fallback (`filename="…"`, non-ASCII characters
//!   replaced by `_`) for old clients, plus `filename*=UTF-8''…` percent-encoded
//!   over RFC 8187's `attr-char` set, which every current browser prefers.
//!
//! A name that sanitizes to nothing (or to `.`/`..`) is omitted, leaving a
//! bare `attachment`/`inline`. No input can make this panic.

use http::HeaderValue;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Whether the browser should display the file or save it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DispositionType {
    /// Display in the browser if it can (`inline`).
    Inline,
    /// Offer to save (`attachment`).
    Attachment,
}

impl DispositionType {
    /// The token as it appears in the header.
    pub fn as_str(self) -> &'static str {
        match self {
            DispositionType::Inline => "inline",
            DispositionType::Attachment => "attachment",
        }
    }
}

/// Bytes RFC 8187 `attr-char` leaves unencoded: ALPHA / DIGIT /
/// "!" / "#" / "$" / "&" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~".
const ATTR_CHAR_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// Builds a `Content-Disposition` value.
///
/// ```
/// use bustapi_files::{content_disposition, DispositionType::*};
/// assert_eq!(content_disposition(Attachment, Some("report.csv")),
///            "attachment; filename=\"report.csv\"");
/// assert_eq!(content_disposition(Inline, None), "inline");
/// assert_eq!(content_disposition(Attachment, Some("naïve.txt")),
///            "attachment; filename=\"na_ve.txt\"; filename*=UTF-8''na%C3%AFve.txt");
/// assert_eq!(content_disposition(Attachment, Some("../../etc/passwd\r\nSet-Cookie: x")),
///            "attachment; filename=\"passwdSet-Cookie: x\"");
/// ```
pub fn content_disposition(kind: DispositionType, filename: Option<&str>) -> HeaderValue {
    let name = filename.map(sanitize).unwrap_or_default();
    let value = if name.is_empty() {
        kind.as_str().to_owned()
    } else if name.is_ascii() {
        format!("{}; filename=\"{}\"", kind.as_str(), quote(&name))
    } else {
        let fallback: String = name
            .chars()
            .map(|c| if c.is_ascii() { c } else { '_' })
            .collect();
        format!(
            "{}; filename=\"{}\"; filename*=UTF-8''{}",
            kind.as_str(),
            quote(&fallback),
            utf8_percent_encode(&name, ATTR_CHAR_ENCODE)
        )
    };
    // Every byte is now visible ASCII or a space, which a header value always
    // accepts; the fallback only exists so that this function cannot panic.
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(kind.as_str()))
}

/// Basename, without characters that must never reach a header or a
/// save dialog; trimmed. May return an empty string.
fn sanitize(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base.chars().filter(|&c| !is_forbidden(c)).collect();
    let trimmed = cleaned.trim();
    if trimmed == "." || trimmed == ".." {
        String::new()
    } else {
        trimmed.to_owned()
    }
}

fn is_forbidden(c: char) -> bool {
    c.is_control() // C0, DEL and C1
        || matches!(c,
            '\u{200E}' | '\u{200F}'           // LRM, RLM
            | '\u{202A}'..='\u{202E}'         // embeddings and overrides
            | '\u{2066}'..='\u{2069}'         // isolates
            | '\u{2028}' | '\u{2029}'         // line and paragraph separators
            | '\u{FEFF}') // BOM / zero-width no-break space
}

/// Escapes a string for use inside a quoted-string.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::DispositionType::*;
    use super::*;

    #[test]
    fn table() {
        let cases: &[(DispositionType, Option<&str>, &str)] = &[
            (Attachment, None, "attachment"),
            (Inline, None, "inline"),
            (Inline, Some("a.mp4"), "inline; filename=\"a.mp4\""),
            (Attachment, Some("custom_name.csv"), "attachment; filename=\"custom_name.csv\""),
            (Attachment, Some("my file.txt"), "attachment; filename=\"my file.txt\""),
            // Quotes are escaped.
            (Attachment, Some("say \"hi\".txt"), "attachment; filename=\"say \\\"hi\\\".txt\""),
            (Attachment, Some("a;b=c.txt"), "attachment; filename=\"a;b=c.txt\""),
            // Separators: basename only (backslash is a separator too).
            (Attachment, Some("/etc/passwd"), "attachment; filename=\"passwd\""),
            (Attachment, Some("C:\\Users\\x\\report.pdf"), "attachment; filename=\"report.pdf\""),
            (Attachment, Some("dir/"), "attachment"),
            (Attachment, Some(".."), "attachment"),
            (Attachment, Some("../.."), "attachment"),
            (Attachment, Some(""), "attachment"),
            (Attachment, Some("   "), "attachment"),
            // CR/LF and other controls never reach the header.
            (Attachment, Some("a\r\nSet-Cookie: x=1"), "attachment; filename=\"aSet-Cookie: x=1\""),
            (Attachment, Some("a\rb\nc\0d\te\x7ff"), "attachment; filename=\"abcdef\""),
            (Attachment, Some("a\u{85}b"), "attachment; filename=\"ab\""),
            (Attachment, Some("\r\n"), "attachment"),
            // Non-ASCII: fallback plus RFC 8187.
            (
                Attachment,
                Some("résumé.pdf"),
                "attachment; filename=\"r_sum_.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf",
            ),
            (
                Inline,
                Some("视频.mp4"),
                "inline; filename=\"__.mp4\"; filename*=UTF-8''%E8%A7%86%E9%A2%91.mp4",
            ),
            (
                Attachment,
                Some("ü \"q\" 100%.txt"),
                "attachment; filename=\"_ \\\"q\\\" 100%.txt\"; filename*=UTF-8''%C3%BC%20%22q%22%20100%25.txt",
            ),
            // attr-char punctuation stays literal in filename*.
            (
                Attachment,
                Some("é!#$&+-.^_`|~"),
                "attachment; filename=\"_!#$&+-.^_`|~\"; filename*=UTF-8''%C3%A9!#$&+-.^_`|~",
            ),
            // Bidi override is stripped (would display "gnp.exe" as "exe.png").
            (Attachment, Some("\u{202E}gnp.exe"), "attachment; filename=\"gnp.exe\""),
            // Unicode line separator stripped.
            (Attachment, Some("a\u{2028}b"), "attachment; filename=\"ab\""),
        ];
        for (kind, name, want) in cases {
            assert_eq!(content_disposition(*kind, *name), *want, "{name:?}");
        }
    }

    #[test]
    fn never_panics_and_never_emits_controls() {
        let nasty = [
            "\u{0}",
            "\u{1}\u{2}",
            "\u{7f}",
            "\u{9f}",
            "😀",
            "\u{FFFF}",
            "\\",
            "/",
            "\"",
            "%",
            "\r\n\r\n",
            "a\u{0}b/c\\d",
        ];
        for a in nasty {
            for b in nasty {
                let name = format!("{a}x{b}");
                for kind in [Inline, Attachment] {
                    let v = content_disposition(kind, Some(&name));
                    assert!(
                        v.as_bytes().iter().all(|&c| (0x20..0x7f).contains(&c)),
                        "{name:?} → {v:?}"
                    );
                }
            }
        }
    }
}
