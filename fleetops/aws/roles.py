"""Assumed roles: the caller's identity and the temporary credentials of a role in another
account, through STS; one WorkSpaces client per scope (account x region).

A job over accounts runs with the caller's own credentials (botocore's chain: profile,
environment, instance role) only to call STS: one AssumeRole per account, with the session name
it is given (fleetops and the job: CloudTrail shows who did it) and the external id when the
role asks for one. The role's credentials live in botocore's refreshable credentials: assumed
again before they expire during a long job, and at once when the service says they have
(ExpiredToken). They are never stored, logged or shown. A role that cannot be assumed raises
:class:`~fleetops.errors.AssumeRoleError` naming the role and the account.

STS is reached as botocore reaches it (``AWS_ENDPOINT_URL_STS``, ``AWS_ENDPOINT_URL``, the
profile's ``services`` section, else the regional endpoint). Against a WorkSpaces endpoint on
this machine with no STS endpoint configured, STS is asked at that same endpoint (the simulator
answers both).

This module knows no job options nor role flags: the numbers a client needs arrive as
:class:`ClientLimits`, the role as anything that is a :class:`RoleSpec` (the catalogue's
``AssumeSpec``), and the session name ready-made.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import aiohttp
import anyio
import botocore.exceptions
from aiobotocore.config import AioConfig
from aiobotocore.credentials import AioCredentialResolver, AioRefreshableCredentials
from aiobotocore.session import AioSession
from botocore.credentials import CredentialProvider

from fleetops.aws.client import (
    ClientStats,
    Connection,
    WorkSpacesClient,
    caller_session,
    is_loopback,
    new_session,
)
from fleetops.aws.ratelimit import QUOTAS
from fleetops.errors import (
    AssumeRoleError,
    CredentialsError,
    FleetOpsError,
    TransientAwsError,
    UsageError,
)

__all__ = [
    "ROLE_SESSION_SECONDS",
    "AssumedRole",
    "ClientLimits",
    "RoleSpec",
    "UnreachableAccount",
    "caller_arn",
    "open_scope_clients",
    "refresh_windows",
]

log = logging.getLogger(__name__)

_STS_ENDPOINT_ENV = (
    "AWS_ENDPOINT_URL_STS",
    "AWS_ENDPOINT_URL",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_CONFIG_FILE",
)

#: How long the assumed role's credentials are asked to last (the default MaxSessionDuration).
ROLE_SESSION_SECONDS = 3600


@dataclass(frozen=True)
class ClientLimits:
    """What a scope's client is bounded by: its quota (calls per second, None: no client-side
    quota; burst), how many calls run together, and how long to wait for a connection and for
    an answer (seconds)."""

    rate: float | None = None
    burst: int = 1
    concurrency: int = 8
    read_timeout: float = 30.0
    connect_timeout: float = 5.0


class RoleSpec(Protocol):
    """Which role to assume in an account, and with which external id."""

    @property
    def external_id(self) -> str | None: ...

    def role_arn(self, account: str) -> str: ...


# -- STS ---------------------------------------------------------------------------------------


def _sts_config(connect_timeout: float, read_timeout: float) -> AioConfig:
    # STS calls spend no WorkSpaces quota: botocore's own retries (throttling, 5xx) are fine.
    return AioConfig(
        retries={"total_max_attempts": 3, "mode": "standard"},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
    )


#: Where STS was found for a connection and configuration (None: botocore's own endpoint).
_STS_ENDPOINTS: dict[tuple[str | None, ...], str | None] = {}


@asynccontextmanager
async def _sts_client(
    session: AioSession, conn: Connection, config: AioConfig
) -> AsyncIterator[Any]:
    """An STS client where botocore would send it, or at a loopback WorkSpaces endpoint when
    no STS endpoint is configured (the simulator serves both)."""
    key = (
        conn.profile,
        conn.region,
        conn.endpoint_url,
        *(os.environ.get(name) for name in _STS_ENDPOINT_ENV),
    )
    if key not in _STS_ENDPOINTS:
        async with session.create_client("sts", region_name=conn.region, config=config) as probe:
            configured = not str(probe.meta.endpoint_url).endswith(".amazonaws.com")
        use_workspaces = not configured and is_loopback(conn.endpoint_url)
        _STS_ENDPOINTS[key] = conn.endpoint_url if use_workspaces else None
    endpoint = _STS_ENDPOINTS[key]
    kwargs: dict[str, Any] = {"region_name": conn.region, "config": config}
    if endpoint is not None:
        kwargs["endpoint_url"] = endpoint
    async with session.create_client("sts", **kwargs) as client:
        yield client


def _transport_error(exc: Exception) -> TransientAwsError | None:
    if isinstance(
        exc,
        botocore.exceptions.EndpointConnectionError
        | botocore.exceptions.ConnectTimeoutError
        | botocore.exceptions.ReadTimeoutError
        | botocore.exceptions.ConnectionError
        | botocore.exceptions.HTTPClientError
        | aiohttp.ClientError
        | TimeoutError,
    ):
        return TransientAwsError(type(exc).__name__, str(exc) or "STS did not answer")
    return None


async def caller_arn(
    conn: Connection, *, connect_timeout: float = 5.0, read_timeout: float = 30.0
) -> str | None:
    """The ARN of the caller's own credentials (STS GetCallerIdentity), or None when STS
    cannot tell (logged; a job does not need it to run)."""
    session = await caller_session(conn)
    try:
        async with _sts_client(session, conn, _sts_config(connect_timeout, read_timeout)) as sts:
            answer = await sts.get_caller_identity()
    except Exception as exc:  # an endpoint without STS, an answer that does not parse, ...
        # The ARN is history, not a condition of running: whatever STS did, the job goes on.
        log.info("caller identity unknown: GetCallerIdentity failed (%s)", type(exc).__name__)
        return None
    arn = answer.get("Arn")
    return str(arn) if arn else None


def refresh_windows(lifetime: float) -> tuple[float, float]:
    """How long before expiry to refresh (advisory, mandatory): botocore's 15 and 10 minutes
    for credentials of an hour or more; the same proportion of a shorter life."""
    if lifetime >= ROLE_SESSION_SECONDS:
        return 15 * 60.0, 10 * 60.0
    return max(1.0, lifetime / 4), max(0.5, lifetime / 6)


class _OneLine(logging.Filter):
    """botocore logs a failed credential refresh with its traceback; ours carry a clear
    message (the role, the account, the reason): one line is enough."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, FleetOpsError):
            record.msg = f"{record.getMessage()} {error}"
            record.args = ()
            record.exc_info = None
        return True


_ONE_LINE = _OneLine()


class _Provider(CredentialProvider):  # type: ignore[misc]
    """Hands botocore one set of (refreshable) credentials."""

    METHOD = "fleetops-assume-role"
    CANONICAL_NAME = "fleetops-assume-role"

    def __init__(self, credentials: AioRefreshableCredentials) -> None:
        super().__init__()
        self._credentials = credentials

    async def load(self) -> AioRefreshableCredentials:
        return self._credentials


class AssumedRole:
    """The role of one account, assumed through STS with the caller's credentials.

    ``await role.session()`` assumes it the first time (a denied role raises
    :class:`AssumeRoleError` there) and returns a session signing with its credentials, which
    botocore refreshes before they expire; :meth:`refresh` assumes it again at once. One
    instance serves every region of the account.
    """

    def __init__(
        self,
        caller: Connection,
        account: str,
        spec: RoleSpec,
        *,
        session_name: str,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        duration: int = ROLE_SESSION_SECONDS,
    ) -> None:
        logger = logging.getLogger("aiobotocore.credentials")
        if _ONE_LINE not in logger.filters:
            logger.addFilter(_ONE_LINE)
        self.caller = caller
        self.account = account
        self.role_arn = spec.role_arn(account)
        self.external_id = spec.external_id
        self.session_name = session_name
        self.duration = duration
        self._config = _sts_config(connect_timeout, read_timeout)
        self._generation = 0
        self._session: AioSession | None = None
        self._credentials: AioRefreshableCredentials | None = None
        self._lifetime = float(duration)
        self._lock = anyio.Lock()

    def __repr__(self) -> str:
        return f"AssumedRole({self.role_arn!r}, session {self.session_name!r})"

    @property
    def generation(self) -> int:
        return self._generation

    async def session(self) -> AioSession:
        async with self._lock:
            if self._session is None:
                metadata = await self._assume()  # assume now: a denial is raised here
                advisory, mandatory = refresh_windows(self._lifetime)
                credentials = AioRefreshableCredentials.create_from_metadata(
                    metadata,
                    refresh_using=self._assume,
                    method=_Provider.METHOD,
                    advisory_timeout=advisory,
                    mandatory_timeout=mandatory,
                )
                session = new_session(self.caller.profile)
                session.register_component(
                    "credential_provider", AioCredentialResolver([_Provider(credentials)])
                )
                self._credentials, self._session = credentials, session
            return self._session

    async def refresh(self, generation: int) -> None:
        """Assume the role again, unless that happened since ``generation`` (many calls that
        fail together with ExpiredToken cause one AssumeRole)."""
        credentials = self._credentials
        if credentials is None:
            await self.session()
            return
        async with credentials._refresh_lock:
            if self._generation == generation:
                await credentials._protected_refresh(is_mandatory=True)

    async def _assume(self) -> dict[str, Any]:
        """botocore's refresh function: one AssumeRole, its answer in botocore's terms."""
        caller = await caller_session(self.caller)
        params: dict[str, Any] = {
            "RoleArn": self.role_arn,
            "RoleSessionName": self.session_name,
            "DurationSeconds": self.duration,
        }
        if self.external_id:
            params["ExternalId"] = self.external_id
        try:
            async with _sts_client(caller, self.caller, self._config) as sts:
                answer = await sts.assume_role(**params)
        except botocore.exceptions.ClientError as exc:
            raise self._refused(exc) from exc
        except Exception as exc:
            error = _transport_error(exc)
            if error is None:
                raise
            raise error from exc
        credentials = answer["Credentials"]
        expiration: datetime = credentials["Expiration"]
        self._lifetime = (expiration - datetime.now(UTC)).total_seconds()
        self._generation += 1
        log.info(
            "assumed role %s in account %s (session %s, valid until %s)",
            self.role_arn,
            self.account,
            self.session_name,
            expiration.isoformat(),
        )
        return {
            "access_key": credentials["AccessKeyId"],
            "secret_key": credentials["SecretAccessKey"],
            "token": credentials["SessionToken"],
            "expiry_time": expiration.isoformat(),
        }

    def _refused(self, exc: botocore.exceptions.ClientError) -> Exception:
        error = exc.response.get("Error") or {}
        code = str(error.get("Code") or "Unknown")
        message = str(error.get("Message") or exc)
        request_id = (exc.response.get("ResponseMetadata") or {}).get("RequestId")
        if code.startswith("ExpiredToken") or code in {
            "InvalidClientTokenId",
            "SignatureDoesNotMatch",
        }:
            # The caller's own credentials are the problem, not the role.
            return CredentialsError(
                code, f"the credentials used to call STS: {message}", request_id
            )
        status = int((exc.response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0)
        if status >= 500 or code in {"Throttling", "ThrottlingException", "RequestLimitExceeded"}:
            return TransientAwsError(code, message, request_id)
        # AccessDenied (no trust, wrong external id, no such role), a malformed ARN, a region
        # where STS is disabled: this account cannot be reached; the others can.
        return AssumeRoleError(
            code,
            f"cannot assume role {self.role_arn} in account {self.account}: {message}",
            request_id,
        )


# -- clients per scope ---------------------------------------------------------------------------


class UnreachableAccount:
    """The client of a scope whose role cannot be assumed: every call raises the reason, so
    the engine fails that scope's items and goes on with the others."""

    def __init__(self, conn: Connection, error: AssumeRoleError) -> None:
        self.conn = conn
        self.error = error
        self.stats = ClientStats()

    def __repr__(self) -> str:
        return f"UnreachableAccount({self.conn.scope_key!r}, {self.error.code})"

    async def call(self, operation: str, *, idempotent: bool = True, **params: Any) -> Any:
        error = AssumeRoleError(self.error.code, self.error.message, self.error.request_id)
        error.operation = "AssumeRole"
        raise error


@asynccontextmanager
async def open_scope_clients(
    connections: Sequence[Connection],
    limits: ClientLimits,
    *,
    accounts: Sequence[str] | None = None,
    assume: RoleSpec | None = None,
    session_name: str = "fleetops-adhoc",
    credentials: tuple[str, str] | None = None,
) -> AsyncIterator[dict[str, WorkSpacesClient | UnreachableAccount]]:
    """One client per scope, keyed ``"region"`` or ``"account/region"``.

    Without accounts: one client per region with the caller's own credentials. With accounts:
    every account x region, one role per account (assumed once, refreshed as needed, shared by
    its regions); each scope spends its own bucket (one quota per account and region). An
    account whose role cannot be assumed gets an :class:`UnreachableAccount` for its scopes.
    """

    def client(conn: Connection, role: AssumedRole | None) -> WorkSpacesClient:
        return WorkSpacesClient(
            conn,
            bucket=QUOTAS.bucket(conn.quota_key(), limits.rate, limits.burst),
            max_connections=max(10, limits.concurrency * 2),
            read_timeout=limits.read_timeout,
            connect_timeout=limits.connect_timeout,
            credentials=credentials,
            role=role,
        )

    async with AsyncExitStack() as stack:
        clients: dict[str, WorkSpacesClient | UnreachableAccount] = {}
        if not accounts:
            for conn in connections:
                clients[conn.scope_key] = await stack.enter_async_context(client(conn, None))
            yield clients
            return
        if assume is None:
            raise UsageError("accounts need --role-name NAME or --role-arn-template")
        caller = connections[0]
        roles = {
            account: AssumedRole(
                caller,
                account,
                assume,
                session_name=session_name,
                connect_timeout=limits.connect_timeout,
                read_timeout=limits.read_timeout,
            )
            for account in accounts
        }
        refused: dict[str, AssumeRoleError] = {}

        async def assume_role(account: str) -> None:
            try:
                await roles[account].session()
            except AssumeRoleError as exc:
                log.info("account %s unreachable: %s", account, exc.message)
                refused[account] = exc

        async with anyio.create_task_group() as tg:  # one AssumeRole per account, together
            for account in accounts:
                tg.start_soon(assume_role, account)
        for account in accounts:
            for conn in connections:
                scoped = conn.for_account(account)
                if account in refused:
                    clients[scoped.scope_key] = UnreachableAccount(scoped, refused[account])
                else:
                    role = roles[account]
                    clients[scoped.scope_key] = await stack.enter_async_context(
                        client(scoped, role)
                    )
        yield clients
