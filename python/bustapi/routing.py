"""URL rules on the Python side: the map ``url_for`` builds from.

Matching is the engine's job (a radix tree in Rust, see ``bustapi-server``'s
``router.rs``); Python keeps what it needs to *build* URLs and to find the view
of a matched rule: each :class:`Rule` has its endpoint name, methods, defaults
and the parsed parts of its pattern, with the same converters the engine checks
(``string``, ``int``, ``float``, ``uuid``, ``path``).
"""

from __future__ import annotations

import difflib
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Callable, Optional
from urllib.parse import quote, urlencode

# What a converter turns a matched string into, for the view's keyword arguments.
CONVERTERS: dict[str, Callable[[str], Any]] = {
    "string": str,
    "default": str,
    "path": str,
    "int": int,
    "float": float,
    "uuid": uuid.UUID,
}

# Characters left as they are in a path segment: the WHATWG path-segment set, as
# Werkzeug uses; everything else (spaces, '?', '#', '%', non-ASCII) is escaped.
_PATH_SAFE = "!$&'()*+,/:;=@"
_QUERY_SAFE = "!$'()*,/:;?@"
_ANCHOR_SAFE = "%!#$&'()*+,/:;=?@"

_PART = re.compile(r"<(?:(?P<conv>[a-zA-Z_][a-zA-Z0-9_]*):)?(?P<name>[^<>:]+)>")


class BuildError(LookupError):
    """``url_for`` could not build a URL: unknown endpoint, missing values, or no rule
    for the requested method. The message is Werkzeug's: it names what was asked and
    suggests the closest rule (``suggested``): the values or methods it needs, or a
    similarly named endpoint."""

    def __init__(
        self,
        endpoint: str,
        values: Mapping[str, Any],
        method: Optional[str],
        url_map: Optional[Map] = None,
    ) -> None:
        self.endpoint = endpoint
        self.values = dict(values)
        self.method = method
        self.suggested: Optional[Rule] = (
            url_map.closest_rule(endpoint, self.values, method) if url_map is not None else None
        )
        super().__init__(self._message())

    def _message(self) -> str:
        msg = f"Could not build url for endpoint {self.endpoint!r}"
        if self.method:
            msg += f" ({self.method!r})"
        if self.values:
            msg += f" with values {sorted(self.values)!r}"
        msg += "."
        rule = self.suggested
        if rule is None:
            return msg
        if rule.endpoint != self.endpoint:
            return msg + f" Did you mean {rule.endpoint!r} instead?"
        if self.method and self.method not in rule.methods:
            msg += f" Did you mean to use methods {sorted(rule.methods)!r}?"
        missing = (rule.arguments | set(rule.defaults)) - set(self.values)
        if missing:
            msg += f" Did you forget to specify values {sorted(missing)!r}?"
        return msg

    def __str__(self) -> str:
        return str(self.args[0])


class Rule:
    """One URL rule: ``Rule("/user/<int:id>", endpoint="user", methods={"GET"})``."""

    def __init__(
        self,
        rule: str,
        endpoint: str,
        methods: Iterable[str],
        defaults: Optional[Mapping[str, Any]] = None,
    ) -> None:
        if not rule.startswith("/"):
            raise ValueError(f"urls must start with a leading slash: {rule!r}")
        self.rule = rule
        self.endpoint = endpoint
        self.methods = frozenset(m.upper() for m in methods)
        if "GET" in self.methods:
            self.methods |= {"HEAD"}
        self.defaults: dict[str, Any] = dict(defaults or {})
        #: This route's body size limit (``max_content_length=``), else ``None``.
        self.max_content_length: Optional[int] = None
        # (converter, name) for a variable part; (None, text) for literal text.
        self.parts: list[tuple[Optional[str], str]] = []
        pos = 0
        for m in _PART.finditer(rule):
            if m.start() > pos:
                self.parts.append((None, rule[pos : m.start()]))
            conv = m.group("conv") or "default"
            if conv not in CONVERTERS:
                raise ValueError(f"unknown converter {conv!r} in route {rule!r}")
            self.parts.append((conv, m.group("name").strip()))
            pos = m.end()
        if pos < len(rule):
            self.parts.append((None, rule[pos:]))
        self.arguments = frozenset(name for conv, name in self.parts if conv is not None)
        self.converters = {name: conv for conv, name in self.parts if conv is not None}

    def suitable_for(self, values: Mapping[str, Any], method: Optional[str] = None) -> bool:
        """Whether this rule can build a URL from ``values`` (and serves ``method``)."""
        if method is not None and method.upper() not in self.methods:
            return False
        for name in self.arguments:
            if name not in values and name not in self.defaults:
                return False
        # A default is part of the rule's identity: it builds only for that value.
        for name, value in self.defaults.items():
            if name in values and values[name] != value:
                return False
        return True

    def build_exact(self, values: Mapping[str, Any]) -> Optional[str]:
        """The common case of :meth:`build`, fast: ``values`` are exactly the rule's
        arguments, none of them ``None``, and the rule has no defaults. ``None`` when
        that is not the case (the caller then takes the general path)."""
        if self.defaults or len(values) != len(self.arguments):
            return None
        out: list[str] = []
        for conv, text in self.parts:
            if conv is None:
                out.append(text)
                continue
            value = values.get(text)
            if value is None:
                return None
            out.append(_to_url(conv, value))
        return "".join(out)

    def build(self, values: Mapping[str, Any], append_unknown: bool = True) -> str:
        """The URL path (and query string for values the rule does not take)."""
        if not values and not self.arguments:
            return self.rule
        out: list[str] = []
        for conv, text in self.parts:
            if conv is None:
                out.append(text)
                continue
            value = values[text] if text in values else self.defaults[text]
            out.append(_to_url(conv, value))
        url = "".join(out)
        if append_unknown:
            extra = [
                (k, v)
                for k, v in values.items()
                if k not in self.arguments and k not in self.defaults and v is not None
            ]
            if extra:
                url += "?" + _encode_query(extra)
        return url

    def convert(self, name: str, value: str) -> Any:
        """The view argument for a matched string (``"7"`` → ``7`` for ``<int:...>``)."""
        return CONVERTERS[self.converters.get(name, "default")](value)

    def __repr__(self) -> str:
        methods = ", ".join(sorted(self.methods))
        return f"<Rule '{self.rule}' ({methods}) -> {self.endpoint}>"


def _to_url(conv: str, value: Any) -> str:
    if type(value) is int and conv in ("int", "default", "string", "path"):
        return str(value)  # the common case: an id
    if conv == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            value = int(value)
        return str(value)
    if conv == "float":
        return str(float(value))
    if conv == "uuid":
        return str(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8")
    return quote(str(value), safe=_PATH_SAFE)


def _encode_query(items: list[tuple[str, Any]]) -> str:
    flat: list[tuple[str, str]] = []
    for key, value in items:
        if isinstance(value, (list, tuple)):
            flat.extend((key, str(v)) for v in value if v is not None)
        else:
            flat.append((key, str(value)))
    return urlencode(flat, safe=_QUERY_SAFE)


def quote_anchor(anchor: str) -> str:
    return quote(anchor, safe=_ANCHOR_SAFE)


class Map:
    """All rules of an application, in registration order (``app.url_map``)."""

    def __init__(self) -> None:
        self._rules: list[Rule] = []
        self._by_endpoint: dict[str, list[Rule]] = {}

    def add(self, rule: Rule) -> None:
        self._rules.append(rule)
        rules = self._by_endpoint.setdefault(rule.endpoint, [])
        rules.append(rule)
        # Build order, as Werkzeug's: the rule needing the most values first, and among
        # equals the one with the most defaults, so that url_for("page", n=1) picks
        # "/page/" (defaults={"n": 1}) over "/page/<int:n>". The sort is stable.
        rules.sort(key=lambda r: (-len(r.arguments | set(r.defaults)), -len(r.defaults)))

    def iter_rules(self, endpoint: Optional[str] = None) -> Iterator[Rule]:
        if endpoint is not None:
            return iter(self._by_endpoint.get(endpoint, ()))
        return iter(self._rules)

    def rules_for(self, endpoint: str) -> list[Rule]:
        return self._by_endpoint.get(endpoint, [])

    def endpoints(self) -> list[str]:
        return list(self._by_endpoint)

    def build(self, endpoint: str, values: Mapping[str, Any], method: Optional[str] = None) -> str:
        """Builds the path of the first suitable rule, or raises :class:`BuildError`.
        ``None`` values count as not given; a value its converter refuses
        (``int("x")``) raises that converter's ``ValueError``, as in Flask."""
        rules = self._by_endpoint.get(endpoint, ())
        if len(rules) == 1 and method is None:
            url = rules[0].build_exact(values)
            if url is not None:
                return url
        values = {k: v for k, v in values.items() if v is not None}
        for rule in rules:
            if rule.suitable_for(values, method):
                return rule.build(values)
        raise BuildError(endpoint, values, method, self)

    def closest_rule(
        self, endpoint: str, values: Mapping[str, Any], method: Optional[str]
    ) -> Optional[Rule]:
        """The rule a failed build most likely meant: mostly by endpoint name
        similarity, then by taking the given values and the method (Werkzeug's weights,
        so the suggestion in a :class:`BuildError` is the one Flask makes)."""

        def score(rule: Rule) -> float:
            similarity = difflib.SequenceMatcher(None, rule.endpoint, endpoint).ratio()
            takes_values = set(values) <= (rule.arguments | set(rule.defaults))
            return 0.98 * similarity + 0.01 * takes_values + 0.01 * (method in rule.methods)

        return max(self._rules, key=score, default=None)

    def __iter__(self) -> Iterator[Rule]:
        return iter(self._rules)

    def __len__(self) -> int:
        return len(self._rules)

    def __repr__(self) -> str:
        return f"Map([{', '.join(repr(r) for r in self._rules)}])"
