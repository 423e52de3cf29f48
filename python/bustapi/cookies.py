"""Cookie headers: writing ``Set-Cookie``, reading ``Cookie`` and ``Set-Cookie``.

The standard library's ``SimpleCookie`` is strict in a way that hurts on the
server: one cookie it does not like (a flag without ``=``, a JSON value, a space)
makes it drop *every* cookie of the header, so a stray cookie of another app on
the same domain would log a user out. Reading is therefore done here, leniently,
as browsers and Werkzeug do; writing quotes values with the standard library's
rules so that no CR, LF or ``;`` ever reaches a header.
"""

from __future__ import annotations

import datetime as _dt
import re
from http.cookies import SimpleCookie
from typing import Optional, Union

_OCTAL = re.compile(r"\\([0-3][0-7]{2}|.)", re.DOTALL)


def _unquote(value: str) -> str:
    """A cookie value as sent, without the quotes and escapes a quoting server added."""
    if len(value) < 2 or value[0] != '"' or value[-1] != '"':
        return value
    raw = bytearray()
    pos = 0
    inner = value[1:-1]
    for m in _OCTAL.finditer(inner):
        raw += inner[pos : m.start()].encode()
        escaped = m.group(1)
        raw += bytes([int(escaped, 8)]) if len(escaped) == 3 else escaped.encode()
        pos = m.end()
    raw += inner[pos:].encode()
    return raw.decode("utf-8", "replace")


def parse_cookie(header: str) -> dict[str, str]:
    """``Cookie: a=1; b="x y"`` → ``{"a": "1", "b": "x y"}``. A part without ``=``
    is a name with an empty value; the first of two equal names wins (browsers send
    the cookie of the most specific path first)."""
    cookies: dict[str, str] = {}
    for part in header.split(";"):
        name, _, value = part.partition("=")
        name = name.strip()
        if name and name not in cookies:
            cookies[name] = _unquote(value.strip())
    return cookies


def parse_set_cookie(header: str) -> tuple[str, str, dict[str, str]]:
    """One ``Set-Cookie`` value → ``(name, value, attributes)``; attribute names are
    lower-cased, flags (``Secure``) map to ``""``."""
    first, *rest = header.split(";")
    name, _, value = first.partition("=")
    attrs: dict[str, str] = {}
    for part in rest:
        key, _, val = part.partition("=")
        key = key.strip().lower()
        if key:
            attrs[key] = val.strip()
    return name.strip(), _unquote(value.strip()), attrs


def dump_cookie(
    key: str,
    value: str = "",
    max_age: Union[int, _dt.timedelta, None] = None,
    expires: Optional[Union[_dt.datetime, int, float]] = None,
    path: Optional[str] = "/",
    domain: Optional[str] = None,
    secure: bool = False,
    httponly: bool = False,
    samesite: Optional[str] = None,
    partitioned: bool = False,
) -> str:
    """One ``Set-Cookie`` value. The value is quoted by the standard library's rules
    (octal escapes, so no CR/LF or ``;`` can reach the header); the key must be a
    token. ``SameSite`` must be ``Strict``, ``Lax`` or ``None``."""
    jar: SimpleCookie = SimpleCookie()
    jar[key] = ""  # raises CookieError for a key that is not a token
    quoted = jar.value_encode(value)[1] if value else ""
    if isinstance(max_age, _dt.timedelta):
        max_age = int(max_age.total_seconds())
    if isinstance(expires, (int, float)):
        expires = _dt.datetime.fromtimestamp(expires, tz=_dt.timezone.utc)
    if expires is not None and expires.tzinfo is not None:
        expires = expires.astimezone(_dt.timezone.utc)
    if samesite is not None:
        samesite = samesite.title()
        if samesite not in ("Strict", "Lax", "None"):
            raise ValueError("SameSite must be 'Strict', 'Lax', or 'None'.")
    parts = [f"{key}={quoted}"]
    if domain:
        parts.append(f"Domain={domain}")
    if expires is not None:
        parts.append("Expires=" + expires.strftime("%a, %d %b %Y %H:%M:%S GMT"))
    if max_age is not None:
        parts.append(f"Max-Age={int(max_age)}")
    if secure:
        parts.append("Secure")
    if httponly:
        parts.append("HttpOnly")
    if path:
        parts.append(f"Path={path}")
    if samesite:
        parts.append(f"SameSite={samesite}")
    if partitioned:
        parts.append("Partitioned")
    return "; ".join(parts)
