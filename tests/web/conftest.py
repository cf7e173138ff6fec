"""Fixtures of the dashboard's tests (the helpers live in tests/support/web_support.py)."""

from __future__ import annotations

from web_support import history, open_server, server, token_file

__all__ = ["history", "open_server", "server", "token_file"]
