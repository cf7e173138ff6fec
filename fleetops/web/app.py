"""The dashboard as an ASGI application: :func:`create_app` builds it from a :class:`WebConfig`.

Two middlewares wrap every route, static files and errors included:

* :class:`SecurityHeaders` puts :data:`SECURITY_HEADERS` on every response: a Content-Security-
  Policy with ``default-src 'self'``, no inline script or style and ``frame-ancestors 'none'``;
  ``X-Frame-Options: DENY``, ``nosniff``, ``Referrer-Policy: no-referrer`` and ``no-store``.
* :class:`Gate` decides who asks. With tokens (``--auth-token-file``) every request but the
  sign-in page and the static assets carries a session cookie or ``Authorization: Bearer TOKEN``,
  else it is answered 401 (the sign-in form, or JSON under ``/api/``); the holder's name is
  ``scope["fleetops.user"]``. Without tokens (loopback only) nobody is signed in, the pages are
  read-only, and a request whose ``Host`` is not a loopback name is refused (DNS rebinding).
  A POST whose ``Origin`` is another site is refused either way.

The store (for approvals and the report's timeline) is opened once when the app starts and closed
when it stops; history reads open the façade's reader per request, in a worker thread.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fleetops.web.auth import COOKIE, Sessions, Tokens

if TYPE_CHECKING:
    from fleetops.api import Store

__all__ = ["COOKIE", "SECURITY_HEADERS", "WebConfig", "create_app"]

HERE = Path(__file__).parent
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS: dict[str, str] = {
    "content-security-policy": CSP,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
    "cross-origin-opener-policy": "same-origin",
}
#: Paths anyone may fetch, signed in or not.
PUBLIC_PREFIXES = ("/static/", "/login")
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


@dataclass
class WebConfig:
    """What the dashboard serves and to whom."""

    db: str  # the store, as --db names it
    tokens: Tokens | None = None  # None: nobody signs in (loopback only, read-only)
    sessions: Sessions = field(default_factory=Sessions)
    poll_seconds: float = 2.0  # how often the pages ask for fresh figures


class SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.decode("latin-1").lower() not in SECURITY_HEADERS
                ]
                headers.extend((k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items())
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def _host_name(host: str) -> str:
    if host.startswith("["):
        return host.partition("]")[0] + "]"
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def _same_origin(headers: Headers) -> bool:
    """Whether a POST may come from this site's own pages: a browser says where it was sent
    from in ``Sec-Fetch-Site``, or else in ``Origin`` (``null`` under this site's
    ``no-referrer`` policy: it then says nothing); a client that sends neither is no browser
    (scripts with a bearer token), and a form still needs its CSRF token."""
    site = headers.get("sec-fetch-site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = headers.get("origin")
    if origin is None or origin == "null":
        return True
    return urlsplit(origin).netloc.lower() == headers.get("host", "").lower()


class Gate:
    """Who asks (see the module docstring); refuses what must be refused."""

    def __init__(self, app: ASGIApp, config: WebConfig) -> None:
        self.app = app
        self.config = config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        path: str = scope["path"]
        refusal = self._refusal(scope, headers, path)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope, headers: Headers, path: str) -> Response | None:
        if scope["method"] == "POST" and not _same_origin(headers):
            return _error(path, 403, "cross-site request refused")
        tokens = self.config.tokens
        if tokens is None:
            if _host_name(headers.get("host", "")).lower() not in LOOPBACK_NAMES:
                return _error(path, 403, "this dashboard answers on loopback names only")
            return None
        user, session = self._identify(headers, tokens)
        scope["fleetops.user"] = user
        scope["fleetops.session"] = session
        if user is None and not path.startswith(PUBLIC_PREFIXES):
            if path.startswith("/api/"):
                return _error(path, 401, "sign in: a session cookie or Authorization: Bearer TOKEN")
            from fleetops.web.routes import sign_in_page

            return sign_in_page(path, status=401)  # a browser gets the form
        return None

    def _identify(self, headers: Headers, tokens: Tokens) -> tuple[str | None, Any]:
        scheme, _, credential = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and credential.strip():
            return tokens.holder(credential.strip()), None
        session = self.config.sessions.get(_cookie(headers, COOKIE))
        return (session.name, session) if session is not None else (None, None)


def _cookie(headers: Headers, name: str) -> str | None:
    for part in headers.get("cookie", "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


def _error(path: str, status: int, message: str) -> Response:
    if path.startswith("/api/"):
        return JSONResponse({"error": message}, status_code=status)
    return Response(message + "\n", status_code=status, media_type="text/plain")


def create_app(config: WebConfig) -> ASGIApp:
    """The dashboard over ``config.db``."""
    from fleetops.web.routes import ROUTES

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        from fleetops.api import open_store

        store: Store = await open_store(config.db, create=False)
        app.state.store = store
        try:
            yield
        finally:
            await store.close()

    app = Starlette(
        routes=[*ROUTES, Mount("/static", StaticFiles(directory=HERE / "static"), name="static")],
        lifespan=lifespan,
    )
    app.state.config = config
    return SecurityHeaders(Gate(app, config))
