"""STS as botocore speaks it: the AWS query protocol (form-encoded POST, ``Action=...``,
``Version=2011-06-15``) answered in XML, for AssumeRole and GetCallerIdentity.

Answers follow botocore's ``sts`` service model (``AssumeRoleResult`` / ``GetCallerIdentityResult``
wrappers, ``ResponseMetadata/RequestId``); errors are ``ErrorResponse`` documents with
``Type``, ``Code`` and ``Message``, which botocore turns into ``ClientError``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from xml.sax.saxutils import escape

from fleetops.sim._accounts import Account, AccountBook, Session

__all__ = ["StsError", "handle_sts", "is_sts_request"]

_NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"
_VERSION = "2011-06-15"
_ROLE_ARN_RE = re.compile(
    r"^arn:aws[a-z-]*:iam::(\d{12}):role/(?:[\w+=,.@-]+/)*([\w+=,.@-]{1,64})$"
)
_SESSION_NAME_RE = re.compile(r"^[\w+=,.@-]{2,64}$")
_EXTERNAL_ID_RE = re.compile(r"^[\w+=,.@:/-]{2,1224}$")
_DEFAULT_DURATION = 3600
_MAX_ROLE_DURATION = 3600  # a role's default MaxSessionDuration


class StsError(Exception):
    """An STS error answer."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.status = code, message, status


def is_sts_request(content_type: str, target: str) -> bool:
    """Whether a POST is a query-protocol request (STS) rather than a JSON one (WorkSpaces)."""
    return not target and content_type.startswith("application/x-www-form-urlencoded")


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _element(name: str, value: object) -> str:
    return f"<{name}>{escape(str(value))}</{name}>"


def _document(action: str, result: str, request_id: str) -> bytes:
    return (
        f'<{action}Response xmlns="{_NAMESPACE}">'
        f"<{action}Result>{result}</{action}Result>"
        f"<ResponseMetadata>{_element('RequestId', request_id)}</ResponseMetadata>"
        f"</{action}Response>"
    ).encode()


def error_document(error: StsError, request_id: str) -> bytes:
    kind = "Receiver" if error.status >= 500 else "Sender"
    return (
        f'<ErrorResponse xmlns="{_NAMESPACE}"><Error>{_element("Type", kind)}'
        f"{_element('Code', error.code)}{_element('Message', error.message)}</Error>"
        f"{_element('RequestId', request_id)}</ErrorResponse>"
    ).encode()


def _caller_arn(account: Account, session: Session | None, access_key: str | None) -> str:
    if session is not None:
        return session.arn
    # One IAM user per simulated account, whatever key it signs with: an ARN never carries the
    # access key id (it would end up in job records, and AWS's never does either).
    return f"arn:aws:iam::{account.account_id}:user/fleetops-sim"


def _assume_role(
    book: AccountBook,
    form: Mapping[str, str],
    caller: str,
    now: float,
) -> str:
    role_arn = form.get("RoleArn", "")
    name = form.get("RoleSessionName", "")
    if not role_arn or not name:
        missing = "roleArn" if not role_arn else "roleSessionName"
        raise StsError(
            "ValidationError",
            f"1 validation error detected: Value null at '{missing}' failed to satisfy "
            "constraint: Member must not be null",
        )
    match = _ROLE_ARN_RE.match(role_arn)
    if match is None:
        raise StsError("ValidationError", f"{role_arn} is invalid")
    if not _SESSION_NAME_RE.match(name):
        raise StsError(
            "ValidationError",
            f"1 validation error detected: Value '{name}' at 'roleSessionName' failed to satisfy "
            r"constraint: Member must satisfy regular expression pattern: [\w+=,.@-]*",
        )
    external_id = form.get("ExternalId")
    if external_id is not None and not _EXTERNAL_ID_RE.match(external_id):
        raise StsError("ValidationError", "The external id is not valid.")
    try:
        duration = int(form.get("DurationSeconds", _DEFAULT_DURATION))
    except ValueError:
        raise StsError("ValidationError", "DurationSeconds must be an integer.") from None
    if duration < 900:
        raise StsError(
            "ValidationError",
            f"1 validation error detected: Value '{duration}' at 'durationSeconds' failed to "
            "satisfy constraint: Member must have value greater than or equal to 900",
        )
    if duration > _MAX_ROLE_DURATION:
        raise StsError(
            "ValidationError",
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
        )
    account = book.accounts.get(match.group(1))
    denied = (
        account is None
        or account.deny_assume_role
        or (account.external_id is not None and external_id != account.external_id)
    )
    if denied or account is None:
        raise StsError(
            "AccessDenied",
            f"User: {caller} is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
            403,
        )
    session = book.issue(account, role_arn, name, now, duration)
    role_id = "AROA" + session.access_key[4:]
    return (
        "<Credentials>"
        + _element("AccessKeyId", session.access_key)
        + _element("SecretAccessKey", session.secret_key)
        + _element("SessionToken", session.token)
        + _element("Expiration", _iso(session.expires_at))
        + "</Credentials><AssumedRoleUser>"
        + _element("AssumedRoleId", f"{role_id}:{name}")
        + _element("Arn", session.arn)
        + "</AssumedRoleUser>"
        + _element("PackedPolicySize", 0)
    )


def handle_sts(
    book: AccountBook,
    form: Mapping[str, str],
    access_key: str | None,
    now: float,
    request_id: str,
) -> tuple[int, bytes]:
    """Serve one STS request signed with ``access_key``: (HTTP status, XML body)."""
    account, session = book.account_for(access_key)
    action = form.get("Action", "")
    try:
        if form.get("Version") != _VERSION:
            raise StsError(
                "InvalidAction",
                f"Could not find operation {action} for version "
                f"{form.get('Version', 'NO_VERSION_SPECIFIED')}",
            )
        if session is not None and (session.expired or now >= session.expires_at):
            raise StsError("ExpiredToken", "The security token included in the request is expired")
        account.sts_calls[action] += 1
        if action == "AssumeRole":
            result = _assume_role(book, form, _caller_arn(account, session, access_key), now)
        elif action == "GetCallerIdentity":
            result = (
                _element("Arn", _caller_arn(account, session, access_key))
                + _element("UserId", access_key or "anonymous")
                + _element("Account", account.account_id)
            )
        else:
            raise StsError(
                "InvalidAction", f"Could not find operation {action} for version {_VERSION}"
            )
    except StsError as error:
        return error.status, error_document(error, request_id)
    return 200, _document(action, result, request_id)
