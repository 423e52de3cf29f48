"""Class-based views: :class:`View` and :class:`MethodView`.

>>> class UserAPI(MethodView):
...     def get(self, id): ...
...     def post(self): ...
>>> app.add_url_rule("/users/<int:id>", view_func=UserAPI.as_view("user"))
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar, Optional

from .app import _await
from .globals import request

http_method_funcs = frozenset(["get", "post", "head", "options", "delete", "put", "trace", "patch"])


class View:
    """Subclass and implement :meth:`dispatch_request`; register with
    ``app.add_url_rule(rule, view_func=MyView.as_view("name"))``.

    ``methods`` lists the HTTP methods; ``decorators`` wrap the generated function;
    with ``init_every_request = False`` one instance serves every request.
    """

    methods: ClassVar[Optional[set[str]]] = None
    provide_automatic_options: ClassVar[Optional[bool]] = None
    decorators: ClassVar[list[Callable[..., Any]]] = []
    init_every_request: ClassVar[bool] = True

    def dispatch_request(self, **kwargs: Any) -> Any:
        raise NotImplementedError()

    @classmethod
    def as_view(cls, name: str, *class_args: Any, **class_kwargs: Any) -> Callable[..., Any]:
        """A view function (named ``name``, the endpoint) that runs this class."""
        if cls.init_every_request:

            def view(**kwargs: Any) -> Any:
                self = view.view_class(*class_args, **class_kwargs)  # type: ignore[attr-defined]
                return _await(self.dispatch_request(**kwargs))

        else:
            self = cls(*class_args, **class_kwargs)

            def view(**kwargs: Any) -> Any:
                return _await(self.dispatch_request(**kwargs))

        if cls.decorators:
            view.__name__ = name
            view.__module__ = cls.__module__
            for decorator in cls.decorators:
                view = decorator(view)
        view.view_class = cls  # type: ignore[attr-defined]
        view.__name__ = name
        view.__doc__ = cls.__doc__
        view.__module__ = cls.__module__
        view.methods = cls.methods  # type: ignore[attr-defined]
        view.provide_automatic_options = cls.provide_automatic_options  # type: ignore[attr-defined]
        return view


class MethodView(View):
    """Dispatches to the method named after the HTTP method (``get``, ``post``...);
    ``methods`` is derived from the methods the class defines, and HEAD falls back
    to ``get``."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "methods" not in cls.__dict__:
            methods = set()
            for base in cls.__bases__:
                if getattr(base, "methods", None):
                    methods.update(base.methods)  # type: ignore[attr-defined]
            for key in http_method_funcs:
                if hasattr(cls, key):
                    methods.add(key.upper())
            if methods:
                cls.methods = methods

    def dispatch_request(self, **kwargs: Any) -> Any:
        meth = getattr(self, request.method.lower(), None)
        if meth is None and request.method == "HEAD":
            meth = getattr(self, "get", None)
        assert meth is not None, f"Unimplemented method {request.method!r}"
        return _await(meth(**kwargs))
