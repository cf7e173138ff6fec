"""Security: no credentials in the database, the event log, exports or logs; the database
file is private (0600); SQL only through bound parameters; no shell anywhere; the simulator binds
to loopback unless told otherwise."""

from __future__ import annotations

import ast
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fleetops_harness import Cli, Db, base_env, wait_until

import fleetops
from fleetops.sim import Simulator

PACKAGE = Path(fleetops.__file__).resolve().parent
KEY_ID = "AKIAPLANTEDKEY7Q2Z9X"
SECRET = "PlantedSecretKey/9f8e7d6c5b4a3f2e1d0cPLANTED"
TOKEN = "PlantedSessionToken+ZZ9plural9Z+alpha/QQQ/planted=="
SECRETS = (SECRET, TOKEN)


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(workspaces=40, seed=11, rate=None, transition_seconds=0.2).run_in_thread() as s:
        yield s


@pytest.fixture
def planted(cli: Cli) -> Cli:
    cli.env.update(AWS_ACCESS_KEY_ID=KEY_ID, AWS_SECRET_ACCESS_KEY=SECRET, AWS_SESSION_TOKEN=TOKEN)
    return cli


def _everything_written(cli: Cli, outputs: list[str]) -> dict[str, bytes]:
    found = {f"output {n}": text.encode() for n, text in enumerate(outputs)}
    for path in sorted(cli.db.parent.rglob("*")):
        if path.is_file():
            found[str(path)] = path.read_bytes()
    return found


def _run_a_job_and_read_it_back(cli: Cli, sim: Simulator, *flags: str) -> tuple[str, list[str]]:
    ids = sim.workspace_ids()[:12]
    argv = [*flags, *cli.run_args("reboot", sim.endpoint_url, "--json")]
    for ws in ids:
        argv += ["--workspace-id", ws]
    result = cli.run(*argv, timeout=120)
    assert result.code == 0, result.stderr[-3000:]
    job_id = result.json()["id"]
    outputs = [result.stdout, result.stderr]
    for extra in (
        ["jobs", "show", job_id, "--json"],
        ["jobs", "show", job_id],
        ["jobs", "items", job_id, "--json"],
        ["jobs", "list", "--json"],
        ["jobs", "export", job_id, "--format", "csv", "-o", str(cli.workdir / "export.csv")],
        ["jobs", "export", job_id, "--format", "json", "-o", str(cli.workdir / "export.json")],
        ["jobs", "export", job_id, "--format", "json"],
    ):
        done = cli.run(*flags, *extra)
        assert done.code == 0, (extra, done.stderr[-2000:])
        outputs += [done.stdout, done.stderr]
    return job_id, outputs


def test_no_secret_in_the_database_events_or_exports(planted: Cli, db: Db, sim: Simulator) -> None:
    job_id, outputs = _run_a_job_and_read_it_back(planted, sim)
    assert db.query("SELECT count(*) FROM events WHERE job_id = ?", job_id)[0][0] > 0
    for where, data in _everything_written(planted, outputs).items():
        for secret in (*SECRETS, KEY_ID):
            assert secret.encode() not in data, f"{secret[:12]}… found in {where}"


def test_no_secret_in_verbose_logs(planted: Cli, sim: Simulator) -> None:
    _, outputs = _run_a_job_and_read_it_back(planted, sim, "-v")
    for n, text in enumerate(outputs):
        for secret in SECRETS:
            assert secret not in text, f"{secret[:12]}… found in output {n} with -v"


def test_no_secret_key_in_verbose_logs(planted: Cli, sim: Simulator) -> None:
    """The secret key itself is never logged, even at -vv (libraries' debug logs on; it only
    ever signs)."""
    _, outputs = _run_a_job_and_read_it_back(planted, sim, "-vv")
    assert any("DEBUG" in text for text in outputs), "-vv produced no debug logs"
    for text in outputs:
        assert SECRET not in text


def test_the_database_file_is_private(cli: Cli, sim: Simulator) -> None:
    done = subprocess.run(
        ["/bin/sh", "-c", 'umask 022 && exec "$@"', "sh", *cli.argv("db", "upgrade")],
        env=cli.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(cli.db.stat().st_mode) == 0o600
    _run_a_job_and_read_it_back(cli, sim)
    for path in cli.db.parent.glob(cli.db.name + "*"):
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, f"{path} is readable by others"


def test_a_database_made_through_the_default_location_is_private(cli: Cli) -> None:
    env = base_env(cli.workdir)
    env.pop("FLEETOPS_DB")
    result = cli.run("db", "upgrade", db=False, env=env)
    assert result.code == 0, result.stderr
    made = [p for p in Path(env["HOME"]).rglob("*.db")]
    assert len(made) == 1
    assert stat.S_IMODE(made[0].stat().st_mode) == 0o600


def _listening_addresses(port: int) -> set[str]:
    """Local addresses listening on ``port`` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            address, port_hex = fields[1].rsplit(":", 1)
            if int(port_hex, 16) == port and fields[3] == "0A":  # LISTEN
                found.add(address)
    return found


def test_sim_serve_binds_loopback_by_default(cli: Cli) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "fleetops", "sim", "serve", "--port", "0", "--workspaces", "5"],
        env=cli.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().decode().strip()
        assert url.startswith("http://127.0.0.1:"), url
        port = int(url.rsplit(":", 1)[1])
        if Path("/proc/net/tcp").exists():
            addresses = wait_until(lambda: _listening_addresses(port), timeout=10, what="LISTEN")
            assert addresses == {"0100007F"}, addresses  # 127.0.0.1 only
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()


# -- the source tree ----------------------------------------------------------------------------


def _modules() -> list[tuple[Path, ast.Module]]:
    return [(p, ast.parse(p.read_text(), str(p))) for p in sorted(PACKAGE.rglob("*.py"))]


def _name(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_name(node.value)}.{node.attr}"
    if isinstance(node, ast.Name):
        return node.id
    return ""


SHELL_CALLS = {
    "os.system",
    "os.popen",
    "os.execl",
    "os.execlp",
    "os.execv",
    "os.execvp",
    "os.spawnl",
    "os.spawnlp",
    "os.spawnv",
    "os.spawnvp",
    "pty.spawn",
    "asyncio.create_subprocess_shell",
    "subprocess.getoutput",
    "subprocess.getstatusoutput",
}


def test_no_shell_is_invoked_anywhere() -> None:
    offences = []
    for path, tree in _modules():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = _name(node.func)
            if name in SHELL_CALLS:
                offences.append(f"{path}:{node.lineno}: {name}")
            for kw in node.keywords:
                if kw.arg == "shell" and not (
                    isinstance(kw.value, ast.Constant) and kw.value.value is False
                ):
                    offences.append(f"{path}:{node.lineno}: shell=")
            if name.startswith("subprocess.") and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant | ast.JoinedStr):
                    offences.append(f"{path}:{node.lineno}: {name} with a command string")
    assert not offences, "\n".join(offences)


def test_the_engine_starts_no_processes() -> None:
    """Only the benchmark tooling (``fleetops/bench``) may start processes; the engine never."""
    users = []
    for path, tree in _modules():
        if "bench" in path.relative_to(PACKAGE).parts:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names]
                module = getattr(node, "module", None) or ""
                if "subprocess" in names or module == "subprocess" or "multiprocessing" in names:
                    users.append(f"{path}:{node.lineno}")
    assert not users, users


def _is_sql_sink(name: str) -> bool:
    return name.endswith((".execute", ".executemany", ".exec_driver_sql")) or name in {
        "sa.text",
        "text",
        "sqlalchemy.text",
    }


def test_sql_only_through_bound_parameters() -> None:
    """No SQL built by string interpolation: f-strings, % or .format() reaching execute()/text()
    may only interpolate module constants (ALL_CAPS names) or identifiers checked and quoted by
    ``quoted()``."""
    offences = []
    for path, tree in _modules():
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and _is_sql_sink(_name(node.func)) and node.args):
                continue
            sql = node.args[0]
            if isinstance(sql, ast.JoinedStr):
                for part in sql.values:
                    if isinstance(part, ast.FormattedValue) and not (
                        (isinstance(part.value, ast.Name) and part.value.id.isupper())
                        # an identifier checked and quoted by fleetops.store.ident.quoted
                        or (
                            isinstance(part.value, ast.Call)
                            and _name(part.value.func) in {"quoted", "ident.quoted"}
                        )
                    ):
                        offences.append(f"{path}:{node.lineno}: f-string SQL")
            elif isinstance(sql, ast.BinOp) and isinstance(sql.op, ast.Mod | ast.Add):
                offences.append(f"{path}:{node.lineno}: SQL built with % or +")
            elif isinstance(sql, ast.Call) and _name(sql.func).endswith(".format"):
                offences.append(f"{path}:{node.lineno}: SQL built with .format()")
    assert not offences, "\n".join(offences)
