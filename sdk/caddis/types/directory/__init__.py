"""Directories passed between tasks by reference: ``FlyteDirectory``.

A returned directory is uploaded file by file below a fresh prefix under the raw-data prefix
(a MULTIPART Blob literal); a received one is downloaded lazily, on :meth:`download`,
``os.fspath(d)`` or :meth:`crawl`. ``FlyteDirectory[typing.TypeVar("images")]`` declares a
format tag.
"""

from __future__ import annotations

import os
import typing
from collections.abc import Iterator
from typing import Any, ClassVar

from caddis.core._transformers._blobio import download_dir, is_remote
from caddis.core._transformers._context import DataContext, current_data_context

__all__ = ["FlyteDirectory", "TFRecordsDirectory", "TensorboardLogs"]


class FlyteDirectory(os.PathLike[str]):
    """A directory that travels between tasks by reference.

    Args:
        path: A local directory, or the URI prefix of an existing remote one.
        downloader: Optional callable that makes the directory exist at ``path`` (advanced).
        remote_directory: Where to upload instead of a fresh prefix under the raw-data prefix.
    """

    _format: ClassVar[str] = ""
    _subclasses: ClassVar[dict[str, type[FlyteDirectory]]] = {}

    def __class_getitem__(cls, item: Any) -> type[FlyteDirectory]:
        if isinstance(item, typing.TypeVar):
            fmt = item.__name__
        elif isinstance(item, str):
            fmt = item
        else:
            raise TypeError(f"FlyteDirectory[...] takes a TypeVar or a string, not {item!r}")
        key = f"{cls.__module__}.{cls.__qualname__}[{fmt}]"
        sub = FlyteDirectory._subclasses.get(key)
        if sub is None:
            sub = type(f"{cls.__name__}[{fmt}]", (cls,), {"_format": fmt})
            sub.__module__ = cls.__module__
            FlyteDirectory._subclasses[key] = sub
        return sub

    @classmethod
    def extension(cls) -> str:
        """The declared format tag, or ``""``."""
        return cls._format

    def __init__(
        self,
        path: str | os.PathLike[str],
        downloader: typing.Callable[[], Any] | None = None,
        remote_directory: str | None = None,
    ) -> None:
        self._path = os.fspath(path)
        self._downloader = downloader
        self._remote_directory = remote_directory
        self._remote_source: str | None = None
        self._hash: str | None = None
        self._ctx: DataContext | None = None
        self._downloaded = downloader is None and not is_remote(self._path)

    @classmethod
    def _from_remote(cls, uri: str, ctx: DataContext, content_hash: str | None) -> FlyteDirectory:
        d = cls(ctx.new_local_path("dir"))
        d._remote_source = uri
        d._hash = content_hash
        d._ctx = ctx
        d._downloaded = False
        return d

    @classmethod
    def from_source(cls, source: str | os.PathLike[str]) -> FlyteDirectory:
        """A FlyteDirectory for a local directory or a remote prefix (downloaded lazily)."""
        source = os.fspath(source)
        if not is_remote(source):
            return cls(source)
        return cls._from_remote(source, current_data_context(), None)

    @classmethod
    def new_remote(cls) -> FlyteDirectory:
        """A new, empty local directory to fill; it is uploaded when returned."""
        local = current_data_context().new_local_path("dir")
        os.makedirs(local, exist_ok=True)
        return cls(local)

    @property
    def path(self) -> str:
        """The local path (where the content is, or will be once downloaded)."""
        return self._path

    @property
    def remote_directory(self) -> str | None:
        """The upload destination the user asked for, if any."""
        return self._remote_directory

    @property
    def remote_source(self) -> str | None:
        """The URI prefix this directory was received from, if any."""
        if self._remote_source is None and is_remote(self._path):
            return self._path
        return self._remote_source

    @property
    def downloaded(self) -> bool:
        """Whether the content is available at :attr:`path`."""
        return self._downloaded

    def download(self) -> str:
        """Fetches every file if needed and returns the local directory."""
        if self._downloaded:
            return self._path
        if self._downloader is not None:
            self._downloader()
        else:
            source = self.remote_source
            assert source is not None
            ctx = self._ctx or current_data_context()
            if source == self._path:
                self._remote_source = source
                self._path = ctx.new_local_path("dir")
            download_dir(ctx, source, self._path)
        self._downloaded = True
        return self._path

    def new_file(self, name: str) -> str:
        """Returns the local path of a new file ``name`` inside this directory."""
        self._mark_local()
        path = os.path.join(self._path, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return path

    def new_dir(self, name: str) -> FlyteDirectory:
        """Creates a sub-directory ``name`` and returns it."""
        self._mark_local()
        path = os.path.join(self._path, name)
        os.makedirs(path, exist_ok=True)
        return FlyteDirectory(path)

    def _mark_local(self) -> None:
        # Adding content makes this a new directory: it is uploaded, not passed through.
        self.download()
        self._remote_source = None
        self._hash = None
        os.makedirs(self._path, exist_ok=True)

    def crawl(self) -> Iterator[tuple[str, str]]:
        """Yields ``(base, relative_path)`` for every file, in sorted order (downloads)."""
        base = self.download()
        for root, dirs, files in os.walk(base):
            dirs.sort()
            for name in sorted(files):
                yield base, os.path.relpath(os.path.join(root, name), base)

    @classmethod
    def listdir(cls, directory: FlyteDirectory) -> list[str]:
        """Returns the local paths of the files in ``directory`` (downloading it)."""
        return [os.path.join(base, rel) for base, rel in directory.crawl()]

    def __fspath__(self) -> str:
        return self.download()

    def __str__(self) -> str:
        return self._path

    def __repr__(self) -> str:
        source = f", remote_source={self._remote_source!r}" if self._remote_source else ""
        return f"{type(self).__name__}(path={self._path!r}{source})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FlyteDirectory):
            return NotImplemented
        return self._path == other._path and self._remote_source == other._remote_source

    def __hash__(self) -> int:
        return hash((self._path, self._remote_source))


TensorboardLogs: type[FlyteDirectory] = FlyteDirectory[typing.TypeVar("tensorboard")]  # type: ignore[misc]
TFRecordsDirectory: type[FlyteDirectory] = FlyteDirectory[typing.TypeVar("tfrecord")]  # type: ignore[misc]
