"""The type engine core: transformer base classes, the error type and the TypeEngine registry.

Speed is the point of the design. Every Python type is resolved once into a ``_Plan`` that
holds its transformer, its LiteralType and two specialised closures, ``encode(value) ->
Literal`` and ``decode(literal) -> value``. Plans are cached per type object, so converting an
``int`` costs one dict lookup plus the protobuf work; no typing introspection happens per call.

Built-in transformers override the private ``_compile`` hook to return fast closures; a
user-written transformer only implements the flytekit-shaped public methods, and the default
``_compile`` calls them with the current :class:`DataContext`.
"""

from __future__ import annotations

import dataclasses
import enum
import sys
import threading
import types
import typing
import warnings
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from caddis.core._transformers._context import DataContext, current_data_context
from caddis_idl.core.v1 import literals_pb2, types_pb2

__all__ = [
    "Decoder",
    "Encoder",
    "HashMethod",
    "PickleFallbackWarning",
    "SimpleTransformer",
    "TypeEngine",
    "TypeTransformer",
    "TypeTransformerFailedError",
    "type_name",
]

T = TypeVar("T")

Literal = literals_pb2.Literal
LiteralType = types_pb2.LiteralType
LiteralMap = literals_pb2.LiteralMap

Encoder = Callable[[Any], literals_pb2.Literal]
Decoder = Callable[[Any], Any]  # Literal -> value
BuiltinCodec = tuple[Callable[[Any], Any], Callable[[Any], Any]]

_NOTHING: Any = object()


def type_name(t: Any) -> str:
    """Returns a short, readable name of a Python type for error messages."""
    if isinstance(t, type) and not typing.get_args(t):
        if t.__module__ in ("builtins", "datetime"):
            return t.__qualname__
        return f"{t.__module__}.{t.__qualname__}"
    return repr(t).replace("typing.", "")


def _short_repr(value: Any, limit: int = 80) -> str:
    try:
        text = repr(value)
    except Exception:  # a broken __repr__ must not hide the real error
        text = f"<{type(value).__name__} object>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


class TypeTransformerFailedError(TypeError, AssertionError, ValueError):
    """A value could not be converted to or from a Literal.

    The message names the variable (when known), the path inside it (``xs[3].name``), the
    expected type and the type of the value that was received.

    Attributes:
        variable: Name of the input/output variable being converted, when the caller gave one.
        path: Steps into the value at which conversion failed (``"[3]"``, ``".name"``).
        expected: Display name of the expected type.
        received_type: Display name of the received value's type.
    """

    def __init__(
        self,
        message: str = "",
        *,
        expected: str | None = None,
        received: Any = _NOTHING,
        variable: str | None = None,
    ) -> None:
        super().__init__(message)
        self.detail = message
        self.expected = expected
        self.received_type: str | None = None
        self.received_repr: str | None = None
        if received is not _NOTHING:
            self.received_type = type_name(type(received))
            self.received_repr = _short_repr(received)
        self.variable = variable
        self.path: list[str] = []

    def __str__(self) -> str:
        where = (self.variable or "") + "".join(reversed(self.path))
        bits: list[str] = []
        if self.expected is not None:
            bits.append(f"expected {self.expected}")
        if self.received_type is not None:
            received = f"received {self.received_type}"
            bits.append(f"{received} {self.received_repr}" if self.received_repr else received)
        if self.detail:
            bits.append(self.detail)
        body = ", ".join(bits)
        return f"Cannot convert '{where}': {body}" if where else body


def failed(expected: Any, value: Any, detail: str = "") -> TypeTransformerFailedError:
    """Builds the standard 'expected X, received Y' error (for transformer authors)."""
    exp = expected if isinstance(expected, str) else type_name(expected)
    return TypeTransformerFailedError(detail, expected=exp, received=value)


class PickleFallbackWarning(UserWarning):
    """A type has no transformer and its values are pickled (not portable, not inspectable)."""


class HashMethod(Generic[T]):
    """Computes ``Literal.hash`` for a value: use as ``Annotated[T, HashMethod(fn)]``.

    Cache keys use the hash instead of the literal's bytes, so values whose serialized form
    changes run to run (a dataframe written to a fresh URI) can still hit the cache.

    Args:
        function: Returns a string hash of the Python value.
    """

    def __init__(self, function: Callable[[T], str]) -> None:
        self._function = function

    def calculate(self, obj: T) -> str:
        """Returns the hash of ``obj``."""
        return self._function(obj)


class TypeTransformer(Generic[T]):
    """Converts between a Python type and Literals; subclass it to add a type.

    The public methods follow flytekit's names and signatures, so an existing flytekit
    transformer ports by changing its imports. ``ctx`` is the current
    :class:`~caddis.core.type_engine.DataContext` (raw-data prefix, local directory, store).

    Args:
        name: Display name of the transformer.
        t: The Python type it handles (subclasses are matched too).
        enable_type_assertions: Whether :meth:`assert_type` checks values.
    """

    def __init__(self, name: str, t: type[T], enable_type_assertions: bool = True) -> None:
        self._name = name
        self._t = t
        self._type_assertions_enabled = enable_type_assertions

    @property
    def name(self) -> str:
        """Display name of the transformer."""
        return self._name

    @property
    def python_type(self) -> type[T]:
        """The Python type this transformer handles."""
        return self._t

    @property
    def type_assertions_enabled(self) -> bool:
        """Whether :meth:`assert_type` checks values."""
        return self._type_assertions_enabled

    def assert_type(self, t: type[T], v: T) -> None:
        """Raises TypeTransformerFailedError when ``v`` is not a value of ``t``.

        Args:
            t: The declared Python type.
            v: The value to check.
        """
        if not self._type_assertions_enabled:
            return
        origin = typing.get_origin(t) or t
        if isinstance(origin, type) and not isinstance(v, origin):
            raise failed(t, v)

    def get_literal_type(self, t: type[T]) -> types_pb2.LiteralType:
        """Returns the LiteralType of the Python type ``t``.

        Args:
            t: The Python type (possibly a parametrised generic).
        """
        raise NotImplementedError(f"{type(self).__name__}.get_literal_type")

    def to_literal(
        self,
        ctx: DataContext,
        python_val: T,
        python_type: type[T],
        expected: types_pb2.LiteralType,
    ) -> literals_pb2.Literal:
        """Converts a Python value to a Literal.

        Args:
            ctx: The data context (where referenced data is uploaded).
            python_val: The value.
            python_type: Its declared Python type.
            expected: The declared LiteralType.

        Raises:
            TypeTransformerFailedError: The value does not fit the type.
        """
        raise NotImplementedError(f"{type(self).__name__}.to_literal")

    def to_python_value(
        self, ctx: DataContext, lv: literals_pb2.Literal, expected_python_type: type[T]
    ) -> T:
        """Converts a Literal to a Python value of ``expected_python_type``.

        Args:
            ctx: The data context (where referenced data is downloaded).
            lv: The literal.
            expected_python_type: The Python type to produce.

        Raises:
            TypeTransformerFailedError: The literal does not hold a value of the type.
        """
        raise NotImplementedError(f"{type(self).__name__}.to_python_value")

    def guess_python_type(self, literal_type: types_pb2.LiteralType) -> type[T]:
        """Returns a Python type for ``literal_type``, or raises ValueError if it is not ours.

        Args:
            literal_type: A LiteralType, typically read from a remote interface.
        """
        raise ValueError(f"{self.name} cannot guess a Python type for {literal_type}")

    # -- private hooks used by TypeEngine; built-in transformers override them for speed --

    def _matches(self, t: Any) -> bool:
        """Whether this transformer handles ``t`` though it is not registered for it exactly."""
        return False

    def _compile(self, t: Any, lt: types_pb2.LiteralType) -> tuple[Encoder, Decoder]:
        def encode(value: Any) -> Any:
            return self.to_literal(current_data_context(), value, t, lt)

        def decode(lit: Any) -> Any:
            return self.to_python_value(current_data_context(), lit, t)

        return encode, decode

    def _fill_hook(self) -> Callable[[Any, Any], None] | None:
        """Optionally returns ``fill(literal, value)`` writing into an existing, empty Literal."""
        return None

    def _builtin_codec(self, t: Any, plan: _Plan) -> BuiltinCodec:
        """Returns (to_builtin, from_builtin) used inside msgpack containers (dataclass fields).

        The default embeds the serialized Literal as msgpack bytes, which round-trips any type.
        """
        encode, decode = plan.encode, plan.decode

        def to_builtin(value: Any) -> Any:
            return encode(value).SerializeToString(deterministic=True)

        def from_builtin(obj: Any) -> Any:
            if not isinstance(obj, bytes):
                raise failed("serialized literal bytes", obj)
            return decode(Literal.FromString(obj))

        return to_builtin, from_builtin


class SimpleTransformer(TypeTransformer[T]):
    """A transformer for a type that maps to a fixed LiteralType through two functions.

    Args:
        name: Display name.
        t: The Python type.
        lt: Its LiteralType.
        to_literal_transformer: Converts a value to a Literal.
        from_literal_transformer: Converts a Literal back to a value.
    """

    def __init__(
        self,
        name: str,
        t: type[T],
        lt: types_pb2.LiteralType,
        to_literal_transformer: Callable[[T], literals_pb2.Literal],
        from_literal_transformer: Callable[[literals_pb2.Literal], T],
    ) -> None:
        super().__init__(name, t)
        self._lt = lt
        self._to_literal_transformer = to_literal_transformer
        self._from_literal_transformer = from_literal_transformer

    def get_literal_type(self, t: type[T] | None = None) -> types_pb2.LiteralType:
        """Returns the fixed LiteralType."""
        out = LiteralType()
        out.CopyFrom(self._lt)
        return out

    def to_literal(
        self,
        ctx: DataContext,
        python_val: T,
        python_type: type[T],
        expected: types_pb2.LiteralType,
    ) -> literals_pb2.Literal:
        """Checks the value's type and converts it."""
        self.assert_type(python_type, python_val)
        return self._to_literal_transformer(python_val)

    def to_python_value(
        self, ctx: DataContext, lv: literals_pb2.Literal, expected_python_type: type[T]
    ) -> T:
        """Converts the literal back."""
        return self._from_literal_transformer(lv)

    def guess_python_type(self, literal_type: types_pb2.LiteralType) -> type[T]:
        """Returns the Python type when ``literal_type`` is this transformer's type."""
        if literal_type == self._lt:
            return self._t
        raise ValueError(f"{self.name} cannot guess a Python type for {literal_type}")


class _Plan:
    """A Python type resolved once: its transformer, LiteralType and conversion closures."""

    __slots__ = (
        "_builtin",
        "decode",
        "encode",
        "fill",
        "literal_type",
        "python_type",
        "transformer",
    )

    def __init__(
        self,
        python_type: Any,
        transformer: TypeTransformer[Any],
        literal_type: types_pb2.LiteralType,
        encode: Encoder,
        decode: Decoder,
    ) -> None:
        self.python_type = python_type
        self.transformer = transformer
        self.literal_type = literal_type
        self.encode = encode
        self.decode = decode
        self.fill = transformer._fill_hook()
        self._builtin: BuiltinCodec | None = None

    def builtin(self) -> BuiltinCodec:
        """The (to_builtin, from_builtin) pair for this type, compiled on first use."""
        codec = self._builtin
        if codec is None:
            codec = self._builtin = self.transformer._builtin_codec(self.python_type, self)
        return codec


class _RecursivePlan(_Plan):
    """Stands in for a plan still being built (a dataclass that refers to itself)."""

    def __init__(self, python_type: Any) -> None:
        lt = LiteralType(simple=types_pb2.SIMPLE_TYPE_STRUCT)
        lt.structure.tag = type_name(python_type)

        def encode(value: Any) -> Any:
            return TypeEngine._plan(python_type).encode(value)

        def decode(lit: Any) -> Any:
            return TypeEngine._plan(python_type).decode(lit)

        super().__init__(python_type, _PENDING, lt, encode, decode)

    def builtin(self) -> BuiltinCodec:
        t = self.python_type

        def to_builtin(value: Any) -> Any:
            return TypeEngine._plan(t).builtin()[0](value)

        def from_builtin(obj: Any) -> Any:
            return TypeEngine._plan(t).builtin()[1](obj)

        return to_builtin, from_builtin


_PENDING: TypeTransformer[Any] = TypeTransformer("pending", object)

# Cached plans per type object. Unhashable type objects (Annotated with dict metadata) are
# cached by id, holding a reference so the id cannot be reused.
_PLANS: dict[Any, _Plan] = {}
_PLANS_BY_ID: dict[int, tuple[Any, _Plan]] = {}
_building: set[Any] = set()
_lock = threading.RLock()


class TypeEngine:
    """Converts Python values to Literals and back, by Python type.

    All methods are classmethods; the registry is process-wide. Conversions are cached per
    type, so repeated conversions of the same type do no typing introspection.
    """

    _REGISTRY: dict[Any, TypeTransformer[Any]] = {}
    # Transformers matched by predicate (dataclasses, enums, dataframes...), in order.
    _MATCHERS: list[TypeTransformer[Any]] = []
    _builtins_loaded = False

    # -- registry --

    @classmethod
    def register(
        cls,
        transformer: TypeTransformer[Any],
        additional_types: list[Any] | None = None,
    ) -> None:
        """Registers ``transformer`` for its Python type (and any ``additional_types``).

        A later registration for the same type replaces the earlier one; cached conversions
        are discarded so that the new transformer takes effect.

        Args:
            transformer: The transformer.
            additional_types: More Python types it handles.
        """
        cls._ensure_builtins()
        with _lock:
            for t in [transformer.python_type, *(additional_types or [])]:
                cls._REGISTRY[t] = transformer
            _PLANS.clear()
            _PLANS_BY_ID.clear()

    @classmethod
    def _register_matcher(cls, transformer: TypeTransformer[Any]) -> None:
        with _lock:
            cls._MATCHERS.append(transformer)
            _PLANS.clear()
            _PLANS_BY_ID.clear()

    @classmethod
    def _ensure_builtins(cls) -> None:
        if cls._builtins_loaded:
            return
        with _lock:
            if cls._builtins_loaded:
                return
            cls._builtins_loaded = True
            from caddis.core._transformers import _builtins

            _builtins.register_all(cls)

    @classmethod
    def get_transformer(cls, python_type: Any) -> TypeTransformer[Any]:
        """Returns the transformer that handles ``python_type``.

        Args:
            python_type: A Python type, for example ``int``, ``List[int]``, a dataclass.
        """
        return cls._plan(python_type).transformer

    @classmethod
    def _plan(cls, python_type: Any) -> _Plan:
        try:
            return _PLANS[python_type]
        except KeyError:
            pass
        except TypeError:  # unhashable type object
            entry = _PLANS_BY_ID.get(id(python_type))
            if entry is not None and entry[0] is python_type:
                return entry[1]
        return cls._build_plan(python_type)

    @classmethod
    def _build_plan(cls, python_type: Any) -> _Plan:
        cls._ensure_builtins()
        with _lock:
            key_hashable = True
            try:
                hash(python_type)
            except TypeError:
                key_hashable = False
            in_progress_key = python_type if key_hashable else id(python_type)
            if in_progress_key in _building:
                return _RecursivePlan(python_type)
            _building.add(in_progress_key)
            try:
                transformer = cls._find_transformer(python_type)
                lt = transformer.get_literal_type(python_type)
                encode, decode = transformer._compile(python_type, lt)
                plan = _Plan(python_type, transformer, lt, encode, decode)
            finally:
                _building.discard(in_progress_key)
            if key_hashable:
                _PLANS[python_type] = plan
            else:
                _PLANS_BY_ID[id(python_type)] = (python_type, plan)
            return plan

    @classmethod
    def _find_transformer_quiet(cls, t: Any) -> TypeTransformer[Any] | None:
        """The transformer for ``t``, or None where values would be pickled (no warning)."""
        cls._ensure_builtins()
        try:
            return cls._find_transformer(t, quiet=True)
        except TypeTransformerFailedError:
            return None

    @classmethod
    def _find_transformer(cls, t: Any, quiet: bool = False) -> TypeTransformer[Any] | Any:
        registry = cls._REGISTRY
        if typing.get_origin(t) is typing.Annotated:
            return registry[typing.Annotated]
        if isinstance(t, str | typing.ForwardRef):
            raise TypeTransformerFailedError(
                f"Unresolved forward reference {t!r}: define the type before it is used or "
                "use typing.get_type_hints to resolve annotations."
            )
        try:
            found = registry.get(t)
        except TypeError:
            found = None
        if found is not None:
            return found
        origin = typing.get_origin(t)
        if origin is not None:
            if origin is typing.Union or origin is types.UnionType:
                return registry[typing.Union]
            found = registry.get(origin)
            if found is not None:
                return found
        for matcher in cls._MATCHERS:
            if matcher._matches(t):
                return matcher
        if isinstance(t, type):
            for base in t.__mro__[1:]:
                found = registry.get(base)
                if found is not None and base is not object:
                    return found
        if isinstance(t, TypeVar):
            raise TypeTransformerFailedError(
                f"Cannot convert values of the unbound type variable {t!r}: declare a concrete "
                "type."
            )
        if quiet:
            return None
        warnings.warn(
            f"Unsupported type {type_name(t)}: values of it are pickled (PythonPickle blob). "
            "Pickles only load with the same code and library versions; register a "
            "TypeTransformer for a portable format.",
            PickleFallbackWarning,
            stacklevel=4,
        )
        return registry[_PickleMarker]

    # -- types --

    @classmethod
    def to_literal_type(cls, python_type: Any) -> types_pb2.LiteralType:
        """Returns the LiteralType of a Python type.

        Args:
            python_type: The Python type.

        Returns:
            A new LiteralType message (safe to modify).
        """
        out = LiteralType()
        out.CopyFrom(cls._plan(python_type).literal_type)
        return out

    @classmethod
    def guess_python_type(cls, literal_type: types_pb2.LiteralType) -> Any:
        """Returns a Python type for a LiteralType (for interfaces fetched from a server).

        User-registered transformers are asked first, then the built-in rules apply:
        collections become ``List``, maps ``Dict[str, T]``, unions ``Union``, enums a new
        ``Enum``, dataclass structs a new dataclass, blobs ``FlyteFile``/``FlyteDirectory``.

        Args:
            literal_type: The LiteralType.

        Raises:
            ValueError: No Python type is known for it.
        """
        cls._ensure_builtins()
        from caddis.core._transformers import _builtins

        builtin_ids = _builtins.builtin_transformer_ids()
        for transformer in list(cls._REGISTRY.values()) + cls._MATCHERS:
            if id(transformer) in builtin_ids:
                continue
            try:
                return transformer.guess_python_type(literal_type)
            except (ValueError, NotImplementedError):
                continue
        return _builtins.guess_builtin(literal_type)

    # -- builtin (msgpack/JSON-like) form --

    @classmethod
    def to_builtin(cls, value: Any, python_type: Any) -> Any:
        """Converts a value to its plain form: the one used inside MessagePack structs.

        Dicts with sorted keys, lists, str, int, float, bool, None and bytes; a dataclass
        becomes a dict of its fields, a file ``{"path": uri}`` (after uploading it). Useful
        for CLIs and UIs that take values as JSON.

        Args:
            value: The value.
            python_type: Its declared Python type.

        Raises:
            TypeTransformerFailedError: The value does not fit the type.
        """
        return cls._plan(python_type).builtin()[0](value)

    @classmethod
    def from_builtin(cls, obj: Any, python_type: Any) -> Any:
        """Converts a plain form (as :meth:`to_builtin` gives, or parsed JSON) to a value.

        Args:
            obj: The plain form.
            python_type: The Python type to produce.

        Raises:
            TypeTransformerFailedError: ``obj`` does not describe a value of the type.
        """
        return cls._plan(python_type).builtin()[1](obj)

    # -- values --

    @classmethod
    def to_literal(
        cls,
        value: Any,
        python_type: Any,
        expected: types_pb2.LiteralType | None = None,
        *,
        name: str | None = None,
    ) -> literals_pb2.Literal:
        """Converts a Python value of ``python_type`` to a Literal.

        Args:
            value: The value.
            python_type: Its declared Python type.
            expected: The declared LiteralType; only user transformers look at it (built-in
                ones derive it from ``python_type``).
            name: Variable name, used in error messages.

        Raises:
            TypeTransformerFailedError: The value does not fit the type; the message names the
                variable, the expected type and the received value's type.
        """
        try:
            plan = _PLANS[python_type]
        except (KeyError, TypeError):
            plan = cls._plan(python_type)
        try:
            return plan.encode(value)
        except TypeTransformerFailedError as exc:
            raise _with_context(exc, name, plan, value) from None
        except (TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise _wrap(exc, name, plan, value) from exc

    @classmethod
    def to_python_value(
        cls, literal: literals_pb2.Literal, python_type: Any, *, name: str | None = None
    ) -> Any:
        """Converts a Literal to a Python value of ``python_type``.

        Args:
            literal: The literal.
            python_type: The Python type to produce.
            name: Variable name, used in error messages.

        Raises:
            TypeTransformerFailedError: The literal does not hold a value of the type.
        """
        try:
            plan = _PLANS[python_type]
        except (KeyError, TypeError):
            plan = cls._plan(python_type)
        try:
            return plan.decode(literal)
        except TypeTransformerFailedError as exc:
            if literal.WhichOneof("value") == "offloaded_metadata":
                # Checked only on failure: offloaded literals are rare, the fast path stays bare.
                from caddis.core._transformers._blobs import load_offloaded

                return cls.to_python_value(load_offloaded(literal), python_type, name=name)
            raise _with_context(exc, name, plan, _LiteralDescription(literal)) from None
        except (TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise _wrap(exc, name, plan, _LiteralDescription(literal)) from exc

    @classmethod
    def dict_to_literal_map(
        cls,
        values: dict[str, Any],
        python_types: dict[str, Any],
    ) -> literals_pb2.LiteralMap:
        """Converts named Python values to a LiteralMap (keys in sorted order).

        Args:
            values: Values by variable name.
            python_types: Declared Python types by variable name.

        Raises:
            TypeTransformerFailedError: A value has no declared type or does not fit it.
        """
        lm = LiteralMap()
        literals = lm.literals
        for key in sorted(values):
            try:
                t = python_types[key]
            except KeyError:
                raise TypeTransformerFailedError(
                    f"Cannot convert '{key}': it is not a declared variable "
                    f"(declared: {sorted(python_types)})"
                ) from None
            try:
                plan = _PLANS[t]
            except (KeyError, TypeError):
                plan = cls._plan(t)
            fill = plan.fill
            if fill is not None:
                # Primitives are written straight into the map entry: no copy.
                try:
                    fill(literals[key], values[key])
                    continue
                except TypeTransformerFailedError as exc:
                    del literals[key]
                    raise _with_context(exc, key, plan, values[key]) from None
                except (TypeError, ValueError, OverflowError) as exc:  # int64 overflow
                    del literals[key]
                    raise _wrap(exc, key, plan, values[key]) from exc
            literals[key].CopyFrom(cls.to_literal(values[key], t, name=key))
        return lm

    @classmethod
    def literal_map_to_kwargs(
        cls,
        lm: literals_pb2.LiteralMap,
        python_types: dict[str, Any],
    ) -> dict[str, Any]:
        """Converts a LiteralMap to keyword arguments.

        Variables absent from ``lm`` are absent from the result (the caller applies defaults).

        Args:
            lm: The literal map.
            python_types: Declared Python types by variable name.

        Raises:
            TypeTransformerFailedError: ``lm`` holds an undeclared variable or a value that
                does not fit its type.
        """
        out: dict[str, Any] = {}
        for key, lit in lm.literals.items():
            try:
                t = python_types[key]
            except KeyError:
                raise TypeTransformerFailedError(
                    f"Received a value for '{key}', which is not a declared variable "
                    f"(declared: {sorted(python_types)})"
                ) from None
            out[key] = cls.to_python_value(lit, t, name=key)
        return out


class _PickleMarker:
    """Registry key of the pickle fallback transformer."""


class _LiteralDescription:
    """Stands in for a received literal in error messages ("received literal integer")."""

    __slots__ = ("literal",)

    def __init__(self, literal: Any) -> None:
        self.literal = literal


def describe_literal(lit: Any) -> str:
    """Returns a short description of what a Literal holds (``integer``, ``blob``, ...)."""
    if not isinstance(lit, Literal):
        return type_name(type(lit))
    kind = lit.WhichOneof("value")
    if kind == "scalar":
        scalar_kind = lit.scalar.WhichOneof("value")
        if scalar_kind == "primitive":
            return f"literal {lit.scalar.primitive.WhichOneof('value')}"
        return f"literal {scalar_kind}"
    return f"literal {kind}"


def _fill_received(exc: TypeTransformerFailedError, value: Any) -> None:
    if exc.received_type is None and value is not _NOTHING:
        if isinstance(value, _LiteralDescription):
            exc.received_type = describe_literal(value.literal)
            exc.received_repr = ""
        else:
            exc.received_type = type_name(type(value))
            exc.received_repr = _short_repr(value)


def _with_context(
    exc: TypeTransformerFailedError, name: str | None, plan: _Plan, value: Any
) -> TypeTransformerFailedError:
    if name is not None and exc.variable is None:
        exc.variable = name
    if not exc.path:
        # Only a top-level failure is about the value and type we know here; a failure inside
        # a container already names the element's expected and received types.
        if exc.expected is None:
            exc.expected = type_name(plan.python_type)
        _fill_received(exc, value)
    return exc


def _wrap(exc: Exception, name: str | None, plan: _Plan, value: Any) -> TypeTransformerFailedError:
    new = TypeTransformerFailedError(
        f"{type(exc).__name__}: {exc}", expected=type_name(plan.python_type), variable=name
    )
    _fill_received(new, value)
    return new


def add_path(exc: TypeTransformerFailedError, step: str) -> TypeTransformerFailedError:
    """Records that ``exc`` happened at ``step`` inside a container (``[3]``, ``.name``)."""
    exc.path.append(step)
    return exc


def is_dataclass_type(t: Any) -> bool:
    """Whether ``t`` is a dataclass class (not an instance)."""
    return isinstance(t, type) and dataclasses.is_dataclass(t)


def is_enum_type(t: Any) -> bool:
    """Whether ``t`` is an Enum class."""
    return isinstance(t, type) and issubclass(t, enum.Enum)


def loaded_module(name: str) -> Any:
    """Returns the module if it is already imported, else None (never imports it)."""
    return sys.modules.get(name)
