"""Small containers with Flask/Werkzeug semantics: ``MultiDict``, ``Headers`` and
``FileStorage`` (an uploaded file)."""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterable, Iterator, Mapping
from typing import IO, Any, Callable, Optional, TypeVar, Union, overload

T = TypeVar("T")
V = TypeVar("V")
_MISSING: Any = object()


class MultiDict(Mapping[str, V]):
    """A mapping where a key can have several values; ``[]``/``get`` return the first.

    >>> d = MultiDict([("a", "1"), ("a", "2")])
    >>> d["a"], d.getlist("a")
    ('1', ['1', '2'])
    """

    def __init__(self, items: Optional[Iterable[tuple[str, V]]] = None) -> None:
        self._items: list[tuple[str, V]] = list(items or [])

    def __getitem__(self, key: str) -> V:
        for k, v in self._items:
            if k == key:
                return v
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        seen: set[str] = set()
        for k, _ in self._items:
            if k not in seen:
                seen.add(k)
                yield k

    def __len__(self) -> int:
        return len({k for k, _ in self._items})

    @overload
    def get(self, key: str) -> Optional[V]: ...
    @overload
    def get(self, key: str, default: Union[V, T]) -> Union[V, T]: ...
    @overload
    def get(self, key: str, default: Any = None, type: Callable[[V], T] = ...) -> Any: ...

    def get(self, key: str, default: Any = None, type: Optional[Callable[[V], Any]] = None) -> Any:
        """First value for ``key``; with ``type``, converted (``default`` if that fails)."""
        try:
            value = self[key]
        except KeyError:
            return default
        if type is None:
            return value
        try:
            return type(value)
        except (ValueError, TypeError):
            return default

    def getlist(self, key: str, type: Optional[Callable[[V], Any]] = None) -> list[Any]:
        """All values for ``key`` in order (converted with ``type`` where it succeeds)."""
        values = [v for k, v in self._items if k == key]
        if type is None:
            return values
        out = []
        for v in values:
            try:
                out.append(type(v))
            except (ValueError, TypeError):
                pass
        return out

    def items(self, multi: bool = False) -> Any:
        if multi:
            return list(self._items)
        return [(k, self[k]) for k in self]

    def to_dict(self, flat: bool = True) -> dict[str, Any]:
        if flat:
            return {k: self[k] for k in self}
        return {k: self.getlist(k) for k in self}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._items!r})"


def _check_header(name: str, value: str) -> None:
    if not name or any(c in name for c in "\r\n:\0 \t"):
        raise ValueError(f"invalid header name {name!r}")
    if any(c in value for c in "\r\n\0"):
        raise ValueError(f"header {name!r} value must not contain CR, LF or NUL (header injection)")


class Headers:
    """Case-insensitive, ordered, multi-valued HTTP header fields.

    Setting a value that contains CR, LF or NUL raises ``ValueError``: a header
    can never be used to inject another header.
    """

    def __init__(
        self, items: Optional[Union[Mapping[str, Any], Iterable[tuple[str, Any]]]] = None
    ) -> None:
        self._items: list[tuple[str, str]] = []
        if items is not None:
            self.extend(items)

    def extend(self, items: Union[Mapping[str, Any], Iterable[tuple[str, Any]], Headers]) -> None:
        if isinstance(items, Headers):
            pairs: Iterable[tuple[str, Any]] = items.items()
        elif isinstance(items, Mapping):
            pairs = items.items()
        else:
            pairs = items
        for k, v in pairs:
            self.add(k, v)

    def add(self, name: str, value: Any) -> None:
        """Adds a field, keeping existing ones of the same name."""
        value = str(value)
        _check_header(name, value)
        self._items.append((name, value))

    def set(self, name: str, value: Any) -> None:
        """Replaces all fields named ``name`` with one."""
        value = str(value)
        _check_header(name, value)
        self.remove(name)
        self._items.append((name, value))

    def remove(self, name: str) -> None:
        low = name.lower()
        self._items = [(k, v) for k, v in self._items if k.lower() != low]

    def get(
        self, name: str, default: Any = None, type: Optional[Callable[[str], Any]] = None
    ) -> Any:
        low = name.lower()
        for k, v in self._items:
            if k.lower() == low:
                if type is None:
                    return v
                try:
                    return type(v)
                except (ValueError, TypeError):
                    return default
        return default

    def getlist(self, name: str) -> list[str]:
        low = name.lower()
        return [v for k, v in self._items if k.lower() == low]

    get_all = getlist

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def keys(self) -> list[str]:
        return [k for k, _ in self._items]

    def values(self) -> list[str]:
        return [v for _, v in self._items]

    def setdefault(self, name: str, value: Any) -> str:
        existing = self.get(name)
        if existing is None:
            self.add(name, value)
            return str(value)
        return str(existing)

    def update(self, other: Union[Mapping[str, Any], Iterable[tuple[str, Any]]]) -> None:
        pairs = other.items() if isinstance(other, (Mapping, Headers)) else other
        for k, v in pairs:
            self.set(k, v)

    def copy(self) -> Headers:
        h = Headers()
        h._items = list(self._items)
        return h

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return str(value)

    def __setitem__(self, name: str, value: Any) -> None:
        self.set(name, value)

    def __delitem__(self, name: str) -> None:
        if name not in self:
            raise KeyError(name)
        self.remove(name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Headers):
            return sorted((k.lower(), v) for k, v in self._items) == sorted(
                (k.lower(), v) for k, v in other._items
            )
        return NotImplemented

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


class FileStorage:
    """An uploaded file, as Werkzeug's: ``request.files["video"]``.

    The engine wrote its bytes to a temp file in ``UPLOAD_TEMP_FOLDER`` while the
    body arrived; nothing of it is in Python until a view reads it. :meth:`save`
    moves that file into place (a rename when the destination is on the same
    filesystem, else a copy). A file not saved is removed when the request ends.

    ``filename`` is what the client sent, unchecked (``../../etc/passwd``, any
    Unicode): pass it through :func:`~werkzeug.utils.secure_filename` or make a
    name of your own before using it in a path.

    >>> import io
    >>> f = FileStorage(io.BytesIO(b"data"), "a.txt", "doc", content_type="text/plain")
    >>> f.filename, f.mimetype, f.read()
    ('a.txt', 'text/plain', b'data')
    """

    def __init__(
        self,
        stream: Optional[IO[bytes]] = None,
        filename: Optional[str] = None,
        name: Optional[str] = None,
        content_type: Optional[str] = None,
        content_length: Optional[int] = None,
        headers: Union[Headers, Iterable[tuple[str, str]], None] = None,
        *,
        temp_path: Optional[str] = None,
        size: Optional[int] = None,
    ) -> None:
        self.name = name
        if filename is None and stream is not None:
            filename = getattr(stream, "name", None)
            if not isinstance(filename, str):
                filename = None
        self.filename = filename
        self.headers = headers.copy() if isinstance(headers, Headers) else Headers(headers)
        if content_type is not None:
            self.headers.set("Content-Type", content_type)
        if content_length is not None:
            self.headers.set("Content-Length", str(content_length))
        self._stream = stream
        self._path = temp_path
        self._size = size
        self._moved = False

    @property
    def stream(self) -> IO[bytes]:
        """The content as a binary file object (the temp file, opened on first use)."""
        if self._stream is None:
            if self._path is not None:
                self._stream = open(self._path, "rb")  # noqa: SIM115 - closed by close()
            else:
                import io

                self._stream = io.BytesIO()
        return self._stream

    @property
    def content_type(self) -> Optional[str]:
        """The part's ``Content-Type`` as the client sent it."""
        return self.headers.get("Content-Type")

    @property
    def content_length(self) -> int:
        """The content's size in bytes (known exactly for an upload)."""
        if self._size is not None:
            return self._size
        return self.headers.get("Content-Length", 0, type=int)

    @property
    def mimetype(self) -> str:
        """``content_type`` without parameters, lower case: ``image/png``."""
        return (self.content_type or "").split(";", 1)[0].strip().lower()

    @property
    def mimetype_params(self) -> dict[str, str]:
        """The ``content_type``'s parameters: ``{"charset": "utf-8"}``."""
        params: dict[str, str] = {}
        for item in (self.content_type or "").split(";")[1:]:
            key, sep, value = item.partition("=")
            if sep:
                params[key.strip().lower()] = value.strip().strip('"')
        return params

    def read(self, size: int = -1) -> bytes:
        return self.stream.read(size)

    def save(self, dst: Union[str, os.PathLike[str], IO[bytes]], buffer_size: int = 16384) -> None:
        """Stores the whole upload at ``dst`` (a path, or a binary file object).

        To a path, the engine's temp file is renamed into place when it is on
        the same filesystem (``UPLOAD_TEMP_FOLDER`` next to your upload folder
        makes a multi-GB save instant), else copied; the file then has the
        permissions a newly created file gets. An existing file is replaced.
        """
        if isinstance(dst, (str, os.PathLike)):
            target = os.fspath(dst)
            if self._path is None:
                with open(target, "wb") as out:
                    shutil.copyfileobj(self.stream, out, buffer_size)
                return
            if self._moved:
                shutil.copyfile(self._path, target)
                return
            try:
                os.replace(self._path, target)
            except OSError as e:
                if e.errno != errno.EXDEV:
                    raise
                shutil.copyfile(self._path, target)
                return
            # The temp file was private (0600); a saved upload gets the mode any new file does.
            os.chmod(target, 0o666 & ~_umask())
            self._path, self._moved = target, True
            return
        if self._path is not None and self._stream is None:
            with open(self._path, "rb") as src:
                shutil.copyfileobj(src, dst, buffer_size)
            return
        shutil.copyfileobj(self.stream, dst, buffer_size)

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()

    def __getattr__(self, name: str) -> Any:
        # readline, seek, tell...: the stream's, as Werkzeug's FileStorage offers.
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.stream, name)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.stream)

    def __bool__(self) -> bool:
        return bool(self.filename)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.filename!r} ({self.content_type!r})>"


def _umask() -> int:
    """The process umask, read without changing it where Linux tells it."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
