"""Multipart bodies written by hand, and exchanges that send a body while reading the
answer (a server that refuses a body midway answers before it has read it all)."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterable
from pathlib import Path

from conftest import Result, read_response

BOUNDARY = "----UploadTestBoundary7MA4YWxkTrZu0gW"


def field(name: str, value: bytes, headers: str = "") -> bytes:
    """One form-field part (no filename); ``headers`` adds raw header lines."""
    head = f'Content-Disposition: form-data; name="{name}"\r\n{headers}'
    return b"--" + BOUNDARY.encode() + b"\r\n" + head.encode() + b"\r\n" + value + b"\r\n"


def file(name: str, filename: str, content: bytes, ctype: str = "application/x-test") -> bytes:
    """One file part; ``filename`` is written raw (UTF-8), as browsers do."""
    head = (
        f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
        f"Content-Type: {ctype}\r\n"
    )
    return b"--" + BOUNDARY.encode() + b"\r\n" + head.encode() + b"\r\n" + content + b"\r\n"


def closing() -> bytes:
    return b"--" + BOUNDARY.encode() + b"--\r\n"


CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def head(path: str, length: int | None = None, extra: str = "") -> bytes:
    """A POST head for a multipart body: Content-Length, or chunked when ``length`` is None."""
    framing = "Transfer-Encoding: chunked" if length is None else f"Content-Length: {length}"
    return (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {CONTENT_TYPE}\r\n{framing}\r\n"
        f"{extra}\r\n"
    ).encode()


def chunked(pieces: Iterable[bytes]) -> Iterable[bytes]:
    for piece in pieces:
        if piece:
            yield b"%x\r\n" % len(piece) + piece + b"\r\n"
    yield b"0\r\n\r\n"


def exchange(port: int, pieces: Iterable[bytes], timeout: float = 60) -> Result:
    """Sends ``pieces`` from a thread while reading one response: the server may
    answer (413, 400, 507) before it has read the body, then close."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)

    def send() -> None:
        try:
            for piece in pieces:
                sock.sendall(piece)
        except OSError:
            pass  # the server answered and closed before taking everything

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    try:
        return read_response(sock.makefile("rb"))
    finally:
        sender.join(timeout)
        sock.close()


def leftovers(folder: Path) -> list[str]:
    """What is left in an upload temp folder."""
    return sorted(os.listdir(folder))
