//! Upload ids: 128 bits from the system CSPRNG, written as 32 lowercase hex digits.
//!
//! The id is the only secret a tus client holds (the protocol has no other
//! per-upload credential), so it must be unguessable; and since it becomes a file
//! name, anything else that arrives in a URL is refused before it reaches the
//! filesystem.

use ring::rand::{SecureRandom, SystemRandom};
use std::fmt;

const BYTES: usize = 16;
const LEN: usize = BYTES * 2;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UploadId(String);

impl UploadId {
    pub fn generate() -> std::io::Result<Self> {
        let mut raw = [0u8; BYTES];
        SystemRandom::new()
            .fill(&mut raw)
            .map_err(|_| std::io::Error::other("the system random source failed"))?;
        Ok(UploadId(raw.iter().map(|b| format!("{b:02x}")).collect()))
    }

    /// An id as found in a URL or a file name: exactly 32 lowercase hex digits,
    /// so no path separator, dot or NUL can ever reach a path.
    pub fn parse(s: &str) -> Option<Self> {
        let ok = s.len() == LEN && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        ok.then(|| UploadId(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UploadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_and_differ() {
        let a = UploadId::generate().unwrap();
        let b = UploadId::generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(UploadId::parse(a.as_str()), Some(a));
    }

    #[test]
    fn anything_but_32_lowercase_hex_digits_is_refused() {
        let good = "0123456789abcdef0123456789abcdef";
        assert!(UploadId::parse(good).is_some());
        for bad in [
            "",
            &good[1..],
            &format!("{good}0"),
            "0123456789ABCDEF0123456789ABCDEF",
            "../../../../etc/passwd0123456789a",
            "0123456789abcdef0123456789abcde/",
            "0123456789abcdef0123456789abcd.e",
            "0123456789abcdef\u{0}123456789abcde",
        ] {
            assert!(UploadId::parse(bad).is_none(), "{bad:?}");
        }
    }
}
