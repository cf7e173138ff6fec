"""The dashboard's token file, sessions and address checks, without a server."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from fleetops.errors import UsageError
from fleetops.web.auth import BARE_HOLDER, Sessions, load_tokens
from fleetops.web.server import is_loopback

ALICE = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
BARE = "ffeeddccbbaa99887766554433221100"


def token_file(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "tokens"
    path.write_text(text)
    path.chmod(mode)
    return path


def test_named_and_bare_tokens_and_comments(tmp_path: Path) -> None:
    tokens = load_tokens(token_file(tmp_path, f"# team\n\nalice:{ALICE}\n  {BARE}  \n"))
    assert tokens.holder(ALICE) == "alice"
    assert tokens.holder(BARE) == BARE_HOLDER == "dashboard"
    assert tokens.holder(ALICE[:-1]) is None and tokens.holder("") is None
    assert tokens.holder(f"alice:{ALICE}") is None  # the name is not part of the token


@pytest.mark.parametrize(
    ("text", "mode", "says"),
    [
        (f"alice:{ALICE}\n", 0o640, "open to group or others"),
        (f"alice:{ALICE}\n", 0o604, "open to group or others"),
        ("# none\n", 0o600, "holds no token"),
        ("alice:short\n", 0o600, "at least 16 characters"),
        (f"alice:{ALICE}\nbob:{ALICE}\n", 0o600, "one token twice"),
    ],
)
def test_unusable_token_files_are_refused_without_quoting_a_token(
    tmp_path: Path, text: str, mode: int, says: str
) -> None:
    with pytest.raises(UsageError, match=says) as refused:
        load_tokens(token_file(tmp_path, text, mode))
    assert ALICE not in str(refused.value) and "short" not in str(refused.value)


def test_a_missing_token_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read the token file"):
        load_tokens(tmp_path / "nowhere")


def test_sessions_end_and_are_unguessable() -> None:
    sessions = Sessions(lifetime=0.2)
    first, second = sessions.open("alice"), sessions.open("alice")
    assert first.sid != second.sid and first.csrf != second.csrf and len(first.sid) >= 40
    assert sessions.get(first.sid) == first and sessions.get("made-up") is None
    sessions.close(first.sid)
    assert sessions.get(first.sid) is None
    time.sleep(0.25)
    assert sessions.get(second.sid) is None


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.3.4.5", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.7", False),
        ("dashboard.internal", False),
    ],
)
def test_what_counts_as_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
