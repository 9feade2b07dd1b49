"""Dataframes as StructuredDataset literals, stored as Parquet under the raw-data prefix.

A dataset URI is a prefix; the data is ``<uri>/00000.parquet`` (readers take every object
under the prefix, in order, so multi-part datasets written by other tools read too). The
literal records the written columns and their types, and ``Literal.hash`` is the SHA-256
of the Parquet bytes, so cache keys follow the data, not the URI.

pandas, pyarrow and polars are recognised without importing them (a type can only be a
pandas DataFrame if pandas is already loaded) and imported only to convert a value.
"""

from __future__ import annotations

import io
import sys
import typing
from collections.abc import Iterator
from typing import Any

from caddis.core._transformers._blobio import join_uri, upload_bytes
from caddis.core._transformers._context import DataContext, current_data_context
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
from caddis.types.structured import PARQUET, StructuredDataset
from caddis_idl.core.v1 import literals_pb2, types_pb2

Literal = literals_pb2.Literal
LiteralType = types_pb2.LiteralType
ST = types_pb2


def dataframe_kind(t: Any) -> str | None:
    """``"pandas"``, ``"arrow"`` or ``"polars"`` for a dataframe class, else None."""
    pd = sys.modules.get("pandas")
    if pd is not None and t is getattr(pd, "DataFrame", None):
        return "pandas"
    pa = sys.modules.get("pyarrow")
    if pa is not None and t is getattr(pa, "Table", None):
        return "arrow"
    pl = sys.modules.get("polars")
    if pl is not None and t is getattr(pl, "DataFrame", None):
        return "polars"
    return None


def to_arrow(df: Any) -> Any:
    """Converts a supported dataframe to a ``pyarrow.Table``."""
    kind = dataframe_kind(type(df))
    if kind == "arrow":
        return df
    if kind == "pandas":
        import pyarrow as pa

        return pa.Table.from_pandas(df)
    if kind == "polars":
        return df.to_arrow()
    raise failed("a pandas DataFrame, pyarrow Table or polars DataFrame", df)


def convert_table(table: Any, target: Any) -> Any:
    """Converts a ``pyarrow.Table`` to ``target`` (a dataframe class)."""
    kind = dataframe_kind(target)
    if kind == "arrow":
        return table
    if kind == "polars":
        import polars as pl

        return pl.from_arrow(table)
    if kind == "pandas" or target is None:
        return table.to_pandas()
    raise TypeError(f"Cannot open a StructuredDataset as {type_name(target)}")


def _parts(ctx: DataContext, uri: str) -> list[str]:
    store = ctx.store(uri)
    return sorted(store.list(uri.rstrip("/") + "/"))


def iter_tables(ctx: DataContext, uri: str, columns: list[str] | None) -> Iterator[Any]:
    """Yields one ``pyarrow.Table`` per Parquet object under ``uri``."""
    import pyarrow.parquet as pq

    store = ctx.store(uri)
    for part in _parts(ctx, uri):
        yield pq.read_table(io.BytesIO(store.get_bytes(part)), columns=columns)


def read_table(ctx: DataContext, uri: str, columns: list[str] | None) -> Any:
    """Reads every Parquet object under ``uri`` into one ``pyarrow.Table``."""
    import pyarrow as pa

    tables = list(iter_tables(ctx, uri, columns))
    if not tables:
        raise FileNotFoundError(f"No Parquet data under {uri}")
    return tables[0] if len(tables) == 1 else pa.concat_tables(tables)


def arrow_literal_type(arrow_type: Any) -> types_pb2.LiteralType:
    """The LiteralType of a column of ``arrow_type``."""
    import pyarrow.types as pat

    if pat.is_boolean(arrow_type):
        simple = ST.SIMPLE_TYPE_BOOLEAN
    elif pat.is_integer(arrow_type):
        simple = ST.SIMPLE_TYPE_INTEGER
    elif pat.is_floating(arrow_type):
        simple = ST.SIMPLE_TYPE_FLOAT
    elif pat.is_string(arrow_type) or pat.is_large_string(arrow_type):
        simple = ST.SIMPLE_TYPE_STRING
    elif pat.is_timestamp(arrow_type) or pat.is_date(arrow_type):
        simple = ST.SIMPLE_TYPE_DATETIME
    elif pat.is_duration(arrow_type):
        simple = ST.SIMPLE_TYPE_DURATION
    elif pat.is_binary(arrow_type) or pat.is_large_binary(arrow_type):
        simple = ST.SIMPLE_TYPE_BINARY
    else:
        simple = ST.SIMPLE_TYPE_STRUCT
    return LiteralType(simple=simple)


def _parse(t: Any) -> tuple[Any, dict[str, Any], str]:
    """(base type, declared columns, format) of a possibly Annotated dataframe type."""
    columns: dict[str, Any] = {}
    fmt = PARQUET
    if typing.get_origin(t) is typing.Annotated:
        base = t.__origin__
        for meta in t.__metadata__:
            if isinstance(meta, dict):
                columns.update(meta)
            elif isinstance(meta, str):
                fmt = meta
        return base, columns, fmt
    return t, columns, fmt


class StructuredDatasetTransformer(TypeTransformer[Any]):
    """pandas/pyarrow/polars dataframes and ``StructuredDataset`` as Parquet datasets."""

    handles_annotated = True

    def __init__(self) -> None:
        super().__init__("StructuredDataset", StructuredDataset)

    def _matches(self, t: Any) -> bool:
        if isinstance(t, type) and issubclass(t, StructuredDataset):
            return True
        return dataframe_kind(t) is not None

    def get_literal_type(self, t: Any) -> types_pb2.LiteralType:
        _, columns, fmt = _parse(t)
        lt = LiteralType()
        sdt = lt.structured_dataset_type
        sdt.format = fmt
        for name, py in columns.items():
            col = sdt.columns.add()
            col.name = name
            col.literal_type.CopyFrom(TypeEngine._plan(py).literal_type)
        return lt

    def to_literal(
        self, ctx: Any, python_val: Any, python_type: Any, expected: Any
    ) -> literals_pb2.Literal:
        return TypeEngine._plan(python_type).encode(python_val)

    def to_python_value(self, ctx: Any, lv: Any, expected_python_type: Any) -> Any:
        return TypeEngine._plan(expected_python_type).decode(lv)

    def guess_python_type(self, literal_type: types_pb2.LiteralType) -> Any:
        return guess_structured(literal_type)

    def _compile(self, t: Any, lt: types_pb2.LiteralType) -> tuple[Encoder, Decoder]:
        base, columns, _fmt = _parse(t)
        declared = list(columns) or None
        base_kind = dataframe_kind(base)

        def encode(v: Any) -> Any:
            target_uri = None
            if isinstance(v, StructuredDataset):
                if v.dataframe is None:
                    if v.uri is None:
                        raise failed(t, v, "the StructuredDataset has neither dataframe nor uri")
                    return _sd_literal(v.uri, v.file_format, v._literal_columns, v.literal_hash)
                target_uri, df = v.uri, v.dataframe
            else:
                df = v
                kind = dataframe_kind(type(df))
                if kind is None or (base_kind is not None and kind != base_kind):
                    raise failed(t, v)
            table = to_arrow(df)
            if declared:
                missing = [c for c in declared if c not in table.column_names]
                if missing:
                    raise failed(
                        t,
                        v,
                        f"the dataframe lacks declared columns {missing} "
                        f"(it has {table.column_names})",
                    )
            import pyarrow.parquet as pq

            buf = io.BytesIO()
            pq.write_table(table, buf)
            ctx = current_data_context()
            uri = target_uri or ctx.new_raw_uri()
            content_hash = upload_bytes(ctx, buf.getvalue(), join_uri(uri, "00000.parquet"))
            cols = {f.name: arrow_literal_type(f.type) for f in table.schema}
            return _sd_literal(uri, PARQUET, cols, content_hash)

        def decode(lit: Any) -> Any:
            scalar = lit.scalar
            kind = scalar.WhichOneof("value")
            if kind == "union":
                return decode(scalar.union.value)
            if kind != "structured_dataset":
                from caddis.core._transformers._builtins import failed_literal

                raise failed_literal(t, lit)
            sd_lit = scalar.structured_dataset
            ctx = current_data_context()
            if isinstance(base, type) and issubclass(base, StructuredDataset):
                sd = base(
                    uri=sd_lit.uri, file_format=sd_lit.metadata.structured_dataset_type.format
                )
                sd._columns = declared
                sd._hash = lit.hash or None
                sd._ctx = ctx
                sd._literal_columns = {
                    c.name: c.literal_type for c in sd_lit.metadata.structured_dataset_type.columns
                }
                return sd
            return convert_table(read_table(ctx, sd_lit.uri, declared), base)

        return encode, decode

    def _builtin_codec(self, t: Any, plan: _Plan) -> BuiltinCodec:
        encode, decode = plan.encode, plan.decode

        def to_builtin(v: Any) -> Any:
            sd = encode(v).scalar.structured_dataset
            return {"uri": sd.uri, "file_format": sd.metadata.structured_dataset_type.format}

        def from_builtin(obj: Any) -> Any:
            if not isinstance(obj, dict) or not isinstance(obj.get("uri"), str):
                raise failed(t, obj, 'expected a map with a "uri"')
            return decode(_sd_literal(obj["uri"], obj.get("file_format", PARQUET), {}, None))

        return to_builtin, from_builtin


def _sd_literal(uri: str, fmt: str, columns: dict[str, Any], content_hash: str | None) -> Any:
    lit = Literal()
    sd = lit.scalar.structured_dataset
    sd.uri = uri
    sdt = sd.metadata.structured_dataset_type
    sdt.format = fmt
    for name, col_lt in columns.items():
        col = sdt.columns.add()
        col.name = name
        col.literal_type.CopyFrom(col_lt)
    if content_hash:
        lit.hash = content_hash
    return lit


def guess_structured(lt: types_pb2.LiteralType) -> Any:
    """``StructuredDataset`` for a structured dataset LiteralType."""
    if lt.WhichOneof("type") != "structured_dataset_type":
        raise ValueError("not a structured dataset")
    return StructuredDataset


def builtin_matchers() -> list[TypeTransformer[Any]]:
    """The dataframe transformer (matched by predicate)."""
    return [StructuredDatasetTransformer()]


__all__ = [
    "StructuredDatasetTransformer",
    "arrow_literal_type",
    "builtin_matchers",
    "convert_table",
    "dataframe_kind",
    "guess_structured",
    "iter_tables",
    "read_table",
    "to_arrow",
]
