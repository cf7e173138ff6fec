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
  serialised body: see :func:`fleetops.aws.fastparse.is_plain`), and signing is SigV4, done
  by botocore's own ``SigV4Auth`` (no signer chain, no events);
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

import json
import logging
from typing import Any
from urllib.parse import urlsplit

import botocore.auth
from botocore.awsrequest import AWSPreparedRequest, AWSRequest
from botocore.exceptions import BotoCoreError, NoCredentialsError
from botocore.validate import validate_parameters

from fleetops.aws.fastparse import is_plain, parse_plain_body

__all__ = ["SigV4", "Wire"]

log = logging.getLogger(__name__)

class SigV4:
    """Signature Version 4 of a POST to one endpoint, by botocore's own signer
    (``botocore.auth.SigV4Auth``): the request is signed as botocore signs it, with the
    signing region and name the endpoint's rule set gave."""

    def __init__(self, url: str, region: str, service: str) -> None:
        self.url = url
        self.region = region
        self.service = service

    def headers(
        self, *, target: str, content_type: str, body: bytes, credentials: Any
    ) -> dict[str, str]:
        """The request's headers, ``X-Amz-Date`` and ``Authorization`` included (and
        ``X-Amz-Security-Token`` with temporary credentials)."""
        request = AWSRequest(
            method="POST",
            url=self.url,
            headers={"Content-Type": content_type, "X-Amz-Target": target},
            data=body,
        )
        botocore.auth.SigV4Auth(credentials, self.service, self.region).add_auth(request)
        return dict(request.headers.items())


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
            url=f"{parts.scheme}://{parts.netloc}/",
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
            credentials=frozen,
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
