"""Fleets across AWS accounts: which accounts, which role to assume in each, and the role's
temporary credentials.

A job over accounts runs with the caller's own credentials (botocore's chain: profile,
environment, instance role) only to call STS: one AssumeRole per account, with a session name
that identifies fleetops and the job (CloudTrail shows who did it) and the external id when one
is given. The role's credentials live in botocore's refreshable credentials: assumed again before
they expire during a long job, and at once when the service says they have (ExpiredToken). They
are never stored, logged or shown. A role that cannot be assumed raises
:class:`~fleetops.errors.AssumeRoleError` naming the role and the account.

STS is reached as botocore reaches it (``AWS_ENDPOINT_URL_STS``, ``AWS_ENDPOINT_URL``, the
profile's ``services`` section, else the regional endpoint). Against a WorkSpaces endpoint on
this machine with no STS endpoint configured, STS is asked at that same endpoint (the simulator
answers both).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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
from fleetops.catalogue.options import JobOptions
from fleetops.errors import (
    AssumeRoleError,
    CredentialsError,
    FleetOpsError,
    TransientAwsError,
    UsageError,
)

__all__ = [
    "AssumeSpec",
    "AssumedRole",
    "UnreachableAccount",
    "accounts_from_flags",
    "caller_arn",
    "merge_accounts",
    "open_scope_clients",
    "parse_account_id",
    "read_accounts_file",
    "record_caller",
    "session_name",
]

log = logging.getLogger(__name__)

_ACCOUNT_RE = re.compile(r"^\d{12}$")
_ROLE_NAME_RE = re.compile(r"^[\w+=,.@-]{1,64}$")
_ROLE_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/(?:[\w+=,.@-]+/)*[\w+=,.@-]{1,64}$")
_EXTERNAL_ID_RE = re.compile(r"^[\w+=,.@:/-]{2,1224}$")
_SESSION_NAME_BAD = re.compile(r"[^\w+=,.@-]")
_STS_ENDPOINT_ENV = (
    "AWS_ENDPOINT_URL_STS",
    "AWS_ENDPOINT_URL",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_CONFIG_FILE",
)

#: How long the assumed role's credentials are asked to last (the default MaxSessionDuration).
ROLE_SESSION_SECONDS = 3600


def parse_account_id(text: str, where: str = "--account") -> str:
    """A 12-digit AWS account id, or a one-line :class:`UsageError` naming ``where``."""
    account = text.strip()
    if not _ACCOUNT_RE.match(account):
        raise UsageError(f"{where}: {text.strip()!r} is not an AWS account id (12 digits)")
    return account


def read_accounts_file(path: Path) -> list[str]:
    """Account ids from a file: one a line, blank lines and ``#`` comments ignored; a bad id
    names its line. Duplicates are kept once, in file order."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--accounts-file {path}: cannot read it ({exc})") from exc
    accounts: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        content = line.split("#", 1)[0].strip()
        if content:
            accounts.append(parse_account_id(content, f"{path}:{number}"))
    if not accounts:
        raise UsageError(f"--accounts-file {path}: no account id in it")
    return list(dict.fromkeys(accounts))


def merge_accounts(given: Iterable[str], from_file: Iterable[str] = ()) -> tuple[str, ...]:
    """``--account`` values and an accounts file's ids, checked, each once, in order."""
    accounts = [parse_account_id(a) for a in given] + list(from_file)
    return tuple(dict.fromkeys(accounts))


def accounts_from_flags(
    accounts: Iterable[str] = (),
    accounts_file: Path | str | None = None,
    role_name: str | None = None,
    role_arn_template: str | None = None,
    external_id: str | None = None,
) -> tuple[tuple[str, ...] | None, AssumeSpec | None]:
    """The accounts of a run and the role to assume in them, from ``--account``,
    ``--accounts-file``, ``--role-name``/``--role-arn-template`` and ``--external-id`` (or the
    same job-file fields): (None, None) for a job in the caller's own account."""
    listed = read_accounts_file(Path(accounts_file)) if accounts_file else []
    merged = merge_accounts(accounts, listed)
    role_given = bool(role_name or role_arn_template or external_id)
    if not merged:
        if role_given:
            raise UsageError(
                "--role-name/--role-arn-template/--external-id need accounts: "
                "--account ID or --accounts-file F"
            )
        return None, None
    spec = AssumeSpec(
        role_name=role_name or None,
        role_arn_template=role_arn_template or None,
        external_id=external_id or None,
    )
    return merged, spec


def session_name(job_id: str) -> str:
    """The RoleSessionName of a job: ``fleetops-<job id>`` (STS allows 2-64 of [\\w+=,.@-])."""
    return _SESSION_NAME_BAD.sub("-", f"fleetops-{job_id}")[:64]


@dataclass(frozen=True)
class AssumeSpec:
    """Which role to assume in each account: a role name, or an ARN template with
    ``{account}``; with the external id the role's trust policy asks for."""

    role_name: str | None = None
    role_arn_template: str | None = None
    external_id: str | None = None

    def __post_init__(self) -> None:
        if bool(self.role_name) == bool(self.role_arn_template):
            raise UsageError("accounts need --role-name NAME or --role-arn-template (one of them)")
        if self.role_name and not _ROLE_NAME_RE.match(self.role_name):
            raise UsageError(f"--role-name {self.role_name!r} is not an IAM role name")
        if self.role_arn_template:
            if "{account}" not in self.role_arn_template:
                raise UsageError(
                    "--role-arn-template must contain {account}, e.g. "
                    "'arn:aws:iam::{account}:role/FleetOps'"
                )
            try:
                example = self.role_arn_template.format(account="123456789012")
            except (KeyError, IndexError, ValueError):
                raise UsageError(
                    f"--role-arn-template {self.role_arn_template!r}: only {{account}} may be "
                    "filled in"
                ) from None
            if not _ROLE_ARN_RE.match(example):
                raise UsageError(
                    f"--role-arn-template {self.role_arn_template!r} does not make a role ARN "
                    "(arn:aws:iam::{account}:role/NAME)"
                )
        if self.external_id is not None and not _EXTERNAL_ID_RE.match(self.external_id):
            raise UsageError("--external-id must be 2-1224 characters of [\\w+=,.@:/-]")

    def role_arn(self, account: str) -> str:
        if self.role_arn_template:
            return self.role_arn_template.format(account=account)
        return f"arn:aws:iam::{account}:role/{self.role_name}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "role_name": self.role_name,
            "role_arn_template": self.role_arn_template,
            "external_id": self.external_id,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AssumeSpec:
        return cls(
            role_name=data.get("role_name"),
            role_arn_template=data.get("role_arn_template"),
            external_id=data.get("external_id"),
        )


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
        spec: AssumeSpec,
        *,
        job_id: str,
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
        self.session_name = session_name(job_id)
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
    options: JobOptions,
    *,
    accounts: Sequence[str] | None = None,
    assume: AssumeSpec | None = None,
    job_id: str = "adhoc",
    credentials: tuple[str, str] | None = None,
) -> AsyncIterator[dict[str, WorkSpacesClient | UnreachableAccount]]:
    """One client per scope, keyed ``"region"`` or ``"account/region"``.

    Without accounts: one client per region with the caller's own credentials. With accounts:
    every account x region, one role per account (assumed once, refreshed as needed, shared by
    its regions); each scope spends its own bucket (one quota per account and region). An
    account whose role cannot be assumed gets an :class:`UnreachableAccount` for its scopes.
    """
    from fleetops.aws.ratelimit import QUOTAS

    def client(conn: Connection, role: AssumedRole | None) -> WorkSpacesClient:
        return WorkSpacesClient(
            conn,
            bucket=QUOTAS.bucket(conn.quota_key(), options.rate, options.burst),
            max_connections=max(10, options.concurrency * 2),
            read_timeout=options.read_timeout,
            connect_timeout=getattr(options, "connect_timeout", 5.0),
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
                job_id=job_id,
                connect_timeout=getattr(options, "connect_timeout", 5.0),
                read_timeout=options.read_timeout,
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


async def record_caller(store: Any, job_id: str, conn: Connection, options: JobOptions) -> None:
    """Store the caller's ARN on the job (one GetCallerIdentity), unless it is already known."""
    job = await store.get_job(job_id)
    if getattr(job, "caller_arn", None):
        return
    arn = await caller_arn(
        conn,
        connect_timeout=getattr(options, "connect_timeout", 5.0),
        read_timeout=options.read_timeout,
    )
    if arn is not None:
        await store.update_job(job_id, caller_arn=arn)
