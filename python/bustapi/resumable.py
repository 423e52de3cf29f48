"""Resumable uploads: the tus 1.0 protocol, served by the engine.

``app.resumable_uploads("/files/", folder="incoming", on_complete=saved)`` makes
``/files/`` a tus endpoint (https://tus.io). Upload bytes go from the socket to
disk in the Rust engine and never through Python; the application is asked only
whether a creation may go ahead (``authorize``) and told once when an upload has
completed (``on_complete``). Both run like views — in a request context, with
``request``, ``session``, ``g`` and the app's ``before_request`` hooks — and get a
:class:`ResumableUpload` describing the upload.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from .exceptions import Forbidden


@dataclass(frozen=True)
class ResumableUpload:
    """One tus upload, as ``authorize`` and ``on_complete`` see it.

    ``path`` is where the finished file is (``on_complete``) or will be
    (``authorize``): ``<folder>/<id>``. ``length`` is ``None`` while the client
    defers it. ``metadata`` is the decoded ``Upload-Metadata`` the client sent
    at creation (``{"filename": "talk.mp4"}``): values are text (UTF-8, undecodable
    bytes replaced), ``""`` for a key sent without a value. Client-supplied: treat
    it as untrusted (``secure_filename`` before using a name on disk).
    """

    id: str
    path: str
    size: int
    length: Optional[int]
    metadata: dict[str, str] = field(default_factory=dict)


def parse_metadata(header: str) -> dict[str, str]:
    """Decodes an ``Upload-Metadata`` header (the engine has already checked it)."""
    result: dict[str, str] = {}
    for pair in header.split(","):
        key, _, encoded = pair.strip().partition(" ")
        if not key:
            continue
        try:
            raw = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        result[key] = raw.decode("utf-8", "replace")
    return result


def _upload(params: dict[str, str]) -> ResumableUpload:
    length = params.get("length", "")
    return ResumableUpload(
        id=params["id"],
        path=params["path"],
        size=int(params["size"]),
        length=int(length) if length else None,
        metadata=parse_metadata(params.get("metadata", "")),
    )


def authorize_view(authorize: Callable[[ResumableUpload], Any]) -> Callable[..., Any]:
    """The hidden view the engine calls before creating an upload. ``authorize``
    allows it by returning ``None`` or ``True``; it refuses by returning ``False``
    (403), a response (``("login first", 401)``), or by raising (``abort(401)``).
    The engine creates the upload on any 2xx answer and passes anything else on."""

    def view(**params: str) -> Any:
        rv = authorize(_upload(params))
        if rv is None or rv is True:
            return "", 204
        if rv is False:
            raise Forbidden()
        return rv

    return view


def complete_view(on_complete: Callable[[ResumableUpload], Any]) -> Callable[..., Any]:
    """The hidden view the engine calls once an upload's last byte is on disk.
    What ``on_complete`` returns is ignored; if it raises, the client's last
    PATCH is answered with the 500 (the upload stays complete)."""

    def view(**params: str) -> Any:
        on_complete(_upload(params))
        return "", 204

    return view
