"""Small containers with Flask/Werkzeug semantics: ``MultiDict`` and ``Headers``."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Callable, Optional, TypeVar, Union, overload

T = TypeVar("T")
_MISSING: Any = object()


class MultiDict(Mapping[str, str]):
    """A mapping where a key can have several values; ``[]``/``get`` return the first.

    >>> d = MultiDict([("a", "1"), ("a", "2")])
    >>> d["a"], d.getlist("a")
    ('1', ['1', '2'])
    """

    def __init__(self, items: Optional[Iterable[tuple[str, str]]] = None) -> None:
        self._items: list[tuple[str, str]] = list(items or [])

    def __getitem__(self, key: str) -> str:
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
    def get(self, key: str) -> Optional[str]: ...
    @overload
    def get(self, key: str, default: Union[str, T]) -> Union[str, T]: ...
    @overload
    def get(self, key: str, default: Any = None, type: Callable[[str], T] = ...) -> Any: ...

    def get(
        self, key: str, default: Any = None, type: Optional[Callable[[str], Any]] = None
    ) -> Any:
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

    def getlist(self, key: str, type: Optional[Callable[[str], Any]] = None) -> list[Any]:
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
