"""What a job is before it is recorded: :class:`JobSpec`, and building one from what a user
gave (flags, a job file, or both: flags override the file's fields).

Nothing here calls AWS or opens a database; a problem is a :class:`UsageError` raised before
anything is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fleetops.catalogue.actions import ACTIONS, get_action
from fleetops.catalogue.options import JobOptions, parse_waves
from fleetops.catalogue.targets import SELECTORS, Targets
from fleetops.errors import UsageError

if TYPE_CHECKING:
    from fleetops.aws.client import Connection
    from fleetops.catalogue.jobfile import JobFile

__all__ = ["SELECTORS", "JobSpec", "RunRequest", "Where", "build_spec", "is_job_file"]


@dataclass(frozen=True)
class Where:
    """Where AWS is called, as given: regions, a profile, endpoints (one, or one per region).
    Empty fields are resolved as botocore does (environment, config files)."""

    region: tuple[str, ...] = ()
    profile: str | None = None
    endpoint_url: tuple[str, ...] = ()
    account: tuple[str, ...] = ()  # other accounts, reached by assuming a role in each
    accounts_file: str | None = None
    role_name: str | None = None
    role_arn_template: str | None = None
    external_id: str | None = None

    def accounts(self) -> tuple[tuple[str, ...] | None, Any]:
        """The accounts given (None: the caller's own) and the role to assume in them."""
        from fleetops.catalogue.accounts import accounts_from_flags

        return accounts_from_flags(
            self.account,
            self.accounts_file,
            self.role_name,
            self.role_arn_template,
            self.external_id,
        )

    def connections(self) -> list[Connection]:
        """One connection per region; one endpoint serves all, or there is one per region."""
        from fleetops.aws.client import Connection

        regions, endpoints = list(self.region), list(self.endpoint_url)
        if len(set(regions)) != len(regions):
            raise UsageError("a --region is given twice")
        if len(endpoints) > 1 and len(endpoints) != len(regions):
            raise UsageError(
                f"{len(endpoints)} --endpoint-url for {len(regions)} --region: give one "
                "endpoint, or one per region in the same order"
            )
        if not regions:
            return [Connection.resolve(None, self.profile, endpoints[0] if endpoints else None)]
        return [
            Connection.resolve(
                region,
                self.profile,
                endpoints[index] if len(endpoints) > 1 else (endpoints[0] if endpoints else None),
            )
            for index, region in enumerate(regions)
        ]

    def over(self, job: JobFile) -> Where:
        """These flags, with the job file's fields where a flag was not given."""
        # Accounts given as flags replace the file's (list and file alike); so does a role.
        accounts_flag = bool(self.account or self.accounts_file)
        role_flag = bool(self.role_name or self.role_arn_template)
        accounts_file = job.accounts_file and str(job.resolve_path(job.accounts_file))
        return Where(
            region=self.region or tuple(job.regions()),
            profile=self.profile or job.profile,
            endpoint_url=self.endpoint_url or ((job.endpoint_url,) if job.endpoint_url else ()),
            account=self.account if accounts_flag else tuple(job.accounts),
            accounts_file=self.accounts_file if accounts_flag else accounts_file or None,
            role_name=self.role_name if role_flag else job.role_name,
            role_arn_template=self.role_arn_template if role_flag else job.role_arn_template,
            external_id=self.external_id or job.external_id,
        )


@dataclass(frozen=True)
class JobSpec:
    """What to do (action + params), to which WorkSpaces (targets), how (options), where."""

    action: str
    targets: Targets
    connection: Connection
    options: JobOptions = field(default_factory=JobOptions)
    params: Mapping[str, Any] = field(default_factory=dict)
    more_regions: tuple[Connection, ...] = ()  # a job spanning regions: the others
    accounts: tuple[str, ...] | None = None  # other accounts (None: the caller's own)
    assume: Any = None  # fleetops.catalogue.accounts.AssumeSpec: the role to assume in each account
    require_approval: bool = False  # the two-person rule: its plan waits for another's approval

    @property
    def connections(self) -> tuple[Connection, ...]:
        return (self.connection, *self.more_regions)

    def __post_init__(self) -> None:
        # A clear UsageError for an unknown action or unusable parameters (a create CSV with a
        # bad line), before anything is written.
        action = get_action(self.action)
        action.validate_params(self.params)
        refused = action.refused_options(bool(self.options.waves), self.options.no_wait)
        if refused is not None:
            raise UsageError(refused)


@dataclass(frozen=True)
class RunRequest:
    """A run as asked for: an action name or a job file, and the values given as flags (keys of
    the :data:`SELECTORS`, of the catalogue's params, and of :class:`JobOptions`; None or empty
    means not given). A flag that is both a selector and a parameter (``--running-mode``) is a
    parameter of an action that takes it, a selector otherwise. ``params`` holds the flags;
    ``argument`` the word after the action name, if any."""

    action: str
    selectors: Mapping[str, Any] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    where: Where = field(default_factory=Where)
    argument: str | None = None  # the word after the action (``maintenance on``)
    require_approval: bool = False  # --require-approval (or the job file's require_approval)


def is_job_file(text: str) -> bool:
    """Is ``run``'s first argument a job file rather than an action name?"""
    if text in ACTIONS:
        return False
    return text.endswith((".yaml", ".yml")) or ("/" in text and Path(text).is_file())


def _given(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v not in (None, (), [], "")}


def _override_targets(targets: Targets, flags: Mapping[str, Any]) -> Targets:
    """A job file's selectors with those given as flags replacing the file's."""
    merged = {**targets.as_raw(), **flags}
    if "ids_file" in flags and "workspace_ids" not in flags:
        merged.pop("workspace_ids", None)  # the flag's file replaces the file's ids
    return Targets.build(**merged)


def build_spec(request: RunRequest) -> JobSpec:
    """The job a run request describes, validated (nothing is written, nothing called)."""
    options = _given(request.options)
    if "waves" in options:
        options["waves"] = parse_waves(options["waves"])
    job = None
    if is_job_file(request.action):
        from fleetops.catalogue.jobfile import load_job_file

        job = load_job_file(Path(request.action))
        action = get_action(job.action)
    else:
        action = get_action(request.action)
    selectors = _given(request.selectors)
    raw_params = _given(request.params)
    for key in set(selectors) & {p.key for p in action.params}:  # one flag, two meanings:
        raw_params.setdefault(key, selectors.pop(key))  # the action that takes it decides
    for key in set(selectors) & set(raw_params):
        del raw_params[key]
    if request.argument is not None:
        positional = [p for p in action.params if p.positional]
        if not positional:
            takers = [
                f"{name} takes {p.hint}"
                for name, spec in ACTIONS.items()
                for p in spec.params
                if p.positional
            ]
            raise UsageError(f"unexpected argument {request.argument!r} (only {', '.join(takers)})")
        raw_params[positional[0].key] = request.argument
    if job is not None:
        targets = job.to_targets()
        if selectors:
            targets = _override_targets(targets, selectors)
        params = {**job.to_params(), **action.params_from(raw_params, partial=True)}
        job_options = job.to_options(options)
        where = request.where.over(job)
    else:
        targets = Targets.build(**selectors)
        params = action.params_from(raw_params)
        job_options = JobOptions(**options)
        where = request.where
    targets = action.targets_for(targets, params)
    connections = where.connections()
    accounts, assume = where.accounts()
    return JobSpec(
        action=action.name,
        targets=targets,
        connection=connections[0],
        more_regions=tuple(connections[1:]),
        options=job_options,
        params=params,
        accounts=accounts,
        assume=assume,
        require_approval=request.require_approval or bool(job and job.require_approval),
    )
