"""Templates with **Jinja2**: ``render_template``, ``render_template_string``,
``stream_template``, ``stream_template_string``.

Templates are looked up in the application's ``template_folder`` first, then in
each registered blueprint's, in registration order, as in Flask. Autoescaping is
on for ``.html``, ``.htm``, ``.xml``, ``.xhtml`` and ``.svg`` templates and for
strings. Every template sees ``config``, ``request``, ``session``, ``g``,
``url_for`` and ``get_flashed_messages``, plus what context processors add. In
debug mode (or with ``TEMPLATES_AUTO_RELOAD``) a changed template is re-read.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

from jinja2 import BaseLoader, FileSystemLoader, Template, TemplateNotFound
from jinja2 import Environment as BaseEnvironment
from markupsafe import Markup

from .globals import _cv_app, _cv_request, current_app

if TYPE_CHECKING:
    from .app import BustAPI
    from .scaffold import Scaffold

_AUTOESCAPED = (".html", ".htm", ".xml", ".xhtml", ".svg")


def select_jinja_autoescape(filename: Optional[str]) -> bool:
    """Autoescape for HTML-like templates and for template strings (no name)."""
    if filename is None:
        return True
    return filename.endswith(_AUTOESCAPED)


def _default_template_ctx_processor() -> dict[str, Any]:
    rv: dict[str, Any] = {}
    app_ctx = _cv_app.get(None)
    if app_ctx is not None:
        rv["g"] = app_ctx.g
    req_ctx = _cv_request.get(None)
    if req_ctx is not None:
        rv["request"] = req_ctx.request
        rv["session"] = req_ctx.session
    return rv


def _tojson(value: Any, indent: Optional[int] = None, **kwargs: Any) -> Markup:
    """``{{ data|tojson }}``: JSON safe to place in HTML and in ``<script>``."""
    from .wrappers import _json_default

    text = json.dumps(value, indent=indent, default=_json_default, sort_keys=True, **kwargs)
    text = (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("'", "\\u0027")
    )
    return Markup(text)


class DispatchingJinjaLoader(BaseLoader):
    """Finds a template in the app's folder, then in the blueprints' folders."""

    def __init__(self, app: BustAPI) -> None:
        self.app = app

    def _loaders(self) -> Iterator[tuple[Scaffold, BaseLoader]]:
        loader = jinja_loader(self.app)
        if loader is not None:
            yield self.app, loader
        for blueprint in self.app.iter_blueprints():
            loader = jinja_loader(blueprint)
            if loader is not None:
                yield blueprint, loader

    def get_source(
        self, environment: BaseEnvironment, template: str
    ) -> tuple[str, Optional[str], Optional[Callable[[], bool]]]:
        tried = []
        for _scaffold, loader in self._loaders():
            try:
                return loader.get_source(environment, template)
            except TemplateNotFound:
                tried.append(loader)
        if self.app.config.get("EXPLAIN_TEMPLATE_LOADING"):
            searched = [getattr(loader, "searchpath", loader) for loader in tried]
            self.app.logger.info("Template %r not found; searched %s", template, searched)
        raise TemplateNotFound(template)

    def list_templates(self) -> list[str]:
        found: set[str] = set()
        for _scaffold, loader in self._loaders():
            found.update(loader.list_templates())
        return sorted(found)


def jinja_loader(scaffold: Scaffold) -> Optional[FileSystemLoader]:
    """A loader for ``scaffold``'s ``template_folder`` (relative to its root path)."""
    if scaffold.template_folder is None:
        return None
    return FileSystemLoader(os.path.join(scaffold.root_path, scaffold.template_folder))


# What a plain dict has as attributes: every other ``{{ d.name }}`` is an item.
_DICT_ATTRIBUTES = frozenset(dir(dict))


class Environment(BaseEnvironment):
    """Jinja's environment, bound to an application."""

    def __init__(self, app: BustAPI, **options: Any) -> None:
        if "loader" not in options:
            options["loader"] = DispatchingJinjaLoader(app)
        super().__init__(**options)
        self.app = app

    def getattr(self, obj: Any, attribute: str) -> Any:
        """``{{ row.name }}``, as Jinja resolves it (the attribute, else the item),
        with the item looked up first on a plain dict for a name that is not one of
        dict's own attributes: Jinja would find no such attribute, and pay for the
        AttributeError each time, on every row of a table of dicts."""
        if type(obj) is dict and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except (TypeError, LookupError):
                pass  # Jinja's own lookup gives the same undefined value
        return super().getattr(obj, attribute)


def create_jinja_environment(app: BustAPI) -> Environment:
    """The app's environment, with Flask's globals and filters and the app's own."""
    auto_reload = app.config.get("TEMPLATES_AUTO_RELOAD")
    if auto_reload is None:
        auto_reload = app.debug
    options = dict(getattr(app, "jinja_options", {}) or {})
    options.setdefault("autoescape", select_jinja_autoescape)
    options.setdefault("auto_reload", bool(auto_reload))
    env = Environment(app, **options)
    from .helpers import get_flashed_messages, url_for

    env.globals.update(
        url_for=url_for,
        get_flashed_messages=get_flashed_messages,
        config=app.config,
        request=None,
        session=None,
        g=None,
    )
    env.filters["tojson"] = _tojson
    env.filters.update(app.template_filters)
    env.globals.update(app.template_globals)
    env.tests.update(app.template_tests)
    return env


def _render(app: BustAPI, template: Template, context: dict[str, Any]) -> str:
    context.update(_default_template_ctx_processor())
    app.update_template_context(context)
    return template.render(context)


def render_template(
    template_name_or_list: Union[str, Template, list[Union[str, Template]]], **context: Any
) -> str:
    """Renders a template from the template folders with ``context``:
    ``render_template("hello.html", name="Ada")``; a list tries each name in turn."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    template = app.jinja_env.get_or_select_template(template_name_or_list)
    return _render(app, template, context)


def render_template_string(source: str, **context: Any) -> str:
    """Renders a template given as a string (autoescaped)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    template = app.jinja_env.from_string(source)
    return _render(app, template, context)


def _stream(app: BustAPI, template: Template, context: dict[str, Any]) -> Iterator[str]:
    context.update(_default_template_ctx_processor())
    app.update_template_context(context)
    generator = template.generate(context)
    if _cv_request.get(None) is not None:
        from .helpers import stream_with_context

        return stream_with_context(generator)
    return generator


def stream_template(
    template_name_or_list: Union[str, Template, list[Union[str, Template]]], **context: Any
) -> Iterator[str]:
    """Renders a template piece by piece: return it from a view to stream the page."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    template = app.jinja_env.get_or_select_template(template_name_or_list)
    return _stream(app, template, context)


def stream_template_string(source: str, **context: Any) -> Iterator[str]:
    """:func:`stream_template` for a template given as a string."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    return _stream(app, app.jinja_env.from_string(source), context)
