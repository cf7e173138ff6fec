"""``fleetops serve``: check what was asked, bind the socket, run the dashboard under uvicorn.

Safe by default, and refused before anything starts (one line on stderr, exit 2):

* a host that is not loopback without ``--auth-token-file`` (the dashboard would be open to the
  network with nobody signed in);
* a token file that group or others can read, or that holds no usable token;
* a database that does not exist (serving never creates one), a port that cannot be bound.

The socket is bound here, before uvicorn starts, so that a port in use is one line too. uvicorn's
access log prints method, path and status: no route takes a token in its query string (tokens
arrive in a form body, a cookie holds a session id, scripts send ``Authorization``), so no line
of it can carry one. ``X-Forwarded-*`` headers are believed from a proxy on loopback alone.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from fleetops.errors import UsageError
from fleetops.web.app import WebConfig, create_app

__all__ = ["ServeRequest", "bind", "is_loopback", "prepare", "serve"]


@dataclass(frozen=True)
class ServeRequest:
    db: str
    host: str = "127.0.0.1"
    port: int = 8080
    token_file: Path | None = None
    poll_seconds: float = 2.0


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) reaches this machine alone."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:  # a host name: it may resolve anywhere
        return False


def prepare(request: ServeRequest) -> WebConfig:
    """The dashboard's configuration (a :class:`fleetops.web.app.WebConfig`), every check of the
    module docstring passed; a :class:`UsageError` otherwise."""
    from fleetops import api
    from fleetops.web.auth import load_tokens

    if not 0 <= request.port <= 65535:
        raise UsageError(f"--port must be from 0 to 65535, not {request.port}")
    if request.token_file is None and not is_loopback(request.host):
        raise UsageError(
            f"--host {request.host} opens the dashboard to the network: give "
            "--auth-token-file FILE (mode 0600) so that every request needs a token"
        )
    tokens = load_tokens(request.token_file) if request.token_file is not None else None
    api.require_database(request.db)
    with api.read_history(request.db) as reader:  # readable, and at this fleetops's schema
        reader.list_jobs(limit=1)
    return WebConfig(db=request.db, tokens=tokens, poll_seconds=request.poll_seconds)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (a :class:`UsageError` if it cannot be had)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise UsageError(f"--host {host}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def serve(request: ServeRequest) -> None:
    """Check, bind, then serve until SIGINT or SIGTERM."""
    import uvicorn

    config = prepare(request)
    sock = bind(request.host, request.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    who = (
        f"sign in with a token of {request.token_file}"
        if config.tokens is not None
        else "read-only, no sign-in"
    )
    sys.stderr.write(f"fleetops dashboard on http://{shown}:{port}/ ({who})\n")
    sys.stderr.flush()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config),
            log_level="info",
            access_log=True,
            proxy_headers=True,
            forwarded_allow_ips="127.0.0.1",
            server_header=False,
            lifespan="on",
        )
    )
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
