"""``StreamingResponse``: a body produced chunk by chunk by an iterator.

The engine asks for the next chunk only when the client has taken the previous
one (back-pressure: a slow client slows the generator, the server does not
buffer the stream), and calls the iterator's ``close()`` (``aclose()`` for async
generators) when the client goes away, so ``finally`` blocks run. Chunks may be
``bytes`` or ``str`` (UTF-8). The generator runs inside the request's context,
so ``request`` is available in it.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterable, Iterable
from typing import Any, Optional, Union

from . import _core
from .wrappers import HeadersLike, Response

Content = Union[Iterable[Union[str, bytes]], AsyncIterable[Union[str, bytes]]]


class StreamingResponse(Response):
    """Streams ``content`` (a sync or async iterable of ``bytes``/``str``).

    >>> def numbers():
    ...     for i in range(3):
    ...         yield f"{i}\\n"
    >>> StreamingResponse(numbers(), media_type="text/plain")
    <StreamingResponse [200]>

    Its chunks are never collected in Python: ``data``, ``get_data()`` and
    ``set_data()`` raise :class:`~bustapi.StreamedBodyError`.
    """

    default_mimetype = None
    _engine_body = "a stream its iterator produces"

    def __init__(
        self,
        content: Content,
        status_code: int = 200,
        headers: Optional[HeadersLike] = None,
        media_type: Optional[str] = None,
    ) -> None:
        if isinstance(content, (str, bytes, bytearray)) or not (
            hasattr(content, "__iter__") or hasattr(content, "__aiter__")
        ):
            raise TypeError(
                "StreamingResponse needs an iterable or async iterable of bytes/str, "
                f"not {type(content).__name__}"
            )
        super().__init__(None, status=status_code, headers=headers, mimetype=media_type)
        self.content = content

    def _parts(self) -> tuple[int, list[tuple[str, str]], Any]:
        return self.status_code, self.headers.items(), stream_body(self.content)


def stream_body(content: Content) -> Any:
    """The engine's body for an iterator: pulled chunk by chunk, in the context of
    the view that returned it (so ``request`` is available in the generator)."""
    stream = _Pull(content, contextvars.copy_context())
    return _core.ChunkStream(stream.next, stream.close)


class _Pull:
    """Steps an iterator on behalf of the engine, one call at a time."""

    def __init__(self, content: Content, ctx: contextvars.Context) -> None:
        self._ctx = ctx
        self._closed = False
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        if hasattr(content, "__aiter__"):
            self._aiter: Any = content.__aiter__()
            self._iter: Any = None
            # One loop for the whole stream: an async generator may hold objects
            # bound to the loop it started on.
            self._loop = asyncio.new_event_loop()
        else:
            self._aiter = None
            self._iter = iter(content)

    def next(self) -> Optional[bytes]:
        if self._closed:
            return None
        return self._ctx.run(self._step)

    def close(self) -> None:
        if not self._closed:
            self._ctx.run(self._release)

    def _step(self) -> Optional[bytes]:
        try:
            if self._loop is not None:
                chunk = self._loop.run_until_complete(self._aiter.__anext__())
            else:
                chunk = next(self._iter)
        except (StopIteration, StopAsyncIteration):
            self._release()
            return None
        if isinstance(chunk, str):
            return chunk.encode("utf-8")
        if isinstance(chunk, (bytes, bytearray, memoryview)):
            return bytes(chunk)
        raise TypeError(f"a streamed chunk must be bytes or str, not {type(chunk).__name__}")

    def _release(self) -> None:
        """Closes the iterator (runs its ``finally``) and the stream's loop, once."""
        if self._closed:
            return
        self._closed = True
        if self._loop is not None:
            aclose = getattr(self._aiter, "aclose", None)
            try:
                if aclose is not None:
                    self._loop.run_until_complete(aclose())
            finally:
                self._loop.close()
        else:
            close = getattr(self._iter, "close", None)
            if close is not None:
                close()
