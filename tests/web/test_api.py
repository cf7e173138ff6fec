"""The dashboard over HTTP, against a real ``fleetops serve``: who may ask, what it answers, and
what it never shows.

* ``serve`` refuses to start open to the network, or with a token file others can read.
* With tokens, every request but the sign-in page and static assets needs one (401 otherwise);
  a bearer token or the session cookie of a sign-in lets it through.
* ``GET /api/jobs`` and ``/api/jobs/{id}`` are byte for byte the CLI's ``--json`` documents.
* No page, header or log line carries a token or the AWS secrets of the server's environment.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from web_support import (
    AWS_SECRETS,
    BARE_TOKEN,
    TOKENS,
    History,
    Served,
    cli_json,
    serve_argv,
    server_env,
)

SECURITY_HEADERS = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


def bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[name]}"}


@contextmanager
def sign_in(server: Served, name: str) -> Iterator[httpx.Client]:
    """A client holding the session cookie of ``name``'s sign-in on the form."""
    with httpx.Client(base_url=server.url, follow_redirects=False, timeout=30) as client:
        answer = client.post("/login", data={"token": TOKENS[name], "next": "/"})
        assert answer.status_code == 303 and answer.headers["location"] == "/"
        cookie = answer.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        yield client


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def run_serve(tmp_path: Path, db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        serve_argv(db, *args),
        capture_output=True,
        text=True,
        env=server_env(tmp_path),
        timeout=60,
        check=False,
    )


# -- refusing to start ---------------------------------------------------------------------------


def test_serve_refuses_a_network_address_without_tokens(tmp_path: Path, history: History) -> None:
    for host in ("0.0.0.0", "::", "dashboard.example.com"):
        refused = run_serve(tmp_path, history.db, "--host", host, "--port", "0")
        assert refused.returncode == 2, refused.stderr
        assert "--auth-token-file" in one_line(refused)
        assert refused.stdout == ""


def test_serve_refuses_a_token_file_others_can_read(
    tmp_path: Path, history: History, token_file: Path
) -> None:
    token_file.chmod(0o644)
    refused = run_serve(tmp_path, history.db, "--auth-token-file", str(token_file))
    assert refused.returncode == 2
    line = one_line(refused)
    assert "chmod 600" in line
    assert not any(token in refused.stderr for token in (*TOKENS.values(), BARE_TOKEN))
    empty = tmp_path / "empty-tokens"
    empty.write_text("# nothing yet\n")
    empty.chmod(0o600)
    none = run_serve(tmp_path, history.db, "--auth-token-file", str(empty))
    assert none.returncode == 2 and "holds no token" in one_line(none)


def test_serve_refuses_a_database_that_does_not_exist(tmp_path: Path) -> None:
    refused = run_serve(tmp_path, tmp_path / "nothing.db", "--port", "0")
    assert refused.returncode == 2 and "no fleetops database" in one_line(refused)
    assert not (tmp_path / "nothing.db").exists()


# -- tokens ----------------------------------------------------------------------------------


def test_every_request_needs_a_token(server: Served, history: History) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as anonymous:
        for path in ("/", f"/jobs/{history.done}", "/api/jobs", f"/api/jobs/{history.done}",
                     f"/jobs/{history.done}/report", "/assets/report.css", "/nowhere"):  # fmt: skip
            answer = anonymous.get(path)
            assert answer.status_code == 401, path
            for name, value in SECURITY_HEADERS.items():
                assert answer.headers[name] == value
        assert anonymous.get("/api/jobs").json()["error"].startswith("sign in")
        assert 'action="/login"' in anonymous.get("/").text  # a browser gets the form
        wrong = anonymous.get("/api/jobs", headers={"Authorization": "Bearer not-a-token-at-all"})
        assert wrong.status_code == 401
        assert anonymous.get("/login").status_code == 200
        assert anonymous.get("/static/dashboard.js").status_code == 200
        refused = anonymous.post("/login", data={"token": "guessed-guessed-guessed", "next": "/"})
        assert refused.status_code == 401 and "not valid" in refused.text
        approve = anonymous.post(f"/jobs/{history.plan}/approve", data={"comment": "x"})
        assert approve.status_code == 401
    with httpx.Client(base_url=server.url, timeout=30) as script:
        assert script.get("/api/jobs", headers=bearer("bob")).status_code == 200
        bare = script.get("/", headers={"Authorization": f"Bearer {BARE_TOKEN}"})
        assert bare.status_code == 200 and "dashboard" in bare.text


def test_a_signed_in_browser_uses_its_cookie_and_its_csrf_token(
    server: Served, history: History
) -> None:
    with sign_in(server, "bob") as bob:
        page = bob.get(f"/jobs/{history.plan}")
        assert page.status_code == 200 and "Approve as bob" in page.text
        forged = bob.post(f"/jobs/{history.plan}/approve", data={"comment": "no csrf"})
        assert forged.status_code == 403
        csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
        elsewhere = bob.post(
            f"/jobs/{history.plan}/approve",
            data={"csrf": csrf},
            headers={"Origin": "https://evil.example"},
        )
        assert elsewhere.status_code == 403
        cross_site = bob.post(
            f"/jobs/{history.plan}/approve",
            data={"csrf": csrf},
            headers={"Sec-Fetch-Site": "cross-site", "Origin": "null"},
        )
        assert cross_site.status_code == 403
        assert cli_json(server.out.parent, history.db, "jobs", "show", history.plan)[
            "approval"
        ]["approved_by"] is None  # fmt: skip
        done = bob.post(f"/jobs/{history.plan}/approve", data={"csrf": csrf, "comment": "ok"})
        assert done.status_code == 303 and done.headers["location"] == f"/jobs/{history.plan}"
    shown = cli_json(server.out.parent, history.db, "jobs", "show", history.plan)
    assert shown["approval"]["approved_by"] == "bob" and shown["approval"]["comment"] == "ok"


def test_signing_in_goes_back_to_a_page_of_this_site_only(
    server: Served, history: History
) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for asked, landed in (
            (f"/jobs/{history.done}", f"/jobs/{history.done}"),
            ("//evil.example/", "/"),
            ("/\t/evil.example", "/"),
            ("https://evil.example/", "/"),
        ):
            answer = client.post("/login", data={"token": TOKENS["bob"], "next": asked})
            assert answer.status_code == 303 and answer.headers["location"] == landed, asked


def test_the_planner_cannot_approve_a_script_of_another_user_can(
    server: Served, history: History
) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as script:
        own = script.post(f"/jobs/{history.plan}/approve", headers=bearer("alice"))
        assert own.status_code == 403 and "someone else" in own.text
        page = script.get(f"/jobs/{history.plan}", headers=bearer("alice"))
        assert "Approve as" not in page.text and "another person approves it" in page.text
        approved = script.post(
            f"/jobs/{history.plan}/approve", headers=bearer("bob"), data={"comment": "CHG-7"}
        )
        assert approved.status_code == 200
        assert approved.json()["approval"]["approved_by"] == "bob"
        again = script.post(f"/jobs/{history.plan}/approve", headers=bearer("alice"))
        assert again.status_code == 403 and "already approved by bob" in again.text


def test_without_tokens_the_dashboard_is_read_only_and_loopback_only(
    open_server: Served, history: History
) -> None:
    with httpx.Client(base_url=open_server.url, timeout=30) as client:
        page = client.get(f"/jobs/{history.plan}")
        assert page.status_code == 200 and "Approve as" not in page.text
        assert "need sign-in" in page.text
        assert client.post(f"/jobs/{history.plan}/approve").status_code == 403
        rebound = client.get("/api/jobs", headers={"Host": "attacker.example:8080"})
        assert rebound.status_code == 403
    assert cli_json(open_server.out.parent, history.db, "jobs", "show", history.plan)[
        "approval"
    ]["approved_by"] is None  # fmt: skip


# -- one document, two ways in ---------------------------------------------------------------


def test_the_api_serves_exactly_the_cli_documents(
    tmp_path: Path, server: Served, history: History
) -> None:
    with httpx.Client(base_url=server.url, headers=bearer("bob"), timeout=30) as client:
        for query, flags in (
            ("", ()),
            ("?status=planned", ("--status", "planned")),
            ("?action=reboot&limit=2", ("--action", "reboot", "--limit", "2")),
            ("?status=succeeded", ("--status", "succeeded")),
        ):
            served = client.get("/api/jobs" + query)
            assert served.status_code == 200
            assert served.headers["content-type"] == "application/json"
            assert served.json() == cli_json(tmp_path, history.db, "jobs", "list", *flags)
        assert len(client.get("/api/jobs").json()) == 3
        for job_id in (history.done, history.plan):
            served = client.get(f"/api/jobs/{job_id}")
            assert served.json() == cli_json(tmp_path, history.db, "jobs", "show", job_id)
        by_prefix = client.get(f"/api/jobs/{history.done[:-2]}").json()
        assert by_prefix["id"] == history.done
        assert client.get("/api/jobs/j-none").status_code == 404
        bad = client.get("/api/jobs?status=nonsense")
        assert bad.status_code == 400 and "unknown job status" in bad.json()["error"]
        assert client.get("/api/jobs?limit=0").status_code == 400


# -- secrets -----------------------------------------------------------------------------------


def _every_answer(server: Served, history: History) -> list[httpx.Response]:
    answers: list[httpx.Response] = []
    paths = ["/", "/?status=running", "/api/jobs", "/assets/report.css", "/static/dashboard.js",
             "/static/dashboard.css", "/login", "/nowhere"]  # fmt: skip
    for job_id in (history.done, history.running, history.plan):
        paths += [f"/jobs/{job_id}", f"/jobs/{job_id}/report", f"/api/jobs/{job_id}"]
    with sign_in(server, "alice") as alice:
        answers += [alice.get(path) for path in paths]
        answers.append(alice.post(f"/jobs/{history.plan}/approve", data={"comment": "mine"}))
    with httpx.Client(base_url=server.url, timeout=30) as anonymous:
        answers += [anonymous.get(path) for path in paths]
        answers.append(anonymous.post("/login", data={"token": "no", "next": "//evil.example"}))
        answers.append(anonymous.get("/api/jobs", headers={"Authorization": "Bearer wrong"}))
    with httpx.Client(base_url=server.url, headers=bearer("bob"), timeout=30) as script:
        answers += [script.get(path) for path in paths]
        answers.append(script.post(f"/jobs/{history.plan}/approve", data={"comment": "ok"}))
    return answers


def test_no_answer_and_no_log_line_carries_a_secret(server: Served, history: History) -> None:
    answers = _every_answer(server, history)
    assert {a.status_code for a in answers} >= {200, 401, 403, 404}
    secrets = [*TOKENS.values(), BARE_TOKEN, *AWS_SECRETS.values()]
    for answer in answers:
        shown = answer.text + json.dumps(dict(answer.headers))
        for secret in secrets:
            assert secret not in shown, (answer.request.url, answer.status_code)
        assert "Traceback" not in answer.text
    server.stop()
    logs = server.output()
    assert "GET /api/jobs" in logs  # the access log is on, and says nothing more
    for secret in secrets:
        assert secret not in logs


@pytest.mark.parametrize("path", ["/", "/login", "/static/dashboard.js", "/api/jobs"])
def test_every_response_carries_the_security_headers(open_server: Served, path: str) -> None:
    answer = httpx.get(open_server.url + path, timeout=30)
    assert answer.status_code == 200 or path == "/login"
    csp = answer.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    for name, value in SECURITY_HEADERS.items():
        assert answer.headers[name] == value
