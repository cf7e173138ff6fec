"""The HTML report of a real job (the CLI against the simulator over HTTP, a migrated SQLite
file): one self-contained file whose summary, charts and tables match the job's database."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from fleetops_harness import Cli, Db


class _Page(HTMLParser):
    """Tags, attributes and text of the page, by the parts the test reads."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.cards: dict[str, str] = {}
        self.text: list[str] = []
        self._card: str | None = None
        self._in_b = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        self.tags.append((tag, values))
        if "data-count" in values:
            self._card = values["data-count"]
        self._in_b = tag == "b"

    def handle_endtag(self, tag: str) -> None:
        self._in_b = False

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._in_b and self._card is not None:
            self.cards[self._card] = data
            self._card = None

    def all(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        return [
            a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())
        ]


@pytest.fixture
def finished_job(cli: Cli, db: Db, sim_process: Any) -> str:
    sim = sim_process(
        "--workspaces", "150", "--rate", "0", "--transition-seconds", "0.2",
    )  # fmt: skip
    args = cli.run_args("reboot", sim.endpoint_url, "--yes", "--json")
    result = cli.run(*args, timeout=120)
    job = result.json()
    assert job["counts"]["succeeded"] > 0 and job["counts"]["skipped"] > 0, result.stderr[-2000:]
    return str(job["id"])


def test_report_is_self_contained_and_matches_the_job(
    cli: Cli, db: Db, finished_job: str, tmp_path: Path
) -> None:
    out = tmp_path / "report.html"
    result = cli.run("jobs", "report", finished_job[:12], "-o", str(out))
    assert result.code == 0, result.stderr
    assert result.stderr.strip() == f"report of job {finished_job} written to {out}"
    page = _Page()
    page.feed(out.read_text(encoding="utf-8"))

    # self-contained: no script, no stylesheet or image fetched, no link to follow
    assert not page.all("script") and not page.all("link") and not page.all("img")
    assert not [a for _, a in page.tags if "src" in a or "href" in a]

    counts = db.counts(finished_job)
    total = sum(counts.values())
    assert page.cards["total"] == f"{total:,}"
    for state in ("succeeded", "skipped"):
        assert page.cards[state] == f"{counts[state]:,}", state
    assert "failed" not in page.cards  # a state no item is in gets no card

    # the timeline: three inline SVG charts whose series add up to the job's calls and items
    assert len(page.all("svg")) == 3
    (timeline,) = [a for a in page.all("div") if "data-slice-s" in a]
    slice_s = float(timeline["data-slice-s"])
    series = {a["data-series"]: float(a["data-total"]) for a in page.all("polyline")}
    calls = db.query("SELECT count(*) FROM events WHERE job_id = ?", finished_job)[0][0]
    assert series["calls/s"] * slice_s == pytest.approx(calls, rel=1e-3)
    assert series["verified/s"] * slice_s == pytest.approx(counts["succeeded"], rel=1e-3)
    finished_bad = counts["failed"] + counts["in_doubt"]
    assert series["failed or in doubt/s"] * slice_s == pytest.approx(finished_bad, rel=1e-3)
    assert "in flight" in series

    text = " ".join(page.text)
    assert "No WorkSpace failed." in text
    (reason, skipped), *_ = db.query(
        "SELECT reason, count(*) AS n FROM items WHERE job_id = ? AND state = 'skipped' "
        "GROUP BY reason ORDER BY n DESC",
        finished_job,
    )
    assert reason in text and f"{skipped:,}" in text
    assert "us-east-1" in text and "RebootWorkspaces" in text


def test_report_bad_input_is_one_line_and_writes_nothing(
    cli: Cli, finished_job: str, tmp_path: Path
) -> None:
    out = tmp_path / "r.html"
    unknown = cli.run("jobs", "report", "jnosuchjob", "-o", str(out))
    assert unknown.code == 2 and len(unknown.stderr.strip().splitlines()) == 1, unknown.stderr
    assert "jnosuchjob" in unknown.stderr
    nowhere = cli.run("jobs", "report", finished_job, "-o", str(tmp_path / "no" / "r.html"))
    assert nowhere.code == 2 and "no directory" in nowhere.stderr, nowhere.stderr
    assert not out.exists() and list(tmp_path.glob("*.tmp")) == []
