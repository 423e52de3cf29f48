"""Blueprints: groups of views, hooks, templates and static files that an
application registers, possibly several times and under other prefixes, and
that can nest.

As in Flask, a blueprint *records* what is done to it and replays the records
when it is registered on an app; its endpoints are named ``blueprint.view``
(``outer.inner.view`` when nested). Its static folder becomes an engine-served
mount under the blueprint's URL prefix, with the same range and conditional
behaviour as the app's.
"""

from __future__ import annotations

import os
from collections import defaultdict
from typing import TYPE_CHECKING, Any, Callable, Optional, TypeVar, Union

from .scaffold import Scaffold, _endpoint_from_view_func, _named_decorator

if TYPE_CHECKING:
    from .app import BustAPI

F = TypeVar("F", bound=Callable[..., Any])
DeferredSetupFunction = Callable[["BlueprintSetupState"], None]

_sentinel: Any = object()


class BlueprintSetupState:
    """What one registration of a blueprint on an app knows: the app, the options
    given to ``register_blueprint`` and the resulting prefixes."""

    def __init__(
        self,
        blueprint: Blueprint,
        app: BustAPI,
        options: dict[str, Any],
        first_registration: bool,
    ) -> None:
        self.app = app
        self.blueprint = blueprint
        self.options = options
        self.first_registration = first_registration
        url_prefix = self.options.get("url_prefix")
        if url_prefix is None:
            url_prefix = self.blueprint.url_prefix
        self.url_prefix: Optional[str] = url_prefix
        self.subdomain = self.options.get("subdomain", blueprint.subdomain)
        self.name: str = self.options.get("name", blueprint.name)
        self.name_prefix: str = self.options.get("name_prefix", "")
        self.url_defaults = dict(self.blueprint.url_values_defaults)
        self.url_defaults.update(self.options.get("url_defaults", ()) or ())

    def add_url_rule(
        self,
        rule: str,
        endpoint: Optional[str] = None,
        view_func: Optional[Callable[..., Any]] = None,
        **options: Any,
    ) -> None:
        """Registers a blueprint rule on the app, prefixed and with a dotted endpoint."""
        if self.url_prefix is not None:
            if rule:
                rule = "/".join((self.url_prefix.rstrip("/"), rule.lstrip("/")))
            else:
                rule = self.url_prefix
        if endpoint is None:
            endpoint = _endpoint_from_view_func(view_func)  # type: ignore[arg-type]
        defaults = self.url_defaults
        if "defaults" in options:
            defaults = dict(defaults, **(options.pop("defaults") or {}))
        self.app.add_url_rule(
            rule,
            f"{self.name_prefix}.{self.name}.{endpoint}".lstrip("."),
            view_func,
            defaults=defaults or None,
            **options,
        )


class Blueprint(Scaffold):
    """A reusable part of an application.

    >>> bp = Blueprint("auth", __name__, url_prefix="/auth")
    >>> @bp.route("/login")
    ... def login(): ...
    >>> app.register_blueprint(bp)            # url_for("auth.login") == "/auth/login"
    """

    _got_registered_once = False

    def __init__(
        self,
        name: str,
        import_name: str,
        static_folder: Union[str, os.PathLike[str], None] = None,
        static_url_path: Optional[str] = None,
        template_folder: Union[str, os.PathLike[str], None] = None,
        url_prefix: Optional[str] = None,
        subdomain: Optional[str] = None,
        url_defaults: Optional[dict[str, Any]] = None,
        root_path: Optional[str] = None,
        cli_group: Optional[str] = _sentinel,
        *,
        static_signed: bool = False,
    ) -> None:
        super().__init__(
            import_name=import_name,
            static_folder=static_folder,
            static_url_path=static_url_path,
            template_folder=template_folder,
            root_path=root_path,
        )
        if not name:
            raise ValueError("'name' may not be empty.")
        if "." in name:
            raise ValueError("'name' may not contain a dot '.' character.")
        if subdomain is not None:
            raise NotImplementedError("BustAPI does not route by subdomain (yet)")
        self.name = name
        self.url_prefix = url_prefix
        self.subdomain = subdomain
        self.deferred_functions: list[DeferredSetupFunction] = []
        self.url_values_defaults: dict[str, Any] = dict(url_defaults or {})
        self.cli_group = cli_group
        # The static folder serves only signed URLs (see BustAPI.sign_url).
        self.static_signed = static_signed
        self._blueprints: list[tuple[Blueprint, dict[str, Any]]] = []

    def _check_setup_finished(self, f_name: str) -> None:
        if self._got_registered_once:
            raise AssertionError(
                f"The setup method '{f_name}' can no longer be called on the blueprint"
                f" '{self.name}'. It has already been registered at least once, any changes"
                " will not be applied consistently."
            )

    def record(self, func: DeferredSetupFunction) -> None:
        """Runs ``func(state)`` each time the blueprint is registered."""
        self.deferred_functions.append(func)

    def record_once(self, func: DeferredSetupFunction) -> None:
        """Runs ``func(state)`` only on the blueprint's first registration on an app."""

        def wrapper(state: BlueprintSetupState) -> None:
            if state.first_registration:
                func(state)

        self.record(wrapper)

    def make_setup_state(
        self, app: BustAPI, options: dict[str, Any], first_registration: bool = False
    ) -> BlueprintSetupState:
        return BlueprintSetupState(self, app, options, first_registration)

    def register_blueprint(self, blueprint: Blueprint, **options: Any) -> None:
        """Nests ``blueprint`` inside this one: its endpoints become
        ``this.that.view`` and its URLs get this blueprint's prefix too."""
        if blueprint is self:
            raise ValueError("Cannot register a blueprint on itself")
        self._blueprints.append((blueprint, options))

    def register(self, app: BustAPI, options: dict[str, Any]) -> None:
        """Called by ``app.register_blueprint``: replays what was recorded."""
        name_prefix = options.get("name_prefix", "")
        self_name = options.get("name", self.name)
        name = f"{name_prefix}.{self_name}".lstrip(".")
        if name in app.blueprints:
            bp_desc = "this" if app.blueprints[name] is self else "a different"
            existing_at = f" '{name}'" if self_name != name else ""
            raise ValueError(
                f"The name '{self_name}' is already registered for {bp_desc} blueprint"
                f"{existing_at}. Use 'name=' to provide a unique name."
            )
        first_bp_registration = not any(bp is self for bp in app.blueprints.values())
        app.blueprints[name] = self
        self._got_registered_once = True
        state = self.make_setup_state(app, options, first_bp_registration)
        if self.has_static_folder:
            self._mount_static(app, state)
        self._merge_blueprint_funcs(app, name)
        for deferred in self.deferred_functions:
            deferred(state)
        self._register_cli(app, options)
        for blueprint, bp_options in self._blueprints:
            bp_options = bp_options.copy()
            bp_url_prefix = bp_options.get("url_prefix")
            if bp_url_prefix is None:
                bp_url_prefix = blueprint.url_prefix
            if state.url_prefix is not None and bp_url_prefix is not None:
                bp_options["url_prefix"] = (
                    state.url_prefix.rstrip("/") + "/" + bp_url_prefix.lstrip("/")
                )
            elif bp_url_prefix is not None:
                bp_options["url_prefix"] = bp_url_prefix
            elif state.url_prefix is not None:
                bp_options["url_prefix"] = state.url_prefix
            bp_options["name_prefix"] = name
            blueprint.register(app, bp_options)

    def _mount_static(self, app: BustAPI, state: BlueprintSetupState) -> None:
        """The blueprint's static folder, served by the engine (no Python per file)
        under the blueprint's prefix; ``url_for("bp.static", filename=...)`` names it."""
        url_path = self.static_url_path or ""
        if state.url_prefix:
            url_path = state.url_prefix.rstrip("/") + "/" + url_path.lstrip("/")
        url_path = "/" + url_path.strip("/")
        if url_path == "/":
            raise ValueError(
                f"blueprint {self.name!r}: its static folder would be mounted at '/',"
                " shadowing every route; give it a url_prefix or static_url_path"
            )
        app._add_static_mount(url_path, self.static_folder or "", signed=self.static_signed)
        endpoint = f"{state.name_prefix}.{state.name}.static".lstrip(".")
        app._add_build_rule(f"{url_path}/<path:filename>", endpoint, ("GET",))

    def _merge_blueprint_funcs(self, app: BustAPI, name: str) -> None:
        def extend(bp_dict: dict[Any, list[Any]], parent_dict: dict[Any, list[Any]]) -> None:
            for key, values in bp_dict.items():
                key = name if key is None else f"{name}.{key}"
                parent_dict.setdefault(key, []).extend(values)

        for key, value in self.error_handler_spec.items():
            key = name if key is None else f"{name}.{key}"
            merged: dict[Optional[int], dict[type[BaseException], Any]] = defaultdict(dict)
            for code, handlers in value.items():
                merged[code] = dict(handlers)
            app.error_handler_spec[key] = merged
        for endpoint, func in self.view_functions.items():
            app.view_functions[endpoint] = func
        extend(self.before_request_funcs, app.before_request_funcs)
        extend(self.after_request_funcs, app.after_request_funcs)
        extend(self.teardown_request_funcs, app.teardown_request_funcs)
        extend(self.url_default_functions, app.url_default_functions)
        extend(self.url_value_preprocessors, app.url_value_preprocessors)
        extend(self.template_context_processors, app.template_context_processors)

    def _register_cli(self, app: BustAPI, options: dict[str, Any]) -> None:
        if self._cli is None or not self._cli.commands:
            return
        cli_resolved_group = options.get("cli_group", self.cli_group)
        if cli_resolved_group is None:
            app.cli.commands.update(self._cli.commands)
        elif cli_resolved_group is _sentinel:
            self._cli.name = options.get("name", self.name)
            app.cli.add_command(self._cli)
        else:
            self._cli.name = cli_resolved_group
            app.cli.add_command(self._cli)

    # -- registration, recorded ------------------------------------------------------

    def add_url_rule(
        self,
        rule: str,
        endpoint: Optional[str] = None,
        view_func: Optional[Callable[..., Any]] = None,
        provide_automatic_options: Optional[bool] = None,
        **options: Any,
    ) -> None:
        """Records a rule; it is added to the app (prefixed, endpoint ``bp.name``) on
        registration."""
        if endpoint and "." in endpoint:
            raise ValueError("'endpoint' may not contain a dot '.' character.")
        if view_func is not None and "." in getattr(view_func, "__name__", ""):
            raise ValueError("'view_func' name may not contain a dot '.' character.")
        self._check_setup_finished("add_url_rule")
        if provide_automatic_options is not None:
            options["provide_automatic_options"] = provide_automatic_options
        self.record(lambda s: s.add_url_rule(rule, endpoint, view_func, **options))

    def app_template_filter(self, name: Optional[str] = None) -> Callable[[F], F]:
        """A template filter available in every template of the app."""
        return _named_decorator(self.add_app_template_filter, name)

    def add_app_template_filter(self, f: Callable[..., Any], name: Optional[str] = None) -> None:
        self._record_app_call("add_template_filter", f, name)

    def app_template_test(self, name: Optional[str] = None) -> Callable[[F], F]:
        """A template test available in every template of the app."""
        return _named_decorator(self.add_app_template_test, name)

    def add_app_template_test(self, f: Callable[..., bool], name: Optional[str] = None) -> None:
        self._record_app_call("add_template_test", f, name)

    def app_template_global(self, name: Optional[str] = None) -> Callable[[F], F]:
        """A template global available in every template of the app."""
        return _named_decorator(self.add_app_template_global, name)

    def add_app_template_global(self, f: Callable[..., Any], name: Optional[str] = None) -> None:
        self._record_app_call("add_template_global", f, name)

    def _record_app_call(self, add: str, f: Callable[..., Any], name: Optional[str]) -> None:
        """On first registration, calls the app's ``add`` method (``add_template_filter``
        ...) with ``f``."""
        self.record_once(lambda s: getattr(s.app, add)(f, name=name))

    def before_app_request(self, f: F) -> F:
        """Like ``app.before_request``: runs before every request of the app."""
        self.record_once(lambda s: s.app.before_request_funcs.setdefault(None, []).append(f))
        return f

    def after_app_request(self, f: F) -> F:
        """Like ``app.after_request``: runs after every request of the app."""
        self.record_once(lambda s: s.app.after_request_funcs.setdefault(None, []).append(f))
        return f

    def teardown_app_request(self, f: F) -> F:
        """Like ``app.teardown_request``: runs after every request of the app."""
        self.record_once(lambda s: s.app.teardown_request_funcs.setdefault(None, []).append(f))
        return f

    def app_context_processor(self, f: F) -> F:
        """A context processor for every template of the app."""
        self.record_once(lambda s: s.app.template_context_processors.setdefault(None, []).append(f))
        return f

    def app_errorhandler(self, code: Union[int, type[BaseException]]) -> Callable[[F], F]:
        """An error handler for the whole app (``errorhandler`` only sees this
        blueprint's own errors)."""

        def decorator(f: F) -> F:
            def register(state: BlueprintSetupState) -> None:
                state.app.errorhandler(code)(f)

            self.record_once(register)
            return f

        return decorator

    def app_url_value_preprocessor(self, f: F) -> F:
        self.record_once(lambda s: s.app.url_value_preprocessors.setdefault(None, []).append(f))
        return f

    def app_url_defaults(self, f: F) -> F:
        self.record_once(lambda s: s.app.url_default_functions.setdefault(None, []).append(f))
        return f
