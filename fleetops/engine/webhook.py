"""The webhook edge: one HTTP POST of a JSON document (aiohttp).

A 2xx answer is delivered; anything else (a refused connection, a time-out, 3xx, 4xx, 5xx) is a
:class:`fleetops.aws.retry.DeliveryError` whose reason names the status or the kind of failure,
never the URL (a webhook URL often carries its token). Redirects are not followed: a receiver
that moved is an error to fix, not a place to send the document blindly.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import aiohttp

from fleetops.aws.retry import DeliveryError

__all__ = ["post_json"]

#: Seconds a receiver has to answer one POST.
TIMEOUT = 10.0


async def post_json(url: str, document: Mapping[str, Any], *, timeout: float = TIMEOUT) -> int:
    """POST ``document`` to ``url``; the HTTP status of a 2xx answer."""
    body = json.dumps(document).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "fleetops"}
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
            session.post(url, data=body, headers=headers, allow_redirects=False) as answer,
        ):
            await answer.read()
            status = answer.status
    except TimeoutError as exc:
        raise DeliveryError(f"no answer within {timeout:g} s") from exc
    except aiohttp.ClientConnectorError as exc:
        raise DeliveryError(f"cannot connect ({exc.os_error.strerror or 'refused'})") from exc
    except aiohttp.ClientError as exc:
        raise DeliveryError(f"HTTP failure ({type(exc).__name__})") from exc
    if not 200 <= status < 300:
        raise DeliveryError(f"HTTP {status}")
    return status
