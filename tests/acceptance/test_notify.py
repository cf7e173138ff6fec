"""``--notify``: the CLI as a subprocess against the simulator over HTTP. A webhook receiver (a
small HTTP server in the test) gets exactly one document per job end; a dead receiver changes
nothing (status, exit code) and is recorded; an SNS topic on moto's server gets the same
document; no secret of a webhook URL reaches the logs or the history; a bad target is one line,
exit 2, nothing written."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from fleetops_harness import Cli, Db, free_port
from moto.server import ThreadedMotoServer

from fleetops.sim import Simulator

REGION = "us-east-1"
SECRET = "T0KEN-s3cr3t"
DOCUMENT_KEYS = {"job_id", "action", "status", "counts", "unverified", "message", "text"}


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(
        workspaces=20, seed=7, rate=None, transition_seconds=0.1, stale_snapshot_fraction=0.0
    ).run_in_thread() as running:
        yield running


class Receiver:
    """A webhook receiver: every POST body it got, answered with ``status``."""

    def __init__(self, status: int = 200) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.paths: list[str] = []
        received, paths = self.bodies, self.paths

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                received.append(json.loads(self.rfile.read(length)))
                paths.append(self.path)
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/hooks/{SECRET}?key={SECRET}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    try:
        yield made
    finally:
        made.close()


def available(sim: Simulator, count: int) -> list[str]:
    return [ws for ws in sim.workspace_ids() if sim.workspace(ws)["State"] == "AVAILABLE"][:count]


def reboot(cli: Cli, sim: Simulator, ids: list[str], *extra: str, env: Any = None) -> Any:
    args = [a for ws in ids for a in ("--workspace-id", ws)]
    return cli.run(
        "-v", *cli.run_args("reboot", sim.endpoint_url, *args, "--rate", "100", "--burst", "50"),
        "--verify-timeout", "30", "--json", *extra, env=env,
    )  # fmt: skip


def test_a_webhook_gets_one_document_per_job_end(
    cli: Cli, db: Db, sim: Simulator, receiver: Receiver
) -> None:
    ids = available(sim, 3)
    done = reboot(cli, sim, ids, "--notify", receiver.url)
    assert done.code == 0, done.stderr
    job = done.json()
    assert len(receiver.bodies) == 1
    told = receiver.bodies[0]
    assert set(told) == DOCUMENT_KEYS
    assert (told["job_id"], told["action"], told["status"]) == (job["id"], "reboot", "succeeded")
    assert told["counts"] == job["counts"] and told["unverified"] == job["unverified"]
    assert told["text"].startswith(f"fleetops reboot job {job['id']} succeeded: 3 succeeded")
    assert receiver.paths == [f"/hooks/{SECRET}?key={SECRET}"]  # the URL as given
    shown = cli.run("jobs", "show", job["id"], "--json").json()
    assert [(n["ok"], n["attempts"], n["status"]) for n in shown["notifications"]] == [
        (True, 1, "succeeded")
    ]
    assert SECRET not in json.dumps(shown) and SECRET not in done.stderr
    text = cli.run("jobs", "show", job["id"])
    assert "notified" in text.stdout and SECRET not in text.stdout


def test_a_dead_receiver_changes_nothing(cli: Cli, db: Db, sim: Simulator) -> None:
    dead = f"http://127.0.0.1:{free_port()}/hooks/{SECRET}"
    ids = available(sim, 2)
    done = reboot(cli, sim, ids, "--notify", dead)
    assert done.code == 0, done.stderr
    job = done.json()
    assert job["status"] == "succeeded" and job["counts"]["succeeded"] == 2
    shown = cli.run("jobs", "show", job["id"], "--json").json()
    (record,) = shown["notifications"]
    assert (record["ok"], record["attempts"]) == (False, 3)
    assert record["error"].startswith("cannot connect")
    assert record["target"] == dead.rsplit("/hooks", 1)[0] + "/…"
    assert "not delivered after 3 tries" in done.stderr and SECRET not in done.stderr


def test_a_failed_job_is_told_too_and_keeps_its_exit_code(
    cli: Cli, sim: Simulator, receiver: Receiver
) -> None:
    ids = available(sim, 2)
    sim.configure(item_failure_rate=1.0)
    done = reboot(cli, sim, ids, "--notify", receiver.url)
    assert done.code == 1, done.stderr
    assert [body["status"] for body in receiver.bodies] == ["failed"]
    assert receiver.bodies[0]["counts"]["failed"] == 2


@pytest.fixture
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def test_an_sns_topic_gets_the_same_document(cli: Cli, sim: Simulator, moto_url: str) -> None:
    keys = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    sns = boto3.client("sns", region_name="eu-west-1", endpoint_url=moto_url, **keys)
    sqs = boto3.client("sqs", region_name="eu-west-1", endpoint_url=moto_url, **keys)
    topic = sns.create_topic(Name="fleet-ops")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="told")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    sns.subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes={"RawMessageDelivery": "true"},
    )
    ids = available(sim, 2)
    done = reboot(
        cli, sim, ids, "--notify", f"sns:{topic}", env={**cli.env, "AWS_ENDPOINT_URL_SNS": moto_url}
    )
    assert done.code == 0, done.stderr
    job = done.json()
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    assert len(messages) == 1
    told = json.loads(messages[0]["Body"])
    assert set(told) == DOCUMENT_KEYS
    assert (told["job_id"], told["status"], told["counts"]["succeeded"]) == (
        job["id"],
        "succeeded",
        2,
    )
    shown = cli.run("jobs", "show", job["id"], "--json").json()
    assert [(n["target"], n["ok"]) for n in shown["notifications"]] == [(f"sns:{topic}", True)]


@pytest.mark.parametrize(
    "target",
    ["ftp://example.com/hook", "hooks.slack.com/x", "sns:arn:aws:sns:nowhere:1:topic", "https://"],
)
def test_a_bad_target_is_one_line_and_writes_nothing(
    cli: Cli, db: Db, sim: Simulator, target: str
) -> None:
    done = reboot(cli, sim, available(sim, 1), "--notify", target)
    assert done.code == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--notify" in lines[0]
    assert not db.exists()


def test_a_job_file_takes_notify(
    cli: Cli, sim: Simulator, receiver: Receiver, tmp_path: Path
) -> None:
    ids = available(sim, 1)
    path = tmp_path / "reboot.yaml"
    path.write_text(
        "action: reboot\n"
        f"targets:\n  workspace_ids: [{ids[0]}]\n"
        f"notify: {receiver.url}\n"
        f"region: {REGION}\n"
    )
    done = cli.run("run", str(path), "--endpoint-url", sim.endpoint_url, "--rate", "100", "--json")
    assert done.code == 0, done.stderr
    assert [body["status"] for body in receiver.bodies] == ["succeeded"]


def test_a_stored_plan_cancelled_is_told_once(
    cli: Cli, db: Db, sim: Simulator, receiver: Receiver
) -> None:
    ids = available(sim, 2)
    planned = reboot(cli, sim, ids, "--notify", receiver.url, "--plan-only")
    assert planned.code == 0, planned.stderr
    job_id = planned.json()["id"]
    assert receiver.bodies == []  # a plan has not ended
    cancelled = cli.run("jobs", "cancel", job_id, "--json")
    assert cancelled.code == 0, cancelled.stderr
    (told,) = receiver.bodies
    assert (told["job_id"], told["status"]) == (job_id, "cancelled")
    assert told["counts"]["cancelled"] == 2
    again = cli.run("jobs", "cancel", job_id)  # already cancelled: nobody is told twice
    assert again.code == 0, again.stderr
    assert len(receiver.bodies) == 1
    shown = cli.run("jobs", "show", job_id, "--json").json()
    assert [(n["ok"], n["status"]) for n in shown["notifications"]] == [(True, "cancelled")]
