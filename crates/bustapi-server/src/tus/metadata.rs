//! `Upload-Metadata`: comma-separated `key base64value` pairs (the value and its
//! space may be left out). The engine only checks the header and keeps it,
//! normalised, for `HEAD` and the completion hook; the application decodes it.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

/// The header with each pair trimmed, or why it is malformed. Keys must be
/// non-empty visible ASCII without commas and unique; values valid padded base64.
/// Only visible ASCII and single spaces survive, so the value is safe to store on
/// one line of the sidecar and to send back as a header.
pub fn normalise(value: &str) -> Result<String, &'static str> {
    // Clients without metadata may still send the header empty (tuspy does).
    if value.trim().is_empty() {
        return Ok(String::new());
    }
    let mut keys: Vec<&str> = Vec::new();
    let mut pairs: Vec<String> = Vec::new();
    for pair in value.split(',') {
        let pair = pair.trim_matches(|c| c == ' ' || c == '\t');
        let (key, encoded) = match pair.split_once(' ') {
            Some((k, v)) => (k, v),
            None => (pair, ""),
        };
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_graphic() && b != b',') {
            return Err("an Upload-Metadata key is empty or not visible ASCII");
        }
        if keys.contains(&key) {
            return Err("an Upload-Metadata key is repeated");
        }
        if STANDARD.decode(encoded).is_err() {
            return Err("an Upload-Metadata value is not base64");
        }
        keys.push(key);
        pairs.push(if encoded.is_empty() {
            key.to_string()
        } else {
            format!("{key} {encoded}")
        });
    }
    Ok(pairs.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_protocol_examples() {
        assert_eq!(
            normalise("filename d29ybGRfZG9taW5hdGlvbl9wbGFuLnBkZg==,is_confidential"),
            Ok("filename d29ybGRfZG9taW5hdGlvbl9wbGFuLnBkZg==,is_confidential".into())
        );
        assert_eq!(
            normalise(" a YQ== , b "),
            Ok("a YQ==,b".into()),
            "spaces around pairs are dropped"
        );
    }

    #[test]
    fn refuses_malformed_metadata() {
        assert_eq!(
            normalise(" "),
            Ok(String::new()),
            "an empty header is no metadata"
        );
        for bad in [
            ",",
            "a YQ==,a Yg==",
            "a !!!",
            "a YQ",
            "a YQ== extra",
            "k\u{e9}y YQ==",
            "a\nb YQ==",
        ] {
            assert!(normalise(bad).is_err(), "{bad:?}");
        }
    }
}
