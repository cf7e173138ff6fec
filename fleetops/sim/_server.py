"""The Simulator: an aiohttp.web endpoint speaking AWS JSON 1.1 for WorkSpaces.

Request pipeline (each step answers and stops on failure): count the request → latency →
expired credentials (400 ExpiredTokenException) → ``X-Amz-Target`` (400
UnknownOperationException) → quota (400 ThrottlingException) → admitted: counted per operation →
injected fault (500 InternalFailure) → JSON body (400 SerializationException) → validation from
botocore's model (400 ValidationException) → the operation.

Also ``GET /_sim/stats``, ``POST /_sim/reset`` and ``POST /_sim/config`` (JSON knobs) for
subprocess users; these are not part of AWS and are not counted.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from types import TracebackType
from typing import Any

from aiohttp import web

from fleetops.model import service_model
from fleetops.sim._fleet import Fleet, FleetConfig
from fleetops.sim._ops import HANDLERS, named_workspace_ids
from fleetops.sim._stats import Counters, SimStats
from fleetops.sim._validate import ApiError, validate_input

__all__ = ["Simulator"]

_CONTENT_TYPE = "application/x-amz-json-1.1"
_TARGET_PREFIX = "WorkspacesService."
_KNOBS = frozenset(
    {
        "rate",
        "burst",
        "per_operation_quota",
        "latency_ms",
        "error_rate",
        "item_failure_rate",
        "stuck_reboot_rate",
        "transition_seconds",
        "describe_lag",
    }
)


class _Bucket:
    """A token bucket starting full: ``rate`` tokens per second up to ``burst``."""

    __slots__ = ("burst", "last", "rate", "tokens")

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = float(burst)
        self.last = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(float(self.burst), self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class Simulator:
    """A local Amazon WorkSpaces endpoint; see the package docstring for the knobs."""

    def __init__(
        self,
        workspaces: int = 1000,
        seed: int = 0,
        region: str = "us-east-1",
        host: str = "127.0.0.1",
        port: int = 0,
        rate: float | None = 2.0,
        burst: int = 5,
        per_operation_quota: bool = False,
        latency_ms: float = 0.0,
        error_rate: float = 0.0,
        item_failure_rate: float = 0.0,
        stuck_reboot_rate: float = 0.0,
        transition_seconds: float = 2.0,
        describe_lag: float = 0.0,
        connected_fraction: float = 0.1,
        stale_snapshot_fraction: float = 0.05,
        directories: int = 4,
        bundles: int = 3,
    ) -> None:
        self.region = region
        self.host = host
        self.port = port
        self.rate: float | None = rate if rate else None
        self.burst = burst
        self.per_operation_quota = per_operation_quota
        self.latency_ms = latency_ms
        self.error_rate = error_rate
        self._lock = threading.RLock()
        self._clock_offset = 0.0
        self._fleet = Fleet(
            workspaces,
            FleetConfig(
                seed, item_failure_rate, stuck_reboot_rate, transition_seconds, describe_lag
            ),
            self._now,
            directories=directories,
            bundles=bundles,
            connected_fraction=connected_fraction,
            stale_snapshot_fraction=stale_snapshot_fraction,
        )
        self._errors = random.Random(seed + 2)
        self._buckets: dict[str, _Bucket] = {}
        self._counters = Counters()
        self._expired = False
        self._runner: web.AppRunner | None = None
        service_model()  # load the model now, not on the first request

    # -- clock ------------------------------------------------------------------------------

    def _now(self) -> float:
        return time.time() + self._clock_offset

    def advance(self, seconds: float) -> None:
        """Test hook: move the simulated clock forward (transitions end, reboots get stuck)."""
        with self._lock:
            self._clock_offset += seconds

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def endpoint_url(self) -> str:
        if self._runner is None:
            raise RuntimeError("the simulator is not running")
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_post("/", self._handle)
        app.router.add_get("/_sim/stats", self._http_stats)
        app.router.add_post("/_sim/reset", self._http_reset)
        app.router.add_post("/_sim/config", self._http_config)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner = runner
        address = runner.addresses[0]
        self.port = int(address[1])

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @contextmanager
    def run_in_thread(self) -> Iterator[Simulator]:
        """Serve from a daemon thread with its own event loop (for boto3 and the CLI)."""
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start())
            except BaseException as exc:  # reported to the caller below
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.stop())
            loop.close()

        thread = threading.Thread(target=serve, name="fleetops-sim", daemon=True)
        thread.start()
        ready.wait()
        if failure:
            raise failure[0]
        try:
            yield self
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)

    # -- introspection and knobs --------------------------------------------------------------

    def stats(self) -> SimStats:
        with self._lock:
            return self._counters.snapshot(self._fleet.states())

    def reset_stats(self) -> None:
        with self._lock:
            self._counters.reset()

    def configure(self, **knobs: Any) -> None:
        """Change quota and fault knobs at run time (names as in the constructor)."""
        unknown = set(knobs) - _KNOBS
        if unknown:
            raise TypeError(f"unknown simulator knobs: {', '.join(sorted(unknown))}")
        with self._lock:
            if "rate" in knobs:
                self.rate = float(knobs["rate"]) if knobs["rate"] else None
            if "burst" in knobs:
                self.burst = int(knobs["burst"])
            if "per_operation_quota" in knobs:
                self.per_operation_quota = bool(knobs["per_operation_quota"])
            if "latency_ms" in knobs:
                self.latency_ms = float(knobs["latency_ms"])
            if "error_rate" in knobs:
                self.error_rate = float(knobs["error_rate"])
            config = self._fleet.config
            self._fleet.config = replace(
                config,
                item_failure_rate=float(knobs.get("item_failure_rate", config.item_failure_rate)),
                stuck_reboot_rate=float(knobs.get("stuck_reboot_rate", config.stuck_reboot_rate)),
                transition_seconds=float(
                    knobs.get("transition_seconds", config.transition_seconds)
                ),
                describe_lag=float(knobs.get("describe_lag", config.describe_lag)),
            )
            self._buckets.clear()  # new quota: buckets start full again

    def workspace(self, workspace_id: str) -> dict[str, Any] | None:
        with self._lock:
            ws = self._fleet.get(workspace_id)
            return ws.describe() if ws is not None else None

    def visible_workspace(self, workspace_id: str) -> dict[str, Any] | None:
        """The WorkSpace as DescribeWorkspaces shows it now (``describe_lag`` behind)."""
        with self._lock:
            return self._fleet.visible(workspace_id)

    def timeline(self, workspace_id: str) -> list[tuple[float, str]]:
        """Every real state the WorkSpace entered, with its epoch time (``TERMINATED`` when it
        vanished): when it actually settled, whatever a lagging Describe said."""
        with self._lock:
            return self._fleet.timeline(workspace_id)

    def workspace_ids(self) -> list[str]:
        with self._lock:
            self._fleet.states()  # settle: terminated WorkSpaces leave the order
            return list(self._fleet.order)

    def set_state(self, workspace_id: str, state: str) -> None:
        with self._lock:
            self._fleet.set_state(workspace_id, state)

    def expire_credentials(self, expired: bool = True) -> None:
        self._expired = expired

    # -- HTTP -------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        counters = self._counters
        with self._lock:
            counters.enter()
        try:
            if self.latency_ms > 0:
                await asyncio.sleep(self.latency_ms / 1000)
            raw = await request.read()
            with self._lock:
                status, body = self._serve(request.headers.get("X-Amz-Target", ""), raw)
        finally:
            with self._lock:
                counters.leave()
        return web.Response(
            body=json.dumps(body).encode(),
            status=status,
            headers={"x-amzn-RequestId": str(uuid.uuid4()), "Content-Type": _CONTENT_TYPE},
        )

    def _serve(self, target: str, raw: bytes) -> tuple[int, dict[str, Any]]:
        try:
            return 200, self._dispatch(target, raw)
        except ApiError as err:
            if err.status >= 500:
                self._counters.errors_500 += 1
            return err.status, {"__type": err.code, "message": err.message}

    def _dispatch(self, target: str, raw: bytes) -> dict[str, Any]:
        if self._expired:
            raise ApiError(
                "ExpiredTokenException", "The security token included in the request is expired"
            )
        operation = target[len(_TARGET_PREFIX) :] if target.startswith(_TARGET_PREFIX) else ""
        handler = HANDLERS.get(operation)
        if handler is None:
            raise ApiError(
                "UnknownOperationException",
                f"Unknown operation {target!r}" if target else "Missing X-Amz-Target",
            )
        if not self._take_token(operation):
            self._counters.throttled += 1
            raise ApiError("ThrottlingException", "Rate exceeded")
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        ids = named_workspace_ids(operation, body) if isinstance(body, dict) else []
        self._counters.admitted(operation, _batch_size(body), ids)
        if self.error_rate > 0 and self._errors.random() < self.error_rate:
            raise ApiError(
                "InternalFailure",
                "The request processing has failed because of an "
                "unknown error, exception or failure.",
                500,
            )
        validate_input(operation, body)
        return handler(self._fleet, body)

    def _take_token(self, operation: str) -> bool:
        if self.rate is None:
            return True
        key = operation if self.per_operation_quota else ""
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(self.rate, self.burst)
        return bucket.take()

    async def _http_stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats().as_dict())

    async def _http_reset(self, request: web.Request) -> web.Response:
        self.reset_stats()
        return web.json_response({})

    async def _http_config(self, request: web.Request) -> web.Response:
        try:
            knobs = await request.json()
            self.configure(**knobs)
        except (ValueError, TypeError) as exc:
            return web.json_response({"message": str(exc)}, status=400)
        return web.json_response({})


def _batch_size(body: Any) -> int:
    """Items in the request's list member (the batch), or 1 for a single-item request."""
    if not isinstance(body, dict):
        return 0
    sizes = [
        len(v) for k, v in body.items() if isinstance(v, list) and k != "Tags" and k != "TagKeys"
    ]
    return max(sizes) if sizes else 1
