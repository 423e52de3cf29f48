"""Response helpers: ``jsonify``, ``redirect``, ``make_response``."""

from __future__ import annotations

from typing import Any

from .wrappers import Response, dumps_json


def jsonify(*args: Any, **kwargs: Any) -> Response:
    """A JSON response: ``jsonify(a=1)``, ``jsonify({"a": 1})`` or ``jsonify([1, 2])``."""
    if args and kwargs:
        raise TypeError("jsonify() takes either positional or keyword arguments, not both")
    if len(args) == 1:
        data: Any = args[0]
    elif args:
        data = list(args)
    else:
        data = kwargs
    return Response(dumps_json(data), mimetype="application/json")


def redirect(location: str, code: int = 302) -> Response:
    """A redirect to ``location`` (CR/LF in it raise ``ValueError``)."""
    from html import escape

    body = (
        "<!doctype html>\n<html lang=en>\n<title>Redirecting...</title>\n<h1>Redirecting...</h1>\n"
        "<p>You should be redirected automatically to the target URL: "
        f'<a href="{escape(location)}">{escape(location)}</a>. If not, click the link.\n'
    )
    resp = Response(body, status=code, mimetype="text/html")
    resp.headers.set("Location", location)
    return resp


def make_response(*args: Any) -> Response:
    """Turns any value a view may return into a :class:`Response`, to modify it."""
    from .app import _to_response

    if not args:
        return Response()
    return _to_response(args[0] if len(args) == 1 else tuple(args))
