"""Bad input: each mistake gets one clear line on stderr, exit 2, no traceback, and
nothing written (the database file is not created, or is left byte for byte as it was).

The fixed cases run the real command; generated job files and selector combinations go through
``load_job_file`` and ``Targets.build`` in-process (hypothesis), a few of them also through the CLI.
"""

from __future__ import annotations

import hashlib
import re
import resource
import string
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from fleetops_harness import Cli, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleetops.catalogue.actions import ACTIONS
from fleetops.catalogue.jobfile import load_job_file
from fleetops.catalogue.targets import Targets
from fleetops.errors import UsageError
from fleetops.sim import Simulator

DEAD = "http://127.0.0.1:9"  # nothing listens: bad input must fail before any call
WS = "ws-abcdefgh1"
ID_RE = re.compile(r"^ws-[0-9a-z]{8,63}$")
CONN = ["--endpoint-url", DEAD, "--region", "us-east-1"]


def _digest(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def assert_one_clear_line(result: Result, *needles: str) -> str:
    assert result.code == 2, (result.code, result.stderr[-2000:])
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


@pytest.fixture
def files(cli: Cli) -> dict[str, Path]:
    w = cli.workdir
    made = {
        "bad.yaml": "action: reboot\ntargets: [unclosed\n",
        "tabs.yaml": "action: reboot\ntargets:\n\tdirectory_id: d-1234567890\n",
        "unknown-key.yaml": "action: reboot\ntargets:\n  workspace_ids: [ws-abcdefgh1]\nspeed: 3\n",
        "bad-rate.yaml": (
            "action: reboot\ntargets:\n  workspace_ids: [ws-abcdefgh1]\noptions:\n  rate: -2\n"
        ),
        "bad-id.yaml": "action: reboot\ntargets:\n  workspace_ids: [ws-abcdefgh1, WS-NOPE]\n",
        "list.yaml": "- reboot\n- ws-abcdefgh1\n",
        "empty.yaml": "",
        "garbage-ids.txt": f"{WS}\n# a comment\n\nws-bcdefghi2\nrm -rf /\n",
        "empty-ids.txt": "# nothing here\n\n",
    }
    out = {}
    for name, text in made.items():
        (w / name).write_text(text)
        out[name] = w / name
    return out


BAD_RUNS: list[tuple[str, list[str], tuple[str, ...]]] = [
    ("malformed yaml", ["run", "bad.yaml"], ("bad.yaml:3",)),
    ("yaml with tabs", ["run", "tabs.yaml"], ("tabs.yaml:",)),
    ("job file unknown key", ["run", "unknown-key.yaml"], ("unknown-key.yaml:4", "speed")),
    ("job file negative rate", ["run", "bad-rate.yaml"], ("bad-rate.yaml:5", "rate")),
    ("job file bad id", ["run", "bad-id.yaml"], ("bad-id.yaml:3", "WS-NOPE")),
    ("job file not a mapping", ["run", "list.yaml"], ("list.yaml:1",)),
    ("job file empty", ["run", "empty.yaml"], ("empty.yaml",)),
    ("unknown action", ["run", "rebot", "--workspace-id", WS, *CONN], ("rebot", "reboot")),
    (
        "flag of another action",
        ["run", "reboot", "--to-bundle", "wsb-012345678", "--workspace-id", WS, *CONN],
        ("--to-bundle",),
    ),
    ("argument of another action", ["run", "reboot", "on", "--workspace-id", WS, *CONN], ("on",)),
    (
        "id upper case",
        ["run", "reboot", "--workspace-id", "ws-ABCDEFGH1", *CONN],
        ("ws-ABCDEFGH1",),
    ),
    ("id too short", ["run", "reboot", "--workspace-id", "ws-abc", *CONN], ("ws-abc",)),
    ("id wrong prefix", ["run", "stop", "--workspace-id", "i-0123456789a", *CONN], ("i-0123",)),
    (
        "id too long",
        ["run", "reboot", "--workspace-id", "ws-" + "a" * 64, *CONN],
        ("is not valid",),
    ),
    (
        "ids file garbage line",
        ["run", "reboot", "--ids-file", "garbage-ids.txt", *CONN],
        ("garbage-ids.txt:5", "rm -rf"),
    ),
    ("ids file empty", ["run", "reboot", "--ids-file", "empty-ids.txt", *CONN], ("empty-ids",)),
    ("ids file missing", ["run", "reboot", "--ids-file", "nope.txt", *CONN], ("nope.txt",)),
    ("bundle id form", ["run", "reboot", "--bundle-id", "bundle-1", *CONN], ("bundle-1",)),
    ("directory id form", ["run", "reboot", "--directory-id", "dir-1", *CONN], ("dir-1",)),
    ("unknown state", ["run", "reboot", "--state", "SLEEPING", *CONN], ("SLEEPING",)),
    ("zero rate", ["run", "reboot", "--workspace-id", WS, "--rate", "0", *CONN], ("--rate",)),
    ("negative rate", ["run", "reboot", "--workspace-id", WS, "--rate", "-1", *CONN], ("--rate",)),
    ("zero burst", ["run", "reboot", "--workspace-id", WS, "--burst", "0", *CONN], ("--burst",)),
    (
        "zero concurrency",
        ["run", "reboot", "--workspace-id", WS, "--concurrency", "0", *CONN],
        ("--concurrency",),
    ),
    (
        "negative concurrency",
        ["run", "reboot", "--workspace-id", WS, "--concurrency", "-3", *CONN],
        ("--concurrency",),
    ),
    (
        "max errors 150%",
        ["run", "reboot", "--workspace-id", WS, "--max-errors", "150%", *CONN],
        ("--max-errors", "150%"),
    ),
    (
        "max errors words",
        ["run", "reboot", "--workspace-id", WS, "--max-errors", "lots", *CONN],
        ("--max-errors",),
    ),
    (
        "negative verify timeout",
        ["run", "reboot", "--workspace-id", WS, "--verify-timeout", "-5", *CONN],
        ("--verify-timeout",),
    ),
    ("bad tag selector", ["run", "reboot", "--tag", "novalue", *CONN], ("novalue",)),
    (
        "terminate everything without --yes",
        ["run", "terminate", *CONN],
        ("selector",),
    ),
    (
        "destructive without --yes and no terminal",
        ["run", "terminate", "--workspace-id", WS, *CONN],
        ("--yes",),
    ),
    ("no database: show", ["jobs", "show", "j-nope"], ("no fleetops database",)),
    ("no database: items", ["jobs", "items", "j-nope"], ("no fleetops database",)),
    (
        "no database: export",
        ["jobs", "export", "j-nope", "--format", "csv"],
        ("no fleetops database",),
    ),
]


@pytest.mark.parametrize(
    ("argv", "needles"), [(a, n) for _, a, n in BAD_RUNS], ids=[name for name, _, _ in BAD_RUNS]
)
def test_bad_input_is_one_line_exit_2_nothing_written(
    cli: Cli, files: dict[str, Path], argv: list[str], needles: tuple[str, ...]
) -> None:
    result = cli.run(*argv, timeout=60)
    line = assert_one_clear_line(result, *needles)
    assert line.startswith("error:"), line
    assert not cli.db.exists(), "a database was created"


NO_SUCH_JOB: list[list[str]] = [
    ["jobs", "show", "j-nope"],
    ["jobs", "items", "j-nope", "--json"],
    ["jobs", "export", "j-nope", "--format", "json"],
    ["jobs", "cancel", "j-nope"],
    ["jobs", "retry", "j-nope", "--yes"],
    ["jobs", "resume", "j-nope"],
]


@pytest.mark.parametrize("argv", NO_SUCH_JOB, ids=[a[1] for a in NO_SUCH_JOB])
def test_a_job_id_that_does_not_exist_leaves_the_database_unchanged(
    cli: Cli, argv: list[str]
) -> None:
    assert cli.run("db", "upgrade").code == 0
    before = _digest(cli.db)
    result = cli.run(*argv)
    assert_one_clear_line(result, "j-nope")
    assert _digest(cli.db) == before


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["jobs", "show", "j-nope"], id="show"),
        pytest.param(["jobs", "cancel", "j-nope"], id="cancel"),
        pytest.param(["jobs", "resume", "j-nope"], id="resume"),
        pytest.param(["jobs", "retry", "j-nope", "--yes"], id="retry"),
    ],
)
def test_a_job_id_without_any_database_creates_none(cli: Cli, argv: list[str]) -> None:
    result = cli.run(*argv)
    assert result.code == 2 and "Traceback" not in result.stderr, result.stderr
    assert not cli.db.exists(), "a database was created by a command that found nothing"


def test_bad_waves_is_one_line(cli: Cli) -> None:
    result = cli.run("run", "reboot", "--workspace-id", WS, "--waves", "5,x", *CONN)
    assert_one_clear_line(result, "--waves")
    assert not cli.db.exists()


def test_a_control_character_in_a_job_file_is_one_line(cli: Cli) -> None:
    path = cli.workdir / "ctrl.yaml"
    path.write_text("action: reboot\x1f\n")
    assert_one_clear_line(cli.run("run", str(path), *CONN), "ctrl.yaml")


def test_unknown_flag_exit_2_names_the_flag(cli: Cli) -> None:
    result = cli.run("run", "reboot", "--frobnicate", "--workspace-id", WS, *CONN)
    assert result.code == 2
    assert "Traceback" not in result.stderr
    assert "--frobnicate" in result.stderr
    assert not cli.db.exists()


def test_unknown_flag_is_one_line(cli: Cli) -> None:
    assert_one_clear_line(
        cli.run("run", "reboot", "--frobnicate", "--workspace-id", WS, *CONN), "--frobnicate"
    )


def test_an_existing_database_is_unchanged_by_bad_input(cli: Cli, files: dict[str, Path]) -> None:
    assert cli.run("db", "upgrade").code == 0
    before = _digest(cli.db)
    for _, argv, needles in BAD_RUNS[:12]:
        assert_one_clear_line(cli.run(*argv), *needles)
    assert _digest(cli.db) == before


def test_ids_file_with_100000_duplicates_is_accepted_deduplicated_and_fast(cli: Cli) -> None:
    with Simulator(workspaces=30, seed=5, rate=None).run_in_thread() as sim:
        target = next(
            ws
            for ws in sim.workspace_ids()
            if (sim.workspace(ws) or {}).get("State") == "AVAILABLE"
        )
        ids = cli.workdir / "dups.txt"
        ids.write_text(f"{target}\n" * 100_000)
        started = time.process_time()  # processor time, whatever else the machine is doing
        parsed = Targets.build(ids_file=str(ids))
        assert time.process_time() - started < 2.0
        assert parsed.workspace_ids == (target,)

        # The processor time of the run (its own and its children's): what the duplicates
        # cost, whatever else the machine is doing.
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        result = cli.run(
            *cli.run_args("reboot", sim.endpoint_url, "--ids-file", str(ids), "--dry-run"),
            "--json",
            timeout=120,
        )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        spent = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert result.code == 0, result.stderr
    plan = result.json()
    assert plan["total"] == 1
    assert spent < 20, spent
    assert not cli.db.exists(), "a dry run wrote a database"


# -- generated: job files ---------------------------------------------------------------------

ids_good = st.from_regex(r"ws-[0-9a-z]{8,20}", fullmatch=True)
ids_bad = st.one_of(
    st.from_regex(r"ws-[0-9a-z]{1,7}", fullmatch=True),
    st.from_regex(r"ws-[A-Z]{8,12}", fullmatch=True),
    st.from_regex(r"i-[0-9a-f]{8,17}", fullmatch=True),
    st.text(min_size=1, max_size=12),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
junk = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3), max_leaves=5)

valid_targets = st.fixed_dictionaries(
    {"workspace_ids": st.lists(ids_good, min_size=1, max_size=5)},
    optional={
        "directory_id": st.from_regex(r"d-[0-9a-f]{10}", fullmatch=True),
        "states": st.lists(st.sampled_from(["AVAILABLE", "STOPPED", "ERROR"]), max_size=2),
        "running_mode": st.sampled_from(["AUTO_STOP", "ALWAYS_ON", "MANUAL"]),
        "user": st.text(string.ascii_lowercase + "*?", min_size=1, max_size=8),
        "idle_days": st.floats(0.5, 90),
    },
)
valid_options = st.fixed_dictionaries(
    {},
    optional={
        "rate": st.floats(0.1, 50),
        "burst": st.integers(1, 50),
        "concurrency": st.integers(1, 32),
        "max_errors": st.one_of(
            st.integers(0, 100).map(str), st.integers(0, 100).map(lambda n: f"{n}%")
        ),
        "verify_timeout": st.floats(1, 3600),
        "no_wait": st.booleans(),
    },
)
valid_jobs = st.fixed_dictionaries(
    {
        "action": st.sampled_from(sorted(a for a in ACTIONS if a in {"reboot", "start", "stop"})),
        "targets": valid_targets,
    },
    optional={"options": valid_options, "region": st.just("us-east-1")},
)
mixed_jobs = st.fixed_dictionaries(
    {},
    optional={
        "action": st.one_of(st.sampled_from(sorted(ACTIONS)), st.text(max_size=10), junk),
        "targets": st.one_of(
            valid_targets,
            st.dictionaries(
                st.sampled_from(
                    ["workspace_ids", "directory_id", "bundle_id", "states", "tags", "bogus"]
                ),
                st.one_of(junk, st.lists(st.one_of(ids_good, ids_bad), max_size=3)),
                max_size=3,
            ),
            junk,
        ),
        "options": st.one_of(
            valid_options,
            st.dictionaries(
                st.sampled_from(["rate", "burst", "concurrency", "max_errors", "waves", "speed"]),
                junk,
                max_size=3,
            ),
        ),
        "params": junk,
        "region": st.one_of(st.just("us-east-1"), st.text(max_size=8)),
    },
)


def _load(text: str) -> tuple[Any, str | None]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "job.yaml"
        path.write_text(text, encoding="utf-8")
        try:
            return load_job_file(path), None
        except UsageError as exc:
            message = str(exc)
            assert "\n" not in message, message
            assert str(path) in message or path.name in message, message
            return None, message


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_jobs)
def test_generated_valid_job_files_load(doc: dict[str, Any]) -> None:
    job, error = _load(yaml.safe_dump(doc))
    assert error is None, (doc, error)
    targets = job.to_targets()
    assert set(targets.workspace_ids) == set(doc["targets"]["workspace_ids"])
    job.to_options({})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mixed_jobs)
def test_generated_job_files_load_or_fail_with_one_line(doc: dict[str, Any]) -> None:
    job, _ = _load(yaml.safe_dump(doc, allow_unicode=True))
    if job is not None:
        # What loads must also be usable: the spec's parts build without surprises.
        try:
            job.to_targets()
            job.to_options({})
            job.to_params()
        except UsageError as exc:
            assert "\n" not in str(exc)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.text(
        st.characters(
            codec="utf-8", exclude_categories=["Cc", "Cs", "Cn"], include_characters="\n\t"
        ),
        max_size=200,
    )
)
def test_arbitrary_text_as_a_job_file_never_crashes(text: str) -> None:
    _load(text)


# -- generated: selectors -------------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(
    ids=st.lists(st.one_of(ids_good, ids_bad), max_size=6),
    bundle=st.one_of(st.none(), st.from_regex(r"wsb-[0-9a-z]{9}", fullmatch=True), st.text()),
    states=st.lists(st.one_of(st.sampled_from(["AVAILABLE", "stopped"]), st.text()), max_size=2),
    mode=st.one_of(st.none(), st.sampled_from(["AUTO_STOP", "manual", "SOMETIMES"])),
    tags=st.lists(st.one_of(st.just("team=a"), st.text(max_size=6)), max_size=2),
    idle=st.one_of(st.none(), st.floats(allow_nan=False, min_value=-5, max_value=100)),
)
def test_generated_selectors_build_or_fail_with_one_line(
    ids: list[str],
    bundle: str | None,
    states: list[str],
    mode: str | None,
    tags: list[str],
    idle: float | None,
) -> None:
    try:
        targets = Targets.build(
            workspace_ids=ids,
            bundle_id=bundle,
            states=states,
            running_mode=mode,
            tags=tags,
            idle_days=idle,
        )
    except UsageError as exc:
        assert "\n" not in str(exc)
        assert str(exc)
        return
    assert all(ID_RE.match(i) for i in ids), "an invalid id was accepted"
    assert targets.workspace_ids == tuple(dict.fromkeys(ids))
    assert bundle is None or re.fullmatch(r"wsb-[0-9a-z]{8,63}", bundle)
    assert idle is None or idle > 0


@pytest.mark.parametrize(
    "doc",
    [
        {"action": "reboot", "targets": {"workspace_ids": ["ws-abcdefgh1", "nope"]}},
        {
            "action": "reboot",
            "targets": {"workspace_ids": ["ws-abcdefgh1"]},
            "options": {"rate": 0},
        },
        {
            "action": "stop",
            "targets": {"directory_id": "d-1234567890"},
            "options": {"max_errors": "150%"},
        },
        {"action": "explode", "targets": {"workspace_ids": ["ws-abcdefgh1"]}},
    ],
    ids=["bad id", "zero rate", "max errors 150%", "unknown action"],
)
def test_generated_style_job_files_through_the_cli(cli: Cli, doc: dict[str, Any]) -> None:
    path = cli.workdir / "gen.yaml"
    path.write_text(yaml.safe_dump(doc))
    assert_one_clear_line(cli.run("run", str(path), *CONN), "gen.yaml")
    assert not cli.db.exists()
