"""SNS at the AWS edge: publish one message to a topic, for a job's notification.

The credentials are the caller's own, found by botocore's chain for the job's profile (as for
the WorkSpaces client: :func:`fleetops.aws.client.caller_session`); the region is the topic's
(from its ARN); the endpoint is botocore's own resolution, so ``AWS_ENDPOINT_URL_SNS`` (and
``AWS_ENDPOINT_URL``) are honoured as botocore does. A failure is a
:class:`fleetops.aws.retry.DeliveryError` whose reason is the AWS error code (or the kind of
connection failure): never the message, never a credential.
"""

from __future__ import annotations

import os

import botocore.exceptions
from aiobotocore.config import AioConfig

from fleetops.aws.client import Connection, caller_session
from fleetops.aws.retry import DeliveryError
from fleetops.errors import ConfigurationError

__all__ = ["publish"]

#: One try is one request: the notifier's own retries decide how often it is sent.
_CONFIG = AioConfig(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=10)


async def publish(
    topic_arn: str, region: str, message: str, *, subject: str, profile: str | None
) -> str:
    """Publish ``message`` to ``topic_arn``; the MessageId SNS gave it."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL_SNS") or os.environ.get("AWS_ENDPOINT_URL")
    try:
        session = await caller_session(Connection(region, profile, endpoint or None))
    except ConfigurationError as exc:
        raise DeliveryError(str(exc)) from exc
    try:
        async with session.create_client("sns", region_name=region, config=_CONFIG) as client:
            answer = await client.publish(TopicArn=topic_arn, Message=message, Subject=subject)
    except botocore.exceptions.ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "ClientError")
        raise DeliveryError(f"SNS {code}") from exc
    except botocore.exceptions.BotoCoreError as exc:
        raise DeliveryError(f"SNS unreachable ({type(exc).__name__})") from exc
    return str(answer.get("MessageId", ""))
