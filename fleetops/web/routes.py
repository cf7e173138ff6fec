"""The dashboard's pages and its JSON API, each a thin handler over the façade.

* ``GET /api/jobs`` and ``GET /api/jobs/{id}`` answer exactly what ``jobs list --json`` and
  ``jobs show --json`` print, built by the same façade functions (:func:`fleetops.api.jobs_document`
  and :func:`fleetops.api.job_document` over :func:`fleetops.api.read_history`): one code path.
* ``GET /`` lists jobs (the same document, drawn; ``static/dashboard.js`` polls the API and
  redraws the rows of running jobs without reloading the page); ``GET /jobs/{id}`` shows what
  ``jobs show`` and ``jobs report`` show (the report's own sections, timeline included).
* ``POST /jobs/{id}/approve`` is the one write: the signed-in holder approves a plan of the
  two-person rule through :func:`fleetops.api.approve_job` (a session's form must carry its CSRF
  token; a script with a bearer token needs none, it has no ambient credential).

History reads are blocking (sqlite3 or psycopg): each runs in a worker thread. Nothing here
renders a token, a session id or a credential: templates get names, ids and the job documents.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread
import jinja2
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from fleetops import api
from fleetops.errors import FleetOpsError, NotFoundError, UsageError
from fleetops.states import ItemState, JobStatus
from fleetops.web.auth import COOKIE, SESSION_SECONDS, Session, same_secret

__all__ = ["ROUTES", "sign_in_page"]

T = TypeVar("T")
TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,
)


def pairs(mapping: dict[str, Any] | None) -> str:
    """``key=value, …`` of a job's targets or params (lists joined by commas)."""
    shown = []
    for key, value in (mapping or {}).items():
        if value in (None, [], {}, ""):
            continue
        text = ",".join(map(str, value)) if isinstance(value, list | tuple) else str(value)
        shown.append(f"{key}={text}")
    return ", ".join(shown) or "(none)"


def timing(durations: dict[str, Any]) -> str:
    """How long planning and the run took, and how fast WorkSpaces succeeded."""
    parts = []
    if durations.get("plan_s") is not None:
        parts.append(f"planned in {durations['plan_s']:.1f} s")
    if durations.get("run_s") is not None:
        parts.append(f"ran {durations['run_s']:.1f} s")
    if durations.get("succeeded_per_s"):
        parts.append(f"{durations['succeeded_per_s']:.2f} succeeded/s")
    return ", ".join(parts) or "–"


def moment(text: str | None) -> str:
    """``2026-12-04T19:24:27.862Z`` shown as ``2026-12-04 19:24:27Z`` (as dashboard.js does)."""
    return f"{text[:19].replace('T', ' ')}Z" if text else ""


TEMPLATES.globals.update(pairs=pairs, timing=timing)
TEMPLATES.filters["moment"] = moment
#: Item states a job has finished with (the progress of a run counts these).
DONE_STATES = ("succeeded", "failed", "skipped", "in_doubt", "cancelled")
MAX_LIST = 500
_LOCAL_PATH = re.compile(r"^/[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*$")
#: Failed items a job page lists (the rest: ``fleetops jobs items JOB --state failed``).
FAILED_SHOWN = 100


def _config(request: Request) -> Any:
    return request.app.state.config


def _user(request: Request) -> str | None:
    user: str | None = request.scope.get("fleetops.user")
    return user


def _session(request: Request) -> Session | None:
    session: Session | None = request.scope.get("fleetops.session")
    return session


async def _read(request: Request, read: Callable[[api.History], T]) -> T:
    """``read(reader)`` over the façade's history reader, in a worker thread."""
    where = _config(request).db

    def run() -> T:
        with api.read_history(where) as reader:
            return read(reader)

    return await anyio.to_thread.run_sync(run)


def _json(data: Any, status: int = 200) -> Response:
    """JSON exactly as the CLI's ``--json`` prints it."""
    return Response(
        json.dumps(data, default=str) + "\n", status_code=status, media_type="application/json"
    )


def _page(name: str, request: Request | None, status: int = 200, **context: Any) -> HTMLResponse:
    session = _session(request) if request is not None else None
    user = _user(request) if request is not None else None
    signed_in = request is not None and _config(request).tokens is not None
    text = TEMPLATES.get_template(name).render(
        user=user,
        csrf=session.csrf if session is not None else None,
        auth=signed_in,
        **context,
    )
    return HTMLResponse(text, status_code=status)


def sign_in_page(next_path: str, *, status: int = 200, error: str | None = None) -> HTMLResponse:
    """The sign-in form (also the body of every 401 a browser gets)."""
    return _page("login.html", None, status, next=_safe_next(next_path), error=error)


def _safe_next(path: str) -> str:
    """Where to go after signing in: a path of this site, never another site (no ``//host``,
    no backslash, no control character or space a browser would drop to make one)."""
    if not _LOCAL_PATH.match(path) or path.startswith("//") or path.startswith("/login"):
        return "/"
    return path


# -- the JSON API -------------------------------------------------------------------------------


def _filters(request: Request) -> dict[str, Any]:
    """``status``, ``action``, ``limit`` (and ``by``) of ``jobs list``, from the query string."""
    query = request.query_params
    status = (query.get("status") or "").strip().lower() or None
    if status is not None and status not in {s.value for s in JobStatus}:
        known = ", ".join(s.value for s in JobStatus)
        raise UsageError(f"unknown job status {status!r} (one of {known})")
    raw_limit = (query.get("limit") or "20").strip()
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIST:
        raise UsageError(f"limit must be a whole number from 1 to {MAX_LIST}")
    return {
        "status": status,
        "action": (query.get("action") or "").strip().lower() or None,
        "limit": int(raw_limit),
        "started_by": (query.get("by") or "").strip() or None,
    }


async def api_jobs(request: Request) -> Response:
    try:
        filters = _filters(request)
    except UsageError as exc:
        return _json({"error": str(exc)}, 400)
    document = await _read(request, lambda reader: api.jobs_document(reader, **filters))
    return _json(document)


async def api_job(request: Request) -> Response:
    job_id = request.path_params["job_id"]
    try:
        document = await _read(request, lambda reader: api.job_document(reader, job_id))
    except NotFoundError as exc:
        return _json({"error": str(exc)}, 404)
    return _json(document)


# -- the pages ----------------------------------------------------------------------------------


def progress(job: dict[str, Any]) -> tuple[int, int]:
    """(items finished, items in all) of a job document."""
    counts = job["counts"]
    return sum(int(counts.get(state, 0)) for state in DONE_STATES), int(job["total"])


async def jobs_page(request: Request) -> Response:
    try:
        filters = _filters(request)
    except UsageError as exc:
        return _page("error.html", request, 400, message=str(exc))
    document = await _read(request, lambda reader: api.jobs_document(reader, **filters))
    rows = [{"job": job, "progress": progress(job)} for job in document]
    return _page(
        "jobs.html",
        request,
        rows=rows,
        filters=filters,
        statuses=[s.value for s in JobStatus],
        poll_ms=int(_config(request).poll_seconds * 1000),
        schedules=None,  # the hook for a schedules section: no schedules table yet
    )


def _job_reads(job_id: str) -> Callable[[api.History], tuple[dict[str, Any], list[Any]]]:
    def read(reader: api.History) -> tuple[dict[str, Any], list[Any]]:
        document = api.job_document(reader, job_id)
        failed = api.item_documents(
            reader, document["id"], [ItemState.FAILED], limit=FAILED_SHOWN
        )
        return document, failed

    return read


def approval_state(document: dict[str, Any], user: str | None, auth: bool) -> dict[str, Any]:
    """What the page says of the two-person rule, and whether ``user`` may approve here."""
    approval = document["approval"]
    waiting = approval["required"] and approval["approved_by"] is None
    startable = document["status"] == JobStatus.PLANNED.value and document["planned_at"]
    why_not = None
    if waiting and not auth:
        why_not = "approvals on the dashboard need sign-in (fleetops serve --auth-token-file)"
    elif waiting and user == document["started_by"]:
        why_not = f"you ({user}) planned this job: another person approves it"
    elif waiting and not startable:
        why_not = f"the job is {document['status']}, not a complete stored plan"
    can_approve = bool(waiting and why_not is None)
    return {**approval, "waiting": waiting, "can_approve": can_approve, "why_not": why_not}


async def job_page(
    request: Request, *, status: int = 200, error: str | None = None
) -> Response:
    job_id = request.path_params["job_id"]
    try:
        document, failed = await _read(request, _job_reads(job_id))
    except NotFoundError as exc:
        return _page("error.html", request, 404, message=str(exc))
    from fleetops.report.html import sections

    report = await api.report_data(request.app.state.store, document["id"])
    return _page(
        "job.html",
        request,
        status,
        job=document,
        progress=progress(document),
        failed=failed,
        failed_shown=FAILED_SHOWN,
        approval=approval_state(document, _user(request), _config(request).tokens is not None),
        report=Markup(sections(report)),  # the report escapes every value itself
        error=error,
        poll_ms=int(_config(request).poll_seconds * 1000),
    )


async def job_report(request: Request) -> Response:
    """The report's sections alone, for the job page to refresh while the job runs."""
    from fleetops.report.html import sections

    try:
        report = await api.report_data(request.app.state.store, request.path_params["job_id"])
    except NotFoundError as exc:
        return Response(str(exc), status_code=404, media_type="text/plain")
    return HTMLResponse(sections(report))


async def report_css(request: Request) -> Response:
    from fleetops.report.html import CSS

    return Response(CSS, media_type="text/css")


# -- the one write, and signing in and out ---------------------------------------------------


async def approve(request: Request) -> Response:
    job_id = request.path_params["job_id"]
    user = _user(request)
    if _config(request).tokens is None or user is None:
        return await job_page(
            request, status=403, error="approvals on the dashboard need sign-in"
        )
    form = await request.form(max_files=0, max_fields=8)
    session = _session(request)
    if session is not None and not same_secret(str(form.get("csrf", "")), session.csrf):
        return await job_page(request, status=403, error="the form expired: approve again")
    comment = str(form.get("comment", ""))
    try:
        record = await api.approve_job(
            request.app.state.store, job_id, by=user, comment=comment
        )
    except NotFoundError as exc:
        return _page("error.html", request, 404, message=str(exc))
    except UsageError as exc:
        return await job_page(request, status=403, error=str(exc))
    if session is None:  # a script: the job as jobs show --json shows it
        return _json(await _read(request, lambda reader: api.job_document(reader, record.id)))
    return RedirectResponse(f"/jobs/{record.id}", status_code=303)


async def login_form(request: Request) -> Response:
    if _config(request).tokens is None:
        return RedirectResponse("/", status_code=303)
    return sign_in_page(request.query_params.get("next", "/"))


async def login(request: Request) -> Response:
    config = _config(request)
    if config.tokens is None:
        return RedirectResponse("/", status_code=303)
    form = await request.form(max_files=0, max_fields=4)
    target = _safe_next(str(form.get("next", "/")))
    holder = config.tokens.holder(str(form.get("token", "")).strip())
    if holder is None:
        await asyncio.sleep(0.5)  # guessing tokens stays slow
        return sign_in_page(target, status=401, error="That token is not valid.")
    session = config.sessions.open(holder)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE,
        session.sid,
        max_age=int(SESSION_SECONDS),
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


async def logout(request: Request) -> Response:
    session = _session(request)
    if session is not None:
        form = await request.form(max_files=0, max_fields=4)
        if not same_secret(str(form.get("csrf", "")), session.csrf):
            return Response("the form expired\n", status_code=403, media_type="text/plain")
        _config(request).sessions.close(session.sid)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


def _guard(handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
    """A fleetops error the handler did not expect: one line, never a traceback page."""

    @functools.wraps(handler)
    async def guarded(request: Request) -> Response:
        try:
            response: Response = await handler(request)
        except FleetOpsError as exc:
            if request.url.path.startswith("/api/"):
                return JSONResponse({"error": str(exc)}, status_code=500)
            return _page("error.html", request, 500, message=str(exc))
        return response

    return guarded


ROUTES = [
    Route("/", _guard(jobs_page), methods=["GET"]),
    Route("/jobs/{job_id}", _guard(job_page), methods=["GET"]),
    Route("/jobs/{job_id}/report", _guard(job_report), methods=["GET"]),
    Route("/jobs/{job_id}/approve", _guard(approve), methods=["POST"]),
    Route("/api/jobs", _guard(api_jobs), methods=["GET"]),
    Route("/api/jobs/{job_id}", _guard(api_job), methods=["GET"]),
    Route("/assets/report.css", report_css, methods=["GET"]),
    Route("/login", login_form, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
]
