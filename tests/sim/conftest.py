"""Shared fixtures for the simulator tests: dummy credentials, a running simulator, clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from fleetops.sim import Simulator

REGION = "us-east-1"


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials and region; no profile or config file from the machine."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_WORKSPACES", raising=False)


ClientFactory = Callable[..., AbstractAsyncContextManager[Any]]


@pytest.fixture
def make_client() -> ClientFactory:
    """``make_client(sim, max_attempts=1)``: an aiobotocore client; attempts include the first."""

    def factory(sim: Simulator, max_attempts: int = 1, mode: str = "standard") -> Any:
        config = AioConfig(retries={"total_max_attempts": max_attempts, "mode": mode})
        return get_session().create_client(
            "workspaces",
            region_name=REGION,
            endpoint_url=sim.endpoint_url,
            aws_access_key_id="x",
            aws_secret_access_key="x",
            config=config,
        )

    return factory


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    """1,000 WorkSpaces, no quota, fast transitions."""
    async with Simulator(workspaces=1000, rate=None, transition_seconds=0.1) as running:
        yield running


@pytest.fixture
async def client(sim: Simulator, make_client: ClientFactory) -> AsyncIterator[Any]:
    async with make_client(sim) as c:
        yield c


@pytest.fixture
def thread_sim() -> Iterator[Simulator]:
    """A simulator served from its own thread, for boto3."""
    with Simulator(workspaces=1000, rate=None, transition_seconds=0.1).run_in_thread() as running:
        yield running


def _ids_in_state(sim: Simulator, state: str, count: int, **props: str) -> list[str]:
    found: list[str] = []
    for ws_id in sim.workspace_ids():
        ws = sim.workspace(ws_id)
        assert ws is not None
        wp = ws["WorkspaceProperties"]
        if ws["State"] == state and all(wp.get(k) == v for k, v in props.items()):
            found.append(ws_id)
            if len(found) == count:
                return found
    raise AssertionError(f"fewer than {count} WorkSpaces in {state} with {props}")


@pytest.fixture
def ids_in_state() -> Callable[..., list[str]]:
    """``ids_in_state(sim, state, count, RunningMode=...)``: the first matching WorkSpace ids."""
    return _ids_in_state
