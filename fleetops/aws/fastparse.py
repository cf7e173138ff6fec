"""A cheaper parse of WorkSpaces's JSON responses, for the same result.

botocore turns a JSON response into Python by walking the output shape member by member: for a
page of 25 WorkSpaces that is hundreds of handler calls, though ``json.loads`` has already built
exactly the values most of them return (strings, numbers, booleans, and lists, maps and
structures of those). Only timestamps and blobs are converted, and only renamed members are
renamed.

:class:`PlainJSONParser` takes such *plain* parts of a response as ``json.loads`` built them and
walks the rest (timestamps, blobs, renames, unions, documents, exceptions) as botocore does. A
plain structure keeps any key the service sent, known to the model or not, and ``null`` values
(botocore drops both): fleetops reads responses with ``.get``, for which the two are the same.
A structure that is not plain is completed where ``json.loads`` left it: only its members that
are not plain (or renamed) are walked, the others stay as they are, so a page of 25 WorkSpaces
with a timestamp deep inside costs 25 dictionary look-ups, not 25 rebuilt dictionaries. Epoch
timestamps become UTC datetimes directly (botocore's default makes each one in the local zone
through dateutil, at many times the cost; the instant is the same), other forms as botocore does.
Registered on every session fleetops makes (:func:`install`); only the ``json`` protocol
(WorkSpaces) is affected: STS and the other protocols parse as before.
:func:`parse_plain_body` is the same parse of a successful answer's body, for
:mod:`fleetops.aws.wire`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from aiobotocore.parsers import AioJSONParser, AioResponseParserFactory
from botocore.model import Shape
from botocore.utils import parse_timestamp

__all__ = [
    "PlainJSONParser",
    "PlainParserFactory",
    "install",
    "is_plain",
    "parse_plain_body",
    "parse_timestamp_fast",
]

_CONVERTED = frozenset({"timestamp", "blob"})

#: id(shape) → (shape, plain): the shape is held so that its id is never reused meanwhile.
_plain: dict[int, tuple[Shape, bool]] = {}
#: id(structure) → (structure, its members as (name, name on the wire, shape or None if plain)).
_plans: dict[int, tuple[Shape, tuple[tuple[str, str, Shape | None], ...]]] = {}


def is_plain(shape: Shape) -> bool:
    """Whether ``json.loads`` already gives what botocore would make of a value of ``shape``:
    no timestamp, blob, renamed member, union, document, event stream or exception within."""
    known = _plain.get(id(shape))
    if known is not None and known[0] is shape:
        return known[1]
    _plain[id(shape)] = (shape, False)  # a recursive shape is not plain while it is looked at
    plain = _is_plain(shape)
    _plain[id(shape)] = (shape, plain)
    return plain


def _is_plain(shape: Shape) -> bool:
    kind = shape.type_name
    if kind in _CONVERTED or shape.serialization.get("eventstream"):
        return False
    if kind == "structure":
        if (
            shape.is_document_type
            or shape.is_tagged_union
            or shape.metadata.get("exception")
            or shape.serialization.get("payload")
        ):
            return False
        members: dict[str, Shape] = shape.members
        return all(
            member.serialization.get("name", name) == name and is_plain(member)
            for name, member in members.items()
        )
    if kind == "list":
        return is_plain(shape.member)
    if kind == "map":
        return is_plain(shape.key) and is_plain(shape.value)
    return True


def _plan(shape: Shape) -> tuple[tuple[str, str, Shape | None], ...]:
    """A structure's members that need work, worked out once: name, name on the wire, and the
    shape to walk (None: plain, only renamed). Plain members not renamed need none."""
    known = _plans.get(id(shape))
    if known is not None and known[0] is shape:
        return known[1]
    members: dict[str, Shape] = shape.members
    plan = tuple(
        (name, wire, None if is_plain(member) else member)
        for name, member in members.items()
        if (wire := member.serialization.get("name", name)) != name or not is_plain(member)
    )
    _plans[id(shape)] = (shape, plan)
    return plan


def parse_timestamp_fast(value: Any) -> datetime:
    """A response timestamp as a datetime: an epoch number in UTC at once, anything else (or an
    epoch out of range) as botocore parses it."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            pass
    parsed: datetime = parse_timestamp(value)
    return parsed


class PlainJSONParser(AioJSONParser):  # type: ignore[misc]
    """botocore's JSON parser, taking plain values as they are (see :func:`is_plain`)."""

    def __init__(self, timestamp_parser: Any = None, blob_parser: Any = None) -> None:
        super().__init__(
            timestamp_parser=timestamp_parser or parse_timestamp_fast, blob_parser=blob_parser
        )

    def _handle_structure(self, shape: Shape, value: Any) -> Any:
        if value is None or not isinstance(value, dict) or is_plain(shape):
            return value
        if shape.is_document_type or shape.is_tagged_union or shape.metadata.get("exception"):
            return super()._handle_structure(shape, value)  # an error's fields: botocore's
        # ``value`` was made by json.loads for this parse alone: completed in place.
        for name, wire, walk in _plan(shape):
            raw = value.pop(wire, None) if wire != name else value.get(wire)
            if raw is not None:
                value[name] = raw if walk is None else self._parse_shape(walk, raw)
        return value

    def _handle_list(self, shape: Shape, node: Any) -> Any:
        if is_plain(shape):
            return node
        return super()._handle_list(shape, node)

    def _handle_map(self, shape: Shape, value: Any) -> Any:
        if is_plain(shape):
            return value
        return super()._handle_map(shape, value)


class PlainParserFactory(AioResponseParserFactory):  # type: ignore[misc]
    """aiobotocore's parser factory, with :class:`PlainJSONParser` for the ``json`` protocol."""

    def create_parser(self, protocol_name: str) -> Any:
        if protocol_name == "json":
            return PlainJSONParser(**self._defaults)
        return super().create_parser(protocol_name)


def parse_plain_body(parser: Any, shape: Shape | None, body: bytes) -> dict[str, Any]:
    """The parsed body of a successful JSON answer, as ``parser`` (a :class:`PlainJSONParser`)
    makes it, without the response metadata (the caller adds it)."""
    if not body:
        data: Any = {}
    else:
        try:
            data = json.loads(body)
        except ValueError:
            data = {"message": body.decode("utf-8", "replace")}  # as botocore's parser does
    if shape is None:
        return {}
    parsed = parser._parse_shape(shape, data)
    return parsed if isinstance(parsed, dict) else {}


def install(session: Any) -> Any:
    """Make ``session``'s clients created from now on parse with :class:`PlainParserFactory`."""
    session.register_component("response_parser_factory", PlainParserFactory())
    return session
