//! An HTML directory listing for static mounts that ask for one
//! (`python -m bustapi serve`): names, sizes and dates, hidden files left out.
//!
//! Every name is HTML-escaped for the text and percent-encoded for the link, so
//! a hostile file name can neither inject markup nor break out of the href. Each
//! href is a relative path whose `:` is encoded too: a file called
//! `javascript:alert(1)` or `notes:2024.txt` must not become a link to a URL
//! scheme (RFC 3986 section 4.2 forbids a `:` in the first segment of a relative path
//! for exactly this reason).

use bustapi_files::{is_servable_name, PathPolicy};
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use std::fmt::Write;
use std::path::Path;
use std::time::SystemTime;

/// Characters escaped in a path segment of an href: everything outside RFC 3986
/// pchar, plus `:` (it would turn the name into a scheme) and a few that are legal
/// but confusing in HTML attributes. Non-ASCII is always encoded (as UTF-8).
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b':')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'&')
    .add(b'\'')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'\\')
    .add(b'`')
    .add(b'{')
    .add(b'}');

struct Entry {
    name: String,
    is_dir: bool,
    size: u64,
    modified: Option<SystemTime>,
}

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn human_size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Renders the listing of `dir`, shown at URL path `url_path` (decoded, ends with `/`).
/// Blocking: reads the directory.
pub fn render(dir: &Path, url_path: &str) -> std::io::Result<String> {
    let mut entries = Vec::new();
    for item in std::fs::read_dir(dir)? {
        let item = item?;
        let Ok(name) = item.file_name().into_string() else {
            continue;
        };
        // Hidden files, and names no request path can reach (a control
        // character, a backslash): a link to them could only be refused.
        if !is_servable_name(&name, &PathPolicy::default()) {
            continue;
        }
        // Follow symlinks for the type and size; a dangling one is skipped.
        let Ok(meta) = std::fs::metadata(item.path()) else {
            continue;
        };
        entries.push(Entry {
            name,
            is_dir: meta.is_dir(),
            size: meta.len(),
            modified: meta.modified().ok(),
        });
    }
    entries.sort_by(|a, b| b.is_dir.cmp(&a.is_dir).then_with(|| a.name.cmp(&b.name)));

    let title = escape_html(url_path);
    let mut html = String::with_capacity(512 + entries.len() * 160);
    let _ = write!(
        html,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>Index of {title}</title>\
         <style>body{{font:14px system-ui,sans-serif;margin:2em}}table{{border-collapse:collapse}}\
         td,th{{padding:.25em 1.5em .25em 0;text-align:left}}td.n{{text-align:right}}\
         a{{text-decoration:none}}</style></head>\n<body><h1>Index of {title}</h1>\n\
         <table><tr><th>Name</th><th>Size</th><th>Modified</th></tr>\n"
    );
    if url_path != "/" {
        html.push_str("<tr><td><a href=\"../\">../</a></td><td></td><td></td></tr>\n");
    }
    for e in &entries {
        let href = utf8_percent_encode(&e.name, SEGMENT).to_string();
        let slash = if e.is_dir { "/" } else { "" };
        let size = if e.is_dir {
            "-".to_string()
        } else {
            human_size(e.size)
        };
        let date = e.modified.map(httpdate::fmt_http_date).unwrap_or_default();
        let _ = writeln!(
            html,
            "<tr><td><a href=\"{href}{slash}\">{}{slash}</a></td><td class=\"n\">{size}</td><td>{date}</td></tr>",
            escape_html(&e.name)
        );
    }
    html.push_str("</table></body></html>\n");
    Ok(html)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_visible_entries_escaped_and_linked() {
        let dir = std::env::temp_dir().join(format!("bustapi-listing-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("a <b>&.txt"), b"12345").unwrap();
        std::fs::write(dir.join(".secret"), b"x").unwrap();
        let html = render(&dir, "/files/").unwrap();
        assert!(html.contains("<a href=\"sub/\">sub/</a>"));
        assert!(html.contains("<a href=\"a%20%3Cb%3E%26.txt\">a &lt;b&gt;&amp;.txt</a>"));
        assert!(html.contains("5 B"));
        assert!(!html.contains("secret"));
        assert!(
            html.find("sub/").unwrap() < html.find("a%20").unwrap(),
            "directories first"
        );
        assert!(html.contains("href=\"../\""));
    }

    #[test]
    fn names_never_become_schemes_or_markup() {
        let dir = std::env::temp_dir().join(format!("bustapi-listing-x-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("javascript:alert(1)"), b"x").unwrap();
        std::fs::write(dir.join("q\"'é.txt"), b"x").unwrap();
        std::fs::write(dir.join("new\nline"), b"x").unwrap();
        let html = render(&dir, "/").unwrap();
        assert!(html.contains("<a href=\"javascript%3Aalert(1)\">javascript:alert(1)</a>"));
        assert!(html.contains("<a href=\"q%22%27%C3%A9.txt\">q&quot;&#39;é.txt</a>"));
        assert!(!html.contains("new"), "unreachable names are not listed");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn sizes_are_human() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(5 << 30), "5.0 GiB");
    }
}
