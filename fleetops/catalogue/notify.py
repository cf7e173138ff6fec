"""Where a job's end is announced: ``--notify`` targets, checked and shown without secrets.

A target is an ``https://`` or ``http://`` webhook URL (Slack, Teams, any receiver of a JSON
POST), or ``sns:arn:aws:sns:REGION:ACCOUNT:TOPIC`` (published through SNS). Anything else is a
one-line :class:`UsageError` before anything is written.

A webhook URL often *is* the secret (Slack's and Teams' carry their token in the path), and a
URL may carry userinfo or a query with a key: :func:`shown` gives what logs, records and
``jobs show`` may print — the scheme and host, nothing after — so no secret leaves the
job's options. Pure functions.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from fleetops.errors import UsageError
from fleetops.records import shown_target

__all__ = ["SNS_PREFIX", "check_target", "is_sns", "shown", "sns_arn", "sns_region"]

SNS_PREFIX = "sns:"
_SNS_ARN = re.compile(
    r"^arn:aws(?:-[a-z]+)*:sns:(?P<region>[a-z]{2}(?:-[a-z]+)+-\d):\d{12}:[A-Za-z0-9_-]{1,256}"
    r"(?:\.fifo)?$"
)


def is_sns(target: str) -> bool:
    return target.startswith(SNS_PREFIX)


def sns_arn(target: str) -> str:
    """The topic ARN of an ``sns:`` target."""
    return target[len(SNS_PREFIX) :]


def sns_region(target: str) -> str:
    """The region an SNS topic lives in (read from its ARN)."""
    match = _SNS_ARN.match(sns_arn(target))
    if match is None:
        raise UsageError(f"--notify {shown(target)!r} is not an SNS topic ARN")
    return match.group("region")


def check_target(target: str) -> str:
    """``target`` if fleetops can notify it, else a :class:`UsageError` (one line)."""
    text = target.strip()
    if is_sns(text):
        if _SNS_ARN.match(sns_arn(text)) is None:
            raise UsageError(
                f"--notify {text!r}: not an SNS topic ARN (sns:arn:aws:sns:REGION:ACCOUNT:TOPIC)"
            )
        return text
    refused = UsageError(
        f"--notify {shown(text)!r}: give an http(s):// webhook URL or "
        "sns:arn:aws:sns:REGION:ACCOUNT:TOPIC"
    )
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018  (a port that is not a number raises here)
    except ValueError:
        raise refused from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise refused
    return text


def shown(target: str) -> str:
    """``target`` as it may be printed: an SNS ARN as is; a URL as its scheme and host only
    (``https://hooks.slack.com/…``): no userinfo, path token or query."""
    return shown_target(target)
