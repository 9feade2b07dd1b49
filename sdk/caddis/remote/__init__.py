"""Talk to a caddis deployment: register code, launch and follow executions, read results.

``CaddisRemote`` is flytekit's ``FlyteRemote`` under caddis names. Importing this package
imports grpc; ``import caddis`` does not import it.
"""

from caddis.remote._bundle import CodeBundle, build_bundle, source_root
from caddis.remote._config import DEFAULT_ENDPOINT, RemoteConfig
from caddis.remote._errors import (
    AdminUnreachableError,
    EntityNotFoundError,
    ExecutionFailedError,
    ExecutionTimeoutError,
    RemoteError,
)
from caddis.remote._remote import CaddisRemote, RegistrationResult, build_tree
from caddis.remote._types import NodeTree, RemoteEntity, RemoteExecution

__all__ = [
    "DEFAULT_ENDPOINT",
    "AdminUnreachableError",
    "CaddisRemote",
    "CodeBundle",
    "EntityNotFoundError",
    "ExecutionFailedError",
    "ExecutionTimeoutError",
    "NodeTree",
    "RegistrationResult",
    "RemoteConfig",
    "RemoteEntity",
    "RemoteError",
    "RemoteExecution",
    "build_bundle",
    "build_tree",
    "source_root",
]
