"""Logs of a real job (the CLI against the simulator): -v shows fleetops's decisions, one line
each, and nothing of SQL, botocore or the credentials; --log-format json is JSON on every line."""

from __future__ import annotations

import json
import re
from typing import Any

from fleetops_harness import Cli

SECRET = "testing-secret"  # the harness's AWS_SECRET_ACCESS_KEY
KEY_ID = "AKIATESTINGONLY0000"


def _run(cli: Cli, sim_process: Any, *flags: str) -> Any:
    sim = sim_process("--workspaces", "60", "--rate", "0", "--transition-seconds", "0.1")
    args = cli.run_args("reboot", sim.endpoint_url, "--yes", "--json")
    result = cli.run(*flags, *args, timeout=120)
    assert result.code == 0, result.stderr[-3000:]
    return result


def _no_library_and_no_secret(text: str) -> None:
    for absent in ("SELECT", "INSERT", "UPDATE items", "PRAGMA", "botocore", "urllib3"):
        assert absent not in text, absent
    assert SECRET not in text and KEY_ID not in text
    assert "Authorization" not in text and "Signature=" not in text


def test_v_shows_the_decisions_and_no_sql_or_botocore(cli: Cli, sim_process: Any) -> None:
    result = _run(cli, sim_process, "-v")
    lines = result.stderr.splitlines()
    decisions = [line for line in lines if re.search(r" INFO fleetops\.[\w.]+: ", line)]
    text = "\n".join(decisions)
    assert re.search(r"planned reboot in us-east-1: \d+ eligible, \d+ skipped", text), text
    assert re.search(r"RebootWorkspaces batch of \d+ in us-east-1: \d+ accepted", text), text
    assert re.search(r"verification of \d+ items: \d+ succeeded", text), text
    assert len({line.split(": ")[0].split()[-1] for line in decisions}) >= 2  # several loggers
    _no_library_and_no_secret(result.stderr)
    assert json.loads(result.stdout.splitlines()[-1])["status"] == "succeeded"  # stdout clean


def test_without_v_no_decision_lines(cli: Cli, sim_process: Any) -> None:
    result = _run(cli, sim_process)
    assert " INFO fleetops." not in result.stderr


def test_vv_still_never_logs_botocore_or_secrets(cli: Cli, sim_process: Any) -> None:
    result = _run(cli, sim_process, "-vv")
    assert " DEBUG " in result.stderr  # the libraries' debug logs are on
    assert " botocore" not in result.stderr and " aiobotocore" not in result.stderr
    # SQL parameters are logged at -vv: the access key id shows in the simulator's caller ARN
    # (an identifier, not a secret); the secret key and signatures never do.
    assert SECRET not in result.stderr
    assert "Signature=" not in result.stderr and "Authorization" not in result.stderr


def test_json_log_format_is_one_object_per_line(cli: Cli, sim_process: Any) -> None:
    result = _run(cli, sim_process, "-v", "--log-format", "json")
    records = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    assert records
    for record in records:
        assert {"ts", "level", "logger", "message"} <= record.keys(), record
    messages = [r["message"] for r in records if r["logger"].startswith("fleetops.")]
    assert any(m.startswith("planned reboot in us-east-1") for m in messages), messages
    assert any("RebootWorkspaces batch of" in m for m in messages), messages
    _no_library_and_no_secret(result.stderr)
    assert json.loads(result.stdout.splitlines()[-1])["status"] == "succeeded"
