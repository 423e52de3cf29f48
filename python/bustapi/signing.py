"""Signed, expiring URLs: the keys an application signs with and ``sign_url``.

A view decides once who may fetch a file (login, ownership) and hands out a
URL signed with HMAC-SHA256; the engine checks the signature on every request
to a signed static mount or route, before it opens a file or runs a view.
Signing happens in the engine's own code (``_core.UrlSigner``), so what Python
signs is exactly what the engine verifies.

Keys come from ``SIGNING_KEYS`` (a list: URLs are signed with the first key,
any of them is accepted, so a key is rotated by putting the new one first and
dropping the old one once its URLs have expired). Without ``SIGNING_KEYS`` the
application's ``SECRET_KEY`` (and ``SECRET_KEY_FALLBACKS``, as Flask 3.1 uses them
for sessions) are used; the engine derives a URL-only key from each, so no
session cookie is ever signed with the same key as a URL.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Optional, Union
from urllib.parse import quote

from . import _core

ExpiresIn = Union[int, float, timedelta]

# Characters kept as they are when a path is made a URL path: everything a URL
# path may hold, and "%" so an already-encoded path (from url_for) is unchanged.
_PATH_SAFE = "/%:@!$&'()*+,;=~-._"


def _key_bytes(key: Any, where: str) -> bytes:
    if isinstance(key, str):
        key = key.encode()
    if not isinstance(key, bytes) or not key:
        raise TypeError(f"{where} must hold non-empty str or bytes keys, not {key!r}")
    return key


def signing_keys(config: Any) -> tuple[bytes, ...]:
    """The keys from ``SIGNING_KEYS``, else ``SECRET_KEY`` and its fallbacks."""
    keys = config.get("SIGNING_KEYS")
    if keys:
        if isinstance(keys, (str, bytes)):
            raise TypeError("SIGNING_KEYS must be a list of keys (newest first), not a single key")
        return tuple(_key_bytes(k, "SIGNING_KEYS") for k in keys)
    secret = config.get("SECRET_KEY")
    if not secret:
        return ()
    fallbacks: Sequence[Any] = config.get("SECRET_KEY_FALLBACKS") or ()
    return tuple(_key_bytes(k, "SECRET_KEY") for k in (secret, *fallbacks))


class Signer:
    """Caches one ``_core.UrlSigner`` per key set (building one derives keys)."""

    def __init__(self) -> None:
        self._keys: tuple[bytes, ...] = ()
        self._signer: Optional[_core.UrlSigner] = None

    def for_keys(self, keys: tuple[bytes, ...]) -> Optional[_core.UrlSigner]:
        if keys != self._keys or (keys and self._signer is None):
            self._keys = keys
            self._signer = _core.UrlSigner(list(keys)) if keys else None
        return self._signer


def expiry(expires_in: ExpiresIn) -> int:
    """The Unix time ``expires_in`` (seconds or a timedelta) from now: rounded up
    (a URL never expires early), and down for a time already past."""
    if isinstance(expires_in, timedelta):
        seconds = expires_in.total_seconds()
    elif isinstance(expires_in, (int, float)) and not isinstance(expires_in, bool):
        seconds = float(expires_in)
    else:
        raise TypeError(f"expires_in must be seconds or a timedelta, not {expires_in!r}")
    at = time.time() + seconds
    return max(0, math.ceil(at) if seconds > 0 else math.floor(at))


def sign_path(
    signer: _core.UrlSigner,
    url: str,
    expires_in: ExpiresIn,
    ip: Optional[str],
    prefix: Union[str, bool, None],
) -> str:
    """``url`` (a path, maybe with a query and fragment) with the signature added."""
    url, hash_mark, fragment = url.partition("#")
    path, question_mark, query = url.partition("?")
    path = quote(path, safe=_PATH_SAFE)
    if prefix is True:
        prefix = path.rsplit("/", 1)[0] + "/"
    elif isinstance(prefix, str):
        prefix = quote(prefix, safe=_PATH_SAFE)
    signature = signer.sign(path, expiry(expires_in), ip=ip, prefix=prefix or None)
    query = f"{query}&{signature}" if query else signature
    return f"{path}?{query}{hash_mark}{fragment}"
