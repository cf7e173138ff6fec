"""A local Amazon WorkSpaces endpoint speaking the AWS JSON 1.1 wire protocol.

The real aiobotocore/boto3 clients run unmodified against it: point ``endpoint_url`` at
``Simulator.endpoint_url``. WorkSpaces, directories, bundles, users, tags, connection history and
snapshots are generated deterministically from ``seed``; actions follow the eligibility rules of
the API reference and move WorkSpaces through their transitional states lazily (no task per
WorkSpace). Quota (token bucket), latency, 500s, per-item failures (``ErrorCode``
``InternalFailure``), stuck reboots and a Describe lag (eventual consistency: ``describe_lag``
seconds of stale DescribeWorkspaces answers; ``_history``) are knobs. See ``_fleet`` for the
error codes used and ``_stats`` for how calls are counted (throttled calls count only in
``throttled``).

Several accounts (``accounts=[...]``, ``fleetops sim serve --account ID``): each has its own
generated fleet, quota and counters, chosen by the access key a request is signed with; the same
endpoint answers STS AssumeRole and GetCallerIdentity (query protocol), so a client reaches an
account by assuming a role in it (``configure_account``: deny AssumeRole, require an external id;
``expire_sessions``: ExpiredToken; ``stats(account)``).

    async with Simulator(workspaces=1000, rate=None) as sim:
        client = session.create_client("workspaces", endpoint_url=sim.endpoint_url, ...)

    with Simulator(workspaces=100).run_in_thread() as sim:   # boto3, the CLI
        ...
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fleetops.sim._server import Simulator
    from fleetops.sim._stats import SimStats
    from fleetops.sim._validate import ApiError

__all__ = ["ApiError", "SimStats", "Simulator"]


def __getattr__(name: str) -> Any:
    # Lazy: ``fleetops sim`` is registered on every CLI start, aiohttp is loaded only when a
    # simulator is actually made.
    if name == "Simulator":
        from fleetops.sim._server import Simulator

        return Simulator
    if name == "SimStats":
        from fleetops.sim._stats import SimStats

        return SimStats
    if name == "ApiError":
        from fleetops.sim._validate import ApiError

        return ApiError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
