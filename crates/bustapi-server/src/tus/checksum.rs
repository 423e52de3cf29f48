//! The checksum extension: `Upload-Checksum: <algorithm> <base64 digest>` of one
//! PATCH body, verified as the bytes stream to disk (no second read).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ring::digest;

/// Advertised in `Tus-Checksum-Algorithm`; `sha1` is the one the protocol requires.
pub const ALGORITHMS: &str = "sha1,sha256,sha512";

pub struct ExpectedChecksum {
    algorithm: &'static digest::Algorithm,
    digest: Vec<u8>,
}

impl ExpectedChecksum {
    /// Parses the header; an unknown algorithm or a malformed digest is a 400.
    pub fn parse(value: &str) -> Result<Self, &'static str> {
        let (name, encoded) = value
            .trim()
            .split_once(' ')
            .ok_or("Upload-Checksum must be an algorithm and a base64 digest")?;
        let algorithm = match name {
            "sha1" => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            "sha256" => &digest::SHA256,
            "sha512" => &digest::SHA512,
            _ => return Err("the Upload-Checksum algorithm is not supported"),
        };
        let digest = STANDARD
            .decode(encoded.trim())
            .map_err(|_| "the Upload-Checksum digest is not base64")?;
        if digest.len() != algorithm.output_len() {
            return Err("the Upload-Checksum digest has the wrong length");
        }
        Ok(ExpectedChecksum { algorithm, digest })
    }

    pub fn start(&self) -> digest::Context {
        digest::Context::new(self.algorithm)
    }

    pub fn matches(&self, context: digest::Context) -> bool {
        context.finish().as_ref() == self.digest.as_slice()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_protocol_example_verifies() {
        let expected = ExpectedChecksum::parse("sha1 Kq5sNclPz7QV2+lfQIuc6R7oRu0=").unwrap();
        let mut ctx = expected.start();
        ctx.update(b"hello world");
        assert!(expected.matches(ctx));
        let mut other = expected.start();
        other.update(b"hello World");
        assert!(!expected.matches(other));
    }

    #[test]
    fn malformed_or_unknown_checksums_are_refused() {
        for bad in [
            "",
            "sha1",
            "md5 XrY7u+Ae7tCTyyK7j1rNww==",
            "crc32 AAAAAA==",
            "sha1 !!!",
            "sha1 YQ==",
            "SHA1 Kq5sNclPz7QV2+lfQIuc6R7oRu0=",
        ] {
            assert!(ExpectedChecksum::parse(bad).is_err(), "{bad:?}");
        }
    }
}
