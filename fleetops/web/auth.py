"""Who is asking: the token file, sign-in sessions and the CSRF token of each.

The token file (``--auth-token-file``) holds one token a line, bare or ``NAME:TOKEN`` (blank lines
and ``#`` comments skipped); a bare token's holder is ``dashboard``. A file that group or others
may read or write is refused, as is one without a token, a token shorter than
:data:`MIN_TOKEN_LENGTH`, or a token given twice. Invariants:

* A presented token is compared with every known token by :func:`hmac.compare_digest`, all of
  them each time: neither a match nor its position shows in the time taken.
* Tokens are never kept anywhere but in :class:`Tokens`, never put in a cookie, a page, a log
  line or an error message: a browser holds a random session id (HttpOnly, SameSite=Strict), the
  server maps it to the holder's name and that session's CSRF token.
* Sessions live in this process's memory and end after :data:`SESSION_SECONDS` (or a restart).
"""

from __future__ import annotations

import hmac
import re
import secrets
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from fleetops.errors import UsageError

__all__ = [
    "BARE_HOLDER",
    "COOKIE",
    "MIN_TOKEN_LENGTH",
    "SESSION_SECONDS",
    "Session",
    "Sessions",
    "Tokens",
    "load_tokens",
    "same_secret",
]

#: The session cookie's name (its value is a random session id, never a token).
COOKIE = "fleetops_session"

#: Who a bare token (no ``NAME:``) belongs to.
BARE_HOLDER = "dashboard"
MIN_TOKEN_LENGTH = 16
SESSION_SECONDS = 12 * 3600
#: Sessions kept at most (the oldest are dropped first): sign-ins cannot fill the memory.
MAX_SESSIONS = 10_000
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")


def same_secret(given: str, known: str) -> bool:
    """Constant-time equality of two secrets (as bytes: any text compares)."""
    return hmac.compare_digest(given.encode("utf-8"), known.encode("utf-8"))


@dataclass(frozen=True)
class Tokens:
    """The tokens of a token file and their holders' names."""

    entries: tuple[tuple[str, str], ...]  # (holder, token)

    def holder(self, presented: str) -> str | None:
        """The name of whoever holds ``presented`` (None: nobody), comparing with every token."""
        found: str | None = None
        for name, token in self.entries:
            if same_secret(presented, token) and found is None:
                found = name
        return found

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(token for _, token in self.entries)


def _parse_line(line: str, where: str) -> tuple[str, str]:
    name, sep, token = line.partition(":")
    if not sep or not _NAME.match(name.strip()):
        name, token = BARE_HOLDER, line
    name, token = name.strip(), token.strip()
    if len(token) < MIN_TOKEN_LENGTH or any(c.isspace() for c in token):
        raise UsageError(
            f"{where}: a token is at least {MIN_TOKEN_LENGTH} characters without spaces "
            "(make one with `openssl rand -hex 32`)"
        )
    return name, token


def load_tokens(path: Path) -> Tokens:
    """The tokens of the file at ``path``; a :class:`UsageError` (one line, never quoting a
    token) if it cannot be used."""
    try:
        info = path.stat()
    except OSError as exc:
        raise UsageError(f"cannot read the token file {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise UsageError(f"the token file {path} is not a regular file")
    if info.st_mode & 0o077:
        raise UsageError(
            f"the token file {path} is open to group or others (mode "
            f"{stat.S_IMODE(info.st_mode):04o}): `chmod 600 {path}`"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the token file {path}: {exc}") from None
    entries: list[tuple[str, str]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        entries.append(_parse_line(line, f"{path}:{number}"))
    if not entries:
        raise UsageError(f"the token file {path} holds no token")
    if len({token for _, token in entries}) != len(entries):
        raise UsageError(f"the token file {path} names one token twice")
    return Tokens(tuple(entries))


@dataclass(frozen=True)
class Session:
    """A signed-in browser: who, the CSRF token its forms carry, until when."""

    sid: str
    name: str
    csrf: str
    expires_at: float


class Sessions:
    """Signed-in browsers by session id (random, 256 bits), in memory."""

    def __init__(self, *, lifetime: float = SESSION_SECONDS) -> None:
        self.lifetime = lifetime
        self._by_id: dict[str, Session] = {}

    def open(self, name: str) -> Session:
        while len(self._by_id) >= MAX_SESSIONS:
            self._by_id.pop(next(iter(self._by_id)))
        session = Session(
            sid=secrets.token_urlsafe(32),
            name=name,
            csrf=secrets.token_urlsafe(32),
            expires_at=time.time() + self.lifetime,
        )
        self._by_id[session.sid] = session
        return session

    def get(self, sid: str | None) -> Session | None:
        if not sid:
            return None
        session = self._by_id.get(sid)
        if session is not None and session.expires_at <= time.time():
            del self._by_id[sid]
            return None
        return session

    def close(self, sid: str) -> None:
        self._by_id.pop(sid, None)
