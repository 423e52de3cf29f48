"""Type stubs for the Rust extension module ``bustapi._core`` (internal API)."""

from os import PathLike
from typing import Any, Callable, Optional, Union, final

# Checked against the built module by `python -m mypy.stubtest bustapi._core` in
# scripts/test.sh. The classes are PyO3 classes: not subclassable (hence @final) and
# constructed by __new__.

__all__ = [
    "BodyReadError",
    "ChunkStream",
    "CoreApp",
    "FileSpec",
    "Listener",
    "PanicProbe",
    "RequestData",
    "ServerHandle",
    "UrlSigner",
    "__version__",
    "bounce_bytes",
    "page_cache_warmed_bytes",
    "sendfile_available",
    "sendfile_bytes",
    "taken_over_bytes",
]

__version__: str
sendfile_available: bool  # this build sends file bodies with sendfile(2) (Linux)

def sendfile_bytes() -> int:
    """File bytes this process has sent with sendfile(2) so far."""

def bounce_bytes() -> int:
    """File bytes written through the IO threads' bounce buffer (bodies of <= 1 MiB)."""

def taken_over_bytes() -> int:
    """File bytes of large bodies handed over by hyper to the sendfile sink (owed)."""

def page_cache_warmed_bytes() -> int:
    """File bytes read into the page cache off the IO threads before a sendfile."""

class BodyReadError(OSError):
    """A streamed body the engine refused midway: ``args`` are ``(status, reason)``."""

@final
class RequestData:
    method: str
    raw_path: str
    query_string: str
    http_version: str
    scheme: str
    remote_addr: Optional[str]
    remote_port: Optional[int]
    body: bytes
    body_kind: str  # "bytes", "form" or "stream"
    def form_fields(self) -> list[tuple[str, str]]: ...
    def form_files(self) -> list[tuple[str, str, list[tuple[str, str]], str, int]]: ...
    def read_body(self, size: int) -> bytes: ...
    def header_items(self) -> list[tuple[str, str]]: ...
    def header(self, name: str) -> Optional[str]: ...

@final
class FileSpec:
    def __new__(
        cls,
        *,
        path: Union[str, PathLike[str], None] = None,
        root: Union[str, PathLike[str], None] = None,
        rel: Optional[str] = None,
        fd: Optional[int] = None,
        data: Optional[bytes] = None,
        content_type: Optional[str] = None,
        type_hint_name: Optional[str] = None,
        disposition: Optional[str] = None,
        filename: Optional[str] = None,
        conditional: bool = True,
        etag: Optional[str] = None,
        use_etag: bool = True,
        last_modified: Optional[float] = None,
        use_last_modified: bool = True,
        max_age: Optional[int] = None,
        rate: Union[int, str, None] = None,
        rate_after: Optional[int] = None,
    ) -> FileSpec: ...

@final
class Listener:
    port: int
    host: str

@final
class ServerHandle:
    def stop(self) -> None: ...

@final
class UrlSigner:
    def __new__(cls, keys: list[bytes]) -> UrlSigner: ...
    def sign(
        self, path: str, expires: int, ip: Optional[str] = None, prefix: Optional[str] = None
    ) -> str: ...
    def check(
        self,
        path: str,
        query: Optional[str],
        ip: Optional[str] = None,
        now: Optional[int] = None,
    ) -> int: ...

@final
class CoreApp:
    def __new__(cls, dispatch: Callable[..., Any], view_threads: int = 16) -> CoreApp: ...
    def add_route(
        self,
        rule: str,
        methods: list[str],
        endpoint: int,
        stream_body: bool = False,
        max_body_size: Optional[int] = None,
        signed: bool = False,
    ) -> None: ...
    def add_static(
        self,
        url_prefix: str,
        folder: Union[str, PathLike[str]],
        max_age: Optional[int] = None,
        listing: bool = False,
        signed: bool = False,
        rate: Union[int, str, None] = None,
        rate_after: Optional[int] = None,
    ) -> None: ...
    def set_url_signer(self, signer: Optional[UrlSigner]) -> None: ...
    def add_resumable_uploads(
        self,
        url_prefix: str,
        folder: Union[str, PathLike[str]],
        *,
        max_size: Optional[int] = None,
        expiration: Optional[float] = None,
        sync_each_patch: bool = True,
        authorize: Optional[int] = None,
        on_complete: Optional[int] = None,
    ) -> None: ...
    def reset_statics(self) -> None: ...
    def set_error_codes(self, codes: list[int]) -> None: ...
    def configure(
        self,
        *,
        max_body_size: Optional[int] = None,
        header_read_timeout: Optional[float] = None,
        shutdown_timeout: Optional[float] = None,
        max_header_bytes: Optional[int] = None,
        view_threads: Optional[int] = None,
        write_timeout: Optional[float] = None,
        max_connections: Optional[int] = None,
        access_log: Optional[bool] = None,
        live_stats: Optional[bool] = None,
        ssl_cert: Union[str, PathLike[str], None] = None,
        ssl_key: Union[str, PathLike[str], None] = None,
        sendfile: Optional[bool] = None,
        max_form_memory_size: Optional[int] = None,
        max_form_parts: Optional[int] = None,
        upload_temp_folder: Union[str, PathLike[str], None] = None,
        body_read_timeout: Optional[float] = None,
    ) -> None: ...
    @staticmethod
    def bind(host: str, port: int, reuse_port: bool = False) -> Listener: ...
    def serve(self, listener: Listener, io_threads: int = 2) -> None: ...
    def start(self, listener: Listener, io_threads: int = 2) -> ServerHandle: ...
    def test_request(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes,
        remote_addr: str = ...,
        secure: bool = ...,
    ) -> tuple[int, list[tuple[str, str]], bytes]: ...

@final
class PanicProbe:
    """Test-only: returned as a response body, it makes the binding panic. Present only
    in builds with the ``panic-probe`` cargo feature (scripts/test.sh), never in release."""

@final
class ChunkStream:
    def __new__(
        cls, next: Callable[[], Optional[bytes]], close: Callable[[], None]
    ) -> ChunkStream: ...
