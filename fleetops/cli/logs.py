"""Logs a person can read, or a log shipper can parse.

``configure(verbosity, fmt)`` is called once by the CLI:

- ``0`` (default): warnings and errors only (``quiet``: errors only).
- ``1`` (``-v``): fleetops's own decisions at INFO, one line each, from the ``fleetops.*``
  loggers: plans, batches, retries with their reasons, verification verdicts, quota changes.
  No library speaks: no SQL statements (SQLAlchemy, aiosqlite), no HTTP.
- ``2`` (``-vv``): fleetops's DEBUG and the libraries' DEBUG too, except the AWS transport's
  (botocore, aiobotocore, boto3, urllib3, aiohttp): those log whole signed requests,
  credentials included, and are held at WARNING whatever else asks for them.

``fmt="json"`` writes the same records as JSON lines (``ts``, ``level``, ``logger``,
``message`` and the record's structured extras) on stderr. Every other line a command writes
to stderr (its plan, its summary, progress) is wrapped into the same shape, so a shipper can
parse each line of stderr.

Known secrets (the AWS keys and session token in the environment, request signatures) are
masked in every line, whatever the format.
"""

from __future__ import annotations

import atexit
import io
import logging
import os
import re
import sys
import time
from typing import Any, TextIO

from fleetops.errors import UsageError

__all__ = [
    "LIBRARY_LOGGERS",
    "LOG_FORMATS",
    "TRANSPORT_LOGGERS",
    "JsonFormatter",
    "SecretFilter",
    "TextFormatter",
    "configure",
    "json_enabled",
    "redact",
]

LOG_FORMATS = ("text", "json")

#: Loggers that see signed requests (headers, credentials): never below WARNING.
TRANSPORT_LOGGERS = ("botocore", "aiobotocore", "boto3", "s3transfer", "urllib3", "aiohttp")
#: Chatty libraries, silent unless -vv.
LIBRARY_LOGGERS = ("sqlalchemy", "aiosqlite", "alembic", "asyncio", "asyncpg", "psycopg")

#: Attributes every LogRecord has: anything else on a record is a structured extra.
_RECORD_FIELDS = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None)).keys()
    | {"message", "asctime", "taskName"}
)
_SECRET_ENV = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")
_SECRET_PATTERNS = (
    re.compile(r"(Signature=)[0-9a-fA-F]{16,}"),
    re.compile(r"(X-Amz-Security-Token['\"]?\s*[:=]\s*['\"]?)[^\s'\",}]+", re.IGNORECASE),
    re.compile(r"(aws_secret_access_key['\"]?\s*[:=]\s*['\"]?)[^\s'\",}]+", re.IGNORECASE),
    re.compile(r"(aws_session_token['\"]?\s*[:=]\s*['\"]?)[^\s'\",}]+", re.IGNORECASE),
)
_MASK = "***"

_state: dict[str, Any] = {"json": False, "handler": None, "stderr": None}


def redact(text: str) -> str:
    """``text`` with the environment's AWS secrets and any request signature masked."""
    for name in _SECRET_ENV:
        secret = os.environ.get(name)
        if secret and len(secret) >= 4 and secret in text:
            text = text.replace(secret, _MASK)
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + _MASK, text)
    return text


class SecretFilter(logging.Filter):
    """Drops the AWS transport's records below WARNING, whoever enabled them."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or not _is_transport(record.name)


def _is_transport(name: str) -> bool:
    return any(name == lib or name.startswith(lib + ".") for lib in TRANSPORT_LOGGERS)


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _RECORD_FIELDS}


class TextFormatter(logging.Formatter):
    """``13:40:01 INFO fleetops.engine.scope: message`` (UTC), secrets masked."""

    converter = time.gmtime  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def _jsonable(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    return str(value)


def _dumps(record: dict[str, Any]) -> str:
    import json  # only JSON mode pays for it (every command configures logging at start)

    return json.dumps(record, ensure_ascii=False)


def _iso(timestamp: float) -> str:
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(timestamp))
        + f".{int(timestamp % 1 * 1000):03d}Z"
    )


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, message, then the record's extras."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": _iso(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in _extras(record).items():
            line.setdefault(key, _jsonable(value))
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info).rstrip()
        return redact(_dumps(line))


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at emit time (rich's live display redirects it,
    so log lines land above the progress bar instead of through it)."""

    def __init__(self, target: TextIO | None = None) -> None:
        super().__init__()
        self._target = target

    @property
    def stream(self) -> TextIO:
        return self._target if self._target is not None else sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:  # StreamHandler.__init__ assigns it
        pass


class _JsonLines(io.TextIOBase):
    """stderr in JSON mode: every line another writer sends (a plan, a summary, progress,
    a traceback) leaves as a JSON record of logger ``fleetops.cli.main``; never a terminal."""

    def __init__(self, raw: TextIO) -> None:
        self._raw = raw
        self._pending = ""

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            if line.strip():
                self._emit(line)
        return len(text)

    def _emit(self, line: str) -> None:
        record = {
            "ts": _iso(time.time()),
            "level": "INFO",
            "logger": "fleetops.cli.main",
            "message": line.rstrip(),
        }
        self._raw.write(redact(_dumps(record)) + "\n")
        self._raw.flush()

    def flush(self) -> None:
        self._raw.flush()

    def close_pending(self) -> None:
        if self._pending.strip():
            self._emit(self._pending)
        self._pending = ""

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._raw, "encoding", "utf-8") or "utf-8"


def json_enabled() -> bool:
    """Whether ``configure`` chose JSON lines (progress then logs instead of drawing)."""
    return bool(_state["json"])


def _levels(verbosity: int, quiet: bool) -> tuple[int, int]:
    """(root level, fleetops level)."""
    if verbosity >= 2:
        return logging.DEBUG, logging.DEBUG
    if verbosity == 1:
        return logging.WARNING, logging.INFO
    return (logging.ERROR, logging.ERROR) if quiet else (logging.WARNING, logging.WARNING)


def configure(
    verbosity: int = 0, fmt: str = "text", *, quiet: bool = False, stream: TextIO | None = None
) -> None:
    """Set up fleetops's logging (idempotent: a second call replaces the first).

    ``stream`` replaces stderr (tests); ``fmt`` is ``text`` or ``json``.
    """
    if fmt not in LOG_FORMATS:
        raise UsageError(f"unknown log format {fmt!r}; choose from {', '.join(LOG_FORMATS)}")
    root = logging.getLogger()
    # Every handler of an earlier configuration goes, not only the last one remembered.
    for old in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(old)
    if isinstance(sys.stderr, _JsonLines):
        sys.stderr.close_pending()
        sys.stderr = _state["stderr"]
    use_json = fmt == "json"
    target = stream
    if use_json and stream is None:
        _state["stderr"] = sys.stderr
        target = sys.stderr
        lines = _JsonLines(target)
        sys.stderr = lines
        atexit.register(lines.close_pending)
    handler = _StderrHandler(target)
    handler.setFormatter(JsonFormatter() if use_json else TextFormatter())
    handler.addFilter(SecretFilter())
    root.addHandler(handler)
    _state.update(json=use_json, handler=handler)

    root_level, own_level = _levels(verbosity, quiet)
    root.setLevel(root_level)
    logging.getLogger("fleetops").setLevel(own_level)
    # JSON progress records are the shipper's view of a running job: on unless --quiet.
    progress_level = logging.INFO if use_json and not quiet and verbosity < 2 else logging.NOTSET
    logging.getLogger("fleetops.cli.progress").setLevel(progress_level)
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if verbosity >= 2 else logging.WARNING)
    for name in TRANSPORT_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
