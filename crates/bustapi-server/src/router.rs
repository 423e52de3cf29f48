//! Flask-style routing on top of `matchit`.
//!
//! Rules are written as in Flask (`/user/<int:id>`, `/files/<path:p>`). They are
//! translated to matchit's syntax once, at registration; converter checks
//! (`int`, `float`, `uuid`) run after the radix-tree match, so a lookup costs one
//! tree walk plus a scan of the few captured values.
//!
//! One rule owns one tree entry and a small method table, so that a known path
//! with a wrong method can be answered `405` with an exact `Allow` header.

use http::Method;
use percent_encoding::percent_decode_str;
use std::fmt;

/// The type a `<converter:name>` segment accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Converter {
    /// Default: any text without a slash.
    String,
    /// ASCII digits only (`<int:id>`).
    Int,
    /// Digits, a dot, digits (`<float:x>`), as in Werkzeug.
    Float,
    /// Canonical 8-4-4-4-12 hex form (`<uuid:u>`).
    Uuid,
    /// Anything, slashes included; must be the last segment (`<path:p>`).
    Path,
}

impl Converter {
    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "" | "string" | "default" => Converter::String,
            "int" => Converter::Int,
            "float" => Converter::Float,
            "uuid" => Converter::Uuid,
            "path" => Converter::Path,
            _ => return None,
        })
    }

    /// Whether an already percent-decoded value is acceptable.
    pub fn accepts(self, value: &str) -> bool {
        match self {
            Converter::String => !value.is_empty() && !value.contains('/'),
            Converter::Path => !value.is_empty(),
            Converter::Int => !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()),
            Converter::Float => match value.split_once('.') {
                Some((a, b)) => {
                    !a.is_empty()
                        && !b.is_empty()
                        && a.bytes().all(|c| c.is_ascii_digit())
                        && b.bytes().all(|c| c.is_ascii_digit())
                }
                None => false,
            },
            Converter::Uuid => is_uuid(value),
        }
    }
}

fn is_uuid(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// A rule that cannot be registered; the message is shown to the developer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError(pub String);

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RuleError {}

/// A parsed Flask rule: the matchit pattern and its typed parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub rule: String,
    pub pattern: String,
    pub params: Vec<(String, Converter)>,
}

impl Rule {
    pub fn parse(rule: &str) -> Result<Rule, RuleError> {
        if !rule.starts_with('/') {
            return Err(RuleError(format!("route {rule:?} must start with '/'")));
        }
        let mut pattern = String::with_capacity(rule.len());
        let mut params = Vec::new();
        let mut rest = rule;
        while let Some(open) = rest.find('<') {
            push_literal(&mut pattern, &rest[..open]);
            let close = rest[open..]
                .find('>')
                .map(|c| open + c)
                .ok_or_else(|| RuleError(format!("unclosed '<' in route {rule:?}")))?;
            let inner = &rest[open + 1..close];
            let (conv, name) = match inner.split_once(':') {
                Some((c, n)) => (c.trim(), n.trim()),
                None => ("", inner.trim()),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
                return Err(RuleError(format!(
                    "bad parameter name {name:?} in route {rule:?}"
                )));
            }
            let conv = Converter::from_name(conv).ok_or_else(|| {
                RuleError(format!("unknown converter {conv:?} in route {rule:?}"))
            })?;
            if params.iter().any(|(n, _)| n == name) {
                return Err(RuleError(format!(
                    "parameter {name:?} repeated in route {rule:?}"
                )));
            }
            if conv == Converter::Path {
                if close + 1 != rest.len() {
                    return Err(RuleError(format!(
                        "<path:{name}> must be the last part of route {rule:?}"
                    )));
                }
                pattern.push_str("{*");
            } else {
                pattern.push('{');
            }
            pattern.push_str(name);
            pattern.push('}');
            params.push((name.to_string(), conv));
            rest = &rest[close + 1..];
        }
        push_literal(&mut pattern, rest);
        Ok(Rule {
            rule: rule.to_string(),
            pattern,
            params,
        })
    }
}

fn push_literal(pattern: &mut String, lit: &str) {
    for c in lit.chars() {
        match c {
            '{' => pattern.push_str("{{"),
            '}' => pattern.push_str("}}"),
            c => pattern.push(c),
        }
    }
}

/// Where a matched request goes: an opaque endpoint id chosen by the embedder.
pub type EndpointId = usize;

#[derive(Debug)]
struct Entry {
    rule: Rule,
    methods: Vec<(Method, EndpointId)>,
}

/// The outcome of a lookup.
#[derive(Debug, PartialEq, Eq)]
pub enum Match {
    /// Found: endpoint and decoded, converter-checked parameters in rule order.
    Found {
        endpoint: EndpointId,
        params: Vec<(String, String, Converter)>,
    },
    /// The path exists but not for this method; the value is the `Allow` list.
    MethodNotAllowed(String),
    /// `OPTIONS` on a known path, not registered explicitly: the `Allow` list.
    Options(String),
    /// The path exists only with a trailing slash: redirect there (Flask does 308).
    RedirectSlash,
    NotFound,
}

/// Routing table. Built once, then read concurrently without locks.
#[derive(Default)]
pub struct Router {
    tree: matchit::Router<usize>,
    entries: Vec<Entry>,
}

impl Router {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `rule` for `methods`. Registering the same rule again adds methods;
    /// the same rule and method twice is an error, as a silent override hides bugs.
    pub fn add(
        &mut self,
        rule: &str,
        methods: &[Method],
        endpoint: EndpointId,
    ) -> Result<(), RuleError> {
        let parsed = Rule::parse(rule)?;
        let idx = match self
            .entries
            .iter()
            .position(|e| e.rule.pattern == parsed.pattern)
        {
            Some(i) => {
                if self.entries[i].rule.params != parsed.params {
                    return Err(RuleError(format!(
                        "route {rule:?} conflicts with {:?}",
                        self.entries[i].rule.rule
                    )));
                }
                i
            }
            None => {
                self.tree
                    .insert(parsed.pattern.clone(), self.entries.len())
                    .map_err(|e| RuleError(format!("route {rule:?}: {e}")))?;
                self.entries.push(Entry {
                    rule: parsed,
                    methods: Vec::new(),
                });
                self.entries.len() - 1
            }
        };
        let entry = &mut self.entries[idx];
        for m in methods {
            if entry.methods.iter().any(|(have, _)| have == m) {
                return Err(RuleError(format!("{m} {rule:?} is registered twice")));
            }
            entry.methods.push((m.clone(), endpoint));
        }
        Ok(())
    }

    /// Looks up a raw (still percent-encoded) request path.
    pub fn lookup(&self, method: &Method, raw_path: &str) -> Match {
        let Ok(found) = self.tree.at(raw_path) else {
            if !raw_path.ends_with('/') {
                let mut slashed = String::with_capacity(raw_path.len() + 1);
                slashed.push_str(raw_path);
                slashed.push('/');
                if self.tree.at(&slashed).is_ok() {
                    return Match::RedirectSlash;
                }
            }
            return Match::NotFound;
        };
        let entry = &self.entries[*found.value];
        let mut params = Vec::with_capacity(entry.rule.params.len());
        for (name, conv) in &entry.rule.params {
            let raw = found.params.get(name).unwrap_or("");
            let Ok(decoded) = percent_decode_str(raw).decode_utf8() else {
                return Match::NotFound;
            };
            if !conv.accepts(&decoded) {
                return Match::NotFound;
            }
            params.push((name.clone(), decoded.into_owned(), *conv));
        }
        let pick = |m: &Method| {
            entry
                .methods
                .iter()
                .find(|(have, _)| have == m)
                .map(|(_, e)| *e)
        };
        let endpoint = pick(method).or_else(|| {
            // HEAD is answered by every GET route: same headers, no body.
            (*method == Method::HEAD)
                .then(|| pick(&Method::GET))
                .flatten()
        });
        match endpoint {
            Some(endpoint) => Match::Found { endpoint, params },
            None if *method == Method::OPTIONS => Match::Options(self.allow(entry)),
            None => Match::MethodNotAllowed(self.allow(entry)),
        }
    }

    fn allow(&self, entry: &Entry) -> String {
        let mut names: Vec<&str> = entry.methods.iter().map(|(m, _)| m.as_str()).collect();
        if names.contains(&"GET") && !names.contains(&"HEAD") {
            names.push("HEAD");
        }
        if !names.contains(&"OPTIONS") {
            names.push("OPTIONS");
        }
        names.sort_unstable();
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(routes: &[(&str, &[Method], usize)]) -> Router {
        let mut r = Router::new();
        for (rule, methods, id) in routes {
            r.add(rule, methods, *id).unwrap();
        }
        r
    }

    fn found(m: Match) -> (usize, Vec<(String, String)>) {
        match m {
            Match::Found { endpoint, params } => (
                endpoint,
                params.into_iter().map(|(n, v, _)| (n, v)).collect(),
            ),
            other => panic!("expected Found, got {other:?}"),
        }
    }

    #[test]
    fn translates_flask_rules() {
        let r = Rule::parse("/u/<int:id>/f/<path:rest>").unwrap();
        assert_eq!(r.pattern, "/u/{id}/f/{*rest}");
        assert_eq!(
            r.params,
            vec![
                ("id".into(), Converter::Int),
                ("rest".into(), Converter::Path)
            ]
        );
        assert_eq!(Rule::parse("/a/{b}").unwrap().pattern, "/a/{{b}}");
    }

    #[test]
    fn rejects_bad_rules() {
        for bad in [
            "nope",
            "/a/<int:id",
            "/a/<bogus:x>",
            "/a/<path:p>/b",
            "/<x>/<x>",
            "/<a b>",
        ] {
            assert!(Rule::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn matches_static_and_params() {
        let r = router(&[
            ("/", &[Method::GET], 0),
            ("/user/<name>", &[Method::GET], 1),
            ("/n/<int:id>", &[Method::GET], 2),
            ("/f/<float:x>", &[Method::GET], 3),
            ("/files/<path:p>", &[Method::GET], 4),
            ("/u/<uuid:u>", &[Method::GET], 5),
        ]);
        assert_eq!(found(r.lookup(&Method::GET, "/")).0, 0);
        assert_eq!(
            found(r.lookup(&Method::GET, "/user/ada%20l")),
            (1, vec![("name".into(), "ada l".into())])
        );
        assert_eq!(found(r.lookup(&Method::GET, "/n/42")).1[0].1, "42");
        assert_eq!(r.lookup(&Method::GET, "/n/4x2"), Match::NotFound);
        assert_eq!(r.lookup(&Method::GET, "/n/-1"), Match::NotFound);
        assert_eq!(found(r.lookup(&Method::GET, "/f/1.5")).0, 3);
        assert_eq!(r.lookup(&Method::GET, "/f/15"), Match::NotFound);
        assert_eq!(
            found(r.lookup(&Method::GET, "/files/a/b/c.txt")).1[0].1,
            "a/b/c.txt"
        );
        assert_eq!(
            found(r.lookup(&Method::GET, "/u/123e4567-e89b-12d3-a456-426614174000")).0,
            5
        );
        assert_eq!(r.lookup(&Method::GET, "/u/123e4567"), Match::NotFound);
        assert_eq!(r.lookup(&Method::GET, "/nothing"), Match::NotFound);
        // A string parameter never swallows an encoded slash.
        assert_eq!(r.lookup(&Method::GET, "/user/a%2Fb"), Match::NotFound);
    }

    #[test]
    fn methods_head_options_and_allow() {
        let r = router(&[("/x", &[Method::GET], 0), ("/x", &[Method::POST], 1)]);
        assert_eq!(found(r.lookup(&Method::POST, "/x")).0, 1);
        assert_eq!(found(r.lookup(&Method::HEAD, "/x")).0, 0);
        assert_eq!(
            r.lookup(&Method::DELETE, "/x"),
            Match::MethodNotAllowed("GET, HEAD, OPTIONS, POST".into())
        );
        assert_eq!(
            r.lookup(&Method::OPTIONS, "/x"),
            Match::Options("GET, HEAD, OPTIONS, POST".into())
        );
        let post_only = router(&[("/p", &[Method::POST], 0)]);
        assert_eq!(
            post_only.lookup(&Method::HEAD, "/p"),
            Match::MethodNotAllowed("OPTIONS, POST".into())
        );
    }

    #[test]
    fn duplicate_method_is_an_error() {
        let mut r = router(&[("/x", &[Method::GET], 0)]);
        assert!(r.add("/x", &[Method::GET], 1).is_err());
    }

    #[test]
    fn trailing_slash_redirect() {
        let r = router(&[("/dir/", &[Method::GET], 0)]);
        assert_eq!(r.lookup(&Method::GET, "/dir"), Match::RedirectSlash);
        assert_eq!(found(r.lookup(&Method::GET, "/dir/")).0, 0);
    }
}
