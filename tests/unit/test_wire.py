"""The wire's short path signs each request for its endpoint, and serves the operations it
should."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from botocore.credentials import Credentials

from fleetops.aws.fastparse import parse_timestamp_fast
from fleetops.aws.wire import SigV4

WHEN = datetime(2026, 12, 4, 21, 7, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("url", "token"),
    [
        ("https://workspaces.us-east-1.amazonaws.com/", None),
        ("http://127.0.0.1:8123/", "session-token/with+chars=="),
    ],
)
def test_a_request_is_signed_for_its_region_and_service(url: str, token: str | None) -> None:
    signer = SigV4(url=url, region="eu-west-1", service="workspaces")
    before = datetime.now(UTC).replace(microsecond=0)
    headers = signer.headers(
        target="WorkspacesService.DescribeWorkspaces",
        content_type="application/x-amz-json-1.1",
        body=b'{"WorkspaceIds": ["ws-0123456789"]}',
        credentials=Credentials("AKIDEXAMPLE", "secret", token),
    )
    auth = headers["Authorization"]
    stamp = datetime.strptime(headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert before <= stamp <= datetime.now(UTC)
    scope = f"AKIDEXAMPLE/{stamp:%Y%m%d}/eu-west-1/workspaces/aws4_request"
    assert auth.startswith(f"AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders=")
    signed = auth.split("SignedHeaders=")[1].split(",")[0].split(";")
    assert {"host", "x-amz-date", "x-amz-target", "content-type"} <= set(signed)
    assert ("x-amz-security-token" in signed) is (token is not None)
    assert headers.get("X-Amz-Security-Token") == token
    assert headers["X-Amz-Target"] == "WorkspacesService.DescribeWorkspaces"


def test_epoch_timestamps_are_utc_datetimes_of_the_same_instant() -> None:
    assert parse_timestamp_fast(1_780_000_000.5).timestamp() == 1_780_000_000.5
    assert parse_timestamp_fast(1_780_000_000).tzinfo is UTC
    assert parse_timestamp_fast("2026-12-04T21:07:05Z") == WHEN  # other forms: botocore's
