"""SQL identifiers that cannot be bound parameters (database, table and column names)."""

from __future__ import annotations

import re

__all__ = ["quoted"]

_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def quoted(name: str) -> str:
    """``name`` double-quoted for SQL, refused unless it is a plain identifier (letters, digits,
    underscores): the only text fleetops ever puts into a statement."""
    if not _PLAIN.fullmatch(name):
        raise ValueError(f"not a plain SQL identifier: {name!r}")
    return f'"{name}"'
