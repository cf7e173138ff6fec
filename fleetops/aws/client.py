"""The WorkSpaces API edge: the only module that talks to aiobotocore.

Every call goes through the account's token bucket (one token per attempt), is retried by the
engine's :class:`~fleetops.aws.retry.RetryPolicy` (botocore's own retries are switched off so that
attempts are never multiplied invisibly), and every failure of the layers below is translated
into the fleetops error tree with ``raise … from exc``:

    botocore ClientError, code in the policy's retryable codes,
        or HTTP status >= 500 or 429                 → TransientAwsError (retried)
    ExpiredToken*, UnrecognizedClient, InvalidClientTokenId,
        AccessDenied*, signature errors, missing/unloadable credentials → CredentialsError
    any other ClientError                            → AwsError (not retried)
    connection refused/reset, timeouts, aiohttp errors → TransientAwsError
        ("ConnectionError" / "ConnectTimeout" / "ReadTimeout")

Credentials come from botocore's own chain (profile files, environment, SSO, container or
instance role) for the profile named, or from a role assumed through STS for an account
(:class:`~fleetops.aws.roles.AssumedRole`, refreshed before it expires and again when the
service says it has). Only when that chain finds nothing and the endpoint is on this machine
(the simulator) are dummy keys used. Credentials are never logged nor stored outside botocore.

Nothing here touches AWS or its configuration at import time.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field, replace
from functools import cache
from types import TracebackType
from typing import Any, Protocol
from urllib.parse import urlparse

import aiohttp
import botocore.exceptions
import botocore.session
from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession
from botocore import xform_name

from fleetops.aws.fastparse import install as install_plain_parser
from fleetops.aws.model import SERVICE, service_model
from fleetops.aws.ratelimit import TokenBucket
from fleetops.aws.retry import RetryPolicy, is_throttling_code, retrying
from fleetops.aws.wire import Wire
from fleetops.errors import (
    AwsError,
    ConfigurationError,
    CredentialsError,
    TransientAwsError,
    UsageError,
    WindowClosed,
)

__all__ = [
    "NOT_EXECUTED_CODES",
    "SIM_CREDENTIALS",
    "CallResult",
    "ClientStats",
    "Connection",
    "RoleSession",
    "WorkSpacesClient",
    "caller_session",
    "is_auth_code",
    "is_loopback",
]

#: Static keys used only against an endpoint on this machine when botocore's credential chain
#: finds nothing (the simulator checks no signature).
SIM_CREDENTIALS = ("fleetops-sim", "fleetops-sim")

#: Transient codes that prove the request was never carried out: safe to send again, whatever
#: the operation (throttling codes count too, see :func:`not_executed`).
NOT_EXECUTED_CODES: frozenset[str] = frozenset({"ConnectionRefused", "ConnectTimeout"})


def not_executed(exc: BaseException) -> bool:
    """Whether a failed attempt certainly did nothing on the service side."""
    return isinstance(exc, TransientAwsError) and (
        is_throttling_code(exc.code) or exc.code in NOT_EXECUTED_CODES
    )


log = logging.getLogger(__name__)

#: Error codes that mean the caller's credentials are missing, expired or rejected. Retrying
#: cannot help; the job pauses until the operator fixes them.
AUTH_CODES: frozenset[str] = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidAccessKeyId",
        "AccessDenied",
        "AccessDeniedException",
        "AuthFailure",
        "SignatureDoesNotMatch",
        "InvalidSignatureException",
        "IncompleteSignature",
        "IncompleteSignatureException",
        "MissingAuthenticationToken",
        "MissingAuthenticationTokenException",
        "NotAuthorized",
        "UnauthorizedOperation",
    }
)

# Same shape as botocore's own region check (botocore.utils.validate_region_name).
_REGION_RE = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9\-]{0,61}[a-zA-Z0-9])?$")

_CREDENTIAL_FAILURES: tuple[type[Exception], ...] = (
    botocore.exceptions.NoCredentialsError,
    botocore.exceptions.PartialCredentialsError,
    botocore.exceptions.CredentialRetrievalError,
    botocore.exceptions.NoAuthTokenError,
    botocore.exceptions.TokenRetrievalError,
    botocore.exceptions.SSOError,
)


def is_auth_code(code: str) -> bool:
    """Whether an AWS error code means the credentials were missing, expired or rejected."""
    return code in AUTH_CODES or code.startswith("ExpiredToken")


@dataclass(frozen=True)
class Connection:
    """Where to call: region, named profile and endpoint (never credentials), and the account
    when the job reaches it through an assumed role (None: the profile's own account)."""

    region: str
    profile: str | None = None
    endpoint_url: str | None = None
    account: str | None = None

    @property
    def scope_key(self) -> str:
        """The job scope this connection serves: ``"region"``, or ``"account/region"``."""
        return f"{self.account}/{self.region}" if self.account else self.region

    def for_account(self, account: str | None) -> Connection:
        """The same region, profile and endpoint, reaching ``account``."""
        return replace(self, account=account)

    @classmethod
    def resolve(
        cls, region: str | None, profile: str | None, endpoint_url: str | None
    ) -> Connection:
        """Fill what was not given as botocore would, and check it.

        Region: the argument, else ``AWS_REGION``, ``AWS_DEFAULT_REGION``, then the profile's
        ``region`` in the config file. Endpoint: the argument, else
        ``AWS_ENDPOINT_URL_WORKSPACES``, ``AWS_ENDPOINT_URL`` (unless
        ``AWS_IGNORE_CONFIGURED_ENDPOINT_URLS`` is true); filling it in lets a job remember
        where it ran. The profile stays as given: botocore reads ``AWS_PROFILE`` itself, and
        naming a profile explicitly would change its credential chain (env keys are skipped).
        """
        if not region:
            region = os.environ.get("AWS_REGION") or _profile_region(profile)
        if not region:
            where = f"profile {profile!r}" if profile else "the environment or ~/.aws/config"
            raise ConfigurationError(
                f"no AWS region: pass --region or set AWS_REGION (none found in {where})"
            )
        if not _REGION_RE.match(region):
            raise UsageError(f"not a valid AWS region name: {region!r}")
        if not endpoint_url and not _env_flag("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"):
            endpoint_url = os.environ.get("AWS_ENDPOINT_URL_WORKSPACES") or os.environ.get(
                "AWS_ENDPOINT_URL"
            )
        endpoint_url = endpoint_url or None
        if endpoint_url is not None and not endpoint_url.startswith(("http://", "https://")):
            raise UsageError(f"endpoint URL must start with http:// or https://: {endpoint_url!r}")
        return cls(region=region, profile=profile or None, endpoint_url=endpoint_url)

    def quota_key(self) -> tuple[str, ...]:
        """The key of this connection's token bucket: one quota per account and region (the
        profile's own account when no account is named), independent of every other."""
        owner = f"account:{self.account}" if self.account else self.profile or "default"
        return (owner, self.region, self.endpoint_url or "")


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() == "true"


def _profile_region(profile: str | None) -> str | None:
    """The region botocore would use for ``profile`` (AWS_DEFAULT_REGION, then the config file)."""
    try:
        session = botocore.session.Session(profile=profile)
        region = session.get_config_variable("region")
    except botocore.exceptions.ProfileNotFound as exc:
        raise _profile_not_found(profile) from exc
    except botocore.exceptions.BotoCoreError as exc:
        raise ConfigurationError(f"cannot read the AWS configuration: {exc}") from exc
    return str(region) if region else None


def _profile_not_found(profile: str | None) -> ConfigurationError:
    name = profile or os.environ.get("AWS_PROFILE") or os.environ.get("AWS_DEFAULT_PROFILE")
    where = "--profile" if profile else "AWS_PROFILE"
    return ConfigurationError(
        f"AWS profile {name!r} not found (named by {where}; profiles are read from "
        f"{os.environ.get('AWS_CONFIG_FILE', '~/.aws/config')} and "
        f"{os.environ.get('AWS_SHARED_CREDENTIALS_FILE', '~/.aws/credentials')})"
    )


def is_loopback(endpoint_url: str | None) -> bool:
    """Whether ``endpoint_url`` names this machine (127.0.0.0/8, ::1, localhost)."""
    if not endpoint_url:
        return False
    host = urlparse(endpoint_url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class CallResult:
    """A successful call: the parsed response (without ``ResponseMetadata``), its request id,
    how many attempts it took and how long it took in all (bucket waits and backoff included)."""

    response: dict[str, Any]
    request_id: str | None
    attempts: int
    duration: float


@dataclass
class ClientStats:
    """Live counters for progress displays.

    ``calls``: requests sent (every attempt spends quota); ``throttles``: attempts answered with a
    throttling code; ``retries``: attempts after the first; ``errors_by_code``: every failed
    attempt by its code (transient ones included).
    """

    calls: int = 0
    throttles: int = 0
    retries: int = 0
    errors_by_code: Counter[str] = field(default_factory=Counter)


#: The environment variables botocore's credential chain reads: a cached session is reused only
#: while they are unchanged (a session remembers the credentials it found).
_CHAIN_ENV = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_EC2_METADATA_DISABLED",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
)


def new_session(profile: str | None = None) -> AioSession:
    """An aiobotocore session whose WorkSpaces clients parse responses the cheaper way
    (:mod:`fleetops.aws.fastparse`: the same values, a fraction of botocore's walk)."""
    session = AioSession(profile=profile)
    install_plain_parser(session)
    return session


@cache
def _cached_session(profile: str | None, environment: tuple[str | None, ...]) -> AioSession:
    return new_session(profile)


def _session(profile: str | None) -> AioSession:
    """One aiobotocore session per profile and credential environment (loading one is not
    cheap; its credentials are resolved once and refreshed by botocore when they expire)."""
    return _cached_session(profile, tuple(os.environ.get(name) for name in _CHAIN_ENV))


@cache
def _sim_session(profile: str | None, environment: tuple[str | None, ...]) -> AioSession:
    session = new_session(profile)
    session.set_credentials(*SIM_CREDENTIALS)
    return session


async def caller_session(conn: Connection) -> AioSession:
    """The session of the caller's own credentials, found by botocore's normal chain for
    ``conn.profile`` (profile files, environment, SSO, container or instance role).

    Only when the chain finds nothing and the endpoint is on this machine are dummy keys used.
    An unknown profile, credentials that cannot be loaded, or none at all against AWS raise
    :class:`ConfigurationError` (exit 2): nothing can be done without them.
    """
    session = _session(conn.profile)
    try:
        credentials = await session.get_credentials()
    except botocore.exceptions.ProfileNotFound as exc:
        raise _profile_not_found(conn.profile) from exc
    except _CREDENTIAL_FAILURES as exc:
        raise ConfigurationError(f"cannot load AWS credentials: {exc}") from exc
    except botocore.exceptions.BotoCoreError as exc:
        raise ConfigurationError(f"cannot read the AWS configuration: {exc}") from exc
    if credentials is not None:
        return session
    if is_loopback(conn.endpoint_url):
        return _sim_session(conn.profile, tuple(os.environ.get(n) for n in _CHAIN_ENV))
    profile = conn.profile or os.environ.get("AWS_PROFILE")
    raise ConfigurationError(
        "no AWS credentials found"
        + (f" for profile {profile!r}" if profile else "")
        + ": configure a profile (--profile or AWS_PROFILE), AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY, or an instance role"
    )


class RoleSession(Protocol):
    """Credentials of an assumed role (see :class:`fleetops.aws.roles.AssumedRole`)."""

    @property
    def generation(self) -> int:
        """How many times the role was assumed (changes with every new set of credentials)."""
        ...

    async def session(self) -> AioSession:
        """A session signing with the role's credentials (assuming it the first time)."""
        ...

    async def refresh(self, generation: int) -> None:
        """Assume the role again unless that was done since ``generation``."""
        ...


class WorkSpacesClient:
    """An async WorkSpaces client that spends the shared quota and retries per policy.

    Use as ``async with WorkSpacesClient(conn, bucket=...) as client: await client.call(...)``;
    one instance may serve many concurrent tasks.
    """

    def __init__(
        self,
        conn: Connection,
        *,
        bucket: TokenBucket,
        policy: RetryPolicy = RetryPolicy(),  # noqa: B008 - frozen, hence safe to share
        max_connections: int = 32,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        credentials: tuple[str, str] | None = None,
        role: RoleSession | None = None,
    ) -> None:
        self.conn = conn
        self.bucket = bucket
        self.policy = policy
        self.stats = ClientStats()
        self._config = AioConfig(
            retries={"total_max_attempts": 1, "mode": "standard"},
            max_pool_connections=max_connections,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            tcp_keepalive=True,
        )
        self._credentials = credentials
        self.role = role
        self._stack: AsyncExitStack | None = None
        self._client: Any = None
        self._wire: Wire | None = None
        self._methods: dict[str, Callable[..., Any]] = {}

    def __repr__(self) -> str:
        return f"WorkSpacesClient({self.conn!r}, bucket={self.bucket!r})"

    async def __aenter__(self) -> WorkSpacesClient:
        if self._stack is not None:
            raise RuntimeError("WorkSpacesClient is already open")
        kwargs: dict[str, Any] = {
            "region_name": self.conn.region,
            "endpoint_url": self.conn.endpoint_url,
            "config": self._config,
        }
        if self._credentials is not None:
            kwargs["aws_access_key_id"], kwargs["aws_secret_access_key"] = self._credentials
            session = _session(self.conn.profile)
        elif self.role is not None:
            session = await self.role.session()
        else:
            session = await caller_session(self.conn)
        stack = AsyncExitStack()
        try:
            self._client = await stack.enter_async_context(session.create_client(SERVICE, **kwargs))
        except botocore.exceptions.ProfileNotFound as exc:
            await stack.aclose()
            raise _profile_not_found(self.conn.profile) from exc
        except _CREDENTIAL_FAILURES as exc:
            await stack.aclose()
            raise ConfigurationError(f"cannot load AWS credentials: {exc}") from exc
        except botocore.exceptions.BotoCoreError as exc:
            await stack.aclose()
            raise ConfigurationError(f"cannot create the WorkSpaces client: {exc}") from exc
        self._stack = stack
        self._wire = Wire.attach(self._client)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._stack, self._client = self._stack, None, None
        self._wire, self._methods = None, {}
        if stack is not None:
            await stack.aclose()

    async def call(self, operation: str, *, idempotent: bool = True, **params: Any) -> CallResult:
        """Call ``operation`` (the API name, e.g. ``"RebootWorkspaces"``) with ``params``.

        Each attempt takes a token from the bucket first. Transient failures are retried per the
        policy; the last one is raised as :class:`TransientAwsError` once attempts run out.

        ``idempotent=False`` (rebuild, restore, migrate): only failures that prove the request
        was not carried out (throttling, connection refused, connect time-out) are retried; a
        5xx or a read time-out is raised at once, for the caller to reconcile by describing.
        """
        if self._client is None:
            raise RuntimeError("WorkSpacesClient used outside 'async with'")
        method = self._methods.get(operation) or await self._method(operation)
        # an action call inside a maintenance window: asked once the token is taken, right
        # before each attempt goes out (None: no window)
        gate: Callable[[], bool] | None = params.pop("gate", None)
        started = time.monotonic()
        attempts = 1
        try:
            response = await self._attempt(operation, method, params, 1, gate)
        except TransientAwsError as first:
            # Only a call that failed pays for the retry controller: it is built now, and its
            # first attempt is this failure (the same stop and wait rules as from the start).
            response, attempts = await self._retry(
                operation, method, params, gate, first, idempotent
            )
        metadata = response.pop("ResponseMetadata", None) or {}
        return CallResult(
            response=response,
            request_id=metadata.get("RequestId"),
            attempts=attempts,
            duration=time.monotonic() - started,
        )

    async def _method(self, operation: str) -> Callable[..., Any]:
        """What sends ``operation``: the wire's short path where it serves the operation
        (:mod:`fleetops.aws.wire`), else the botocore client's method."""
        if operation not in service_model().operation_names:
            raise ValueError(f"unknown WorkSpaces operation: {operation!r}")
        route = await self._wire.route(operation) if self._wire is not None else None
        if route is not None and self._wire is not None:
            wire = self._wire

            async def method(**params: Any) -> dict[str, Any]:
                return await wire.call(route, params)

        else:
            method = getattr(self._client, xform_name(operation))
        self._methods[operation] = method
        return method

    async def _retry(
        self,
        operation: str,
        method: Callable[..., Any],
        params: dict[str, Any],
        gate: Callable[[], bool] | None,
        first: TransientAwsError,
        idempotent: bool,
    ) -> tuple[dict[str, Any], int]:
        """The attempts after a first one that failed with ``first``, per the policy."""
        attempts = 0
        response: dict[str, Any] = {}
        async for attempt in retrying(self.policy, retry_on=None if idempotent else not_executed):
            with attempt:
                attempts += 1
                if attempts == 1:
                    raise first
                self.stats.retries += 1
                response = await self._attempt(operation, method, params, attempts, gate)
        return response, attempts

    async def pages(
        self, operation: str, result_key: str, **params: Any
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """Yield the ``result_key`` items of each page, following ``NextToken``.

        Pagination is manual so that every page spends quota and is retried like any call.
        """
        seen: set[str] = set()
        token: str | None = None
        while True:
            page_params = dict(params)
            if token is not None:
                page_params["NextToken"] = token
            result = await self.call(operation, **page_params)
            yield list(result.response.get(result_key) or [])
            token = result.response.get("NextToken") or None
            if token is None:
                return
            if token in seen:
                raise AwsError(
                    "PaginationLoop",
                    f"{operation} returned the same NextToken twice",
                    result.request_id,
                )
            seen.add(token)

    async def _attempt(
        self,
        operation: str,
        method: Any,
        params: dict[str, Any],
        attempt: int,
        gate: Callable[[], bool] | None = None,
    ) -> dict[str, Any]:
        refreshed = False
        while True:
            await self.bucket.acquire()
            if gate is not None and not gate():
                raise WindowClosed(f"{operation} not sent: the maintenance window closed")
            self.stats.calls += 1
            generation = self.role.generation if self.role is not None else 0
            try:
                response: dict[str, Any] = await method(**params)
            except Exception as exc:
                error = self._translate(exc)
                if error is None:
                    raise
                self.stats.errors_by_code[error.code] += 1
                log.debug(
                    "%s attempt %d failed: %s (request id %s)",
                    operation,
                    attempt,
                    error.code,
                    error.request_id,
                )
                if self.role is not None and not refreshed and error.code.startswith("Expired"):
                    # The service says the role's credentials expired before botocore thought
                    # so (clock skew, a revoked session): assume the role again, once, and
                    # resend (an expired token proves the request did nothing).
                    refreshed = True
                    await self.role.refresh(generation)
                    continue
                raise error from exc
            self.bucket.on_success()
            return response

    def _translate(self, exc: Exception) -> AwsError | None:
        """The fleetops error for a failure of the layers below (None: not ours to translate)."""
        if isinstance(exc, botocore.exceptions.ClientError):
            return self._translate_client_error(exc)
        if isinstance(exc, _CREDENTIAL_FAILURES):
            return CredentialsError(type(exc).__name__, str(exc))
        if isinstance(exc, botocore.exceptions.ParamValidationError):
            return AwsError("ParamValidationError", str(exc))
        if isinstance(exc, botocore.exceptions.SSLError):
            # A certificate problem does not go away by retrying.
            return AwsError("SSLError", str(exc))
        if isinstance(exc, botocore.exceptions.EndpointConnectionError):
            # Refused, unreachable, unresolvable: the request was never sent.
            return TransientAwsError("ConnectionRefused", str(exc))
        if isinstance(exc, botocore.exceptions.ConnectTimeoutError):
            return TransientAwsError("ConnectTimeout", str(exc))
        if isinstance(exc, botocore.exceptions.ReadTimeoutError | asyncio.TimeoutError):
            return TransientAwsError("ReadTimeout", str(exc) or "timed out")
        if isinstance(
            exc,
            botocore.exceptions.ConnectionError
            | botocore.exceptions.HTTPClientError
            | aiohttp.ClientError,
        ):
            return TransientAwsError("ConnectionError", str(exc) or type(exc).__name__)
        return None

    def _translate_client_error(self, exc: botocore.exceptions.ClientError) -> AwsError:
        err = exc.response.get("Error") or {}
        metadata = exc.response.get("ResponseMetadata") or {}
        code = str(err.get("Code") or "Unknown")
        message = str(err.get("Message") or exc)
        request_id = metadata.get("RequestId") or None
        status = int(metadata.get("HTTPStatusCode") or 0)
        if is_auth_code(code):
            return CredentialsError(code, message, request_id)
        if is_throttling_code(code) or status == 429:
            self.stats.throttles += 1
            self.bucket.on_throttle()
        if self.policy.is_retryable_code(code) or status >= 500 or status == 429:
            return TransientAwsError(code, message, request_id)
        return AwsError(code, message, request_id)
