"""The dashboard in a real browser: Debian's chromium, headless, driven by playwright, against a
real ``fleetops serve`` over a SQLite job database.

A person signs in on the form, watches a running job's progress move on the jobs list (the page
polls the API: the figures change, the page is never reloaded), opens a finished job and sees its
timeline drawn, and approves a plan of the two-person rule, which its planner cannot do. Every
page is checked for Content-Security-Policy violations (an inline script or style would be one).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from web_support import TOKENS, History, Served

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="no /usr/bin/chromium (bash .ci/install-browser installs it)"
)
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 20_000

if CHROMIUM.exists():
    from playwright.sync_api import Browser, Page, expect, sync_playwright


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            yield launched
        finally:
            launched.close()


class Visitor:
    """One person's browser session: a fresh context (its own cookies), its console watched."""

    def __init__(self, browser: Browser, server: Served) -> None:
        self.server = server
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.page: Page = self.context.new_page()
        self.violations: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.violations.append(str(error)))

    def _console(self, message: object) -> None:
        text = str(getattr(message, "text", ""))
        if "Content Security Policy" in text or "Refused to" in text:
            self.violations.append(text)

    def sign_in(self, name: str) -> None:
        page = self.page
        page.goto(self.server.url + "/")
        expect(page.locator("h1")).to_have_text("Sign in")  # a 401 whose body is the form
        page.fill("#token", TOKENS[name])
        page.click("button[type=submit]")
        page.wait_for_url(self.server.url + "/")
        expect(page.locator("[data-user]")).to_have_text(name)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def visitors(server: Served, browser: Browser) -> Iterator[dict[str, Visitor]]:
    made = {name: Visitor(browser, server) for name in ("alice", "bob")}
    try:
        yield made
    finally:
        for visitor in made.values():
            visitor.close()


def finish_items(db: Path, job_id: str, count: int, state: str = "succeeded") -> None:
    """Move ``count`` more pending items of a job to ``state``, as a runner would."""
    with sqlite3.connect(db) as conn:
        conn.execute(
            "UPDATE items SET state = ? WHERE id IN (SELECT id FROM items WHERE job_id = ? "
            "AND state = 'pending' ORDER BY id LIMIT ?)",
            (state, job_id, count),
        )


def test_the_list_shows_a_running_job_moving_without_a_reload(
    visitors: dict[str, Visitor], history: History
) -> None:
    bob = visitors["bob"]
    bob.sign_in("bob")
    page = bob.page
    row = page.locator(f'tr[data-job="{history.running}"]')
    expect(row.locator("[data-progress]")).to_have_text("0/50")
    expect(page.locator(f'tr[data-job="{history.plan}"] .badge')).to_have_text("awaits approval")
    page.evaluate("window.__sameDocument = 'still here'")

    finish_items(history.db, history.running, 20)
    expect(row.locator("[data-progress]")).to_have_text("20/50", timeout=WAIT_MS)
    assert row.locator("progress").evaluate("bar => bar.value") == 20
    finish_items(history.db, history.running, 25)
    finish_items(history.db, history.running, 5, state="failed")
    expect(row.locator("[data-progress]")).to_have_text("50/50", timeout=WAIT_MS)
    expect(row.locator("td").nth(5)).to_have_text("5")  # failed
    with sqlite3.connect(history.db) as conn:
        conn.execute("UPDATE jobs SET status = 'failed' WHERE id = ?", (history.running,))
    expect(row.locator(".status")).to_have_text("failed", timeout=WAIT_MS)
    assert page.evaluate("window.__sameDocument") == "still here"  # never reloaded
    expect(page.locator("[data-live]")).to_contain_text("live")
    assert bob.violations == []


def test_a_job_page_draws_the_timeline_and_lists_failed_items(
    visitors: dict[str, Visitor], history: History
) -> None:
    bob = visitors["bob"]
    bob.sign_in("bob")
    page = bob.page
    page.click(f'a[href="/jobs/{history.done}"]')
    page.wait_for_url(f"**/jobs/{history.done}")
    expect(page.locator('[data-field="status"]')).to_have_text("failed")
    charts = page.locator("[data-report] svg[data-chart]")
    expect(charts).to_have_count(3)
    box = charts.first.bounding_box()
    assert box is not None and box["width"] > 500 and box["height"] > 100  # drawn, on screen
    calls = page.locator('svg[data-chart="API calls"] polyline[data-series="calls/s"]')
    assert float(calls.get_attribute("data-total") or 0) == pytest.approx(40, rel=0.01)
    assert len((calls.get_attribute("points") or "").split()) > 10
    expect(page.locator('[data-items="failed"] tr')).to_have_count(4)  # a header and 3 items
    expect(page.locator('[data-count-of="succeeded"]')).to_have_text("40")
    title_weight = page.locator("svg text.chart-title").first.evaluate(
        "t => getComputedStyle(t).fontWeight"
    )
    assert title_weight == "600"  # the report's stylesheet applies: no inline style needed
    assert bob.violations == []


def test_a_running_job_page_updates_its_counts(
    visitors: dict[str, Visitor], history: History
) -> None:
    bob = visitors["bob"]
    bob.sign_in("bob")
    page = bob.page
    page.goto(f"{bob.server.url}/jobs/{history.running}")
    expect(page.locator('[data-field="fraction"]')).to_have_text("0/50")
    finish_items(history.db, history.running, 30)
    expect(page.locator('[data-count-of="succeeded"]')).to_have_text("30", timeout=WAIT_MS)
    expect(page.locator('[data-field="fraction"]')).to_have_text("30/50")
    assert bob.violations == []


def _approved_by(db: Path, job_id: str) -> str | None:
    with sqlite3.connect(db) as conn:
        (who,) = conn.execute("SELECT approved_by FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return None if who is None else str(who)


def test_another_user_approves_in_the_browser_and_the_planner_cannot(
    visitors: dict[str, Visitor], history: History
) -> None:
    alice, bob = visitors["alice"], visitors["bob"]
    alice.sign_in("alice")
    page = alice.page
    page.goto(f"{alice.server.url}/jobs/{history.plan}")
    expect(page.locator("[data-why-not]")).to_contain_text("another person approves it")
    expect(page.locator("[data-approve]")).to_have_count(0)
    forced = page.evaluate(
        """async (id) => {
            const csrf = document.querySelector('form[action="/logout"] input[name=csrf]').value;
            const answer = await fetch('/jobs/' + id + '/approve', {method: 'POST',
                body: new URLSearchParams({csrf: csrf, comment: 'my own'})});
            return [answer.status, await answer.text()];
        }""",
        history.plan,
    )
    assert forced[0] == 403 and "someone else" in forced[1]
    assert _approved_by(history.db, history.plan) is None

    bob.sign_in("bob")
    page = bob.page
    page.goto(f"{bob.server.url}/jobs/{history.plan}")
    page.fill("#comment", "CHG-42 reviewed")
    page.click("[data-approve]")
    page.wait_for_url(f"**/jobs/{history.plan}")
    expect(page.locator("[data-approved-by]")).to_have_text("bob")
    expect(page.locator("[data-approval]")).to_contain_text("CHG-42 reviewed")
    assert _approved_by(history.db, history.plan) == "bob"
    alice.page.reload()
    expect(alice.page.locator("[data-approved-by]")).to_have_text("bob")
    assert alice.violations == [] and bob.violations == []
