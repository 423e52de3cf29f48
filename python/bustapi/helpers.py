"""Helpers used in views: ``url_for``, ``flash``, ``redirect``, ``jsonify``,
``make_response``, ``stream_with_context``, ``get_template_attribute``."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from typing import Any, Callable, Optional, Union

from .globals import _cv_app, _cv_request, current_app, session
from .signing import ExpiresIn
from .wrappers import Response, dumps_json


def url_for(
    endpoint: str,
    *,
    _anchor: Optional[str] = None,
    _method: Optional[str] = None,
    _scheme: Optional[str] = None,
    _external: Optional[bool] = None,
    _signed: bool = False,
    _expires_in: ExpiresIn = 3600,
    _signed_ip: Union[str, bool, None] = None,
    _signed_prefix: Union[str, bool, None] = None,
    **values: Any,
) -> str:
    """The URL of ``endpoint`` built from its rule: ``url_for("user", id=7)`` →
    ``/user/7``.

    Values the rule does not take become the query string; ``.name`` is relative to
    the current blueprint; ``url_for("static", filename="app.css")`` names a static
    file. ``_external=True`` gives an absolute URL (``_scheme`` to pick the scheme),
    ``_anchor`` appends ``#...``, ``_method`` picks the rule for that method. An
    impossible build raises :class:`~bustapi.routing.BuildError`.

    ``_signed=True`` signs the URL for a signed route or static mount, good for
    ``_expires_in`` (seconds or a timedelta, default one hour); ``_signed_ip`` and
    ``_signed_prefix`` are :meth:`~bustapi.BustAPI.sign_url`'s ``ip`` and ``prefix``.
    """
    ctx = _cv_app.get(None)
    if ctx is None:
        raise RuntimeError(
            "Attempted to generate a URL without the application context being pushed."
            " This has to be executed when application context is available."
        )
    if (
        _anchor is None
        and _method is None
        and _scheme is None
        and _external is None
        and not _signed
    ):
        # A template's links: passing the eight defaults on costs a page of twenty
        # links ~5 % of its Python time (bench/dispatch_profile.py).
        return ctx.app.url_for(endpoint, **values)
    return ctx.app.url_for(
        endpoint,
        _anchor=_anchor,
        _method=_method,
        _scheme=_scheme,
        _external=_external,
        _signed=_signed,
        _expires_in=_expires_in,
        _signed_ip=_signed_ip,
        _signed_prefix=_signed_prefix,
        **values,
    )


def flash(message: str, category: str = "message") -> None:
    """Stores ``message`` in the session for the next page that calls
    :func:`get_flashed_messages` (usually the page a redirect leads to)."""
    flashes = session.get("_flashes", [])
    flashes.append((category, message))
    session["_flashes"] = flashes


def get_flashed_messages(
    with_categories: bool = False, category_filter: Iterable[str] = ()
) -> Union[list[str], list[tuple[str, str]]]:
    """The messages flashed so far, removed from the session; the same list for the
    rest of this request. ``with_categories=True`` gives ``(category, message)``."""
    ctx = _cv_request.get(None)
    if ctx is None:
        return []
    flashes = ctx.flashes
    if flashes is None:
        flashes = [tuple(f) for f in session.pop("_flashes")] if "_flashes" in session else []
        ctx.flashes = flashes
    if category_filter:
        wanted = set(category_filter)
        flashes = [f for f in flashes if f[0] in wanted]
    if not with_categories:
        return [message for _, message in flashes]
    return [(c, m) for c, m in flashes]


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


def redirect(location: str, code: int = 302, Response: Optional[type[Response]] = None) -> Response:  # noqa: N803
    """A redirect to ``location`` (CR/LF in it raise ``ValueError``)."""
    from html import escape

    from .wrappers import Response as DefaultResponse

    cls = Response or DefaultResponse
    body = (
        "<!doctype html>\n<html lang=en>\n<title>Redirecting...</title>\n<h1>Redirecting...</h1>\n"
        "<p>You should be redirected automatically to the target URL: "
        f'<a href="{escape(location)}">{escape(location)}</a>. If not, click the link.\n'
    )
    resp = cls(body, status=code, mimetype="text/html")
    resp.headers.set("Location", location)
    return resp


def make_response(*args: Any) -> Response:
    """Turns any value a view may return into a :class:`Response`, to modify it."""
    from .app import _to_response

    if not args:
        ctx = _cv_app.get(None)
        return ctx.app.response_class() if ctx is not None else Response()
    rv = args[0] if len(args) == 1 else tuple(args)
    ctx = _cv_app.get(None)
    if ctx is not None:
        return ctx.app.make_response(rv)
    return _to_response(rv)


def stream_with_context(
    generator_or_function: Union[Iterator[Any], Callable[..., Iterator[Any]]],
) -> Any:
    """Keeps the request context (``request``, ``session``, ``g``) usable while a
    streamed response's generator runs, after the view has returned."""
    if callable(generator_or_function) and not hasattr(generator_or_function, "__next__"):
        func = generator_or_function

        @functools.wraps(func)
        def decorator(*args: Any, **kwargs: Any) -> Any:
            return stream_with_context(func(*args, **kwargs))

        return decorator
    gen = generator_or_function
    ctx = _cv_request.get(None)
    if ctx is None:
        raise RuntimeError(
            "'stream_with_context' can only be used when a request context is active, such"
            " as in a view function."
        )
    copied = ctx.copy()

    def generator() -> Iterator[Any]:
        with copied:
            try:
                yield from gen  # type: ignore[misc]
            finally:
                close = getattr(gen, "close", None)
                if close is not None:
                    close()

    return generator()


def get_template_attribute(template_name: str, attribute: str) -> Any:
    """A macro or variable of a template, to call from Python:
    ``get_template_attribute("_macros.html", "hello")("World")``."""
    return getattr(current_app.jinja_env.get_template(template_name).module, attribute)
