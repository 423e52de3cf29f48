//! Signed, expiring URLs (nginx's `secure_link`, done with an HMAC): the
//! application decides once who may fetch a file and hands out a URL carrying
//! an HMAC-SHA256 signature; the engine checks it on every request to a signed
//! static mount or route, before it opens a file or calls the application.
//!
//! A signed URL is the path plus these query parameters:
//!
//! - `expires`: the expiry, in Unix seconds (the URL is good until then, inclusive);
//! - `prefix` (optional): the signature covers every path under this folder
//!   (it ends with `/`) instead of the exact path: one URL signature for a
//!   folder of media segments;
//! - `ip=1` (optional): the signature is bound to the client's address, which
//!   is part of the signed string but not of the URL;
//! - `signature`: base64url (no padding) of the HMAC-SHA256 of the string below.
//!
//! The signed string is, line by line: a version tag, `path` or `prefix`, the
//! exact (still percent-encoded) path or prefix, the expiry, and the bound
//! address or `-`. So a signature cannot be moved to another file, its expiry
//! cannot be changed, and an IP-bound one works from that address only.
//!
//! Every key is first turned into a key of its own for this purpose (HMAC of
//! the key over a fixed label), so an application's `SECRET_KEY` can sign URLs
//! without ever signing attacker-chosen strings with the key that signs its
//! session cookies. Signing uses the first key; verification accepts any (key
//! rotation). Comparison is constant-time (`ring::hmac::verify`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};
use ring::hmac;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

/// Version tag at the head of the signed string: a later format cannot be
/// confused with this one.
const VERSION: &str = "bustapi-signed-url-1";

/// The label each configured key is turned into a URL-signing key with.
const KEY_LABEL: &[u8] = b"bustapi signed URL key";

/// Characters escaped in the `prefix` query value: what would end or split it.
const QUERY_VALUE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'&')
    .add(b'+')
    .add(b'<')
    .add(b'>')
    .add(b'=');

/// Why a request's signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Missing, malformed, or not matching any key (403): says nothing about
    /// whether the file exists.
    Forbidden(&'static str),
    /// A genuine signature whose time has passed (410, nginx's convention).
    Expired,
}

impl Refusal {
    pub fn status(self) -> http::StatusCode {
        match self {
            Refusal::Forbidden(_) => http::StatusCode::FORBIDDEN,
            Refusal::Expired => http::StatusCode::GONE,
        }
    }

    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Forbidden(why) => why,
            Refusal::Expired => "the signed URL has expired",
        }
    }
}

/// What a signature covers: one path, or every path under a folder.
#[derive(Clone, Copy)]
enum Scope<'a> {
    Path(&'a str),
    Prefix(&'a str),
}

/// The signing keys of an application.
pub struct UrlSigner {
    keys: Vec<hmac::Key>,
}

impl std::fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "UrlSigner({} keys)", self.keys.len())
    }
}

/// The current time in Unix seconds.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn message(scope: Scope<'_>, expires: u64, ip: Option<IpAddr>) -> String {
    let (kind, value) = match scope {
        Scope::Path(p) => ("path", p),
        Scope::Prefix(p) => ("prefix", p),
    };
    let ip = ip.map_or_else(|| "-".to_string(), |ip| ip.to_canonical().to_string());
    format!("{VERSION}\n{kind}\n{value}\n{expires}\n{ip}")
}

/// A URL path as it goes on the wire: absolute, printable ASCII, no query.
fn check_url_path(what: &str, path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!("{what} must start with '/': {path:?}"));
    }
    if let Some(c) = path
        .chars()
        .find(|c| !c.is_ascii_graphic() || *c == '?' || *c == '#')
    {
        return Err(format!(
            "{what} must be a percent-encoded URL path (found {c:?}): {path:?}"
        ));
    }
    Ok(())
}

/// Whether `rest` (the part of a request path after a signed prefix) stays
/// inside the prefix's folder: no `.`/`..` segment and no encoded slash or
/// backslash, in any spelling.
fn stays_inside(rest: &str) -> bool {
    rest.split('/').all(|segment| {
        let decoded = percent_decode_str(segment).collect::<Vec<u8>>();
        decoded != b"."
            && decoded != b".."
            && !decoded.iter().any(|b| matches!(b, b'/' | b'\\' | 0))
    })
}

impl UrlSigner {
    /// Signs with the first key and accepts any of them. Keys must not be empty.
    pub fn new<K: AsRef<[u8]>>(keys: &[K]) -> Result<Self, &'static str> {
        if keys.is_empty() {
            return Err("at least one signing key is needed");
        }
        if keys.iter().any(|k| k.as_ref().is_empty()) {
            return Err("a signing key must not be empty");
        }
        let keys = keys
            .iter()
            .map(|k| {
                let master = hmac::Key::new(hmac::HMAC_SHA256, k.as_ref());
                let derived = hmac::sign(&master, KEY_LABEL);
                hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref())
            })
            .collect();
        Ok(UrlSigner { keys })
    }

    /// The query string (without `?`) that signs `path` until `expires`,
    /// bound to `ip` if given, covering every path under `prefix` if given
    /// (which must end with `/` and be a prefix of `path`).
    pub fn sign(
        &self,
        path: &str,
        expires: u64,
        ip: Option<IpAddr>,
        prefix: Option<&str>,
    ) -> Result<String, String> {
        check_url_path("the path", path)?;
        let scope = match prefix {
            None => Scope::Path(path),
            Some(prefix) => {
                check_url_path("the prefix", prefix)?;
                if !prefix.ends_with('/') {
                    return Err(format!("the prefix must end with '/': {prefix:?}"));
                }
                if !path.starts_with(prefix) || !stays_inside(&path[prefix.len()..]) {
                    return Err(format!("{path:?} is not under the prefix {prefix:?}"));
                }
                Scope::Prefix(prefix)
            }
        };
        let tag = hmac::sign(&self.keys[0], message(scope, expires, ip).as_bytes());
        let mut query = format!("expires={expires}");
        if let Scope::Prefix(p) = scope {
            query.push_str("&prefix=");
            query.extend(utf8_percent_encode(p, QUERY_VALUE));
        }
        if ip.is_some() {
            query.push_str("&ip=1");
        }
        query.push_str("&signature=");
        query.push_str(&URL_SAFE_NO_PAD.encode(tag.as_ref()));
        Ok(query)
    }

    /// Checks a request for `path` (still percent-encoded) with `query` from
    /// `remote` at time `now` (Unix seconds).
    pub fn verify(
        &self,
        path: &str,
        query: Option<&str>,
        remote: Option<IpAddr>,
        now: u64,
    ) -> Result<(), Refusal> {
        let params = SignatureParams::parse(query.unwrap_or(""))?;
        let signature = params
            .signature
            .ok_or(Refusal::Forbidden("the URL is not signed"))?;
        let expires = params
            .expires
            .ok_or(Refusal::Forbidden("the signed URL has no expiry"))?
            .parse::<u64>()
            .map_err(|_| Refusal::Forbidden("the signed URL's expiry is malformed"))?;
        let prefix = params
            .prefix
            .map(|p| percent_decode_str(p).decode_utf8())
            .transpose()
            .map_err(|_| Refusal::Forbidden("the signed URL's prefix is malformed"))?;
        let scope = match prefix.as_deref() {
            None => Scope::Path(path),
            Some(prefix) => {
                let inside = prefix.starts_with('/')
                    && prefix.ends_with('/')
                    && path.strip_prefix(prefix).is_some_and(stays_inside);
                if !inside {
                    return Err(Refusal::Forbidden(
                        "the path is outside the signed URL's prefix",
                    ));
                }
                Scope::Prefix(prefix)
            }
        };
        let ip = match params.ip {
            None => None,
            Some("1") => Some(remote.ok_or(Refusal::Forbidden(
                "the signed URL is bound to an address, and the client has none",
            ))?),
            Some(_) => return Err(Refusal::Forbidden("the signed URL's ip flag is malformed")),
        };
        let tag = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| Refusal::Forbidden("the URL's signature is malformed"))?;
        let signed = message(scope, expires, ip);
        let genuine = self
            .keys
            .iter()
            .any(|k| hmac::verify(k, signed.as_bytes(), &tag).is_ok());
        if !genuine {
            return Err(Refusal::Forbidden("the URL's signature is not valid"));
        }
        // Expiry is judged only for a genuine signature: a 410 then tells the
        // holder of a real link to ask for a fresh one, and nothing to a forger.
        if now > expires {
            return Err(Refusal::Expired);
        }
        Ok(())
    }
}

/// The signature's parameters in a query string (others are the
/// application's and are ignored). A repeated one is refused: which copy a
/// check reads must never be a question.
#[derive(Default)]
struct SignatureParams<'a> {
    expires: Option<&'a str>,
    signature: Option<&'a str>,
    prefix: Option<&'a str>,
    ip: Option<&'a str>,
}

impl<'a> SignatureParams<'a> {
    fn parse(query: &'a str) -> Result<Self, Refusal> {
        let mut params = SignatureParams::default();
        for pair in query.split('&') {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let slot = match name {
                "expires" => &mut params.expires,
                "signature" => &mut params.signature,
                "prefix" => &mut params.prefix,
                "ip" => &mut params.ip,
                _ => continue,
            };
            if slot.replace(value).is_some() {
                return Err(Refusal::Forbidden(
                    "a signature parameter is repeated in the URL",
                ));
            }
        }
        Ok(params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn signer(keys: &[&str]) -> UrlSigner {
        UrlSigner::new(keys).unwrap()
    }

    #[test]
    fn a_signed_path_verifies_until_it_expires() {
        let s = signer(&["k"]);
        let q = s.sign("/media/a.mp4", NOW + 10, None, None).unwrap();
        assert_eq!(s.verify("/media/a.mp4", Some(&q), None, NOW), Ok(()));
        assert_eq!(s.verify("/media/a.mp4", Some(&q), None, NOW + 10), Ok(()));
        assert_eq!(
            s.verify("/media/a.mp4", Some(&q), None, NOW + 11),
            Err(Refusal::Expired)
        );
    }

    #[test]
    fn tampering_is_forbidden() {
        let s = signer(&["k"]);
        let q = s.sign("/media/a.mp4", NOW + 10, None, None).unwrap();
        let forbidden = |path: &str, query: &str| {
            matches!(
                s.verify(path, Some(query), None, NOW),
                Err(Refusal::Forbidden(_))
            )
        };
        assert!(forbidden("/media/b.mp4", &q));
        assert!(forbidden(
            "/media/a.mp4",
            &q.replace(&format!("{}", NOW + 10), &format!("{}", NOW + 99))
        ));
        assert!(forbidden("/media/a.mp4", "expires=1&signature=AAAA"));
        assert!(forbidden("/media/a.mp4", "expires=x&signature=AAAA"));
        assert!(forbidden("/media/a.mp4", "expires=1&signature=!!"));
        assert!(forbidden("/media/a.mp4", &format!("{q}&expires=5")));
        assert!(forbidden("/media/a.mp4", ""));
        // Another key (one byte off) does not verify.
        assert!(matches!(
            signer(&["l"]).verify("/media/a.mp4", Some(&q), None, NOW),
            Err(Refusal::Forbidden(_))
        ));
        // An expired forgery is a 403, not a 410.
        assert!(forbidden(
            "/media/b.mp4",
            &q.replace("expires=", "expires=1")
        ));
    }

    #[test]
    fn rotation_signs_with_the_first_key_and_accepts_any() {
        let old = signer(&["old"]);
        let rotated = signer(&["new", "old"]);
        let q = old.sign("/a", NOW + 1, None, None).unwrap();
        assert_eq!(rotated.verify("/a", Some(&q), None, NOW), Ok(()));
        let q = rotated.sign("/a", NOW + 1, None, None).unwrap();
        assert!(old.verify("/a", Some(&q), None, NOW).is_err());
        assert_eq!(signer(&["new"]).verify("/a", Some(&q), None, NOW), Ok(()));
    }

    #[test]
    fn an_ip_bound_signature_holds_for_that_address_only() {
        let s = signer(&["k"]);
        let ip: IpAddr = "10.0.0.7".parse().unwrap();
        let q = s.sign("/a", NOW + 1, Some(ip), None).unwrap();
        assert_eq!(s.verify("/a", Some(&q), Some(ip), NOW), Ok(()));
        // The same address seen through a dual-stack socket.
        let mapped: IpAddr = "::ffff:10.0.0.7".parse().unwrap();
        assert_eq!(s.verify("/a", Some(&q), Some(mapped), NOW), Ok(()));
        let other: IpAddr = "10.0.0.8".parse().unwrap();
        assert!(s.verify("/a", Some(&q), Some(other), NOW).is_err());
        assert!(s.verify("/a", Some(&q), None, NOW).is_err());
        // Dropping the flag does not unbind it.
        let unbound = q.replace("&ip=1", "");
        assert!(s.verify("/a", Some(&unbound), Some(other), NOW).is_err());
    }

    #[test]
    fn a_prefix_signature_admits_its_folder_and_nothing_outside() {
        let s = signer(&["k"]);
        let q = s
            .sign("/v/show/index.m3u8", NOW + 1, None, Some("/v/show/"))
            .unwrap();
        for inside in [
            "/v/show/index.m3u8",
            "/v/show/seg/001.ts",
            "/v/show/a%20b.ts",
        ] {
            assert_eq!(s.verify(inside, Some(&q), None, NOW), Ok(()), "{inside}");
        }
        for outside in [
            "/v/other/x.ts",
            "/v/show",
            "/v/show/../other/x.ts",
            "/v/show/%2e%2e/other/x.ts",
            "/v/show/%2E./x",
            "/v/show/a%2f..%2f..%2fx",
            "/v/show/a%5c..%5cx",
            "/v/show/./x",
            "/v/showing/x",
        ] {
            assert!(
                s.verify(outside, Some(&q), None, NOW).is_err(),
                "{outside} was admitted"
            );
        }
        // The prefix itself is signed: widening it breaks the signature.
        let wider = q.replace("prefix=/v/show/", "prefix=/v/");
        assert!(s.verify("/v/other/x.ts", Some(&wider), None, NOW).is_err());
        // A prefix signature is not a path signature and vice versa.
        let no_prefix = q.replace("&prefix=/v/show/", "");
        assert!(s.verify("/v/show/", Some(&no_prefix), None, NOW).is_err());
    }

    #[test]
    fn signing_refuses_what_could_not_be_verified() {
        let s = signer(&["k"]);
        assert!(s.sign("relative", 1, None, None).is_err());
        assert!(s.sign("/a b", 1, None, None).is_err());
        assert!(s.sign("/a?x", 1, None, None).is_err());
        assert!(s.sign("/v/x", 1, None, Some("/v")).is_err());
        assert!(s.sign("/w/x", 1, None, Some("/v/")).is_err());
        assert!(s.sign("/v/../x", 1, None, Some("/v/")).is_err());
        assert!(UrlSigner::new::<&str>(&[]).is_err());
        assert!(UrlSigner::new(&[""]).is_err());
    }

    #[test]
    fn other_query_parameters_are_left_alone() {
        let s = signer(&["k"]);
        let q = s.sign("/a", NOW + 1, None, None).unwrap();
        let q = format!("t=5&{q}&download=1&");
        assert_eq!(s.verify("/a", Some(&q), None, NOW), Ok(()));
    }
}
