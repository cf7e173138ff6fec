"""WorkSpacesClient over real HTTP against a tiny scripted WorkSpaces endpoint.

The fake answers AWS JSON 1.1 the way the service does (``x-amzn-RequestId`` header, errors as
``{"__type": code, "message": ...}``) from a script of (status, body) replies, and records every
request, so the tests can count the attempts that really reached the wire.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from engine_support import isolate_aws_configuration

from fleetops.aws.client import (
    SIM_CREDENTIALS,
    CallResult,
    Connection,
    WorkSpacesClient,
)
from fleetops.aws.ratelimit import TokenBucket
from fleetops.aws.retry import RetryPolicy
from fleetops.errors import (
    AwsError,
    ConfigurationError,
    CredentialsError,
    TransientAwsError,
    UsageError,
)

FAST = RetryPolicy(attempts=3, base=0.01, cap=0.05)
DUMMY_KEYS = ("AKIDEXAMPLE", "dummy-secret")


@dataclass
class Reply:
    status: int = 200
    body: dict[str, Any] = field(default_factory=dict)
    delay: float = 0.0


def error(status: int, code: str, message: str = "scripted") -> Reply:
    return Reply(status, {"__type": code, "message": message})


@dataclass
class FakeWorkSpaces:
    """The scripted endpoint: replies are served in order; when the script runs out, ``{}``."""

    script: list[Reply] = field(default_factory=list)
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    access_keys: list[str] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        operation = request.headers["X-Amz-Target"].rpartition(".")[2]
        self.requests.append((operation, json.loads(await request.read() or b"{}")))
        credential = request.headers.get("Authorization", "").partition("Credential=")[2]
        self.access_keys.append(credential.partition("/")[0])
        reply = self.script.pop(0) if self.script else Reply()
        if reply.delay:
            await asyncio.sleep(reply.delay)
        return web.Response(
            status=reply.status,
            body=json.dumps(reply.body).encode(),
            content_type="application/x-amz-json-1.1",
            headers={"x-amzn-RequestId": f"req-{len(self.requests)}"},
        )

    def operations(self) -> list[str]:
        return [operation for operation, _ in self.requests]


@pytest.fixture(autouse=True)
def isolated_aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No AWS configuration of the machine running the tests leaks into one."""
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    yield from isolate_aws_configuration(monkeypatch, tmp_path)


@pytest.fixture
async def fake() -> AsyncIterator[FakeWorkSpaces]:
    endpoint = FakeWorkSpaces()
    app = web.Application()
    app.router.add_post("/", endpoint.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    endpoint.url = f"http://{host}:{port}"
    try:
        yield endpoint
    finally:
        await runner.cleanup()


def client_for(
    url: str,
    bucket: TokenBucket | None = None,
    policy: RetryPolicy = FAST,
    **kwargs: Any,
) -> WorkSpacesClient:
    return WorkSpacesClient(
        Connection("us-east-1", endpoint_url=url),
        bucket=bucket or TokenBucket(None, 1),
        policy=policy,
        credentials=DUMMY_KEYS,
        **kwargs,
    )


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_success_returns_response_request_id_and_one_attempt(fake: FakeWorkSpaces) -> None:
    fake.script = [Reply(body={"FailedRequests": []})]
    async with client_for(fake.url) as client:
        result = await client.call(
            "RebootWorkspaces", RebootWorkspaceRequests=[{"WorkspaceId": "ws-0123456789"}]
        )
    assert isinstance(result, CallResult)
    assert result.response == {"FailedRequests": []}
    assert (result.request_id, result.attempts) == ("req-1", 1)
    assert result.duration >= 0
    assert fake.requests == [
        ("RebootWorkspaces", {"RebootWorkspaceRequests": [{"WorkspaceId": "ws-0123456789"}]})
    ]
    assert (client.stats.calls, client.stats.retries, client.stats.throttles) == (1, 0, 0)


async def test_throttles_then_success_are_retried_and_slow_the_bucket(
    fake: FakeWorkSpaces,
) -> None:
    fake.script = [
        error(400, "ThrottlingException", "Rate exceeded"),
        error(400, "ThrottlingException", "Rate exceeded"),
        Reply(body={"Workspaces": []}),
    ]
    bucket = TokenBucket(1000, 10)
    async with client_for(fake.url, bucket) as client:
        result = await client.call("DescribeWorkspaces")
    assert result.attempts == 3
    assert result.request_id == "req-3"
    assert fake.operations() == ["DescribeWorkspaces"] * 3
    assert bucket.throttles == 2
    # The first throttle only emptied the bucket; the second, soon after, halved the rate.
    assert bucket.effective_rate is not None and bucket.effective_rate < 1000
    stats = client.stats
    assert (stats.calls, stats.throttles, stats.retries) == (3, 2, 2)
    assert stats.errors_by_code == {"ThrottlingException": 2}


async def test_every_attempt_takes_a_token(fake: FakeWorkSpaces) -> None:
    fake.script = [error(500, "InternalFailure"), Reply()]
    bucket = TokenBucket(0.01, 5)  # refill during the test is negligible, even on a busy machine
    async with client_for(fake.url, bucket) as client:
        await client.call("DescribeWorkspaces")
    assert bucket.tokens == pytest.approx(3, abs=0.2)


async def test_server_error_is_retried(fake: FakeWorkSpaces) -> None:
    fake.script = [error(500, "InternalFailure"), error(503, "SomethingOdd"), Reply()]
    async with client_for(fake.url) as client:
        result = await client.call("DescribeWorkspaces")
    assert result.attempts == 3
    assert len(fake.requests) == 3
    assert client.stats.errors_by_code == {"InternalFailure": 1, "SomethingOdd": 1}
    assert client.stats.throttles == 0


async def test_botocore_does_not_retry_behind_our_back(fake: FakeWorkSpaces) -> None:
    fake.script = [error(500, "InternalFailure", "once")]
    async with client_for(fake.url, policy=RetryPolicy(attempts=1)) as client:
        with pytest.raises(TransientAwsError) as info:
            await client.call("DescribeWorkspaces")
    assert (info.value.code, info.value.request_id) == ("InternalFailure", "req-1")
    assert len(fake.requests) == 1


async def test_transient_error_raised_after_the_last_attempt(fake: FakeWorkSpaces) -> None:
    fake.script = [error(400, "ThrottlingException")] * 3 + [Reply()]
    bucket = TokenBucket(1000, 10)
    async with client_for(fake.url, bucket) as client:
        with pytest.raises(TransientAwsError) as info:
            await client.call("DescribeWorkspaces")
    assert info.value.code == "ThrottlingException"
    assert info.value.request_id == "req-3"
    assert isinstance(info.value.__cause__, Exception)
    assert len(fake.requests) == 3
    assert client.stats.throttles == bucket.throttles == 3


async def test_validation_error_is_not_retried(fake: FakeWorkSpaces) -> None:
    fake.script = [error(400, "ValidationException", "1 validation error"), Reply()]
    async with client_for(fake.url) as client:
        with pytest.raises(AwsError) as info:
            await client.call("DescribeWorkspaces")
    assert type(info.value) is AwsError
    assert info.value.code == "ValidationException"
    assert info.value.message == "1 validation error"
    assert info.value.request_id == "req-1"
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    "code", ["ExpiredTokenException", "UnrecognizedClientException", "AccessDeniedException"]
)
async def test_rejected_credentials_raise_at_once(fake: FakeWorkSpaces, code: str) -> None:
    fake.script = [error(400, code, "The security token included in the request is expired")]
    async with client_for(fake.url) as client:
        with pytest.raises(CredentialsError) as info:
            await client.call("DescribeWorkspaces")
    assert (info.value.code, info.value.request_id) == (code, "req-1")
    assert len(fake.requests) == 1


async def test_nothing_configured_against_loopback_signs_with_dummy_keys(
    fake: FakeWorkSpaces,
) -> None:
    client = WorkSpacesClient(
        Connection("us-east-1", endpoint_url=fake.url), bucket=TokenBucket(None, 1), policy=FAST
    )
    async with client:
        await client.call("DescribeWorkspaces")
    assert fake.access_keys == [SIM_CREDENTIALS[0]]


async def test_nothing_configured_against_aws_is_a_configuration_error() -> None:
    client = WorkSpacesClient(
        Connection("us-east-1", endpoint_url="https://workspaces.us-east-1.amazonaws.com"),
        bucket=TokenBucket(None, 1),
        policy=FAST,
    )
    with pytest.raises(ConfigurationError, match="no AWS credentials found"):
        async with client:
            pass


async def test_default_profile_wins_over_dummy_keys_on_loopback(
    fake: FakeWorkSpaces, tmp_path: Path
) -> None:
    (tmp_path / "credentials").write_text(
        "[default]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = s\n"
    )
    client = WorkSpacesClient(
        Connection("us-east-1", endpoint_url=fake.url), bucket=TokenBucket(None, 1), policy=FAST
    )
    async with client:
        await client.call("DescribeWorkspaces")
    assert fake.access_keys == ["AKIDPROFILE"]


async def test_unknown_profile_is_one_configuration_error(
    fake: FakeWorkSpaces, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "nope")
    client = WorkSpacesClient(
        Connection("us-east-1", endpoint_url=fake.url), bucket=TokenBucket(None, 1), policy=FAST
    )
    with pytest.raises(ConfigurationError, match="AWS profile 'nope' not found"):
        async with client:
            pass
    assert fake.requests == []


async def test_credentials_from_the_environment(
    fake: FakeWorkSpaces, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    client = WorkSpacesClient(
        Connection("us-east-1", endpoint_url=fake.url), bucket=TokenBucket(None, 1), policy=FAST
    )
    async with client:
        result = await client.call("DescribeWorkspaces")
    assert result.attempts == 1
    assert fake.access_keys == ["AKIDENV"]


async def test_connection_refused_is_transient_after_the_attempts() -> None:
    async with client_for(f"http://127.0.0.1:{closed_port()}") as client:
        with pytest.raises(TransientAwsError) as info:
            await client.call("DescribeWorkspaces")
    assert info.value.code == "ConnectionRefused"  # never sent: safe to re-send anything
    assert info.value.request_id is None
    assert (client.stats.calls, client.stats.retries) == (3, 2)
    assert client.stats.errors_by_code == {"ConnectionRefused": 3}


async def test_read_timeout_is_transient(fake: FakeWorkSpaces) -> None:
    fake.script = [Reply(delay=0.4), Reply()]
    async with client_for(fake.url, read_timeout=0.1) as client:
        result = await client.call("DescribeWorkspaces")
    assert result.attempts == 2
    assert client.stats.errors_by_code == {"ReadTimeout": 1}


def silent_endpoint(accept: bool) -> tuple[socket.socket, list[socket.socket]]:
    """A TCP endpoint that never answers: it accepts connections and reads nothing, or (with
    ``accept`` False) its backlog is kept full so that new connections are never completed."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0 if not accept else 16)
    held: list[socket.socket] = []
    if not accept:
        for _ in range(4):  # fill the accept queue: later SYNs are dropped
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex(server.getsockname())
            held.append(sock)
    return server, held


@pytest.mark.parametrize(("accept", "code"), [(True, "ReadTimeout"), (False, "ConnectTimeout")])
async def test_an_endpoint_that_never_answers_fails_after_the_timeouts(
    accept: bool, code: str
) -> None:
    server, held = silent_endpoint(accept)
    url = f"http://127.0.0.1:{server.getsockname()[1]}"
    try:
        async with client_for(
            url,
            policy=RetryPolicy(attempts=2, base=0.01, cap=0.01),
            read_timeout=0.5 if accept else 30.0,
            connect_timeout=0.5 if not accept else 30.0,
        ) as client:
            # timed from the call: making the client reads models, seconds on a loaded machine
            started = asyncio.get_running_loop().time()
            with pytest.raises(TransientAwsError) as info:
                await client.call("DescribeWorkspaces")
            elapsed = asyncio.get_running_loop().time() - started
    finally:
        for sock in (server, *held):
            sock.close()
    assert info.value.code == code
    assert client.stats.errors_by_code == {code: 2}
    assert elapsed < 5.0  # two attempts of 0.5 s, not the other (30 s) timeout


async def test_pages_follow_next_token(fake: FakeWorkSpaces) -> None:
    fake.script = [
        Reply(
            body={
                "Workspaces": [{"WorkspaceId": "ws-1"}, {"WorkspaceId": "ws-2"}],
                "NextToken": "t1",
            }
        ),
        error(400, "ThrottlingException"),
        Reply(body={"Workspaces": [{"WorkspaceId": "ws-3"}], "NextToken": "t2"}),
        Reply(body={"Workspaces": []}),
    ]
    async with client_for(fake.url) as client:
        pages = [
            [item["WorkspaceId"] for item in page]
            async for page in client.pages("DescribeWorkspaces", "Workspaces", Limit=2)
        ]
    assert pages == [["ws-1", "ws-2"], ["ws-3"], []]
    assert [body for _, body in fake.requests] == [
        {"Limit": 2},
        {"Limit": 2, "NextToken": "t1"},
        {"Limit": 2, "NextToken": "t1"},
        {"Limit": 2, "NextToken": "t2"},
    ]


async def test_unknown_operation_and_closed_client(fake: FakeWorkSpaces) -> None:
    client = client_for(fake.url)
    with pytest.raises(RuntimeError):
        await client.call("DescribeWorkspaces")
    async with client:
        with pytest.raises(ValueError):
            await client.call("RebootEverything")
    assert fake.requests == []


# --- Connection.resolve -------------------------------------------------------------------


def test_resolve_keeps_explicit_values() -> None:
    conn = Connection.resolve("eu-west-1", "ops", "http://127.0.0.1:9")
    assert conn == Connection("eu-west-1", "ops", "http://127.0.0.1:9")
    assert conn.quota_key() == ("ops", "eu-west-1", "http://127.0.0.1:9")


def test_resolve_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://generic:1")
    assert Connection.resolve(None, None, None) == Connection(
        "eu-central-1", None, "http://generic:1"
    )
    monkeypatch.setenv("AWS_REGION", "ap-south-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_WORKSPACES", "http://workspaces:2")
    conn = Connection.resolve(None, None, None)
    assert conn == Connection("ap-south-1", None, "http://workspaces:2")
    assert conn.quota_key() == ("default", "ap-south-1", "http://workspaces:2")
    monkeypatch.setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")
    assert Connection.resolve(None, None, None).endpoint_url is None


def test_resolve_region_from_the_profile(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "config").write_text(
        "[default]\nregion = us-west-2\n[profile ops]\nregion = sa-east-1\n"
    )
    assert Connection.resolve(None, None, None).region == "us-west-2"
    assert Connection.resolve(None, "ops", None).region == "sa-east-1"
    monkeypatch.setenv("AWS_PROFILE", "ops")  # honoured by botocore, not recorded
    assert Connection.resolve(None, None, None) == Connection("sa-east-1", None, None)


@pytest.mark.parametrize(
    ("region", "profile", "endpoint", "fragment"),
    [
        (None, None, None, "no AWS region"),
        (None, "missing", None, "AWS profile 'missing' not found"),
        ("us east 1", None, None, "not a valid AWS region"),
        ("us-east-1", None, "localhost:4566", "must start with http"),
    ],
)
def test_resolve_refuses_with_one_line(
    region: str | None, profile: str | None, endpoint: str | None, fragment: str
) -> None:
    with pytest.raises(UsageError) as info:
        Connection.resolve(region, profile, endpoint)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


# --- the command line: configuration errors are one line, exit 2 -------------------------


def _fleetops(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AWS_") and key != "FLEETOPS_DB"
    }
    environment.update(
        AWS_CONFIG_FILE=str(tmp_path / "config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        **env,
    )
    return subprocess.run(
        [sys.executable, "-m", "fleetops", "--db", str(tmp_path / "jobs.db"), *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
    )


def test_nothing_aws_happens_at_import(tmp_path: Path) -> None:
    (tmp_path / "config").write_text("[profile broken\nthis is not ini")
    modules = (
        "fleetops, fleetops.api, fleetops.engine.runner, "
        "fleetops.catalogue.accounts, fleetops.aws.roles, fleetops.engine.clients, "
        "fleetops.cli.main"
    )
    done = subprocess.run(
        [sys.executable, "-c", f"import {modules}; print('imported')"],
        capture_output=True,
        text=True,
        env={**os.environ, "AWS_PROFILE": "nope", "AWS_CONFIG_FILE": str(tmp_path / "config")},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "imported"


@pytest.mark.parametrize("dry_run", [True, False])
def test_a_missing_profile_is_one_line_and_exit_2(tmp_path: Path, dry_run: bool) -> None:
    args = ["run", "reboot", "--workspace-id", "ws-abcdefghij", "--region", "us-east-1"]
    args += ["--endpoint-url", f"http://127.0.0.1:{closed_port()}", "--yes"]
    done = _fleetops(tmp_path, *args, *(["--dry-run"] if dry_run else []), AWS_PROFILE="nope")
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "AWS profile 'nope' not found" in lines[0]
    assert "Traceback" not in done.stderr
    db = tmp_path / "jobs.db"
    if db.exists():  # nothing written: no job recorded
        with sqlite3.connect(db) as conn:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
            if "jobs" in tables:
                assert conn.execute("SELECT count(*) FROM jobs").fetchone() == (0,)


def test_no_credentials_against_aws_is_one_line_and_exit_2(tmp_path: Path) -> None:
    args = ["run", "reboot", "--workspace-id", "ws-abcdefghij", "--region", "us-east-1", "--yes"]
    done = _fleetops(tmp_path, *args, "--dry-run")
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        line for line in done.stderr.strip().splitlines() if "no AWS credentials found" in line
    ]


async def test_hot_operations_take_the_short_path_and_others_botocores(
    fake: FakeWorkSpaces,
) -> None:
    """DescribeWorkspaces goes out through the wire (no botocore event is emitted for it);
    an operation with a blob in its input still goes through botocore; both reach the fake
    with the same headers that matter and answer alike."""
    async with client_for(fake.url) as client:
        emitted: list[str] = []
        client._client.meta.events.register(
            "before-call.*", lambda event_name, **_: emitted.append(event_name)
        )
        fake.script = [Reply(200, {"Workspaces": [{"WorkspaceId": "ws-1", "State": "X"}]})]
        result = await client.call("DescribeWorkspaces", WorkspaceIds=["ws-1"])
        assert result.response["Workspaces"] == [{"WorkspaceId": "ws-1", "State": "X"}]
        assert result.request_id == "req-1"
        assert emitted == []  # the short path
        with pytest.raises(AwsError) as info:
            await client.call("DescribeWorkspaces", WorkspaceIds="not-a-list")
        assert info.value.code == "ParamValidationError"  # still validated, nothing sent
        assert len(fake.requests) == 1
        await client.call(
            "ImportClientBranding",
            ResourceId="d-1234567890",
            DeviceTypeWindows={"Logo": b"png"},
        )
        assert emitted and emitted[0].endswith("ImportClientBranding")  # botocore's path
    assert fake.operations() == ["DescribeWorkspaces", "ImportClientBranding"]
    assert fake.access_keys == [DUMMY_KEYS[0]] * 2
