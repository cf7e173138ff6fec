"""Logs: -v shows fleetops's decisions and no library, -vv never the AWS transport, JSON lines
parse, secrets never leave."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator

import pytest

from fleetops.cli import logs
from fleetops.errors import UsageError

NAMES = ("", "fleetops", "fleetops.cli.progress", *logs.LIBRARY_LOGGERS, *logs.TRANSPORT_LOGGERS)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """configure() changes process-wide state: put it back after each test."""
    root = logging.getLogger()
    handlers = list(root.handlers)
    levels = {name: logging.getLogger(name).level for name in NAMES}
    stderr = sys.stderr
    try:
        yield
    finally:
        logs.configure(0, "text", stream=io.StringIO())  # unwraps stderr in JSON mode
        sys.stderr = stderr
        root.removeHandler(logs._state["handler"])
        logs._state.update(json=False, handler=None)
        for handler in handlers:
            if handler not in root.handlers:
                root.addHandler(handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def _emit_everything() -> None:
    logging.getLogger("fleetops.engine.scope").info(
        "batch of 25 sent: RebootWorkspaces", extra={"operation": "RebootWorkspaces", "size": 25}
    )
    logging.getLogger("fleetops.engine.verify").debug("polling 25 ids")
    logging.getLogger("sqlalchemy.engine.Engine").info("SELECT items.id FROM items")
    logging.getLogger("aiosqlite").debug("executing <function>")
    logging.getLogger("botocore.endpoint").debug("Sending http request: Authorization: AWS4")
    logging.getLogger("aiobotocore.hooks").debug("Event before-send: calling handler")
    logging.getLogger("urllib3.connectionpool").debug("https://workspaces: POST /")
    logging.getLogger("fleetops.aws.ratelimit").warning("throttled: quota halved to 1.0 calls/s")


def test_default_shows_warnings_only() -> None:
    out = io.StringIO()
    logs.configure(0, "text", stream=out)
    _emit_everything()
    (line,) = out.getvalue().splitlines()
    assert line.endswith("WARNING fleetops.aws.ratelimit: throttled: quota halved to 1.0 calls/s")


def test_v_shows_decisions_one_line_each_and_no_library() -> None:
    out = io.StringIO()
    logs.configure(1, "text", stream=out)
    _emit_everything()
    lines = out.getvalue().splitlines()
    assert len(lines) == 2, lines
    assert lines[0].endswith("INFO fleetops.engine.scope: batch of 25 sent: RebootWorkspaces")
    assert "WARNING fleetops.aws.ratelimit: throttled" in lines[1]
    text = out.getvalue()
    for absent in ("SELECT", "executing", "Sending http", "before-send", "POST", "polling"):
        assert absent not in text


def test_vv_adds_library_debug_but_never_the_aws_transport() -> None:
    out = io.StringIO()
    logs.configure(2, "text", stream=out)
    # even a library (or a user's code) turning botocore's DEBUG on does not get it through
    logging.getLogger("botocore").setLevel(logging.DEBUG)
    _emit_everything()
    text = out.getvalue()
    for present in ("batch of 25 sent", "polling 25 ids", "SELECT items.id", "executing"):
        assert present in text
    for absent in ("Sending http", "before-send", "POST /"):
        assert absent not in text
    logging.getLogger("botocore").warning("botocore warnings still show")
    assert "botocore warnings still show" in out.getvalue()


def test_json_lines_carry_the_structured_extras() -> None:
    out = io.StringIO()
    logs.configure(1, "json", stream=out)
    _emit_everything()
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("fleetops.engine.runner").exception("job failed")
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["logger"] for r in records] == [
        "fleetops.engine.scope",
        "fleetops.aws.ratelimit",
        "fleetops.engine.runner",
    ]
    batch = records[0]
    assert batch["level"] == "INFO" and batch["message"].startswith("batch of 25 sent")
    assert (batch["operation"], batch["size"]) == ("RebootWorkspaces", 25)
    assert batch["ts"].endswith("Z") and batch["ts"][10] == "T"
    assert "RuntimeError: boom" in records[2]["exc"]


def test_json_mode_wraps_every_other_stderr_line(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = io.StringIO()
    monkeypatch.setattr(sys, "stderr", raw)
    logs.configure(0, "json")
    assert logs.json_enabled() and not sys.stderr.isatty()
    print("job j1 planned: 3 WorkSpaces", file=sys.stderr)
    sys.stderr.write("half a line, ")
    sys.stderr.write("then the rest\n")
    logging.getLogger("fleetops.engine.runner").warning("error budget spent")
    records = [json.loads(line) for line in raw.getvalue().splitlines()]
    assert [(r["logger"], r["message"]) for r in records] == [
        ("fleetops.cli.main", "job j1 planned: 3 WorkSpaces"),
        ("fleetops.cli.main", "half a line, then the rest"),
        ("fleetops.engine.runner", "error budget spent"),
    ]


def test_secrets_are_masked_in_every_format(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "FwoGZXIvYXdzEXAMPLETOKEN")
    for fmt in logs.LOG_FORMATS:
        out = io.StringIO()
        logs.configure(1, fmt, stream=out)
        logging.getLogger("fleetops.aws.client").warning(
            "credentials wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY token FwoGZXIvYXdzEXAMPLETOKEN "
            "Signature=0123456789abcdef0123456789abcdef X-Amz-Security-Token: abc.def"
        )
        text = out.getvalue()
        assert "EXAMPLEKEY" not in text and "EXAMPLETOKEN" not in text, text
        assert "0123456789abcdef0123" not in text and "abc.def" not in text, text
        assert text.count("***") == 4, text


def test_unknown_format_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown log format 'xml'; choose from text, json"):
        logs.configure(0, "xml", stream=io.StringIO())
