"""Signed cookie sessions, compatible with Flask's.

The session is a dict serialised as tagged JSON, signed with **itsdangerous**
(HMAC-SHA1 over a key derived from ``SECRET_KEY`` with the salt
``cookie-session``, timestamped, zlib-compressed when that is shorter): the same
format and defaults as Flask, so a cookie set by a Flask app is read by a BustAPI
app with the same secret and the other way round. The content is readable by
the client (it is signed, not encrypted): keep secrets out of it.

A cookie whose signature does not verify (tampered, expired, or signed with an
unknown key) gives an empty session, never an error page. Writing to the
session without ``SECRET_KEY`` raises a :class:`RuntimeError` that says so.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import MutableMapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Optional

from itsdangerous import BadSignature, TimestampSigner, URLSafeTimedSerializer
from itsdangerous.encoding import want_bytes

from .tag import TaggedJSONSerializer

if TYPE_CHECKING:
    from .app import BustAPI
    from .wrappers import Request, Response


class SessionMixin(MutableMapping[str, Any]):
    """What every session object offers on top of a dict."""

    #: Set by the app when the session is new (no cookie was sent).
    new = False
    #: Whether the session changed and must be sent back.
    modified = True
    #: Whether the session was read (responses then vary by Cookie).
    accessed = True

    @property
    def permanent(self) -> bool:
        """A permanent session's cookie lasts ``PERMANENT_SESSION_LIFETIME``; otherwise
        it is a browser-session cookie."""
        return bool(self.get("_permanent", False))

    @permanent.setter
    def permanent(self, value: bool) -> None:
        self["_permanent"] = bool(value)


class SecureCookieSession(dict, SessionMixin):
    """The session dict: tracks reads (``accessed``) and writes (``modified``).

    Mutating a mutable value in place (``session["cart"].append(x)``) is not seen;
    set ``session.modified = True`` then, as in Flask.
    """

    modified = False
    accessed = False

    def __init__(self, initial: Any = None) -> None:
        super().__init__(initial or ())

    def __getitem__(self, key: str) -> Any:
        self.accessed = True
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.accessed = True
        return super().get(key, default)

    def setdefault(self, key: str, default: Any = None) -> Any:
        self.accessed = True
        if key not in self:
            self.modified = True
        return super().setdefault(key, default)

    def __setitem__(self, key: str, value: Any) -> None:
        self.accessed = self.modified = True
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self.accessed = self.modified = True
        super().__delitem__(key)

    def __contains__(self, key: object) -> bool:
        self.accessed = True
        return super().__contains__(key)

    def pop(self, key: str, *default: Any) -> Any:
        self.accessed = self.modified = True
        return super().pop(key, *default)

    def popitem(self) -> tuple[str, Any]:
        self.accessed = self.modified = True
        return super().popitem()

    def update(self, *args: Any, **kwargs: Any) -> None:
        self.accessed = self.modified = True
        super().update(*args, **kwargs)

    def clear(self) -> None:
        self.accessed = self.modified = True
        super().clear()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {dict.__repr__(self)}>"


class NullSession(SecureCookieSession):
    """The session when no ``SECRET_KEY`` is set: readable (empty), but any write
    raises, so a missing key is found at once rather than losing every login."""

    def _fail(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(
            "The session is unavailable because no secret key was set. Set the SECRET_KEY"
            " configuration value (app.secret_key = ... or app.config['SECRET_KEY']) to"
            " something unique and secret."
        )

    __setitem__ = __delitem__ = clear = pop = popitem = update = setdefault = _fail
    del _fail


class SessionInterface:
    """How sessions are opened from a request and saved into a response.

    Subclass it and set ``app.session_interface`` to store sessions elsewhere
    (a database, Redis); the cookie helpers below read the ``SESSION_COOKIE_*``
    settings for you.
    """

    null_session_class: type[SessionMixin] = NullSession
    pickle_based = False

    def make_null_session(self, app: BustAPI) -> SessionMixin:
        return self.null_session_class()

    def is_null_session(self, obj: object) -> bool:
        return isinstance(obj, self.null_session_class)

    def get_cookie_name(self, app: BustAPI) -> str:
        return str(app.config["SESSION_COOKIE_NAME"])

    def get_cookie_domain(self, app: BustAPI) -> Optional[str]:
        return app.config.get("SESSION_COOKIE_DOMAIN") or None

    def get_cookie_path(self, app: BustAPI) -> str:
        return str(
            app.config.get("SESSION_COOKIE_PATH") or app.config.get("APPLICATION_ROOT") or "/"
        )

    def get_cookie_httponly(self, app: BustAPI) -> bool:
        return bool(app.config.get("SESSION_COOKIE_HTTPONLY"))

    def get_cookie_secure(self, app: BustAPI) -> bool:
        return bool(app.config.get("SESSION_COOKIE_SECURE"))

    def get_cookie_samesite(self, app: BustAPI) -> Optional[str]:
        value = app.config.get("SESSION_COOKIE_SAMESITE")
        return str(value) if value else None

    def get_cookie_partitioned(self, app: BustAPI) -> bool:
        return bool(app.config.get("SESSION_COOKIE_PARTITIONED"))

    def get_expiration_time(self, app: BustAPI, session: SessionMixin) -> Optional[datetime]:
        if session.permanent:
            lifetime = app.permanent_session_lifetime
            return datetime.now(timezone.utc) + lifetime
        return None

    def should_set_cookie(self, app: BustAPI, session: SessionMixin) -> bool:
        """Sent when modified, or on every request for a permanent session when
        ``SESSION_REFRESH_EACH_REQUEST`` is on (the expiry then slides)."""
        return session.modified or (
            session.permanent and bool(app.config.get("SESSION_REFRESH_EACH_REQUEST"))
        )

    def needs_opening(self, app: BustAPI, request: Request) -> bool:
        """Whether a request that never touched its session must still have it opened
        before the response leaves: only to refresh a permanent session's cookie.
        (Sessions are opened lazily, so views that do not use them pay nothing.)"""
        return bool(app.config.get("SESSION_REFRESH_EACH_REQUEST")) and (
            self.get_cookie_name(app) in request.cookies
        )

    def open_session(self, app: BustAPI, request: Request) -> Optional[SessionMixin]:
        raise NotImplementedError

    def save_session(self, app: BustAPI, session: SessionMixin, response: Response) -> None:
        raise NotImplementedError


class _KeyCachingSigner(TimestampSigner):
    """itsdangerous's timestamp signer, with the derived key remembered.

    The key it signs with is derived from the secret (an HMAC over the salt, by
    default): the same bytes for every cookie, yet itsdangerous derives it again for
    each cookie it signs or checks, and makes a new signer for each. Same signatures.
    """

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        key = self.secret_keys[-1] if secret_key is None else want_bytes(secret_key)
        return _derived_key(key, self.salt, self.key_derivation, self.digest_method)


@functools.lru_cache(maxsize=32)
def _derived_key(secret_key: bytes, salt: bytes, key_derivation: str, digest_method: Any) -> bytes:
    signer = TimestampSigner(
        secret_key, salt=salt, key_derivation=key_derivation, digest_method=digest_method
    )
    return signer.derive_key()


class SecureCookieSessionInterface(SessionInterface):
    """Flask's default: the whole session in a signed cookie."""

    salt = "cookie-session"
    digest_method = staticmethod(hashlib.sha1)
    key_derivation = "hmac"
    serializer = TaggedJSONSerializer()
    session_class = SecureCookieSession

    def __init__(self) -> None:
        self._serializers: dict[Any, URLSafeTimedSerializer] = {}

    def get_signing_serializer(self, app: BustAPI) -> Optional[URLSafeTimedSerializer]:
        if not app.secret_key:
            return None
        keys: list[Any] = [app.secret_key]
        fallbacks = app.config.get("SECRET_KEY_FALLBACKS")
        if fallbacks:
            keys.extend(fallbacks)
        # itsdangerous signs with the last key and accepts all of them.
        keys.reverse()
        # Made once per set of keys, not per request: building one costs about as
        # much as verifying a cookie. Keys are str or bytes, so the tuple hashes.
        cache_key = (tuple(keys), self.salt, self.key_derivation, self.digest_method)
        try:
            return self._serializers[cache_key]
        except KeyError:
            pass
        except TypeError:  # an unhashable key: build it every time
            return self._make_serializer(keys)
        serializer = self._make_serializer(keys)
        if len(self._serializers) > 16:  # keys rotate rarely; never grow without bound
            self._serializers.clear()
        self._serializers[cache_key] = serializer
        return serializer

    def _make_serializer(self, keys: list[Any]) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(
            keys,
            salt=self.salt,
            serializer=self.serializer,
            signer=_KeyCachingSigner,
            signer_kwargs={
                "key_derivation": self.key_derivation,
                "digest_method": self.digest_method,
            },
        )

    def open_session(self, app: BustAPI, request: Request) -> Optional[SecureCookieSession]:
        s = self.get_signing_serializer(app)
        if s is None:
            return None
        val = request.cookies.get(self.get_cookie_name(app))
        if not val:
            return self.session_class()
        max_age = int(app.permanent_session_lifetime.total_seconds())
        try:
            data = s.loads(val, max_age=max_age)
        except BadSignature:
            return self.session_class()
        except Exception:  # noqa: BLE001 - a cookie that decodes to garbage is no session
            return self.session_class()
        if not isinstance(data, dict):
            return self.session_class()
        return self.session_class(data)

    def save_session(self, app: BustAPI, session: SessionMixin, response: Response) -> None:
        name = self.get_cookie_name(app)
        domain = self.get_cookie_domain(app)
        path = self.get_cookie_path(app)
        secure = self.get_cookie_secure(app)
        samesite = self.get_cookie_samesite(app)
        httponly = self.get_cookie_httponly(app)
        partitioned = self.get_cookie_partitioned(app)
        if session.accessed:
            response.vary.add("Cookie")
        if not session:
            # An emptied session deletes the cookie (if it was there to begin with).
            if session.modified:
                response.delete_cookie(
                    name,
                    path=path,
                    domain=domain,
                    secure=secure,
                    samesite=samesite,
                    httponly=httponly,
                    partitioned=partitioned,
                )
                response.vary.add("Cookie")
            return
        if not self.should_set_cookie(app, session):
            return
        s = self.get_signing_serializer(app)
        assert s is not None, "a non-null session always has a serializer"
        value = s.dumps(dict(session))
        expires = self.get_expiration_time(app, session)
        response.set_cookie(
            name,
            value,
            expires=expires,
            httponly=httponly,
            domain=domain,
            path=path,
            secure=secure,
            samesite=samesite,
            partitioned=partitioned,
        )
        response.vary.add("Cookie")
