"""The schema, as SQLAlchemy Core tables. Alembic migrations must produce exactly this."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("parent_id", sa.String(32), sa.ForeignKey("jobs.id"), nullable=True),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("targets", sa.JSON, nullable=False),
    sa.Column("options", sa.JSON, nullable=False),
    sa.Column("region", sa.String(32), nullable=False),  # the first (or only) region
    # every region of a multi-region job (JSON columns: Python None is SQL NULL)
    sa.Column("regions", sa.JSON(none_as_null=True), nullable=True),
    sa.Column("profile", sa.String(128), nullable=True),
    sa.Column("endpoint_url", sa.String(512), nullable=True),
    sa.Column("message", sa.Text, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("planned_at", sa.Float, nullable=True),  # set once every item is recorded
    sa.Column("started_at", sa.Float, nullable=True),
    sa.Column("finished_at", sa.Float, nullable=True),
    sa.Column("lease_owner", sa.String(128), nullable=True),
    sa.Column("lease_expires_at", sa.Float, nullable=True),
    sa.Column("started_by", sa.String(128), nullable=True),  # OS user who created the job
    sa.Column("started_host", sa.String(255), nullable=True),  # host it was created on
    sa.Column("caller_arn", sa.String(2048), nullable=True),  # AWS caller identity (STS)
    # account ids of a multi-account job
    sa.Column("accounts", sa.JSON(none_as_null=True), nullable=True),
    # role_name, role_arn_template, external_id
    sa.Column("assume", sa.JSON(none_as_null=True), nullable=True),
    # the two-person rule: a plan that needs an approval, and who gave it, when and why
    sa.Column("require_approval", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("approved_by", sa.String(128), nullable=True),
    sa.Column("approved_at", sa.Float, nullable=True),
    sa.Column("approval_comment", sa.Text, nullable=True),
    # what was told of the job's ends: [{"target" (shown without secrets), "ok", "attempts",
    # "error", "at", "status"}, ...]
    sa.Column("notifications", sa.JSON(none_as_null=True), nullable=True),
    # a job waiting outside its maintenance windows continues then
    sa.Column("next_window_at", sa.Float, nullable=True),
    sa.Index("ix_jobs_created_at", "created_at"),
    sa.Index("ix_jobs_status_created_at", "status", "created_at"),
    sa.Index("ix_jobs_started_by_created_at", "started_by", "created_at"),
)

items = sa.Table(
    "items",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "job_id", sa.String(32), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("workspace_id", sa.String(80), nullable=False),
    sa.Column("region", sa.String(32), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("seen_state", sa.String(32), nullable=True),  # the WorkSpace's state at plan time
    sa.Column("last_state", sa.String(32), nullable=True),  # the last state observed since
    sa.Column("user_name", sa.String(80), nullable=True),
    sa.Column("directory_id", sa.String(80), nullable=True),
    sa.Column("bundle_id", sa.String(80), nullable=True),
    sa.Column("reason", sa.Text, nullable=True),  # why skipped / in doubt
    sa.Column("error_code", sa.String(80), nullable=True),
    sa.Column("error_message", sa.Text, nullable=True),
    sa.Column("result", sa.String(80), nullable=True),  # e.g. a migrated WorkSpace's new id
    sa.Column("submitted_at", sa.Float, nullable=True),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("account", sa.String(12), nullable=True),  # None: the connection's own account
    sa.UniqueConstraint("job_id", "workspace_id", name="uq_items_job_workspace"),
    sa.Index("ix_items_job_state", "job_id", "state"),
    sa.Index("ix_items_job_region_state", "job_id", "region", "state"),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "job_id", sa.String(32), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("region", sa.String(32), nullable=False),
    sa.Column("operation", sa.String(64), nullable=False),
    sa.Column("workspace_ids", sa.Text, nullable=False),  # space-separated
    sa.Column("outcome", sa.String(16), nullable=False),  # ok | partial | error
    sa.Column("error_code", sa.String(80), nullable=True),
    sa.Column("request_id", sa.String(80), nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("duration_ms", sa.Integer, nullable=False),
    sa.Index("ix_events_job_at", "job_id", "at"),
)

#: Runners sharing one API quota (scope "region" or "account/region"): each live holder takes
#: its share of the scope's rate until ``expires_at`` (renewed while it runs).
quota_holders = sa.Table(
    "quota_holders",
    metadata,
    sa.Column("scope", sa.String(256), nullable=False),
    sa.Column("holder", sa.String(128), nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.PrimaryKeyConstraint("scope", "holder"),
)

#: The steps of the items of a job of several actions (a recipe): one row per item and rung,
#: open (outcome NULL) while the item works on it (see ``fleetops.records.StepRecord``).
item_steps = sa.Table(
    "item_steps",
    metadata,
    sa.Column(
        "item_id", sa.Integer, sa.ForeignKey("items.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column(
        "job_id", sa.String(32), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("rung", sa.Integer, nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=True),  # NULL: the item's current step
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float, nullable=True),
    sa.Column("error_code", sa.String(80), nullable=True),
    sa.Column("error_message", sa.Text, nullable=True),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("last_state", sa.String(32), nullable=True),
    sa.PrimaryKeyConstraint("item_id", "rung"),
    sa.Index("ix_item_steps_job", "job_id", "item_id"),
)


#: Recurring jobs: a cron in a time zone, and the job each slot starts (resolved at ``schedule
#: add``: action, params, targets, options, regions...). ``cursor``: every slot up to it has
#: been handled (started or missed).
schedules = sa.Table(
    "schedules",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("cron", sa.String(128), nullable=False),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("catch_up", sa.Float, nullable=False),  # seconds
    sa.Column("job", sa.JSON, nullable=False),
    sa.Column("source", sa.String(1024), nullable=True),  # the job file, as given at add time
    sa.Column("paused", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("cursor", sa.Float, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("created_by", sa.String(128), nullable=True),
    sa.Column("last_job_id", sa.String(32), nullable=True),
)

#: One row per slot of a schedule that was handled: its job, or ``missed``. The primary key is
#: what makes a slot one job however many workers and ``run-due`` see it at once.
schedule_slots = sa.Table(
    "schedule_slots",
    metadata,
    sa.Column(
        "schedule",
        sa.String(64),
        sa.ForeignKey("schedules.name", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("slot_at", sa.Float, nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),  # started | missed
    sa.Column("job_id", sa.String(32), nullable=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.PrimaryKeyConstraint("schedule", "slot_at"),
)
