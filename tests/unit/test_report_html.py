"""The HTML report's rendering: errors by code, scopes by account and region, escaping, charts."""

from __future__ import annotations

from html.parser import HTMLParser

from fleetops.records import JobRecord
from fleetops.report.html import ReportData, render, svg_chart
from fleetops.states import JobStatus
from fleetops.store.history import (
    Durations,
    ErrorExample,
    ErrorGroup,
    JobHistory,
    OperationStats,
    ReasonGroup,
)
from fleetops.store.timeline import ScopeCounts, Slice, Timeline

T0 = 1_780_000_000.0


def _job() -> JobRecord:
    return JobRecord(
        id="j20260101000000abcdef",
        parent_id=None,
        action="reboot",
        status=JobStatus.FAILED,
        params={},
        targets={},
        options={},
        region="us-east-1",
        profile=None,
        endpoint_url=None,
        message="3 items failed",
        created_at=T0 - 5,
        planned_at=T0 - 1,
        started_at=T0,
        finished_at=T0 + 30,
        lease_owner=None,
        lease_expires_at=None,
        regions=("us-east-1", "eu-west-1"),
        accounts=("111111111111", "222222222222"),
    )


def _data() -> ReportData:
    counts = {"succeeded": 40, "failed": 3, "skipped": 7}
    history = JobHistory(
        job=_job(),
        counts=counts,
        durations=Durations(plan_s=4.0, wait_s=5.0, run_s=30.0, throughput=40 / 30, running=False),
        errors=[
            ErrorGroup(
                code="InvalidResourceState",
                count=3,
                examples=(ErrorExample("ws-1", "state <ERROR> & <script>x</script>"),),
            )
        ],
        skipped=[ReasonGroup("a user is connected", 7)],
        in_doubt=[],
        operations=[OperationStats("RebootWorkspaces", 2, 3, 1, 0, 1, 200)],
    )
    slices = [
        Slice(start=0.0, calls=4, retries=1, sent=25, in_flight=25),
        Slice(start=15.0, calls=2, sent=18, succeeded=40, failed=3, settled=43, in_flight=0),
    ]
    return ReportData(
        history=history,
        timeline=Timeline(t0=T0, width=15.0, slices=slices),
        call_errors=[("RebootWorkspaces", "ThrottlingException", 1)],
        scopes=[
            ScopeCounts("111111111111", "us-east-1", {"succeeded": 30, "failed": 3}),
            ScopeCounts("222222222222", "eu-west-1", {"succeeded": 10, "skipped": 7}),
        ],
        generated_at=T0 + 60,
    )


class _Cells(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.tags: list[str] = []
        self._cell = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "tr":
            self.rows.append([])
        self._cell = tag in ("td", "th")

    def handle_endtag(self, tag: str) -> None:
        self._cell = False

    def handle_data(self, data: str) -> None:
        if self._cell and self.rows:
            self.rows[-1].append(data)


def test_errors_scopes_and_operations_are_tables_with_the_figures() -> None:
    page = _Cells()
    page.feed(render(_data()))
    rows = page.rows
    assert ["InvalidResourceState", "3", "ws-1: state <ERROR> & <script>x</script>"] in rows
    assert ["RebootWorkspaces", "ThrottlingException", "1"] in rows
    assert ["111111111111", "us-east-1", "30", "3", "0", "33"] in rows
    assert ["222222222222", "eu-west-1", "10", "0", "7", "17"] in rows
    assert ["a user is connected", "7"] in rows
    assert ["RebootWorkspaces", "2", "1", "1", "0", "100"] in rows
    assert "script" not in page.tags  # the message's markup is text, not markup
    assert page.tags.count("svg") == 3


def test_a_job_without_calls_says_so_instead_of_an_empty_chart() -> None:
    data = _data()
    empty = ReportData(
        history=data.history,
        timeline=Timeline(t0=None, width=1.0),
        call_errors=[],
        scopes=data.scopes,
        generated_at=data.generated_at,
    )
    text = render(empty)
    assert "The job made no API call" in text and "<svg" not in text
    assert "No call failed." in text


def test_chart_points_follow_the_values() -> None:
    svg = svg_chart("calls", [5.0, 15.0], [("calls/s", "#000", [0.0, 10.0])], unit="per s")
    points = svg.split('points="')[1].split('"')[0].split()
    (x1, y1), (x2, y2) = (tuple(map(float, p.split(","))) for p in points)
    assert x1 < x2 and y1 > y2  # time runs right, more calls draw higher
    assert 'data-total="10"' in svg
