"""Where a profiled run spends its CPU: py-spy's collapsed stacks grouped by layer.

``py-spy record --format raw -o run.txt -- python -m fleetops …`` writes one line per distinct
stack (``frame;frame;… count``). ``python -m fleetops.bench.flame run.txt`` prints the share of
samples by the layer of the innermost frame that belongs to a known layer (the botocore work of
building, signing and parsing a request, SQL, the HTTP transport, fleetops's own code…) and, by
the fleetops function the stack passes through, which part of the job paid for it. Run it with
the interpreter that ran the profile: it reads aiosqlite's source to tell its thread waiting on
its queue from the same thread at work.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

__all__ = ["LAYERS", "PHASES", "breakdown", "main"]

#: (layer, path fragments): the innermost frame matching a fragment names the layer.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "botocore: serialise + validate",
        ("botocore/serialize.py", "botocore/validate.py", "botocore/useragent.py"),
    ),
    ("botocore: sign", ("botocore/auth.py", "botocore/signers.py", "botocore/credentials.py")),
    ("the wire (fleetops's own request path)", ("fleetops/aws/wire.py",)),
    (
        "botocore: parse",
        (
            "botocore/parsers.py",
            "aiobotocore/parsers.py",
            "botocore/response.py",
            "_parse_timestamp",  # botocore/utils.py: every timestamp of a response
        ),
    ),
    ("HTTP (aiohttp, yarl, multidict)", ("aiohttp/", "yarl/", "multidict/", "httpsession.py")),
    ("botocore: hooks, endpoint, model", ("botocore/", "aiobotocore/")),
    ("SQLite (aiosqlite thread)", ("aiosqlite/", "sqlite3/")),
    ("SQLAlchemy (compile, execute, rows)", ("sqlalchemy/",)),
    ("JSON", ("json/",)),
    ("logging", ("logging/",)),
    ("fleetops", ("fleetops/",)),
    ("event loop (asyncio, anyio)", ("asyncio/", "anyio/", "selectors.py")),
    ("start-up (imports)", ("<frozen importlib", "importlib/")),
)
#: (phase, fleetops frames): the outermost matching frame names the phase.
PHASES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "planning (describe, guardrails, insert rows)",
        ("fleetops/engine/planner.py", "fleetops/catalogue/targets.py"),
    ),
    ("verification (describe, judge, write)", ("fleetops/engine/verify.py",)),
    ("submit (lease rows, call, write results)", ("ScopeRun._submit", "ScopeRun._send")),
    ("store writer (group commits)", ("fleetops/store/",)),
    ("start-up (imports)", ("<frozen importlib",)),
)


def _is_idle(leaf: str) -> bool:
    """Waiting, not working: the event loop in its poll, aiosqlite's thread on its queue (py-spy
    cannot always tell a thread that waits in C from one that works)."""
    name, _, where = leaf.partition(" (")
    if name in ("EpollSelector.select", "PollSelector.select", "KqueueSelector.select"):
        return True
    if name == "_worker" and "concurrent/futures/thread.py" in where:
        path, _, line = where.rstrip(")").rpartition(":")
        return ".get(" in _source_line(path, int(line) if line.isdigit() else 0)  # on its queue
    if name != "_connection_worker_thread":
        return False
    path, _, line = where.rstrip(")").rpartition(":")
    source = _source_line(path, int(line) if line.isdigit() else 0)
    return ".get(" in source


def _source_line(path: str, line: int) -> str:
    for base in sys.path:
        candidate = Path(base) / path
        if candidate.is_file():
            lines = candidate.read_text().splitlines()
            return lines[line - 1] if 0 < line <= len(lines) else ""
    return ""


def _parse(line: str) -> tuple[list[str], int] | None:
    stack, _, count = line.rstrip("\n").rpartition(" ")
    if not stack or not count.isdigit():
        return None
    return stack.split(";"), int(count)


def _layer(frames: list[str]) -> str:
    for frame in reversed(frames):
        for name, fragments in LAYERS:
            if any(f in frame for f in fragments):
                return name
    return "other (stdlib, C)"


def _phase(frames: list[str]) -> str:
    for frame in frames:
        for name, fragments in PHASES:
            if any(f in frame for f in fragments):
                return name
    # Work no fleetops frame leads to: the SQLite thread, or the event loop's own I/O.
    if any("aiosqlite/" in frame for frame in frames):
        return "SQLite thread (statements of every phase)"
    if any("sqlalchemy/" in frame for frame in frames):  # SQLAlchemy's greenlets
        return "SQLAlchemy greenlets (statements of every phase)"
    if any("asyncio/" in frame or "anyio/" in frame for frame in frames):
        return "event loop (I/O callbacks, scheduling)"
    return "other"


def breakdown(lines: Iterable[str]) -> dict[str, dict[str, float]]:
    """Shares of the busy samples (0..1) by layer and by phase; idle samples are counted apart."""
    layers: Counter[str] = Counter()
    phases: Counter[str] = Counter()
    idle = 0
    for line in lines:
        parsed = _parse(line)
        if parsed is None:
            continue
        frames, count = parsed
        if _is_idle(frames[-1]):
            idle += count
            continue
        layers[_layer(frames)] += count
        phases[_phase(frames)] += count
    total = sum(layers.values()) or 1
    return {
        "layers": {k: round(v / total, 4) for k, v in layers.most_common()},
        "phases": {k: round(v / total, 4) for k, v in phases.most_common()},
        "samples": {"busy": float(total), "idle": float(idle)},
    }


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m fleetops.bench.flame PY-SPY-RAW.txt", file=sys.stderr)
        raise SystemExit(2)
    with Path(args[0]).open() as lines:
        result = breakdown(lines)
    for section in ("layers", "phases"):
        print(f"by {section[:-1]}:")
        for name, share in result[section].items():
            print(f"  {share * 100:5.1f} %  {name}")
    samples = result["samples"]
    print(f"samples: {int(samples['busy'])} busy, {int(samples['idle'])} idle (not counted)")


if __name__ == "__main__":
    main()
