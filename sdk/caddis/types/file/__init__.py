"""Files passed between tasks by reference: ``FlyteFile`` and its format-tagged variants.

A task returns a ``FlyteFile`` (or a plain path where a ``FlyteFile`` is declared); the type
engine uploads it under the raw-data prefix of the current data context and passes a Blob
literal. A task that receives one gets a ``FlyteFile`` whose content is downloaded lazily: on
:meth:`FlyteFile.download`, :meth:`FlyteFile.open` or ``os.fspath(f)``.

``FlyteFile[typing.TypeVar("csv")]`` (or ``FlyteFile["csv"]``) declares the format, which
becomes ``BlobType.format`` and is checked when tasks are wired together.
"""

from __future__ import annotations

import os
import shutil
import typing
from typing import IO, Any, ClassVar

from caddis.core._transformers._blobio import is_remote
from caddis.core._transformers._context import DataContext, current_data_context

__all__ = [
    "CSVFile",
    "FlyteFile",
    "HDF5EncodedFile",
    "HTMLPage",
    "JSONFile",
    "JoblibSerializedFile",
    "ONNXFile",
    "PDFFile",
    "PNGImageFile",
    "PythonNotebook",
    "PythonPickledFile",
    "SVGImageFile",
    "TFRecordFile",
    "TextFile",
]


def _format_of(item: Any) -> str:
    if isinstance(item, typing.TypeVar):
        return item.__name__
    if isinstance(item, str):
        return item
    raise TypeError(f"FlyteFile[...] takes a typing.TypeVar or a string format, not {item!r}")


class FlyteFile(os.PathLike[str]):
    """A file that travels between tasks by reference.

    Args:
        path: A local path, or a URI (``s3://...``, ``file://...``) of an existing remote file.
        downloader: Optional callable that makes the file exist at ``path`` (advanced).
        remote_path: Where to upload the file instead of a fresh location under the
            raw-data prefix.
    """

    _format: ClassVar[str] = ""
    _subclasses: ClassVar[dict[str, type[FlyteFile]]] = {}

    def __class_getitem__(cls, item: Any) -> type[FlyteFile]:
        fmt = _format_of(item)
        key = f"{cls.__module__}.{cls.__qualname__}[{fmt}]"
        sub = FlyteFile._subclasses.get(key)
        if sub is None:
            sub = type(f"{cls.__name__}[{fmt}]", (cls,), {"_format": fmt})
            sub.__module__ = cls.__module__
            FlyteFile._subclasses[key] = sub
        return sub

    @classmethod
    def extension(cls) -> str:
        """The declared format (``"csv"`` for ``FlyteFile[TypeVar("csv")]``), or ``""``."""
        return cls._format

    def __init__(
        self,
        path: str | os.PathLike[str],
        downloader: typing.Callable[[], Any] | None = None,
        remote_path: str | None = None,
    ) -> None:
        self._path = os.fspath(path)
        self._downloader = downloader
        self._remote_path = remote_path
        self._remote_source: str | None = None
        self._hash: str | None = None
        self._ctx: DataContext | None = None
        self._downloaded = downloader is None and not is_remote(self._path)

    @classmethod
    def from_source(cls, source: str | os.PathLike[str]) -> FlyteFile:
        """A FlyteFile for an existing local path or remote URI (downloaded lazily)."""
        source = os.fspath(source)
        if not is_remote(source):
            return cls(source)
        return cls._from_remote(source, current_data_context(), None)

    @classmethod
    def _from_remote(cls, uri: str, ctx: DataContext, content_hash: str | None) -> FlyteFile:
        name = uri.rstrip("/").rsplit("/", 1)[-1] or "file"
        f = cls(ctx.new_local_path(name))
        f._remote_source = uri
        f._hash = content_hash
        f._ctx = ctx
        f._downloaded = False
        return f

    @classmethod
    def new_remote_file(cls, name: str | None = None) -> FlyteFile:
        """A new local file that will be uploaded to a fresh URI under the raw-data prefix.

        Args:
            name: Base name of the file.
        """
        ctx = current_data_context()
        local = ctx.new_local_path(name or "file")
        os.makedirs(os.path.dirname(local), exist_ok=True)
        return cls(local, remote_path=ctx.new_raw_uri(name or "file"))

    @property
    def path(self) -> str:
        """The local path (where the content is, or will be once downloaded)."""
        return self._path

    @property
    def remote_path(self) -> str | None:
        """The upload destination the user asked for, if any."""
        return self._remote_path

    @property
    def remote_source(self) -> str | None:
        """The URI this file was received from, if it came from another task."""
        if self._remote_source is None and is_remote(self._path):
            return self._path
        return self._remote_source

    @property
    def downloaded(self) -> bool:
        """Whether the content is available at :attr:`path`."""
        return self._downloaded

    def download(self) -> str:
        """Fetches the content if needed and returns the local path."""
        if self._downloaded:
            return self._path
        if self._downloader is not None:
            self._downloader()
        else:
            source = self.remote_source
            assert source is not None  # a local, not-downloaded file cannot exist
            ctx = self._ctx or current_data_context()
            if source == self._path:  # created from a URI: pick a local path now
                name = source.rstrip("/").rsplit("/", 1)[-1] or "file"
                self._remote_source = source
                self._path = ctx.new_local_path(name)
            ctx.store(source).get_file(source, self._path)
        self._downloaded = True
        return self._path

    def open(self, mode: str = "rb", **kwargs: Any) -> IO[Any]:
        """Opens the file (downloading it first when reading).

        Args:
            mode: As for the built-in ``open``.
            **kwargs: Passed to the built-in ``open``.
        """
        if "r" in mode or "a" in mode or "+" in mode:
            self.download()
        else:
            os.makedirs(os.path.dirname(os.path.abspath(self._path)), exist_ok=True)
            # Writing makes this a new local file: it is uploaded, not passed through.
            self._remote_source = None
            self._hash = None
            self._downloaded = True
        return open(self._path, mode, **kwargs)

    def __fspath__(self) -> str:
        return self.download()

    def __str__(self) -> str:
        return self._path

    def __repr__(self) -> str:
        source = f", remote_source={self._remote_source!r}" if self._remote_source else ""
        return f"{type(self).__name__}(path={self._path!r}{source})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FlyteFile):
            return NotImplemented
        return (
            self._path == other._path
            and self._remote_source == other._remote_source
            and self.extension() == other.extension()
        )

    def __hash__(self) -> int:
        return hash((self._path, self._remote_source))

    def copy_to(self, destination: str | os.PathLike[str]) -> str:
        """Copies the (downloaded) content to a local ``destination``; returns it."""
        return str(shutil.copyfile(self.download(), destination))


def _typed(fmt: str) -> type[FlyteFile]:
    return FlyteFile[typing.TypeVar(fmt)]  # type: ignore[misc,no-any-return]


HDF5EncodedFile = _typed("hdf5")
CSVFile = _typed("csv")
JSONFile = _typed("json")
HTMLPage = _typed("html")
JoblibSerializedFile = _typed("joblib")
PDFFile = _typed("pdf")
PNGImageFile = _typed("png")
PythonPickledFile = _typed("python_pickle")
PythonNotebook = _typed("ipynb")
SVGImageFile = _typed("svg")
TFRecordFile = _typed("tfrecord")
ONNXFile = _typed("onnx")
TextFile = _typed("txt")
