"""The type engine: converts Python values to caddis Literals and back, by Python type.

Names and semantics follow flytekit's ``flytekit.core.type_engine``::

    from caddis.core.type_engine import TypeEngine

    lt = TypeEngine.to_literal_type(list[int])
    lit = TypeEngine.to_literal([1, 2, 3], list[int], lt)
    assert TypeEngine.to_python_value(lit, list[int]) == [1, 2, 3]

Supported out of the box: ``int``, ``float`` (an ``int`` is accepted), ``str``, ``bool`` (never
an int), ``bytes``, ``datetime`` (see below), ``date``, ``timedelta``, ``None``, ``Optional``
and ``Union`` (the literal records the chosen variant; a value matching several variants is
an error), ``List[T]``, ``Dict[str, T]`` (a LiteralMap), other dicts and ``Any`` (MessagePack),
``Enum``, dataclasses and pydantic models (MessagePack with a JSON schema and field types in
the LiteralType), ``Annotated[T, ...]`` (``HashMethod`` sets ``Literal.hash``),
``FlyteFile``/``FlyteDirectory``, pandas/pyarrow/polars dataframes and ``StructuredDataset``
(Parquet), ``numpy.ndarray`` (``.npy``). Anything else is pickled, with a
:class:`PickleFallbackWarning` naming the type.

Datetimes: a Timestamp is an instant in UTC. Aware datetimes are converted to UTC; naive ones
are taken to be UTC already (never local time). Values come back tz-aware in UTC.

Canonical literals: map keys and MessagePack maps (dict keys, dataclass fields) are written in
sorted order, so equal values give equal literals whatever order they were built in. Files,
directories, dataframes, arrays and pickles are uploaded under the raw-data prefix of the
current :class:`DataContext`, and their ``Literal.hash`` is the SHA-256 of the content computed
while uploading, so cache keys follow content, not the random upload URI. A file or directory
passed on unchanged keeps its URI and hash.

Storage injection: the runtime installs where data goes with :func:`data_context`; user
transformers receive the :class:`DataContext` as ``ctx``.
"""

from __future__ import annotations

from caddis.core._transformers._builtins import (
    AnnotatedTransformer,
    DictTransformer,
    EnumTransformer,
    ListTransformer,
    UnionTransformer,
)
from caddis.core._transformers._context import (
    DataContext,
    current_data_context,
    data_context,
    reset_data_context,
    set_data_context,
    set_default_data_context,
)
from caddis.core._transformers._engine import (
    HashMethod,
    PickleFallbackWarning,
    SimpleTransformer,
    TypeEngine,
    TypeTransformer,
    TypeTransformerFailedError,
)
from caddis.core._transformers._structs import (
    DataclassTransformer,
    PydanticTransformer,
)

__all__ = [
    "AnnotatedTransformer",
    "DataContext",
    "DataclassTransformer",
    "DictTransformer",
    "EnumTransformer",
    "HashMethod",
    "ListTransformer",
    "PickleFallbackWarning",
    "PydanticTransformer",
    "SimpleTransformer",
    "TypeEngine",
    "TypeTransformer",
    "TypeTransformerFailedError",
    "UnionTransformer",
    "current_data_context",
    "data_context",
    "reset_data_context",
    "set_data_context",
    "set_default_data_context",
]
