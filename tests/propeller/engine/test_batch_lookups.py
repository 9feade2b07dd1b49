"""Array nodes look their items up, and record them, in batches when the catalog can."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from caddis_idl.core.v1 import execution_pb2, literals_pb2
from caddis_propeller.engine import EngineConfig
from caddis_propeller.engine.cache_keys import CacheKey
from caddis_propeller.engine.memory import InMemoryCatalog
from tests.propeller.compiler.builders import INT, LIST_INT, array_node, ref, task, workflow
from tests.propeller.engine.harness import Env, make_env

CS = execution_pb2.CatalogCacheStatus
SQ = task("sq", {"x": INT}, {"o": INT}, cacheable=True)


class BatchingCatalog(InMemoryCatalog):
    """The in-memory catalog with ``lookup_many``, recording the size of each batch."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []
        self.put_batches: list[int] = []
        self.attempts = 0
        self.down = False
        self.puts_down = False
        self.single_puts = 0

    def put(self, key: CacheKey, outputs: literals_pb2.LiteralMap, *, overwrite: bool) -> None:
        self.single_puts += 1
        super().put(key, outputs, overwrite=overwrite)

    def lookup_many(self, keys: Sequence[CacheKey]) -> list[literals_pb2.LiteralMap | None]:
        self.attempts += 1
        if self.down:
            raise ConnectionError("catalog down")
        self.batches.append(len(keys))
        return [self.entries.get(k) for k in keys]

    def put_many(self, entries: Sequence[tuple[CacheKey, literals_pb2.LiteralMap]]) -> list[bool]:
        if self.puts_down:
            raise ConnectionError("catalog down")
        self.put_batches.append(len(entries))
        for key, outputs in entries:
            self.entries.setdefault(key, outputs)
        return [True] * len(entries)


def mapped(parallelism: int | None = None) -> Any:
    return workflow(
        "wf",
        {"xs": LIST_INT},
        {"ys": LIST_INT},
        [array_node("m", SQ, {"x": ref("start-node", "xs")}, parallelism=parallelism)],
        {"ys": ref("m", "o")},
    )


def batching_env(per_round: int = 100) -> tuple[Env, BatchingCatalog]:
    catalog = BatchingCatalog()
    env = make_env(
        {"sq": lambda x: {"o": x * x}},
        config=EngineConfig(array_items_per_round=per_round),
        catalog=catalog,
    )
    return env, catalog


def item_cache(state: Any) -> list[int]:
    node = next(ns for ns in state.root.nodes if ns is not None and ns.array is not None)
    return list(node.array.cache)


def test_a_cached_rerun_looks_items_up_in_batches_and_runs_nothing() -> None:
    env, catalog = batching_env(per_round=100)
    xs = list(range(250))
    env.execute(mapped(), [SQ], {"xs": xs}, name="first")
    assert len(env.runner.calls) == 250
    catalog.batches.clear()
    state, _ = env.execute(mapped(), [SQ], {"xs": xs}, name="rerun")
    assert env.outputs(state) == {"ys": [x * x for x in xs]}
    assert len(env.runner.calls) == 250  # nothing ran again
    assert catalog.lookups == 0  # no single lookups
    assert sum(catalog.batches) == 250
    assert max(catalog.batches) <= 100  # bounded by the round's item budget
    assert item_cache(state) == [CS.CATALOG_CACHE_STATUS_HIT] * 250


def test_items_looked_up_ahead_still_start_when_parallelism_allows() -> None:
    env, catalog = batching_env(per_round=50)
    env.execute(mapped(), [SQ], {"xs": list(range(0, 40, 2))}, name="evens")
    calls_before = len(env.runner.calls)
    xs = list(range(40))  # the odd half is new
    state, _ = env.execute(mapped(parallelism=3), [SQ], {"xs": xs}, name="mixed")
    assert env.outputs(state) == {"ys": [x * x for x in xs]}
    assert len(env.runner.calls) - calls_before == 20  # only the misses ran
    expected = [CS.CATALOG_CACHE_STATUS_HIT, CS.CATALOG_CACHE_STATUS_POPULATED] * 20
    assert item_cache(state) == expected
    assert sum(catalog.batches) == 40 + 20  # each item looked up once in each run
    assert catalog.lookups == 0


def test_a_failed_batch_lookup_runs_the_items_uncached() -> None:
    env, catalog = batching_env()
    catalog.down = True
    xs = [1, 2, 3]
    state, _ = env.execute(mapped(), [SQ], {"xs": xs})
    assert env.outputs(state) == {"ys": [1, 4, 9]}
    assert len(env.runner.calls) == 3
    assert catalog.attempts == 1 and catalog.lookups == 0  # one failed batch, no fallback
    assert len(catalog.entries) == 3  # the results were still recorded
    assert item_cache(state) == [CS.CATALOG_CACHE_STATUS_POPULATED] * 3


def test_finished_items_are_recorded_in_batches() -> None:
    env, catalog = batching_env(per_round=100)
    xs = list(range(250))
    state, _ = env.execute(mapped(), [SQ], {"xs": xs})
    assert env.outputs(state) == {"ys": [x * x for x in xs]}
    assert sum(catalog.put_batches) == 250
    assert len(catalog.put_batches) < 250 / 10  # batches, not one call per item
    assert catalog.single_puts == 0
    assert item_cache(state) == [CS.CATALOG_CACHE_STATUS_POPULATED] * 250


def test_a_failed_batch_put_reports_put_failure_and_the_node_still_succeeds() -> None:
    env, catalog = batching_env()
    catalog.puts_down = True
    state, _ = env.execute(mapped(), [SQ], {"xs": [1, 2, 3]})
    assert env.outputs(state) == {"ys": [1, 4, 9]}
    assert catalog.entries == {}
    assert item_cache(state) == [CS.CATALOG_CACHE_STATUS_PUT_FAILURE] * 3
