"""Canonical hashing of literals and the cache identity of a task.

Cache identity (DESIGN.md "Cache identity"):

- **Dataset** = (project, domain, task name, ``cache_version`` + "-" + interface signature).
  The task *version* is deliberately not part of it: re-registering unchanged code keeps
  its cache; bump ``cache_version`` to invalidate.
- **Tag** = hash of the input LiteralMap minus ``cache_ignore_input_vars``.

The literal hash is independent of map ordering (keys are sorted), ignores ``Literal.metadata``,
and honours ``Literal.hash``: a literal carrying a user-supplied hash (e.g. of a file's
content) is represented by that hash alone. Binary (msgpack) values are hashed as given: the SDK
must encode them canonically (sorted keys) for hits to be stable. Struct (``generic``) values are
hashed as sorted-key JSON. It is computed by walking the message, never by serializing it, so
it does not depend on protobuf's (unspecified) serialization order.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from google.protobuf import struct_pb2

from caddis_idl.core.v1 import interface_pb2, literals_pb2, tasks_pb2, types_pb2

_HASH_PREFIX = "caddis-"


@dataclass(frozen=True, slots=True)
class CacheKey:
    """Where a task's memoized outputs live in the catalog.

    Attributes:
        project: Task project.
        domain: Task domain.
        name: Task name.
        version: ``{cache_version}-{interface signature}``.
        tag: Hash of the (non-ignored) inputs.
    """

    project: str
    domain: str
    name: str
    version: str
    tag: str

    def __str__(self) -> str:
        return f"{self.project}/{self.domain}/{self.name}@{self.version}:{self.tag}"


def _b64(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _lenp(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _struct_value(v: struct_pb2.Value) -> Any:
    kind = v.WhichOneof("kind")
    if kind == "struct_value":
        return {k: _struct_value(x) for k, x in v.struct_value.fields.items()}
    if kind == "list_value":
        return [_struct_value(x) for x in v.list_value.values]
    if kind == "null_value" or kind is None:
        return None
    return getattr(v, kind)


def _feed_literal(h: Any, lit: literals_pb2.Literal) -> None:
    if lit.hash:
        h.update(b"H" + _lenp(lit.hash.encode()))
        return
    kind = lit.WhichOneof("value")
    if kind == "scalar":
        _feed_scalar(h, lit.scalar)
    elif kind == "collection":
        items = lit.collection.literals
        h.update(b"C" + struct.pack(">I", len(items)))
        for item in items:
            _feed_literal(h, item)
    elif kind == "map":
        _feed_map(h, lit.map.literals.items())
    elif kind == "offloaded_metadata":
        h.update(b"O" + _lenp(lit.offloaded_metadata.uri.encode()))
    else:
        h.update(b"_")


def _feed_map(h: Any, items: Iterable[tuple[str, literals_pb2.Literal]]) -> None:
    ordered = sorted(items, key=lambda kv: kv[0])
    h.update(b"M" + struct.pack(">I", len(ordered)))
    for key, value in ordered:
        h.update(_lenp(key.encode()))
        _feed_literal(h, value)


def _feed_scalar(h: Any, sc: literals_pb2.Scalar) -> None:
    kind = sc.WhichOneof("value")
    if kind == "primitive":
        p = sc.primitive
        pk = p.WhichOneof("value")
        if pk == "integer":
            h.update(b"Pi" + _lenp(str(p.integer).encode()))
        elif pk == "float_value":
            h.update(b"Pf" + struct.pack(">d", p.float_value))
        elif pk == "string_value":
            h.update(b"Ps" + _lenp(p.string_value.encode()))
        elif pk == "boolean":
            h.update(b"Pb" + (b"1" if p.boolean else b"0"))
        elif pk == "datetime":
            h.update(b"Pt" + struct.pack(">qi", p.datetime.seconds, p.datetime.nanos))
        elif pk == "duration":
            h.update(b"Pd" + struct.pack(">qi", p.duration.seconds, p.duration.nanos))
        else:
            h.update(b"P_")
    elif kind == "none_type":
        h.update(b"N")
    elif kind == "union":
        # The chosen variant's value identifies the input; how the type was spelled does not.
        h.update(b"U")
        _feed_literal(h, sc.union.value)
    elif kind == "generic":
        doc = json.dumps(
            _struct_value(struct_pb2.Value(struct_value=sc.generic)),
            sort_keys=True,
            separators=(",", ":"),
        )
        h.update(b"G" + _lenp(doc.encode()))
    elif kind == "binary":
        h.update(b"B" + _lenp(sc.binary.tag.encode()) + _lenp(sc.binary.value))
    elif kind == "blob":
        bt = sc.blob.metadata.type
        h.update(
            b"F"
            + _lenp(sc.blob.uri.encode())
            + _lenp(bt.format.encode())
            + struct.pack(">i", int(bt.dimensionality))
        )
    elif kind == "structured_dataset":
        sd = sc.structured_dataset
        h.update(
            b"S"
            + _lenp(sd.uri.encode())
            + _lenp(sd.metadata.structured_dataset_type.format.encode())
        )
    elif kind == "error":
        h.update(b"E" + _lenp(sc.error.failed_node_id.encode()) + _lenp(sc.error.message.encode()))
    else:
        h.update(b"_")


def hash_literal(literal: literals_pb2.Literal) -> str:
    """Canonical hash of one literal (base64url of SHA-256, no padding)."""
    h = hashlib.sha256()
    _feed_literal(h, literal)
    return _b64(h.digest())


def hash_inputs(inputs: literals_pb2.LiteralMap, ignore: Iterable[str] = ()) -> str:
    """Canonical hash of an input map, leaving out the variables named in ``ignore``."""
    skip = set(ignore)
    h = hashlib.sha256()
    _feed_map(h, ((k, v) for k, v in inputs.literals.items() if k not in skip))
    return _HASH_PREFIX + _b64(h.digest())


def _type_bytes(t: types_pb2.LiteralType) -> bytes:
    # metadata carries SDK-specific annotations (e.g. JSON schemas) that must not split caches.
    clean = types_pb2.LiteralType()
    clean.CopyFrom(t)
    clean.ClearField("metadata")
    return clean.SerializeToString(deterministic=True)


def _varmap_hash(vm: interface_pb2.VariableMap) -> str:
    h = hashlib.sha256()
    for name in sorted(vm.variables):
        h.update(_lenp(name.encode()) + _lenp(_type_bytes(vm.variables[name].type)))
    return _b64(h.digest())[:8]


def interface_signature(interface: interface_pb2.TypedInterface) -> str:
    """Short hash of a task interface's input and output names and types (``ins-outs``)."""
    return f"{_varmap_hash(interface.inputs)}-{_varmap_hash(interface.outputs)}"


def cache_key(
    task: tasks_pb2.TaskTemplate,
    inputs: literals_pb2.LiteralMap,
    *,
    cache_version: str | None = None,
) -> CacheKey:
    """The catalog key of running ``task`` on ``inputs``.

    Args:
        task: The task template (its id, interface, cache version and ignore list are used).
        inputs: The resolved inputs.
        cache_version: Overrides ``task.metadata.cache_version`` (node metadata may set it).

    Returns:
        The CacheKey (dataset fields + tag).
    """
    version = (cache_version if cache_version else task.metadata.cache_version).strip()
    return CacheKey(
        project=task.id.project,
        domain=task.id.domain,
        name=task.id.name,
        version=f"{version}-{interface_signature(task.interface)}",
        tag=hash_inputs(inputs, task.metadata.cache_ignore_input_vars),
    )


def reservation_owner(execution_name: str, node_path: str, attempt: int) -> str:
    """Deterministic reservation owner id for one node attempt (stable across restarts)."""
    digest = hashlib.sha256(f"{execution_name}/{node_path}/{attempt}".encode()).digest()
    return _b64(digest)[:22]
