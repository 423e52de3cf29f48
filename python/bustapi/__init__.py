"""BustAPI: a Flask-style Python web framework with a Rust HTTP engine.

Python views decide *what* to send; the Rust engine decides *how*: routing,
HTTP/1.1 and h2c, and full RFC 9110 file semantics (ranges, multipart ranges,
conditional requests) for static files and ``send_file``/``FileResponse``.
Around it, the application layer Flask users know: contexts (``g``,
``current_app``, ``request``, ``session``), signed cookie sessions, Jinja2
templates, ``url_for``, blueprints, configuration and a click CLI.

>>> from bustapi import BustAPI, send_file
>>> app = BustAPI(__name__, static_folder="static")
"""

from markupsafe import Markup, escape

from ._core import __version__  # Cargo's version, compiled in: the one source
from .app import BustAPI
from .blueprints import Blueprint
from .config import Config
from .ctx import (
    after_this_request,
    copy_current_request_context,
    has_app_context,
    has_request_context,
)
from .datastructures import FileStorage, Headers, MultiDict
from .exceptions import HTTPException, abort
from .files import FileResponse, send_file, send_from_directory
from .globals import current_app, g, request, session
from .helpers import (
    flash,
    get_flashed_messages,
    get_template_attribute,
    jsonify,
    make_response,
    redirect,
    stream_with_context,
    url_for,
)
from .resumable import ResumableUpload
from .routing import BuildError
from .streaming import StreamingResponse
from .templating import (
    render_template,
    render_template_string,
    stream_template,
    stream_template_string,
)
from .utils import secure_filename
from .wrappers import Request, Response, StreamedBodyError

__all__ = [
    "Blueprint",
    "BuildError",
    "BustAPI",
    "Config",
    "FileResponse",
    "FileStorage",
    "HTTPException",
    "Headers",
    "Markup",
    "MultiDict",
    "Request",
    "Response",
    "ResumableUpload",
    "StreamingResponse",
    "abort",
    "after_this_request",
    "copy_current_request_context",
    "current_app",
    "escape",
    "flash",
    "g",
    "get_flashed_messages",
    "get_template_attribute",
    "has_app_context",
    "has_request_context",
    "jsonify",
    "make_response",
    "redirect",
    "render_template",
    "render_template_string",
    "request",
    "secure_filename",
    "send_file",
    "send_from_directory",
    "session",
    "stream_template",
    "stream_template_string",
    "stream_with_context",
    "url_for",
    "StreamedBodyError",
    "__version__",
]
