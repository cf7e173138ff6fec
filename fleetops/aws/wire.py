"""WorkSpaces calls sent straight to the wire: the request botocore would send, built once per
operation instead of once per call.

botocore prepares every request by emitting a dozen events to handlers, validating the
parameters against the model, serialising them by walking the input shape, resolving the
endpoint from its rule set, building a user agent string and signing through a chain of objects;
for the small JSON requests fleetops makes by the thousand that costs more than the HTTP
exchange itself. :class:`Wire` does the same work the short way, for the operations where it
is the same request:

* the protocol is AWS JSON 1.1 (``X-Amz-Target``), the input has no timestamp, blob, renamed
  member, idempotency token or streaming part (so ``json.dumps`` of the parameters *is* the
  serialised body: see :func:`fleetops.aws.fastparse.is_plain`), and signing is SigV4;
* the endpoint is resolved by the client's own rule set, once per operation (WorkSpaces has no
  per-call endpoint parameters), with the signing region and name it says;
* parameters are still validated by botocore's validator; the credentials are the client's own
  (refreshed by botocore when they expire); the HTTP exchange is the client's own session
  (pool, time-outs, proxies, TLS settings, and botocore's exceptions for its failures);
* the answer is parsed by the client's parser (:mod:`fleetops.aws.fastparse`): a success by its
  plain walk, an error as botocore parses it, raised as the client's modelled ``ClientError``.

Any other operation, or a client that does not have the parts this needs, goes through botocore
as usual (:meth:`Wire.attach` answers None).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import botocore.auth
from botocore.awsrequest import AWSPreparedRequest
from botocore.exceptions import BotoCoreError, NoCredentialsError
from botocore.validate import validate_parameters

from fleetops.aws.fastparse import is_plain, parse_plain_body

__all__ = ["SigV4", "Wire"]

log = logging.getLogger(__name__)

_ALGORITHM = "AWS4-HMAC-SHA256"


class SigV4:
    """Signature Version 4 of a POST to one endpoint, as ``botocore.auth.SigV4Auth`` computes
    it: the signed headers are ``content-type``, ``host``, ``x-amz-date``,
    ``x-amz-security-token`` (with a session token) and ``x-amz-target``; the payload is hashed.
    The signing key is derived once per day and secret, not once per request."""

    def __init__(self, host: str, path: str, region: str, service: str) -> None:
        self.host = host
        self.path = path
        self.region = region
        self.service = service
        self._key: tuple[str, str, bytes] | None = None  # (secret, date, key)

    def _signing_key(self, secret: str, day: str) -> bytes:
        known = self._key
        if known is not None and known[0] == secret and known[1] == day:
            return known[2]
        key = hmac.new(f"AWS4{secret}".encode(), day.encode(), hashlib.sha256).digest()
        for part in (self.region, self.service, "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        self._key = (secret, day, key)
        return key

    def headers(
        self,
        *,
        target: str,
        content_type: str,
        body: bytes,
        access_key: str,
        secret_key: str,
        token: str | None,
        now: datetime,
    ) -> dict[str, str]:
        """The request's headers, ``Authorization`` included."""
        stamp = now.strftime("%Y%m%dT%H%M%SZ")
        day = stamp[:8]
        signed: list[tuple[str, str]] = [
            ("content-type", content_type),
            ("host", self.host),
            ("x-amz-date", stamp),
        ]
        if token:
            signed.append(("x-amz-security-token", token))
        signed.append(("x-amz-target", target))
        names = ";".join(name for name, _ in signed)
        canonical = "\n".join(
            (
                "POST",
                self.path,
                "",
                "\n".join(f"{name}:{' '.join(value.split())}" for name, value in signed) + "\n",
                names,
                hashlib.sha256(body).hexdigest(),
            )
        )
        scope = f"{day}/{self.region}/{self.service}/aws4_request"
        to_sign = "\n".join(
            (_ALGORITHM, stamp, scope, hashlib.sha256(canonical.encode()).hexdigest())
        )
        signature = hmac.new(
            self._signing_key(secret_key, day), to_sign.encode(), hashlib.sha256
        ).hexdigest()
        headers = {
            "Content-Type": content_type,
            "Host": self.host,
            "X-Amz-Date": stamp,
            "X-Amz-Target": target,
            "Authorization": (
                f"{_ALGORITHM} Credential={access_key}/{scope}, SignedHeaders={names}, "
                f"Signature={signature}"
            ),
        }
        if token:
            headers["X-Amz-Security-Token"] = token
        return headers


class _Route:
    """One operation's request, worked out once: its model, target header and signer."""

    def __init__(self, operation: Any, url: str, signer: SigV4, target: str) -> None:
        self.operation = operation
        self.url = url
        self.signer = signer
        self.target = target


class Wire:
    """The JSON operations of one aiobotocore WorkSpaces client, sent without botocore's
    per-request machinery (see the module's docstring). ``await wire.call(op, params)`` answers
    what ``await client.<op>(**params)`` would, and raises what it would."""

    def __init__(self, client: Any) -> None:
        self._client = client
        model = client.meta.service_model
        self._model = model
        self._content_type = f"application/x-amz-json-{model.metadata.get('jsonVersion', '1.0')}"
        self._target_prefix = str(model.metadata["targetPrefix"])
        self._http = client._endpoint.http_session
        self._request_signer = client._request_signer
        # the parser the client's endpoint makes for each answer (fastparse's, on sessions made
        # by fleetops), made once
        self._parser = client._endpoint._response_parser_factory.create_parser(model.protocol)
        self._user_agent = str(client._user_agent_creator.to_string())
        self._routes: dict[str, _Route | None] = {}

    @classmethod
    def attach(cls, client: Any) -> Wire | None:
        """A wire for ``client``, or None when it is not a client this can serve (another
        protocol, a signer that is not SigV4, or an aiobotocore without the parts used)."""
        try:
            model = client.meta.service_model
            if model.protocol != "json" or "targetPrefix" not in model.metadata:
                return None
            if getattr(client._request_signer, "_signature_version", None) != "v4":
                return None
            return cls(client)
        except (AttributeError, KeyError, TypeError):
            return None

    async def route(self, operation: str) -> _Route | None:
        """The operation's route (None: botocore's path serves it)."""
        if operation in self._routes:
            return self._routes[operation]
        route = None
        try:
            route = await self._route(operation)
        except (AttributeError, KeyError, TypeError, ValueError, BotoCoreError) as exc:
            # botocore's own path meets the same trouble, and reports it as it always did
            log.debug("%s goes through botocore: %s", operation, exc)
        self._routes[operation] = route
        return route

    async def _route(self, operation: str) -> _Route | None:
        om = self._model.operation_model(operation)
        shape = om.input_shape
        if shape is not None and (
            not is_plain(shape)
            or any(m.metadata.get("idempotencyToken") for m in shape.members.values())
        ):
            return None
        if (
            om.has_streaming_input
            or om.has_streaming_output
            or om.http_checksum
            or om.request_compression
            or om.endpoint_discovery
            or om.endpoint
            or om.http.get("requestUri", "/") != "/"
        ):
            return None
        if om.auth_type not in (None, "v4") and om.resolved_auth_type not in (None, "v4"):
            return None
        context: dict[str, Any] = {"client_region": self._client.meta.region_name}
        url, extra_headers, _ = await self._client._resolve_endpoint_ruleset(om, {}, context)
        if extra_headers or context.get("auth_type") not in (None, "v4"):
            return None
        parts = urlsplit(url)
        if parts.query or parts.path not in ("", "/"):
            return None
        signing = context.get("signing") or {}
        signer = SigV4(
            host=botocore.auth._host_from_url(url),
            path="/",
            region=str(signing.get("region") or self._request_signer._region_name),
            service=str(signing.get("signing_name") or self._request_signer._signing_name),
        )
        target = f"{self._target_prefix}.{om.name}"
        return _Route(om, f"{parts.scheme}://{parts.netloc}/", signer, target)

    async def _credentials(self) -> Any:
        credentials = self._request_signer._credentials
        if credentials is None:
            raise NoCredentialsError()
        frozen = credentials.get_frozen_credentials()
        if hasattr(frozen, "__await__"):
            frozen = await frozen
        return frozen

    async def call(self, route: _Route, params: dict[str, Any]) -> dict[str, Any]:
        om = route.operation
        if om.input_shape is not None:
            validate_parameters(params, om.input_shape)
        body = json.dumps(params).encode() if params else b"{}"
        frozen = await self._credentials()
        headers = route.signer.headers(
            target=route.target,
            content_type=self._content_type,
            body=body,
            access_key=frozen.access_key,
            secret_key=frozen.secret_key,
            token=frozen.token,
            now=datetime.now(UTC),
        )
        headers["User-Agent"] = self._user_agent
        request = AWSPreparedRequest("POST", route.url, headers, body, stream_output=False)
        http = await self._http.send(request)
        content = await http.content
        status = int(http.status_code)
        if status < 300:
            parsed = parse_plain_body(self._parser, om.output_shape, content)
            parsed["ResponseMetadata"] = {
                "RequestId": http.headers.get("x-amzn-requestid"),
                "HTTPStatusCode": status,
                "HTTPHeaders": http.headers,
                "RetryAttempts": 0,
            }
            return parsed
        response = {
            "body": content,
            "headers": http.headers,
            "status_code": status,
            "context": {"operation_name": om.name},
        }
        parsed = await self._parser.parse(response, om.output_shape)
        code = parsed.get("Error", {}).get("Code")
        raise self._client.exceptions.from_code(code)(parsed, om.name)
