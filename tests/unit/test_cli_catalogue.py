from __future__ import annotations

from fleetops.actions import ACTIONS
from fleetops.cli import ACTION_NAMES


def test_cli_lists_exactly_the_catalogue() -> None:
    # The CLI keeps its own list so that history commands start without loading botocore.
    assert set(ACTIONS) == set(ACTION_NAMES)
