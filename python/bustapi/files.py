"""File responses: ``send_file``, ``send_from_directory``, ``FileResponse``.

These only *describe* a file. The Rust engine opens and stats it, evaluates
``If-*`` and ``Range`` (200, 206 single or multipart, 304, 412, 416), and streams
the bytes without the GIL; Python never touches the file's content.
"""

from __future__ import annotations

import datetime as _dt
import io
import os
from typing import IO, Any, Callable, Optional, Union

from . import _core
from .globals import _cv_app
from .wrappers import HeadersLike, Response, _with_charset

PathLike = Union[str, "os.PathLike[str]"]


class FileResponse(Response):
    """A response that streams a file from disk, with range and conditional support.

    >>> FileResponse("data/dataset.csv", filename="custom_name.csv",
    ...              media_type="text/csv", content_disposition_type="attachment")
    <FileResponse [200]>

    ``filename`` sets the ``Content-Disposition`` name; the media type defaults
    from ``filename`` or the path's extension; extra ``headers`` are kept.
    ``stat_result`` is accepted for Starlette compatibility: the engine stats the
    file itself when it serves it, so validators always match what is sent.

    The file's bytes never enter Python: ``data``, ``get_data()`` and
    ``set_data()`` raise :class:`~bustapi.StreamedBodyError`.
    """

    default_mimetype = None
    _engine_body = "a file the engine streams"

    def __init__(
        self,
        path: PathLike,
        status_code: int = 200,
        headers: Optional[HeadersLike] = None,
        media_type: Optional[str] = None,
        filename: Optional[str] = None,
        content_disposition_type: str = "attachment",
        stat_result: Optional[os.stat_result] = None,
        *,
        _spec: Optional[_core.FileSpec] = None,
    ) -> None:
        if _spec is None:
            if not isinstance(path, (str, os.PathLike)):
                raise TypeError(
                    f"FileResponse path must be a str or os.PathLike, not {type(path).__name__}"
                )
            _check_optional_str("media_type", media_type)
            _check_optional_str("filename", filename)
            if content_disposition_type not in ("attachment", "inline"):
                raise ValueError("content_disposition_type must be 'attachment' or 'inline'")
            if stat_result is not None and not isinstance(stat_result, os.stat_result):
                raise TypeError("stat_result must be an os.stat_result")
            _spec = _core.FileSpec(
                path=os.path.abspath(os.fspath(path)),
                content_type=_with_charset(media_type) if media_type else None,
                type_hint_name=filename,
                disposition=content_disposition_type if filename is not None else None,
                filename=filename,
            )
        if isinstance(status_code, bool) or not isinstance(status_code, int):
            raise TypeError("status_code must be an int")
        super().__init__(None, status=status_code, headers=headers)
        self.path = os.fspath(path) if path is not None else None
        self.media_type = media_type
        self.filename = filename
        self._spec = _spec

    def _parts(self) -> tuple[int, list[tuple[str, str]], Any]:
        return self.status_code, self.headers.items(), self._spec


def _root_path() -> str:
    """Where relative paths of ``send_file``/``send_from_directory`` start: the
    application's ``root_path`` (as in Flask), or the working directory outside one."""
    ctx = _cv_app.get(None)
    return ctx.app.root_path if ctx is not None else os.getcwd()


def _default_max_age(
    max_age: Union[int, Callable[[Optional[str]], Optional[int]], None], path: Optional[str]
) -> Optional[int]:
    """``max_age`` as given, or the application's ``get_send_file_max_age(path)``
    (``SEND_FILE_MAX_AGE_DEFAULT``) when it is ``None``, as Flask passes it."""
    if callable(max_age):
        return max_age(path)
    if max_age is None:
        ctx = _cv_app.get(None)
        if ctx is not None:
            return ctx.app.get_send_file_max_age(path)
    return max_age


def _check_optional_str(name: str, value: object) -> None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{name} must be a str or None, not {type(value).__name__}")


def _timestamp(value: Union[_dt.datetime, int, float, None]) -> Optional[float]:
    if value is None:
        return None
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)
        return value.timestamp()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise TypeError("last_modified must be a datetime, a timestamp or None")


def _options(
    mimetype: Optional[str],
    as_attachment: bool,
    download_name: Optional[str],
    conditional: bool,
    etag: Union[bool, str],
    last_modified: Union[_dt.datetime, int, float, None],
    max_age: Optional[int],
    default_name: str,
) -> dict[str, Any]:
    """Validated ``FileSpec`` keyword arguments shared by every file helper."""
    _check_optional_str("mimetype", mimetype)
    _check_optional_str("download_name", download_name)
    if not isinstance(etag, (bool, str)):
        raise TypeError("etag must be a bool or a str")
    if max_age is not None and (
        isinstance(max_age, bool) or not isinstance(max_age, int) or max_age < 0
    ):
        raise TypeError("max_age must be a non-negative int or None")
    name = download_name or default_name
    # Flask's rule: a disposition only when asked for an attachment or given a name.
    disposition = (
        "attachment" if as_attachment else ("inline" if download_name is not None else None)
    )
    return {
        "content_type": _with_charset(mimetype) if mimetype else None,
        "type_hint_name": name or None,
        "disposition": disposition,
        "filename": name if disposition else None,
        "conditional": bool(conditional),
        "etag": etag if isinstance(etag, str) else None,
        "use_etag": etag is not False,
        "last_modified": _timestamp(last_modified),
        "max_age": max_age,
    }


def send_file(
    path_or_file: Union[PathLike, IO[bytes]],
    mimetype: Optional[str] = None,
    as_attachment: bool = False,
    download_name: Optional[str] = None,
    conditional: bool = True,
    etag: Union[bool, str] = True,
    last_modified: Union[_dt.datetime, int, float, None] = None,
    max_age: Union[int, Callable[[Optional[str]], Optional[int]], None] = None,
    *,
    attachment_filename: Optional[str] = None,
    rate: Union[int, str, None] = None,
    rate_after: Optional[int] = None,
) -> FileResponse:
    """Sends a file, as Flask's ``send_file`` does, with full Range support.

    ``path_or_file`` is a path (a relative one resolves against the application's
    ``root_path``, as in Flask) or a binary file object (``io.BytesIO``,
    ``open(p, "rb")``). ``max_age`` defaults to ``app.get_send_file_max_age(path)``,
    that is ``SEND_FILE_MAX_AGE_DEFAULT``: no max-age (``no-cache``, revalidated with
    ETag/Last-Modified) unless configured.

    ``rate`` paces the response to that many bytes per second after ``rate_after``
    bytes sent at full speed (nginx's ``limit_rate`` / ``limit_rate_after``, per
    response); ``rate="auto"`` paces an MP4 at twice its average bitrate (from its
    ``moov`` box), and not at all when that cannot be read.

    >>> send_file("secure_storage/videos/intro.mp4", mimetype="video/mp4")
    <FileResponse [200]>
    """
    download_name = download_name or attachment_filename  # Flask < 2.0 spelling
    if isinstance(path_or_file, (str, os.PathLike)):
        path = os.path.join(_root_path(), os.fspath(path_or_file))
        source: dict[str, Any] = {"path": path}
        default_name = os.path.basename(path)
    elif isinstance(path_or_file, io.TextIOBase):
        raise TypeError("send_file() needs a file opened in binary mode ('rb'), not text mode")
    elif hasattr(path_or_file, "read"):
        path = None
        default_name = os.path.basename(str(getattr(path_or_file, "name", "") or ""))
        if mimetype is None and not (download_name or default_name):
            raise ValueError(
                "Unable to detect the MIME type because a file name is not available. "
                "Either set 'download_name', pass a path instead of a file, or set 'mimetype'."
            )
        source = _file_object_source(path_or_file)
    else:
        raise TypeError(
            f"send_file() needs a path or a binary file object, not {type(path_or_file).__name__}"
        )
    opts = _options(
        mimetype,
        as_attachment,
        download_name,
        conditional,
        etag,
        last_modified,
        _default_max_age(max_age, path),
        default_name,
    )
    spec = _core.FileSpec(**source, **opts, rate=rate, rate_after=rate_after)
    return FileResponse(
        path or default_name, media_type=mimetype, filename=download_name, _spec=spec
    )


def _file_object_source(f: Any) -> dict[str, Any]:
    if isinstance(f, io.BytesIO):
        return {"data": f.getvalue()}
    fileno = getattr(f, "fileno", None)
    if fileno is not None:
        try:
            return {"fd": fileno()}
        except (OSError, io.UnsupportedOperation):
            pass
    data = f.read()
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError("send_file() needs a binary file object")
    return {"data": bytes(data)}


def send_from_directory(
    directory: PathLike,
    path: PathLike,
    mimetype: Optional[str] = None,
    as_attachment: bool = False,
    download_name: Optional[str] = None,
    conditional: bool = True,
    etag: Union[bool, str] = True,
    last_modified: Union[_dt.datetime, int, float, None] = None,
    max_age: Union[int, Callable[[Optional[str]], Optional[int]], None] = None,
    *,
    rate: Union[int, str, None] = None,
    rate_after: Optional[int] = None,
) -> FileResponse:
    """Sends ``path`` from inside ``directory`` — never from outside it.

    ``path`` usually comes from the URL (``<path:filename>``); traversal (``..``),
    absolute paths, NUL, backslashes, hidden files and symlinks leading out of
    ``directory`` are refused by the engine (404, or 400 for malformed input).
    ``rate`` and ``rate_after`` pace the response as in :func:`send_file`.
    """
    if not isinstance(directory, (str, os.PathLike)) or not isinstance(path, (str, os.PathLike)):
        raise TypeError("send_from_directory() needs str or os.PathLike arguments")
    rel = os.fspath(path)
    opts = _options(
        mimetype,
        as_attachment,
        download_name,
        conditional,
        etag,
        last_modified,
        _default_max_age(max_age, rel),
        os.path.basename(rel),
    )
    root = os.path.join(_root_path(), os.fspath(directory))
    spec = _core.FileSpec(root=root, rel=rel, **opts, rate=rate, rate_after=rate_after)
    return FileResponse(rel, media_type=mimetype, filename=download_name, _spec=spec)
