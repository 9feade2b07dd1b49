"""Settings that turn Python entities into registrable IDL (project, domain, version, image)."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass, field

from caddis_idl.core.v1 import identifier_pb2

__all__ = ["SerializationSettings", "current_serialization_settings", "serialization_settings"]


@dataclass(frozen=True)
class SerializationSettings:
    """Where and as what entities are registered, and how their processes start.

    Attributes:
        project: Project of every identifier.
        domain: Domain of every identifier.
        version: Version of every identifier (registration versions are immutable).
        image: Default container image of task processes; empty runs them in the worker's
            own environment.
        python_interpreter: Interpreter that starts a task process.
        env: Environment variables set in every task process.
        code_bundle_uri: URI of the fast-registered code bundle, when there is one.
        code_bundle_digest: Digest of that bundle.
        resolver: Name of the resolver a task process loads its task with.
    """

    project: str = ""
    domain: str = ""
    version: str = ""
    image: str = ""
    python_interpreter: str = "python"
    env: dict[str, str] = field(default_factory=dict)
    code_bundle_uri: str = ""
    code_bundle_digest: str = ""
    resolver: str = "caddis.default"

    def identifier(self, resource_type: int, name: str) -> identifier_pb2.Identifier:
        """The identifier of an entity named ``name`` of the given resource type."""
        return identifier_pb2.Identifier(
            resource_type=resource_type,  # type: ignore[arg-type]
            project=self.project,
            domain=self.domain,
            name=name,
            version=self.version,
        )


_SETTINGS: contextvars.ContextVar[SerializationSettings | None] = contextvars.ContextVar(
    "caddis_serialization_settings", default=None
)


def current_serialization_settings() -> SerializationSettings:
    """The settings installed by :func:`serialization_settings`, else empty defaults."""
    return _SETTINGS.get() or SerializationSettings()


@contextlib.contextmanager
def serialization_settings(settings: SerializationSettings) -> Iterator[SerializationSettings]:
    """Install ``settings`` (used by dynamic compilation inside a task process)."""
    token = _SETTINGS.set(settings)
    try:
        yield settings
    finally:
        _SETTINGS.reset(token)
