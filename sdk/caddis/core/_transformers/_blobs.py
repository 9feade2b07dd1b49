"""Values passed by reference as Blob literals: files, directories, numpy arrays, pickles.

Each upload sets ``Literal.hash`` to the SHA-256 of the content (for a directory, of its
sorted (path, file hash) list), computed while uploading. A file or directory that is passed
on unchanged keeps its URI and the hash it arrived with, so it is not uploaded again.
"""

from __future__ import annotations

import io
import os
import pickle
import sys
from typing import Any

from caddis.core._transformers._blobio import (
    is_remote,
    sha256_hex,
    upload_bytes,
    upload_dir,
    upload_file,
)
from caddis.core._transformers._context import current_data_context
from caddis.core._transformers._engine import (
    BuiltinCodec,
    Decoder,
    Encoder,
    TypeEngine,
    TypeTransformer,
    _Plan,
    failed,
    type_name,
)
from caddis.types.directory import FlyteDirectory
from caddis.types.file import FlyteFile
from caddis_idl.core.v1 import literals_pb2, types_pb2

Literal = literals_pb2.Literal
LiteralType = types_pb2.LiteralType
SINGLE = types_pb2.BlobType.DIMENSIONALITY_SINGLE
MULTIPART = types_pb2.BlobType.DIMENSIONALITY_MULTIPART
PICKLE_FORMAT = "PythonPickle"
NUMPY_FORMAT = "npy"


def _blob_type(fmt: str, dimensionality: int) -> types_pb2.LiteralType:
    lt = LiteralType()
    lt.blob.format = fmt
    lt.blob.dimensionality = dimensionality  # type: ignore[assignment]
    return lt


def blob_literal(uri: str, fmt: str, dimensionality: int, content_hash: str | None) -> Any:
    """A Blob literal, with ``hash`` set when the content hash is known."""
    lit = Literal()
    blob = lit.scalar.blob
    blob.uri = uri
    blob.metadata.type.format = fmt
    blob.metadata.type.dimensionality = dimensionality  # type: ignore[assignment]
    if content_hash:
        lit.hash = content_hash
    return lit


def _blob_of(lit: Any, t: Any) -> Any:
    if lit.WhichOneof("value") == "offloaded_metadata":
        return _blob_of(load_offloaded(lit), t)
    scalar = lit.scalar
    kind = scalar.WhichOneof("value")
    if kind == "union":
        return _blob_of(scalar.union.value, t)
    if kind != "blob":
        from caddis.core._transformers._builtins import failed_literal

        raise failed_literal(t, lit)
    return scalar.blob, lit.hash


def load_offloaded(lit: Any) -> Any:
    """Fetches the Literal that an offloaded literal points at."""
    uri = lit.offloaded_metadata.uri
    return current_data_context().store(uri).read_proto(uri, Literal)


# ---------------------------------------------------------------------------------------------
# Files


class FlyteFilePathTransformer(TypeTransformer[FlyteFile]):
    """``FlyteFile`` (and ``os.PathLike``) as a single Blob."""

    def __init__(self) -> None:
        super().__init__("FlyteFilePath", FlyteFile)

    @staticmethod
    def _cls(t: Any) -> type[FlyteFile]:
        return t if isinstance(t, type) and issubclass(t, FlyteFile) else FlyteFile

    def get_literal_type(self, t: Any) -> types_pb2.LiteralType:
        return _blob_type(self._cls(t).extension(), SINGLE)

    def to_literal(
        self, ctx: Any, python_val: Any, python_type: Any, expected: Any
    ) -> literals_pb2.Literal:
        return TypeEngine._plan(python_type).encode(python_val)

    def to_python_value(self, ctx: Any, lv: Any, expected_python_type: Any) -> Any:
        return TypeEngine._plan(expected_python_type).decode(lv)

    def guess_python_type(self, literal_type: types_pb2.LiteralType) -> Any:
        return guess_blob(literal_type)

    def _compile(self, t: Any, lt: types_pb2.LiteralType) -> tuple[Encoder, Decoder]:
        cls = self._cls(t)
        fmt = cls.extension()

        def upload(v: Any) -> tuple[str, str | None]:
            if isinstance(v, str | os.PathLike) and not isinstance(v, FlyteFile):
                v = cls(os.fspath(v))
            if not isinstance(v, FlyteFile):
                raise failed(t, v)
            source = v.remote_source
            if source is not None:
                return source, v._hash  # passed on unchanged: no new upload
            local = v.path
            if not os.path.isfile(local):
                raise failed(t, v, f"the local file {local!r} does not exist")
            ctx = current_data_context()
            uri = v.remote_path or ctx.new_raw_uri(os.path.basename(local) or "file")
            return uri, upload_file(ctx, local, uri)

        def encode(v: Any) -> Any:
            uri, content_hash = upload(v)
            return blob_literal(uri, fmt, SINGLE, content_hash)

        def decode(lit: Any) -> Any:
            blob, content_hash = _blob_of(lit, t)
            return cls._from_remote(blob.uri, current_data_context(), content_hash or None)

        return encode, decode

    def _builtin_codec(self, t: Any, plan: _Plan) -> BuiltinCodec:
        encode, decode = plan.encode, plan.decode
        fmt = self._cls(t).extension()

        def to_builtin(v: Any) -> Any:
            return {"path": encode(v).scalar.blob.uri}

        def from_builtin(obj: Any) -> Any:
            if not isinstance(obj, dict) or not isinstance(obj.get("path"), str):
                raise failed(t, obj, 'expected a map with a "path"')
            return decode(blob_literal(obj["path"], fmt, SINGLE, None))

        return to_builtin, from_builtin


class FlyteDirToMultipartBlobTransformer(TypeTransformer[FlyteDirectory]):
    """``FlyteDirectory`` as a multipart Blob."""

    def __init__(self) -> None:
        super().__init__("FlyteDirectory", FlyteDirectory)

    @staticmethod
    def _cls(t: Any) -> type[FlyteDirectory]:
        return t if isinstance(t, type) and issubclass(t, FlyteDirectory) else FlyteDirectory

    def get_literal_type(self, t: Any) -> types_pb2.LiteralType:
        return _blob_type(self._cls(t).extension(), MULTIPART)

    def to_literal(
        self, ctx: Any, python_val: Any, python_type: Any, expected: Any
    ) -> literals_pb2.Literal:
        return TypeEngine._plan(python_type).encode(python_val)

    def to_python_value(self, ctx: Any, lv: Any, expected_python_type: Any) -> Any:
        return TypeEngine._plan(expected_python_type).decode(lv)

    def guess_python_type(self, literal_type: types_pb2.LiteralType) -> Any:
        return guess_blob(literal_type)

    def _compile(self, t: Any, lt: types_pb2.LiteralType) -> tuple[Encoder, Decoder]:
        cls = self._cls(t)
        fmt = cls.extension()

        def encode(v: Any) -> Any:
            if isinstance(v, str | os.PathLike) and not isinstance(v, FlyteDirectory):
                v = cls(os.fspath(v))
            if not isinstance(v, FlyteDirectory):
                raise failed(t, v)
            source = v.remote_source
            if source is not None:
                return blob_literal(source, fmt, MULTIPART, v._hash)
            local = v.path
            if not os.path.isdir(local):
                raise failed(t, v, f"the local directory {local!r} does not exist")
            ctx = current_data_context()
            uri = v.remote_directory or ctx.new_raw_uri()
            return blob_literal(uri, fmt, MULTIPART, upload_dir(ctx, local, uri))

        def decode(lit: Any) -> Any:
            blob, content_hash = _blob_of(lit, t)
            return cls._from_remote(blob.uri, current_data_context(), content_hash or None)

        return encode, decode

    def _builtin_codec(self, t: Any, plan: _Plan) -> BuiltinCodec:
        encode, decode = plan.encode, plan.decode
        fmt = self._cls(t).extension()

        def to_builtin(v: Any) -> Any:
            return {"path": encode(v).scalar.blob.uri}

        def from_builtin(obj: Any) -> Any:
            if not isinstance(obj, dict) or not isinstance(obj.get("path"), str):
                raise failed(t, obj, 'expected a map with a "path"')
            return decode(blob_literal(obj["path"], fmt, MULTIPART, None))

        return to_builtin, from_builtin


# ---------------------------------------------------------------------------------------------
# Pickle fallback


class PickleTransformer(TypeTransformer[Any]):
    """Anything without a transformer: pickled, uploaded as a ``PythonPickle`` Blob."""

    def __init__(self) -> None:
        super().__init__("FlytePickle", object)

    def get_literal_type(self, t: Any) -> types_pb2.LiteralType:
        lt = _blob_type(PICKLE_FORMAT, SINGLE)
        lt.metadata.update({"python_class_name": type_name(t)})
        return lt

    def guess_python_type(self, literal_type: types_pb2.LiteralType) -> Any:
        if literal_type.WhichOneof("type") == "blob" and literal_type.blob.format == PICKLE_FORMAT:
            from caddis.types.pickle import FlytePickle

            return FlytePickle
        raise ValueError("not a pickle")

    def _compile(self, t: Any, lt: types_pb2.LiteralType) -> tuple[Encoder, Decoder]:
        def encode(v: Any) -> Any:
            try:
                data = pickle.dumps(v, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception as exc:
                raise failed(t, v, f"cannot pickle it: {exc}") from exc
            ctx = current_data_context()
            uri = ctx.new_raw_uri("value.pkl")
            return blob_literal(uri, PICKLE_FORMAT, SINGLE, upload_bytes(ctx, data, uri))

        def decode(lit: Any) -> Any:
            blob, _ = _blob_of(lit, t)
            return _load_pickle(blob.uri)

        return encode, decode


def _load_pickle(uri: str) -> Any:
    data = current_data_context().store(uri).get_bytes(uri)
    return pickle.loads(data)


# ---------------------------------------------------------------------------------------------
# numpy


def _is_ndarray(t: Any) -> bool:
    np = sys.modules.get("numpy")
    if np is None:
        return False
    import typing

    origin = typing.get_origin(t) or t
    return origin is np.ndarray


class NumpyArrayTransformer(TypeTransformer[Any]):
    """``numpy.ndarray`` as a ``.npy`` Blob (format ``npy``); numpy is never imported eagerly."""

    def __init__(self) -> None:
        super().__init__("numpy-array", object)

    def _matches(self, t: Any) -> bool:
        return _is_ndarray(t)

    def get_literal_type(self, t: Any) -> types_pb2.LiteralType:
        return _blob_type(NUMPY_FORMAT, SINGLE)

    def to_literal(
        self, ctx: Any, python_val: Any, python_type: Any, expected: Any
    ) -> literals_pb2.Literal:
        return TypeEngine._plan(python_type).encode(python_val)

    def to_python_value(self, ctx: Any, lv: Any, expected_python_type: Any) -> Any:
        return TypeEngine._plan(expected_python_type).decode(lv)

    def _compile(self, t: Any, lt: types_pb2.LiteralType) -> tuple[Encoder, Decoder]:
        import numpy as np

        def encode(v: Any) -> Any:
            if not isinstance(v, np.ndarray):
                raise failed(t, v)
            buf = io.BytesIO()
            try:
                np.save(buf, v, allow_pickle=False)
            except ValueError as exc:  # object arrays
                raise failed(t, v, f"cannot save it as .npy: {exc}") from exc
            data = buf.getvalue()
            ctx = current_data_context()
            uri = ctx.new_raw_uri("array.npy")
            return blob_literal(uri, NUMPY_FORMAT, SINGLE, upload_bytes(ctx, data, uri))

        def decode(lit: Any) -> Any:
            blob, _ = _blob_of(lit, t)
            return load_npy(blob.uri)

        return encode, decode


def load_npy(uri: str) -> Any:
    """Reads a ``.npy`` object into an array."""
    import numpy as np

    data = current_data_context().store(uri).get_bytes(uri)
    return np.load(io.BytesIO(data), allow_pickle=False)


# ---------------------------------------------------------------------------------------------
# Registration, guessing, untyped reading


def builtin_transformers() -> list[TypeTransformer[Any]]:
    """The transformers registered by exact type (subclasses are matched through the MRO)."""
    from caddis.types.pickle import FlytePickle

    files = FlyteFilePathTransformer()
    pickles = PickleTransformer()
    pickles_for_marker = _PickleAlias(pickles, FlytePickle)
    path_like = _PathLikeAlias(files)
    return [files, FlyteDirToMultipartBlobTransformer(), pickles_for_marker, path_like]


class _PickleAlias(PickleTransformer):
    def __init__(self, inner: PickleTransformer, t: Any) -> None:
        super().__init__()
        self._t = t


class _PathLikeAlias(FlyteFilePathTransformer):
    def __init__(self, inner: FlyteFilePathTransformer) -> None:
        super().__init__()
        self._t = os.PathLike  # type: ignore[assignment]


def guess_blob(lt: types_pb2.LiteralType) -> Any:
    """The Python type for a Blob LiteralType."""
    if lt.WhichOneof("type") != "blob":
        raise ValueError("not a blob")
    fmt = lt.blob.format
    if lt.blob.dimensionality == MULTIPART:
        return FlyteDirectory[fmt] if fmt else FlyteDirectory  # type: ignore[misc]
    if fmt == PICKLE_FORMAT:
        from caddis.types.pickle import FlytePickle

        return FlytePickle
    if fmt == NUMPY_FORMAT:
        import numpy as np

        return np.ndarray
    return FlyteFile[fmt] if fmt else FlyteFile  # type: ignore[misc]


def decode_any_blob(lit: Any) -> Any:
    """Reads a Blob literal without a declared type, by its format."""
    blob = lit.scalar.blob
    fmt = blob.metadata.type.format
    if blob.metadata.type.dimensionality == MULTIPART:
        return TypeEngine.to_python_value(lit, FlyteDirectory)
    if fmt == PICKLE_FORMAT:
        return _load_pickle(blob.uri)
    if fmt == NUMPY_FORMAT:
        return load_npy(blob.uri)
    return TypeEngine.to_python_value(lit, FlyteFile)


__all__ = [
    "FlyteDirToMultipartBlobTransformer",
    "FlyteFilePathTransformer",
    "NumpyArrayTransformer",
    "PickleTransformer",
    "blob_literal",
    "builtin_transformers",
    "decode_any_blob",
    "guess_blob",
    "is_remote",
    "load_offloaded",
    "sha256_hex",
]
