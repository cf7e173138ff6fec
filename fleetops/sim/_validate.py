"""Request validation from botocore's service model, worded as AWS words it.

Every constraint comes from the model at run time (required members, string min/max/pattern,
list min/max, enums, integer min/max); nothing is hand-copied. Unknown members are ignored, as
AWS ignores them. A value of the wrong JSON type is a ``SerializationException``, as on AWS.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from fleetops.sim._model import input_shape

__all__ = ["ApiError", "validate_input"]


class ApiError(Exception):
    """An error answer: HTTP ``status`` with ``{"__type": code, "message": message}``."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


@cache
def _compiled(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:  # a Java-only construct: AWS checks it, we cannot
        return None


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def _show(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 200 else text[:197] + "..."


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "long": (int,),
    "boolean": (bool,),
    "double": (int, float),
    "float": (int, float),
    "timestamp": (int, float, str),
    "structure": (dict,),
    "list": (list,),
    "map": (dict,),
    "blob": (str,),
}


def _check(shape: Any, value: Any, path: str, errors: list[str]) -> None:
    type_name = shape.type_name
    expected = _JSON_TYPES.get(type_name)
    wrong_bool = type_name in {"integer", "long", "double", "float"} and isinstance(value, bool)
    if expected is not None and (not isinstance(value, expected) or wrong_bool):
        raise ApiError("SerializationException", f"Unexpected value type at '{path}'")
    meta = shape.metadata
    if type_name == "structure":
        for name in shape.required_members:
            if value.get(name) is None:
                errors.append(
                    f"Value null at '{_join(path, name)}' failed to satisfy constraint: "
                    "Member must not be null"
                )
        for name, member in shape.members.items():
            if value.get(name) is not None:
                _check(member, value[name], _join(path, name), errors)
    elif type_name == "list":
        _length(value, meta, path, errors)
        for index, item in enumerate(value, start=1):
            _check(shape.member, item, f"{path}.{index}.member", errors)
    elif type_name == "map":
        _length(value, meta, path, errors)
        for key, item in value.items():
            _check(shape.value, item, f"{path}.{key}", errors)
    elif type_name == "string":
        _length(value, meta, path, errors)
        pattern = meta.get("pattern")
        compiled = _compiled(pattern) if pattern else None
        if compiled is not None and compiled.search(value) is None:
            errors.append(
                f"Value '{_show(value)}' at '{path}' failed to satisfy constraint: "
                f"Member must satisfy regular expression pattern: {pattern}"
            )
        if shape.enum and value not in shape.enum:
            errors.append(
                f"Value '{_show(value)}' at '{path}' failed to satisfy constraint: "
                f"Member must satisfy enum value set: [{', '.join(shape.enum)}]"
            )
    elif type_name in {"integer", "long"}:
        if "min" in meta and value < meta["min"]:
            errors.append(
                f"Value '{value}' at '{path}' failed to satisfy constraint: "
                f"Member must have value greater than or equal to {meta['min']}"
            )
        if "max" in meta and value > meta["max"]:
            errors.append(
                f"Value '{value}' at '{path}' failed to satisfy constraint: "
                f"Member must have value less than or equal to {meta['max']}"
            )


def _join(path: str, name: str) -> str:
    return f"{path}.{_camel(name)}" if path else _camel(name)


def _length(value: Any, meta: dict[str, Any], path: str, errors: list[str]) -> None:
    if "min" in meta and len(value) < meta["min"]:
        errors.append(
            f"Value '{_show(value)}' at '{path}' failed to satisfy constraint: "
            f"Member must have length greater than or equal to {meta['min']}"
        )
    if "max" in meta and len(value) > meta["max"]:
        errors.append(
            f"Value '{_show(value)}' at '{path}' failed to satisfy constraint: "
            f"Member must have length less than or equal to {meta['max']}"
        )


def validate_input(operation: str, body: Any) -> None:
    """Raise ``ApiError`` (ValidationException / SerializationException) if ``body`` is invalid."""
    if not isinstance(body, dict):
        raise ApiError(
            "SerializationException", "Start of structure or map found where not expected"
        )
    shape = input_shape(operation)
    if shape is None:
        return
    errors: list[str] = []
    _check(shape, body, "", errors)
    if errors:
        count = len(errors)
        noun = "error" if count == 1 else "errors"
        raise ApiError(
            "ValidationException",
            f"{count} validation {noun} detected: " + "; ".join(errors),
        )
