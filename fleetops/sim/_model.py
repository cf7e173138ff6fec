"""The simulator's own reading of botocore's WorkSpaces service model.

The simulator checks requests against the model as AWS would, independently of fleetops' AWS
edge: a fake that shared the code it stands in front of would agree with that code's mistakes.
So it reads botocore's data itself (the loader alone, never a session: a session reads the AWS
configuration of the machine, which the model does not depend on), once per process.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from botocore.model import ServiceModel

__all__ = ["input_shape", "load"]

_SERVICE = "workspaces"


@cache
def _model() -> ServiceModel:
    import botocore.loaders  # on first use: importing the simulator stays cheap
    from botocore.model import ServiceModel

    loader = botocore.loaders.create_loader()
    return ServiceModel(loader.load_service_model(_SERVICE, "service-2"), service_name=_SERVICE)


def load() -> None:
    """Read the model now (the first request should not pay for it)."""
    _model()


def input_shape(operation: str) -> Any:
    """botocore's input ``Shape`` of ``operation`` (None for an operation without input); an
    unknown operation raises botocore's ``OperationNotFoundError``."""
    return _model().operation_model(operation).input_shape
