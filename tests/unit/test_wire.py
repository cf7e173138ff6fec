"""The wire's short path signs exactly as botocore signs, and serves the operations it should."""

from __future__ import annotations

from datetime import UTC, datetime

import botocore.auth
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from fleetops.aws.fastparse import parse_timestamp_fast
from fleetops.aws.wire import SigV4

WHEN = datetime(2026, 12, 4, 21, 7, 5, tzinfo=UTC)


def _botocore_authorization(
    url: str, headers: dict[str, str], body: bytes, credentials: Credentials, region: str
) -> tuple[str, dict[str, str]]:
    request = AWSRequest(method="POST", url=url, headers=dict(headers), data=body)
    auth = botocore.auth.SigV4Auth(credentials, "workspaces", region)
    original = botocore.auth.get_current_datetime
    botocore.auth.get_current_datetime = lambda: WHEN.replace(tzinfo=None)
    try:
        auth.add_auth(request)
    finally:
        botocore.auth.get_current_datetime = original
    return str(request.headers["Authorization"]), dict(request.headers.items())


@pytest.mark.parametrize(
    ("url", "token"),
    [
        ("https://workspaces.us-east-1.amazonaws.com/", None),
        ("https://workspaces.us-east-1.amazonaws.com:443/", "session-token/with+chars=="),
        ("http://127.0.0.1:8123/", None),
    ],
)
def test_signature_is_botocores(url: str, token: str | None) -> None:
    body = b'{"WorkspaceIds": ["ws-0123456789"]}'
    target = "WorkspacesService.DescribeWorkspaces"
    content_type = "application/x-amz-json-1.1"
    host = botocore.auth._host_from_url(url)
    signer = SigV4(host=host, path="/", region="us-east-1", service="workspaces")
    ours = signer.headers(
        target=target,
        content_type=content_type,
        body=body,
        access_key="AKIDEXAMPLE",
        secret_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        token=token,
        now=WHEN,
    )
    expected, theirs = _botocore_authorization(
        url,
        {"X-Amz-Target": target, "Content-Type": content_type, "User-Agent": "ignored"},
        body,
        Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token),
        "us-east-1",
    )
    assert ours["Authorization"] == expected
    assert ours["X-Amz-Date"] == theirs["X-Amz-Date"]
    assert ours.get("X-Amz-Security-Token") == theirs.get("X-Amz-Security-Token")
    assert ours["Host"] == host


def test_the_signing_key_follows_the_day_and_the_secret() -> None:
    signer = SigV4(host="h", path="/", region="eu-west-1", service="workspaces")
    common = {"target": "T.Op", "content_type": "c", "body": b"{}", "access_key": "A"}
    first = signer.headers(**common, secret_key="s1", token=None, now=WHEN)
    again = signer.headers(**common, secret_key="s1", token=None, now=WHEN)
    other = signer.headers(**common, secret_key="s2", token=None, now=WHEN)
    later = signer.headers(**common, secret_key="s1", token=None, now=WHEN.replace(day=5))
    assert first["Authorization"] == again["Authorization"]
    assert len({first["Authorization"], other["Authorization"], later["Authorization"]}) == 3


def test_epoch_timestamps_are_utc_datetimes_of_the_same_instant() -> None:
    assert parse_timestamp_fast(1_780_000_000.5).timestamp() == 1_780_000_000.5
    assert parse_timestamp_fast(1_780_000_000).tzinfo is UTC
    assert parse_timestamp_fast("2026-12-04T21:07:05Z") == WHEN  # other forms: botocore's
