"""Where offloaded values (files, directories, dataframes, arrays, pickles) go and come from.

The type engine never decides storage locations on its own: the runtime (a task process,
local execution, a test) installs a :class:`DataContext` naming the raw-data prefix that
uploads go under, the local directory that downloads land in, and the factory that opens a
blob store for a URI. Without one installed, a process-wide default under a temporary
directory is used, so a plain ``TypeEngine.to_literal(FlyteFile(...), ...)`` works in a REPL.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "DataContext",
    "current_data_context",
    "data_context",
    "reset_data_context",
    "set_data_context",
    "set_default_data_context",
]


def _default_store_factory(uri: str) -> Any:
    # Imported here: caddis.storage pulls in the S3 client only for s3:// URIs, and the type
    # engine must not pay for storage at all when only primitives are converted.
    from caddis.storage import get_store

    return get_store(uri)


@dataclass(frozen=True)
class DataContext:
    """Storage settings for values that are passed by reference.

    Attributes:
        raw_output_prefix: URI prefix (``file:///...`` or ``s3://bucket/...``) under which
            files, directories, dataframes, arrays and pickles produced by a task are uploaded.
        local_dir: Local directory into which referenced values are downloaded.
        store_factory: Returns a blob store (``caddis.storage.BlobStore``-like) for a URI;
            defaults to ``caddis.storage.get_store``.
    """

    raw_output_prefix: str
    local_dir: str
    store_factory: Callable[[str], Any] = field(default=_default_store_factory)

    def store(self, uri: str) -> Any:
        """Returns the blob store that serves ``uri``."""
        return self.store_factory(uri)

    def new_raw_uri(self, name: str | None = None) -> str:
        """Returns a fresh, unique URI under the raw-data prefix.

        Args:
            name: Optional last path segment (for example a file's base name).
        """
        base = f"{self.raw_output_prefix.rstrip('/')}/{uuid.uuid4().hex}"
        return f"{base}/{name}" if name else base

    def new_local_path(self, name: str | None = None) -> str:
        """Returns a fresh, not yet existing local path under :attr:`local_dir`.

        Args:
            name: Optional base name for the path; a unique parent directory keeps it from
                colliding with other downloads.
        """
        parent = os.path.join(self.local_dir, uuid.uuid4().hex)
        return os.path.join(parent, name) if name else parent


_current: contextvars.ContextVar[DataContext | None] = contextvars.ContextVar(
    "caddis_data_context", default=None
)
_default: DataContext | None = None
_default_lock = threading.Lock()


def _make_default() -> DataContext:
    root = Path(tempfile.mkdtemp(prefix="caddis-data-"))
    raw = root / "raw"
    raw.mkdir()
    return DataContext(raw_output_prefix=raw.as_uri(), local_dir=str(root / "local"))


def current_data_context() -> DataContext:
    """Returns the data context in effect: the innermost installed one, else the default."""
    ctx = _current.get()
    if ctx is not None:
        return ctx
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = _make_default()
    return _default


def set_default_data_context(ctx: DataContext | None) -> None:
    """Sets (or with ``None`` resets) the process-wide default data context."""
    global _default
    with _default_lock:
        _default = ctx


@contextlib.contextmanager
def data_context(ctx: DataContext) -> Iterator[DataContext]:
    """Installs ``ctx`` for the current thread/task for the duration of a ``with`` block.

    Args:
        ctx: The context that conversions inside the block upload to and download from.

    Yields:
        The installed context.
    """
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)


def set_data_context(ctx: DataContext) -> contextvars.Token[DataContext | None]:
    """Installs ``ctx`` without a ``with`` block (for hot paths); undo with the returned token.

    Args:
        ctx: The context to install.

    Returns:
        A token for :func:`reset_data_context`.
    """
    return _current.set(ctx)


def reset_data_context(token: contextvars.Token[DataContext | None]) -> None:
    """Restores the data context that was in effect before :func:`set_data_context`."""
    _current.reset(token)
