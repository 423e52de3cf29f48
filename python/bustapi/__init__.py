"""BustAPI: a Flask-style Python web framework with a Rust HTTP engine.

Python views decide *what* to send; the Rust engine decides *how*: routing,
HTTP/1.1 and h2c, and full RFC 9110 file semantics (ranges, multipart ranges,
conditional requests) for static files and ``send_file``/``FileResponse``.

>>> from bustapi import BustAPI, send_file
>>> app = BustAPI(static_folder="static")
"""

from ._core import __version__  # Cargo's version, compiled in: the one source
from .app import BustAPI
from .datastructures import Headers, MultiDict
from .exceptions import HTTPException, abort
from .files import FileResponse, send_file, send_from_directory
from .globals import request
from .helpers import jsonify, make_response, redirect
from .streaming import StreamingResponse
from .wrappers import Request, Response, StreamedBodyError

__all__ = [
    "BustAPI",
    "FileResponse",
    "HTTPException",
    "Headers",
    "MultiDict",
    "Request",
    "Response",
    "abort",
    "jsonify",
    "make_response",
    "redirect",
    "request",
    "send_file",
    "send_from_directory",
    "StreamedBodyError",
    "StreamingResponse",
    "__version__",
]
