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
Registered on every session fleetops makes (:func:`install`); only the ``json`` protocol
(WorkSpaces) is affected: STS and the other protocols parse as before.
"""

from __future__ import annotations

from typing import Any

from aiobotocore.parsers import AioJSONParser, AioResponseParserFactory
from botocore.model import Shape

__all__ = ["PlainJSONParser", "PlainParserFactory", "install", "is_plain"]

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
    """A structure's members, worked out once: name, name on the wire, and the shape to walk
    (None: plain, taken as it is)."""
    known = _plans.get(id(shape))
    if known is not None and known[0] is shape:
        return known[1]
    members: dict[str, Shape] = shape.members
    plan = tuple(
        (name, member.serialization.get("name", name), None if is_plain(member) else member)
        for name, member in members.items()
    )
    _plans[id(shape)] = (shape, plan)
    return plan


class PlainJSONParser(AioJSONParser):  # type: ignore[misc]
    """botocore's JSON parser, taking plain values as they are (see :func:`is_plain`)."""

    def _handle_structure(self, shape: Shape, value: Any) -> Any:
        if value is None or not isinstance(value, dict) or is_plain(shape):
            return value
        if shape.is_document_type or shape.is_tagged_union:
            return super()._handle_structure(shape, value)
        parsed: dict[str, Any] = {}
        for name, wire, walk in _plan(shape):
            raw = value.get(wire)
            if raw is not None:
                parsed[name] = raw if walk is None else self._parse_shape(walk, raw)
        return parsed

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


def install(session: Any) -> Any:
    """Make ``session``'s clients created from now on parse with :class:`PlainParserFactory`."""
    session.register_component("response_parser_factory", PlainParserFactory())
    return session
