"""Dataframes passed between tasks by reference, stored as Parquet: ``StructuredDataset``.

Declare ``pandas.DataFrame``, ``pyarrow.Table`` or ``polars.DataFrame`` directly, or
``StructuredDataset`` to receive a lazy handle::

    @task
    def head(sd: StructuredDataset) -> pd.DataFrame:
        return sd.open(pd.DataFrame).all().head()

Declare columns with ``Annotated[pd.DataFrame, {"a": int, "b": str}]`` (``kwtypes(...)``
works too): they become part of the LiteralType, are checked when a dataframe is written,
and only those columns are read. pandas, pyarrow and polars are imported only when such a
value is converted.
"""

from __future__ import annotations

import typing
from collections.abc import Iterator
from typing import Any

from caddis.core._transformers._context import DataContext, current_data_context

__all__ = ["PARQUET", "StructuredDataset", "StructuredDatasetTransformerEngine"]

PARQUET = "parquet"


class StructuredDataset:
    """A dataframe, in memory or in the blob store.

    Args:
        dataframe: A dataframe to write (pandas, pyarrow or polars).
        uri: Where the dataset lives (reading) or should be written (writing).
        file_format: Storage format; only ``"parquet"`` is written.
    """

    def __init__(
        self,
        dataframe: Any = None,
        uri: str | None = None,
        file_format: str = PARQUET,
        **kwargs: Any,
    ) -> None:
        self._dataframe = dataframe
        self._uri = uri
        self._file_format = file_format
        self._columns: list[str] | None = None
        self._literal_columns: dict[str, Any] = {}
        self._hash: str | None = None
        self._ctx: DataContext | None = None
        self._open_type: Any = None
        self.metadata: Any = kwargs.get("metadata")

    @classmethod
    def columns(cls) -> dict[str, Any]:
        """Declared columns of the class (none: declare them with ``Annotated``)."""
        return {}

    @property
    def dataframe(self) -> Any:
        """The in-memory dataframe given to the constructor, if any."""
        return self._dataframe

    @property
    def uri(self) -> str | None:
        """Where the dataset lives."""
        return self._uri

    @property
    def file_format(self) -> str:
        """The storage format."""
        return self._file_format

    @property
    def literal_hash(self) -> str | None:
        """Content hash of the stored Parquet, when known."""
        return self._hash

    def open(self, dataframe_type: Any) -> StructuredDataset:
        """Chooses the dataframe type that :meth:`all` and :meth:`iter` return.

        Args:
            dataframe_type: ``pandas.DataFrame``, ``pyarrow.Table`` or ``polars.DataFrame``.

        Returns:
            ``self``, for chaining: ``sd.open(pd.DataFrame).all()``.
        """
        self._open_type = dataframe_type
        return self

    def all(self) -> Any:
        """Reads the whole dataset (as a pandas DataFrame unless :meth:`open` chose a type)."""
        if self._dataframe is not None and self._open_type is None:
            return self._dataframe
        from caddis.core._transformers._dataframes import convert_table, read_table

        target = self._open_type or _pandas_type()
        if self._dataframe is not None:
            from caddis.core._transformers._dataframes import to_arrow

            return convert_table(to_arrow(self._dataframe), target)
        if self._uri is None:
            raise ValueError("This StructuredDataset has neither a dataframe nor a uri")
        table = read_table(self._ctx or current_data_context(), self._uri, self._columns)
        return convert_table(table, target)

    def iter(self) -> Iterator[Any]:
        """Yields the dataset in parts (one part per stored file)."""
        if self._dataframe is not None or self._uri is None:
            yield self.all()
            return
        from caddis.core._transformers._dataframes import convert_table, iter_tables

        target = self._open_type or _pandas_type()
        for table in iter_tables(self._ctx or current_data_context(), self._uri, self._columns):
            yield convert_table(table, target)

    def __repr__(self) -> str:
        return f"StructuredDataset(uri={self._uri!r}, file_format={self._file_format!r})"


def _pandas_type() -> Any:
    import pandas as pd

    return pd.DataFrame


class StructuredDatasetTransformerEngine:
    """Namespace kept for flytekit parity; caddis reads and writes Parquet itself."""

    DEFAULT_FORMATS: typing.ClassVar[dict[str, str]] = {
        "pandas.DataFrame": PARQUET,
        "pyarrow.Table": PARQUET,
        "polars.DataFrame": PARQUET,
    }
