"""Fleets across AWS accounts, as the user names them: which accounts (``--account``,
``--accounts-file``), which role to assume in each (``--role-name`` or
``--role-arn-template``, ``--external-id``) and the session name a job's role is assumed under.

Pure parsing and checking: every value is checked here, once, and a bad one is a one-line
:class:`~fleetops.errors.UsageError` naming the flag or the file's line. Nothing here calls AWS;
the roles are assumed by :mod:`fleetops.aws.roles`, which takes an :class:`AssumeSpec` as its
``RoleSpec``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleetops.errors import UsageError

__all__ = [
    "AssumeSpec",
    "accounts_from_flags",
    "merge_accounts",
    "parse_account_id",
    "read_accounts_file",
    "session_name",
]

_ACCOUNT_RE = re.compile(r"^\d{12}$")
_ROLE_NAME_RE = re.compile(r"^[\w+=,.@-]{1,64}$")
_ROLE_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/(?:[\w+=,.@-]+/)*[\w+=,.@-]{1,64}$")
_EXTERNAL_ID_RE = re.compile(r"^[\w+=,.@:/-]{2,1224}$")
_SESSION_NAME_BAD = re.compile(r"[^\w+=,.@-]")


def parse_account_id(text: str, where: str = "--account") -> str:
    """A 12-digit AWS account id, or a one-line :class:`UsageError` naming ``where``."""
    account = text.strip()
    if not _ACCOUNT_RE.match(account):
        raise UsageError(f"{where}: {text.strip()!r} is not an AWS account id (12 digits)")
    return account


def read_accounts_file(path: Path) -> list[str]:
    """Account ids from a file: one a line, blank lines and ``#`` comments ignored; a bad id
    names its line. Duplicates are kept once, in file order."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--accounts-file {path}: cannot read it ({exc})") from exc
    accounts: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        content = line.split("#", 1)[0].strip()
        if content:
            accounts.append(parse_account_id(content, f"{path}:{number}"))
    if not accounts:
        raise UsageError(f"--accounts-file {path}: no account id in it")
    return list(dict.fromkeys(accounts))


def merge_accounts(given: Iterable[str], from_file: Iterable[str] = ()) -> tuple[str, ...]:
    """``--account`` values and an accounts file's ids, checked, each once, in order."""
    accounts = [parse_account_id(a) for a in given] + list(from_file)
    return tuple(dict.fromkeys(accounts))


def accounts_from_flags(
    accounts: Iterable[str] = (),
    accounts_file: Path | str | None = None,
    role_name: str | None = None,
    role_arn_template: str | None = None,
    external_id: str | None = None,
) -> tuple[tuple[str, ...] | None, AssumeSpec | None]:
    """The accounts of a run and the role to assume in them, from ``--account``,
    ``--accounts-file``, ``--role-name``/``--role-arn-template`` and ``--external-id`` (or the
    same job-file fields): (None, None) for a job in the caller's own account."""
    listed = read_accounts_file(Path(accounts_file)) if accounts_file else []
    merged = merge_accounts(accounts, listed)
    role_given = bool(role_name or role_arn_template or external_id)
    if not merged:
        if role_given:
            raise UsageError(
                "--role-name/--role-arn-template/--external-id need accounts: "
                "--account ID or --accounts-file F"
            )
        return None, None
    spec = AssumeSpec(
        role_name=role_name or None,
        role_arn_template=role_arn_template or None,
        external_id=external_id or None,
    )
    return merged, spec


def session_name(job_id: str) -> str:
    """The RoleSessionName of a job: ``fleetops-<job id>`` (STS allows 2-64 of [\\w+=,.@-])."""
    return _SESSION_NAME_BAD.sub("-", f"fleetops-{job_id}")[:64]


@dataclass(frozen=True)
class AssumeSpec:
    """Which role to assume in each account: a role name, or an ARN template with
    ``{account}``; with the external id the role's trust policy asks for."""

    role_name: str | None = None
    role_arn_template: str | None = None
    external_id: str | None = None

    def __post_init__(self) -> None:
        if bool(self.role_name) == bool(self.role_arn_template):
            raise UsageError("accounts need --role-name NAME or --role-arn-template (one of them)")
        if self.role_name and not _ROLE_NAME_RE.match(self.role_name):
            raise UsageError(f"--role-name {self.role_name!r} is not an IAM role name")
        if self.role_arn_template:
            if "{account}" not in self.role_arn_template:
                raise UsageError(
                    "--role-arn-template must contain {account}, e.g. "
                    "'arn:aws:iam::{account}:role/FleetOps'"
                )
            try:
                example = self.role_arn_template.format(account="123456789012")
            except (KeyError, IndexError, ValueError):
                raise UsageError(
                    f"--role-arn-template {self.role_arn_template!r}: only {{account}} may be "
                    "filled in"
                ) from None
            if not _ROLE_ARN_RE.match(example):
                raise UsageError(
                    f"--role-arn-template {self.role_arn_template!r} does not make a role ARN "
                    "(arn:aws:iam::{account}:role/NAME)"
                )
        if self.external_id is not None and not _EXTERNAL_ID_RE.match(self.external_id):
            raise UsageError("--external-id must be 2-1224 characters of [\\w+=,.@:/-]")

    def role_arn(self, account: str) -> str:
        if self.role_arn_template:
            return self.role_arn_template.format(account=account)
        return f"arn:aws:iam::{account}:role/{self.role_name}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "role_name": self.role_name,
            "role_arn_template": self.role_arn_template,
            "external_id": self.external_id,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AssumeSpec:
        return cls(
            role_name=data.get("role_name"),
            role_arn_template=data.get("role_arn_template"),
            external_id=data.get("external_id"),
        )
