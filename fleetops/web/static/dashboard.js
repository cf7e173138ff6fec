// The dashboard's live figures: the jobs list and a job page ask the JSON API again every few
// seconds and redraw what changed, without reloading the page. Text is always set with
// textContent (never parsed as HTML), except the report's sections, which the server renders
// with every value escaped and which are parsed inertly (DOMParser runs no script).
"use strict";

(function () {
  const DONE = ["succeeded", "failed", "skipped", "in_doubt", "cancelled"];
  const ACTIVE = ["running", "queued", "waiting"];
  const body = document.body;
  const pollMs = Number(body.dataset.pollMs || 0);

  function moment(text) {
    // 2026-12-04T19:24:27.862Z shown as 2026-12-04 19:24:27Z (as the server's template does)
    return text ? text.slice(0, 19).replace("T", " ") + "Z" : "";
  }

  function progressOf(job) {
    const done = DONE.reduce((sum, state) => sum + (job.counts[state] || 0), 0);
    return [done, job.total];
  }

  function cell(text, className) {
    const td = document.createElement("td");
    if (className) td.className = className;
    if (text instanceof Node) td.appendChild(text);
    else td.textContent = text == null ? "" : String(text);
    return td;
  }

  function progressCell(job) {
    const [done, total] = progressOf(job);
    const wrap = document.createDocumentFragment();
    const bar = document.createElement("progress");
    bar.max = total || 1;
    bar.value = done;
    const frac = document.createElement("span");
    frac.className = "frac";
    frac.dataset.progress = "";
    frac.textContent = done + "/" + total;
    wrap.append(bar, frac);
    return wrap;
  }

  function statusCell(job) {
    const wrap = document.createDocumentFragment();
    const status = document.createElement("span");
    status.className = "status status-" + job.status;
    status.textContent = job.status;
    wrap.append(status);
    if (job.approval && job.approval.required && !job.approval.approved_by) {
      const badge = document.createElement("span");
      badge.className = "badge";
      badge.textContent = "awaits approval";
      wrap.append(" ", badge);
    }
    return wrap;
  }

  function jobRow(job) {
    const tr = document.createElement("tr");
    tr.dataset.job = job.id;
    tr.dataset.status = job.status;
    const link = document.createElement("a");
    link.href = "/jobs/" + encodeURIComponent(job.id);
    link.textContent = job.id;
    tr.append(
      cell(link),
      cell(job.action),
      cell(statusCell(job)),
      cell(progressCell(job)),
      cell(job.counts.succeeded, "n"),
      cell(job.counts.failed, "n"),
      cell(job.counts.in_doubt, "n"),
      cell(job.started_by),
      cell(moment(job.created_at))
    );
    return tr;
  }

  function markLive(ok) {
    const live = document.querySelector("[data-live]");
    if (!live) return;
    live.classList.toggle("stale", !ok);
    live.textContent = ok ? "live · " + new Date().toLocaleTimeString() : "not updating";
  }

  async function fetchJson(url) {
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(url + ": " + response.status);
    return response.json();
  }

  async function refreshList() {
    const tbody = document.querySelector("[data-jobs]");
    try {
      const jobs = await fetchJson("/api/jobs" + window.location.search);
      const rows = jobs.map(jobRow);
      if (!rows.length) {
        const tr = document.createElement("tr");
        tr.className = "empty";
        const td = cell("No job matches.");
        td.colSpan = 9;
        tr.append(td);
        rows.push(tr);
      }
      tbody.replaceChildren(...rows);
      markLive(true);
    } catch (error) {
      markLive(false);
    }
  }

  async function refreshReport(jobId) {
    const response = await fetch("/jobs/" + encodeURIComponent(jobId) + "/report");
    if (!response.ok) return;
    const parsed = new DOMParser().parseFromString(await response.text(), "text/html");
    const target = document.querySelector("[data-report]");
    if (target) target.replaceChildren(...Array.from(parsed.body.childNodes));
  }

  async function refreshJob() {
    const jobId = body.dataset.jobId;
    const before = body.dataset.status;
    let job;
    try {
      job = await fetchJson("/api/jobs/" + encodeURIComponent(jobId));
    } catch (error) {
      return;
    }
    const status = document.querySelector('[data-field="status"]');
    if (status) {
      status.textContent = job.status;
      status.className = "status status-" + job.status;
    }
    for (const [state, n] of Object.entries(job.counts)) {
      const el = document.querySelector('[data-count-of="' + state + '"]');
      if (el) el.textContent = String(n);
    }
    const [done, total] = progressOf(job);
    const bar = document.querySelector('[data-field="progress"]');
    if (bar) {
      bar.max = total || 1;
      bar.value = done;
    }
    const frac = document.querySelector('[data-field="fraction"]');
    if (frac) frac.textContent = done + "/" + total;
    body.dataset.status = job.status;
    if (ACTIVE.includes(job.status) || ACTIVE.includes(before)) await refreshReport(jobId);
  }

  function every(ms, fn) {
    if (!ms) return;
    const tick = async () => {
      if (!document.hidden) await fn();
      window.setTimeout(tick, ms);
    };
    window.setTimeout(tick, ms);
  }

  if (body.dataset.page === "jobs") every(pollMs, refreshList);
  if (body.dataset.page === "job") every(pollMs, refreshJob);
})();
