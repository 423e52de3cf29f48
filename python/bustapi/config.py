"""``app.config``: a dict with Flask's loaders.

>>> config = Config("/srv/app", {"DEBUG": False})
>>> config.from_mapping(SECRET_KEY="dev")
True

Only upper-case keys are taken from objects, files and mappings, as in Flask,
so module-level helpers and imports never leak into the configuration. Keys the
engine uses (``MAX_CONTENT_LENGTH``, ``SEND_FILE_MAX_AGE_DEFAULT``, ...) are read
when the app starts serving or builds a test client, so they take effect however
they were set.
"""

from __future__ import annotations

import errno
import importlib
import json
import os
import types
from collections.abc import Mapping
from typing import IO, Any, Callable, Optional, Union

PathLike = Union[str, "os.PathLike[str]"]


class ConfigAttribute:
    """Forwards an app attribute to a config key: ``app.testing`` is
    ``app.config["TESTING"]``."""

    def __init__(self, name: str, get_converter: Optional[Callable[[Any], Any]] = None) -> None:
        self.__name__ = name
        self.get_converter = get_converter

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:
            return self
        rv = obj.config[self.__name__]
        if self.get_converter is not None:
            rv = self.get_converter(rv)
        return rv

    def __set__(self, obj: Any, value: Any) -> None:
        obj.config[self.__name__] = value


class Config(dict):
    """The application's configuration; ``root_path`` anchors relative file names."""

    def __init__(self, root_path: PathLike, defaults: Optional[Mapping[str, Any]] = None) -> None:
        super().__init__(defaults or {})
        self.root_path = os.fspath(root_path)

    def from_envvar(self, variable_name: str, silent: bool = False) -> bool:
        """Loads the Python file named by the environment variable ``variable_name``."""
        filename = os.environ.get(variable_name)
        if not filename:
            if silent:
                return False
            raise RuntimeError(
                f"The environment variable {variable_name!r} is not set and as such configuration"
                " could not be loaded. Set this variable and make it point to a configuration"
                " file"
            )
        return self.from_pyfile(filename, silent=silent)

    def from_prefixed_env(
        self, prefix: str = "BUSTAPI", *, loads: Callable[[str], Any] = json.loads
    ) -> bool:
        """Loads ``{prefix}_KEY`` environment variables as ``KEY`` (values parsed with
        ``loads``, kept as strings when that fails); ``{prefix}_A__B`` sets
        ``config["A"]["B"]``."""
        prefix = f"{prefix}_"
        for key in sorted(os.environ):
            if not key.startswith(prefix):
                continue
            raw = os.environ[key]
            value: Any
            try:
                value = loads(raw)
            except Exception:
                value = raw
            key = key[len(prefix) :]
            if "__" not in key:
                self[key] = value
                continue
            current: dict[str, Any] = self
            *parts, tail = key.split("__")
            for part in parts:
                if part not in current:
                    current[part] = {}
                current = current[part]
            current[tail] = value
        return True

    def from_pyfile(self, filename: PathLike, silent: bool = False) -> bool:
        """Executes a Python file (relative to ``root_path``) and loads its upper-case names."""
        filename = os.path.join(self.root_path, filename)
        module = types.ModuleType("config")
        module.__file__ = filename
        try:
            with open(filename, mode="rb") as f:
                exec(compile(f.read(), filename, "exec"), module.__dict__)
        except OSError as e:
            if silent and e.errno in (errno.ENOENT, errno.EISDIR, errno.ENOTDIR):
                return False
            e.strerror = f"Unable to load configuration file ({e.strerror})"
            raise
        self.from_object(module)
        return True

    def from_object(self, obj: Union[object, str]) -> None:
        """Loads the upper-case attributes of an object, a class or a module; a string is
        imported first (``"myapp.settings"`` or ``"myapp.settings:Production"``)."""
        if isinstance(obj, str):
            obj = import_string(obj)
        for key in dir(obj):
            if key.isupper():
                self[key] = getattr(obj, key)

    def from_file(
        self,
        filename: PathLike,
        load: Callable[[IO[Any]], Mapping[str, Any]],
        silent: bool = False,
        text: bool = True,
    ) -> bool:
        """Loads a file with ``load`` (``json.load``, ``tomllib.load`` with ``text=False``)."""
        filename = os.path.join(self.root_path, filename)
        try:
            with open(filename, "r" if text else "rb") as f:
                obj = load(f)
        except OSError as e:
            if silent and e.errno in (errno.ENOENT, errno.EISDIR):
                return False
            e.strerror = f"Unable to load configuration file ({e.strerror})"
            raise
        return self.from_mapping(obj)

    def from_mapping(self, mapping: Optional[Mapping[str, Any]] = None, **kwargs: Any) -> bool:
        """Loads the upper-case keys of ``mapping`` and of the keyword arguments."""
        merged: dict[str, Any] = {}
        if mapping is not None:
            merged.update(mapping)
        merged.update(kwargs)
        for key, value in merged.items():
            if key.isupper():
                self[key] = value
        return True

    def get_namespace(
        self, namespace: str, lowercase: bool = True, trim_namespace: bool = True
    ) -> dict[str, Any]:
        """The keys starting with ``namespace``: ``get_namespace("IMAGE_STORE_")``."""
        rv: dict[str, Any] = {}
        for k, v in self.items():
            if not k.startswith(namespace):
                continue
            key = k[len(namespace) :] if trim_namespace else k
            if lowercase:
                key = key.lower()
            rv[key] = v
        return rv

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {dict.__repr__(self)}>"


def import_string(name: str) -> Any:
    """Imports ``"package.module"``, ``"package.module.attr"`` or ``"package.module:attr"``."""
    if ":" in name:
        module_name, _, attr = name.partition(":")
    elif "." in name:
        module_name, _, attr = name.rpartition(".")
        try:
            return getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError):
            return importlib.import_module(name)
    else:
        return importlib.import_module(name)
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attr)
    except AttributeError as e:
        raise ImportError(f"module {module_name!r} has no attribute {attr!r}") from e
