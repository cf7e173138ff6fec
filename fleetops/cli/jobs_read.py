"""``jobs items`` and ``jobs export`` over the façade's reader of the history (``sqlite3`` or
psycopg, no SQLAlchemy), and the file handling of ``jobs export -o FILE``: written whole, then
renamed into place."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from fleetops.cli.common import out_console, print_json
from fleetops.errors import UsageError
from fleetops.states import ItemState

if TYPE_CHECKING:
    from fleetops.api import History
    from fleetops.records import ItemRecord

__all__ = ["export_job", "list_items", "partial_file"]


@contextmanager
def partial_file(output: str) -> Iterator[TextIO]:
    """``output`` written as ``output.partial`` and renamed once complete: a reader never sees
    half an export, and a failed one leaves nothing behind."""
    target = Path(output)
    partial = target.with_name(target.name + ".partial")
    try:
        with partial.open("w", encoding="utf-8", newline="") as stream:
            yield stream
        os.replace(partial, target)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise UsageError(f"cannot write {target}: {exc.strerror or exc}") from exc
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def list_items(
    reader: History,
    job: str,
    states: Sequence[ItemState] | None,
    limit: int,
    account: str | None,
    as_json: bool,
) -> None:
    """``jobs items``: a job's items in plan order (``limit`` 0: all of them)."""
    from fleetops.api import steps_reader
    from fleetops.report.documents import item_json, write_items

    record = reader.get_job(job)
    job_id = record.id
    steps = steps_reader(reader, record) if as_json else None
    found: list[ItemRecord] = []
    if account is not None:
        for page in reader.iter_items(job_id, states=states):
            found.extend(item for item in page if item.account == account)
            if limit and len(found) >= limit:
                found = found[:limit]
                break
    elif as_json and limit == 0:
        write_items(reader.iter_items(job_id, states=states), "json", sys.stdout, steps)
        sys.stdout.flush()
        return
    elif limit == 0:
        found = [item for page in reader.iter_items(job_id, states=states) for item in page]
    else:
        found = reader.items_page(job_id, states=states, limit=limit)
    if as_json:
        found_steps = steps(found) if steps is not None else None
        print_json(
            [
                item_json(item, None if found_steps is None else found_steps.get(item.id, ()))
                for item in found
            ]
        )
        return
    from fleetops.report.text import render_items

    wanted = {s.value for s in states} if states else None
    if account is not None:
        from fleetops.api import scope_summaries

        scopes = [s for s in scope_summaries(reader, job_id) if s.account == account]
        matching = sum(
            n for s in scopes for st, n in s.counts.items() if not wanted or st in wanted
        )
    else:
        counts = reader.counts(job_id)
        matching = sum(n for st, n in counts.items() if not wanted or st in wanted)
    render_items(out_console, found, matching=matching)


def export_job(
    reader: History, job: str, fmt: str, output: str | None
) -> tuple[int, str]:
    """``jobs export``: every item, to stdout or (``output``) a file; (items written, job id)."""
    from fleetops.api import steps_reader
    from fleetops.report.documents import write_items

    record = reader.get_job(job)
    job_id = record.id
    steps = steps_reader(reader, record)
    if output is None or output == "-":
        count = write_items(reader.iter_items(job_id), fmt, sys.stdout, steps)
        sys.stdout.flush()
        return count, job_id
    with partial_file(output) as stream:
        count = write_items(reader.iter_items(job_id), fmt, stream, steps)
    return count, job_id
