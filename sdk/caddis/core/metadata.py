"""Execution behaviour of tasks: ``TaskMetadata``, ``Cache`` and ``Secret``."""

from __future__ import annotations

import datetime
import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from caddis.core.errors import CompilationError
from caddis_idl.core.v1 import literals_pb2, tasks_pb2

__all__ = ["Cache", "Secret", "SecretMountType", "TaskMetadata"]


@dataclass(frozen=True)
class Cache:
    """Memoization settings, the grouped form of ``cache=``/``cache_version=``/...

    Attributes:
        version: Cache version; bump it to invalidate earlier results. Derived from the
            function's source when empty.
        serialize: Let one execution compute a missing result while identical ones wait.
        ignored_inputs: Inputs left out of the cache key.
    """

    version: str | None = None
    serialize: bool = False
    ignored_inputs: tuple[str, ...] | str = ()


class SecretMountType(enum.Enum):
    """How a secret reaches the task process."""

    ANY = 0
    ENV_VAR = 1
    FILE = 2


@dataclass(frozen=True)
class Secret:
    """A secret a task needs at run time (flytekit's ``Secret``).

    Only the secret's name is registered; the platform injects the value when the task runs.

    Attributes:
        group: Secret group (for example the name of a secret store entry).
        key: Key within the group.
        group_version: Version of the group, when the store versions secrets.
        mount_requirement: Environment variable, file, or either.
        env_var: Environment variable (or file name) to use instead of the default.
    """

    MountType: ClassVar[type[SecretMountType]] = SecretMountType

    group: str
    key: str | None = None
    group_version: str | None = None
    mount_requirement: SecretMountType = SecretMountType.ANY
    env_var: str | None = None

    def to_idl(self) -> tasks_pb2.Secret:
        """The IDL ``Secret``."""
        mount = {
            SecretMountType.ANY: tasks_pb2.Secret.MOUNT_TYPE_UNSPECIFIED,
            SecretMountType.ENV_VAR: tasks_pb2.Secret.MOUNT_TYPE_ENV_VAR,
            SecretMountType.FILE: tasks_pb2.Secret.MOUNT_TYPE_FILE,
        }[self.mount_requirement]
        return tasks_pb2.Secret(
            group=self.group,
            key=self.key or "",
            mount_requirement=mount,
            env_var=self.env_var or "",
        )


@dataclass
class TaskMetadata:
    """Execution behaviour of a task, as flytekit's ``TaskMetadata``.

    Attributes:
        cache: Memoize results by inputs.
        cache_serialize: One execution computes a missing result; identical ones wait for it.
        cache_version: Version of the cached results (required to be non-empty with cache;
            ``@task`` derives one from the source when left empty).
        cache_ignore_input_vars: Inputs left out of the cache key.
        interruptible: May run on preemptible capacity.
        deprecated: When non-empty, the task is deprecated with this message.
        retries: Retries of recoverable failures.
        timeout: Maximum duration of one attempt (seconds or timedelta).
        generates_deck: The task renders a deck.
        tags: Free-form key/value tags.
    """

    cache: bool = False
    cache_serialize: bool = False
    cache_version: str = ""
    cache_ignore_input_vars: tuple[str, ...] = ()
    interruptible: bool | None = None
    deprecated: str = ""
    retries: int = 0
    timeout: datetime.timedelta | int | float | None = None
    generates_deck: bool = False
    tags: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.timeout, int | float) and not isinstance(self.timeout, bool):
            self.timeout = datetime.timedelta(seconds=self.timeout)
        if self.timeout is not None and not isinstance(self.timeout, datetime.timedelta):
            raise CompilationError(
                f"TaskMetadata.timeout must be seconds or a timedelta, got {self.timeout!r}"
            )
        if isinstance(self.timeout, datetime.timedelta) and self.timeout <= datetime.timedelta(0):
            raise CompilationError(f"TaskMetadata.timeout must be positive, got {self.timeout}")
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise CompilationError(
                f"TaskMetadata.retries must be an int >= 0, got {self.retries!r}"
            )
        if self.cache_serialize and not self.cache:
            raise CompilationError("TaskMetadata: cache_serialize=True needs cache=True")
        if isinstance(self.cache_ignore_input_vars, str):
            self.cache_ignore_input_vars = (self.cache_ignore_input_vars,)
        self.cache_ignore_input_vars = tuple(self.cache_ignore_input_vars)
        if self.cache_ignore_input_vars and not self.cache:
            raise CompilationError("TaskMetadata: cache_ignore_input_vars needs cache=True")

    @property
    def timeout_delta(self) -> datetime.timedelta | None:
        """The timeout as a timedelta."""
        return self.timeout if isinstance(self.timeout, datetime.timedelta) else None

    def retry_strategy(self) -> literals_pb2.RetryStrategy:
        """The IDL retry strategy."""
        return literals_pb2.RetryStrategy(retries=self.retries)

    def to_idl(self, runtime_version: str = "") -> tasks_pb2.TaskMetadata:
        """The IDL ``TaskMetadata``."""
        md = tasks_pb2.TaskMetadata(
            cacheable=self.cache,
            runtime=tasks_pb2.RuntimeMetadata(
                type=tasks_pb2.RuntimeMetadata.RUNTIME_TYPE_CADDIS_SDK,
                version=runtime_version,
                flavor="python",
            ),
            retries=self.retry_strategy(),
            cache_version=self.cache_version if self.cache else "",
            deprecated_error_message=self.deprecated,
            cache_serializable=self.cache_serialize,
            tags=self.tags,
            cache_ignore_input_vars=list(self.cache_ignore_input_vars),
            generates_deck=self.generates_deck,
        )
        if self.timeout_delta is not None:
            md.timeout.FromTimedelta(self.timeout_delta)
        if self.interruptible is not None:
            md.interruptible = self.interruptible
        return md


def resolve_cache(
    owner: str,
    cache: bool | Cache,
    cache_version: str,
    cache_serialize: bool,
    cache_ignore_input_vars: Sequence[str] | str,
    source_version: Any,
) -> tuple[bool, str, bool, tuple[str, ...]]:
    """Fold ``cache=Cache(...)`` and the flat options into ``(cache, version, serialize, ignored)``.

    ``source_version`` is called for a version when caching is on and none is given.
    """
    if isinstance(cache, Cache):
        if cache_version or cache_serialize or cache_ignore_input_vars:
            raise CompilationError(
                f"{owner}: give either cache=Cache(...) or cache_version/cache_serialize/"
                f"cache_ignore_input_vars, not both"
            )
        ignored = cache.ignored_inputs
        return (
            True,
            cache.version or str(source_version()),
            cache.serialize,
            (ignored,) if isinstance(ignored, str) else tuple(ignored),
        )
    if not isinstance(cache, bool):
        raise CompilationError(f"{owner}: cache must be a bool or Cache, got {cache!r}")
    ignored_t = (
        (cache_ignore_input_vars,)
        if isinstance(cache_ignore_input_vars, str)
        else tuple(cache_ignore_input_vars)
    )
    if not cache:
        if cache_serialize:
            raise CompilationError(f"{owner}: cache_serialize=True needs cache=True")
        if ignored_t:
            raise CompilationError(f"{owner}: cache_ignore_input_vars needs cache=True")
        return False, cache_version, False, ()
    return True, cache_version or str(source_version()), cache_serialize, ignored_t
