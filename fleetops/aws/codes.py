"""What an API error code says, by its family.

The API documents no FailedRequests codes; those seen are dotted, ``<Family>.<Resource>``
(``InvalidResourceState.Workspace``, ``ResourceNotFound.Bundle``), and top-level errors end in
``Exception`` (``ResourceNotFoundException``). The engine judges an action's failed requests
by :func:`refusal`; a call about one resource (a selector's DescribeTags) needs only the family
that :func:`split_code` reads.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Refusal", "refusal", "split_code"]


class Refusal(StrEnum):
    """What a refusal code says, by its family (the API documents no FailedRequests codes;
    those seen are dotted, ``<Family>.<Resource>``, and top-level errors end in ``Exception``)."""

    STATE = "state"  # InvalidResourceState*: the WorkSpace's state changed since the plan
    GONE = "gone"  # ResourceNotFound* (of the WorkSpace, or of no named resource)
    IN_PROGRESS = "in_progress"  # OperationInProgress*: try again shortly
    OTHER = "other"  # anything else: the item fails with the code as given


_FAMILIES = {
    "InvalidResourceState": Refusal.STATE,
    "ResourceNotFound": Refusal.GONE,
    "OperationInProgress": Refusal.IN_PROGRESS,
}
#: The resource part of a dotted code that names the WorkSpace itself ("" when none is named).
_WORKSPACE_RESOURCES = frozenset({"", "workspace", "workspaces"})


def split_code(code: str) -> tuple[str, str]:
    """A code's family and resource, without the ``Exception`` suffix."""
    family, _, resource = (code or "").partition(".")
    return family.removesuffix("Exception"), resource.removesuffix("Exception")


def refusal(code: str) -> Refusal:
    """The family of a refusal code: ``InvalidResourceState.Workspace``,
    ``InvalidResourceStateException`` and ``InvalidResourceState`` are one family. A
    ``ResourceNotFound`` naming another resource (``ResourceNotFound.Bundle``) is not the
    WorkSpace gone: it is OTHER."""
    family, resource = split_code(code)
    found = _FAMILIES.get(family, Refusal.OTHER)
    if found is Refusal.GONE and resource.lower() not in _WORKSPACE_RESOURCES:
        return Refusal.OTHER
    return found
