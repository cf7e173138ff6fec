"""The Simulator: an aiohttp.web endpoint speaking AWS JSON 1.1 for WorkSpaces.

Request pipeline (each step answers and stops on failure): count the request → latency →
expired credentials (400 ExpiredTokenException) → ``X-Amz-Target`` (400
UnknownOperationException) → quota (400 ThrottlingException) → admitted: counted per operation →
injected fault (500 InternalFailure) → JSON body (400 SerializationException) → validation from
botocore's model (400 ValidationException) → the operation.

Several accounts: a request is served by the account of the access key it is signed with
(``_accounts``), each with its own generated fleet, quota and counters; form-encoded query-protocol
POSTs are STS (AssumeRole, GetCallerIdentity: ``_sts``) and are counted apart.

Also ``GET /_sim/stats[?account=ID]``, ``POST /_sim/reset``, ``POST /_sim/config`` (JSON knobs)
and ``POST /_sim/account`` (JSON: account, deny_assume_role, external_id, expire_sessions) and
``POST /_sim/connections`` (JSON: workspace_ids, state CONNECTED|DISCONNECTED: users log on and
off) for subprocess users; these are not part of AWS and are not counted.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from fleetops.sim import _model
from fleetops.sim._accounts import DEFAULT_ACCOUNT, Account, AccountBook, Session, access_key_of
from fleetops.sim._edges import add_standby, add_standbys
from fleetops.sim._fleet import Fleet, FleetConfig
from fleetops.sim._ops import HANDLERS, named_workspace_ids
from fleetops.sim._stats import Counters, SimStats
from fleetops.sim._sts import handle_sts, is_sts_request
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
        "latency_jitter_ms",
        "error_rate",
        "item_failure_rate",
        "stuck_reboot_rate",
        "transition_seconds",
        "describe_lag",
        "reboot_heal_fraction",
        "restore_heal_fraction",
        "rebuild_error_fraction",
        "in_progress_first",
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
        latency_jitter_ms: float = 0.0,
        error_rate: float = 0.0,
        item_failure_rate: float = 0.0,
        stuck_reboot_rate: float = 0.0,
        transition_seconds: float = 2.0,
        describe_lag: float = 0.0,
        connected_fraction: float = 0.1,
        stale_snapshot_fraction: float = 0.05,
        directories: int = 4,
        bundles: int = 3,
        accounts: Sequence[str] = (),
        in_progress_first: int = 0,
        standbys: int = 0,
    ) -> None:
        self.region = region
        self.host = host
        self.port = port
        self.rate: float | None = rate if rate else None
        self.burst = burst
        self.per_operation_quota = per_operation_quota
        self.latency_ms = latency_ms
        #: each request's latency gets up to this much more, at random (seeded): answers of
        #: calls made together then come back in another order
        self.latency_jitter_ms = latency_jitter_ms
        self._jitter = random.Random(seed + 2)
        self.error_rate = error_rate
        self._lock = threading.RLock()
        self._clock_offset = 0.0
        self._fleet = Fleet(
            workspaces,
            FleetConfig(
                seed=seed,
                item_failure_rate=item_failure_rate,
                stuck_reboot_rate=stuck_reboot_rate,
                transition_seconds=transition_seconds,
                describe_lag=describe_lag,
                in_progress_first=in_progress_first,
            ),
            self._now,
            directories=directories,
            bundles=bundles,
            connected_fraction=connected_fraction,
            stale_snapshot_fraction=stale_snapshot_fraction,
        )
        self._fleet.region = region
        add_standbys(self._fleet, standbys)
        self._errors = random.Random(seed + 2)
        self._buckets: dict[str, _Bucket] = {}
        self._counters = Counters()

        def make_fleet(account_id: str) -> Fleet:
            # Another account: another fleet (other ids), same shape and knobs.
            config = replace(self._fleet.config, seed=seed + int(account_id) % 1_000_003)
            return Fleet(
                workspaces,
                config,
                self._now,
                directories=directories,
                bundles=bundles,
                connected_fraction=connected_fraction,
                stale_snapshot_fraction=stale_snapshot_fraction,
            )

        self._accounts = AccountBook(
            Account(DEFAULT_ACCOUNT, self._fleet, self._counters, self._buckets), make_fleet
        )
        for account_id in accounts:
            self._accounts.add(account_id)
        self._expired = False
        self._runner: web.AppRunner | None = None
        _model.load()  # read the model now, not on the first request

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
        app.router.add_post("/_sim/account", self._http_account)
        app.router.add_post("/_sim/connections", self._http_connections)
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

    def stats(self, account: str | None = None) -> SimStats:
        """The counters of ``account`` (default: the default account)."""
        with self._lock:
            acct = self._account(account)
            return acct.counters.snapshot(
                acct.fleet.states(), dict(acct.sts_calls), acct.sessions_issued
            )

    def account_stats(self) -> dict[str, SimStats]:
        """The counters of every account, by account id."""
        with self._lock:
            return {account_id: self.stats(account_id) for account_id in self._accounts.accounts}

    def reset_stats(self) -> None:
        with self._lock:
            for acct in self._accounts.accounts.values():
                acct.counters.reset()
                acct.sts_calls.clear()
                acct.sessions_issued = 0

    # -- accounts -----------------------------------------------------------------------------

    @property
    def default_account(self) -> str:
        return self._accounts.default.account_id

    def account_ids(self) -> list[str]:
        """Every account served, the default first."""
        with self._lock:
            return list(self._accounts.accounts)

    def configure_account(
        self,
        account: str,
        *,
        deny_assume_role: bool | None = None,
        external_id: str | None = None,
        access_key: str | None = None,
    ) -> None:
        """Serve ``account`` (generating its fleet), and set how AssumeRole into it behaves:
        ``deny_assume_role`` answers AccessDenied; ``external_id`` must then be given;
        requests signed with ``access_key`` are served by it."""
        with self._lock:
            acct = self._accounts.add(account)
            if deny_assume_role is not None:
                acct.deny_assume_role = deny_assume_role
            if external_id is not None:
                acct.external_id = external_id or None
            if access_key is not None:
                self._accounts.add_access_key(access_key, account)

    def share_credentials(self, other: Simulator) -> None:
        """Accept the temporary credentials ``other`` issues (and its static keys): two
        simulators standing for two regions of the same accounts."""
        with self._lock:
            self._accounts.share_credentials(other._accounts)

    def expire_sessions(self, account: str | None = None) -> int:
        """Expire every temporary credential issued so far (ExpiredToken from now on)."""
        with self._lock:
            return self._accounts.expire_sessions(account)

    def set_session_seconds(self, seconds: float | None) -> None:
        """Lifetime of the credentials AssumeRole issues from now on (None: as asked)."""
        with self._lock:
            self._accounts.session_seconds = seconds

    def _account(self, account: str | None) -> Account:
        if account is None:
            return self._accounts.default
        try:
            return self._accounts.accounts[account]
        except KeyError:
            raise KeyError(f"the simulator serves no account {account}") from None

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
            if "latency_jitter_ms" in knobs:
                self.latency_jitter_ms = float(knobs["latency_jitter_ms"])
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
                reboot_heal_fraction=float(
                    knobs.get("reboot_heal_fraction", config.reboot_heal_fraction)
                ),
                restore_heal_fraction=float(
                    knobs.get("restore_heal_fraction", config.restore_heal_fraction)
                ),
                rebuild_error_fraction=float(
                    knobs.get("rebuild_error_fraction", config.rebuild_error_fraction)
                ),
                in_progress_first=int(knobs.get("in_progress_first", config.in_progress_first)),
            )
            for acct in self._accounts.accounts.values():
                if acct.fleet is not self._fleet:
                    acct.fleet.config = replace(self._fleet.config, seed=acct.fleet.config.seed)
                acct.buckets.clear()  # new quota: buckets start full again

    def workspace(self, workspace_id: str, account: str | None = None) -> dict[str, Any] | None:
        with self._lock:
            ws = self._account(account).fleet.get(workspace_id)
            return ws.describe() if ws is not None else None

    def visible_workspace(
        self, workspace_id: str, account: str | None = None
    ) -> dict[str, Any] | None:
        """The WorkSpace as DescribeWorkspaces shows it now (``describe_lag`` behind)."""
        with self._lock:
            return self._account(account).fleet.visible(workspace_id)

    def timeline(self, workspace_id: str, account: str | None = None) -> list[tuple[float, str]]:
        """Every real state the WorkSpace entered, with its epoch time (``TERMINATED`` when it
        vanished): when it actually settled, whatever a lagging Describe said."""
        with self._lock:
            return self._account(account).fleet.timeline(workspace_id)

    def workspace_ids(self, account: str | None = None) -> list[str]:
        with self._lock:
            fleet = self._account(account).fleet
            fleet.states()  # settle: terminated WorkSpaces leave the order
            return list(fleet.order)

    def add_standby(self, primary_id: str, account: str | None = None) -> str:
        """Test hook: a standby WorkSpace for ``primary_id`` (as CreateStandbyWorkspaces makes
        one, in the primary's directory); its id."""
        with self._lock:
            fleet = self._account(account).fleet
            primary = fleet.get(primary_id)
            if primary is None:
                raise KeyError(primary_id)
            return add_standby(fleet, primary, self.region).id

    def refuse(
        self,
        workspace_ids: Sequence[str],
        code: str | None = "InvalidUserConfiguration.Workspace",
        account: str | None = None,
    ) -> None:
        """Test hook: every batch operation refuses these WorkSpaces with ``code`` in its
        FailedRequests (None: accepted again)."""
        with self._lock:
            refusals = self._account(account).fleet.refusals
            for ws_id in workspace_ids:
                if code is None:
                    refusals.pop(ws_id, None)
                else:
                    refusals[ws_id] = code

    def set_state(self, workspace_id: str, state: str, account: str | None = None) -> None:
        with self._lock:
            self._account(account).fleet.set_state(workspace_id, state)

    def set_connection(
        self, workspace_ids: list[str], state: str, account: str | None = None
    ) -> None:
        """Connect users to WorkSpaces (``CONNECTED``) or log them off (``DISCONNECTED``)."""
        with self._lock:
            fleet = self._account(account).fleet
            for ws_id in workspace_ids:
                fleet.set_connection(ws_id, state)

    def expire_credentials(self, expired: bool = True) -> None:
        self._expired = expired

    # -- HTTP -------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        access_key = access_key_of(request.headers.get("Authorization", ""))
        target = request.headers.get("X-Amz-Target", "")
        if is_sts_request(request.content_type, target):
            return await self._handle_sts(request, access_key)
        with self._lock:
            account, session = self._accounts.account_for(access_key)
        counters = account.counters
        with self._lock:
            counters.enter()
        try:
            await self._latency()
            raw = await request.read()
            with self._lock:
                token = request.headers.get("X-Amz-Security-Token")
                status, body = self._serve(target, raw, account, session, token)
        finally:
            with self._lock:
                counters.leave()
        return web.Response(
            body=json.dumps(body).encode(),
            status=status,
            headers={"x-amzn-RequestId": str(uuid.uuid4()), "Content-Type": _CONTENT_TYPE},
        )

    async def _latency(self) -> None:
        delay = self.latency_ms
        if self.latency_jitter_ms > 0:
            delay += self._jitter.uniform(0.0, self.latency_jitter_ms)
        if delay > 0:
            await asyncio.sleep(delay / 1000)

    async def _handle_sts(self, request: web.Request, access_key: str | None) -> web.Response:
        await self._latency()
        form = dict(parse_qsl((await request.read()).decode("utf-8", "replace")))
        request_id = str(uuid.uuid4())
        with self._lock:
            status, body = handle_sts(self._accounts, form, access_key, self._now(), request_id)
        return web.Response(
            body=body,
            status=status,
            headers={"x-amzn-RequestId": request_id, "Content-Type": "text/xml"},
        )

    def _serve(
        self,
        target: str,
        raw: bytes,
        account: Account | None = None,
        session: Session | None = None,
        token: str | None = None,
    ) -> tuple[int, dict[str, Any]]:
        account = account or self._accounts.default
        try:
            self._check_session(session, token)
            return 200, self._dispatch(target, raw, account)
        except ApiError as err:
            if err.status >= 500:
                account.counters.errors_500 += 1
            return err.status, {"__type": err.code, "message": err.message}

    def _check_session(self, session: Session | None, token: str | None) -> None:
        """Temporary credentials must carry their token and be neither expired nor revoked."""
        if session is None:
            return
        if token != session.token:
            raise ApiError(
                "UnrecognizedClientException",
                "The security token included in the request is invalid",
            )
        if session.expired or self._now() >= session.expires_at:
            raise ApiError(
                "ExpiredTokenException", "The security token included in the request is expired"
            )

    def _dispatch(self, target: str, raw: bytes, account: Account) -> dict[str, Any]:
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
        if not self._take_token(operation, account.buckets):
            account.counters.throttle()
            raise ApiError("ThrottlingException", "Rate exceeded")
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        ids = named_workspace_ids(operation, body) if isinstance(body, dict) else []
        account.counters.admitted(operation, _batch_size(body), ids)
        if self.error_rate > 0 and self._errors.random() < self.error_rate:
            raise ApiError(
                "InternalFailure",
                "The request processing has failed because of an "
                "unknown error, exception or failure.",
                500,
            )
        validate_input(operation, body)
        return handler(account.fleet, body)

    def _take_token(self, operation: str, buckets: dict[str, Any] | None = None) -> bool:
        if self.rate is None:
            return True
        buckets = self._buckets if buckets is None else buckets
        key = operation if self.per_operation_quota else ""
        bucket = buckets.get(key)
        if bucket is None:
            bucket = buckets[key] = _Bucket(self.rate, self.burst)
        return bool(bucket.take())

    async def _http_stats(self, request: web.Request) -> web.Response:
        try:
            stats = self.stats(request.query.get("account"))
        except KeyError as exc:
            return web.json_response({"message": str(exc.args[0])}, status=404)
        return web.json_response(stats.as_dict())

    async def _http_account(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            account = str(body.pop("account"))
            expire = bool(body.pop("expire_sessions", False))
            self.configure_account(account, **body)
            expired = self.expire_sessions(account) if expire else 0
        except (ValueError, TypeError, KeyError) as exc:
            return web.json_response({"message": str(exc)}, status=400)
        return web.json_response({"expired_sessions": expired})

    async def _http_connections(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            ids = [str(ws_id) for ws_id in body["workspace_ids"]]
            self.set_connection(ids, str(body["state"]), body.get("account"))
        except (ValueError, TypeError, KeyError) as exc:
            return web.json_response({"message": str(exc)}, status=400)
        return web.json_response({"workspace_ids": ids, "state": body["state"]})

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
