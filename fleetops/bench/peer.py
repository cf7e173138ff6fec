"""The peer: a plain boto3 script, as an admin would write it without fleetops.

Run by path (``python fleetops/bench/peer.py …``) so that it imports nothing of fleetops: describe
the fleet with the paginator, act 25 at a time (rebuild: one per call), then poll
DescribeWorkspaces for the acted-on ids until they settle; botocore's ``standard`` retries absorb
throttling. No connected-user check, no persistence, no resume. Prints one JSON summary line.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

ELIGIBLE = {"reboot": {"AVAILABLE", "UNHEALTHY"}, "rebuild": {"AVAILABLE", "ERROR", "UNHEALTHY"}}


def chunks(seq: list[str], size: int) -> list[list[str]]:
    return [seq[i : i + size] for i in range(0, len(seq), size)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint-url", required=True)
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--action", choices=sorted(ELIGIBLE), default="reboot")
    parser.add_argument("--poll-interval", type=float, default=2.0)
    parser.add_argument("--max-attempts", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=1800.0)
    args = parser.parse_args()

    started = time.monotonic()
    client: Any = boto3.session.Session(
        aws_access_key_id="peer", aws_secret_access_key="peer", region_name=args.region
    ).client(
        "workspaces",
        endpoint_url=args.endpoint_url,
        config=Config(retries={"mode": "standard", "max_attempts": args.max_attempts}),
    )
    errors: dict[str, int] = {}
    try:
        ids = []
        for page in client.get_paginator("describe_workspaces").paginate():
            for ws in page["Workspaces"]:
                if ws["State"] in ELIGIBLE[args.action]:
                    ids.append(ws["WorkspaceId"])

        failed: set[str] = set()
        if args.action == "reboot":
            for batch in chunks(ids, 25):
                resp = client.reboot_workspaces(
                    RebootWorkspaceRequests=[{"WorkspaceId": i} for i in batch]
                )
                failed.update(f["WorkspaceId"] for f in resp.get("FailedRequests", []))
        else:
            for ws_id in ids:
                resp = client.rebuild_workspaces(RebuildWorkspaceRequests=[{"WorkspaceId": ws_id}])
                failed.update(f["WorkspaceId"] for f in resp.get("FailedRequests", []))

        pending = set(ids) - failed
        succeeded = 0
        deadline = time.monotonic() + args.timeout
        while pending and time.monotonic() < deadline:
            time.sleep(args.poll_interval)
            for batch in chunks(sorted(pending), 25):
                resp = client.describe_workspaces(WorkspaceIds=batch)
                for ws in resp["Workspaces"]:
                    if ws["State"] == "AVAILABLE":
                        pending.discard(ws["WorkspaceId"])
                        succeeded += 1
                    elif ws["State"] in ("ERROR", "UNHEALTHY"):
                        pending.discard(ws["WorkspaceId"])
                        failed.add(ws["WorkspaceId"])
        crashed = None
    except ClientError as exc:  # what an unguarded script would die of
        crashed = exc.response.get("Error", {}).get("Code", "ClientError")
        errors[crashed] = errors.get(crashed, 0) + 1
        succeeded = 0
    print(
        json.dumps(
            {
                "eligible": len(ids),
                "succeeded": succeeded,
                "failed": len(failed),
                "crashed": crashed,
                "wall_s": time.monotonic() - started,
            }
        )
    )


if __name__ == "__main__":
    main()
