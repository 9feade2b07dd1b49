"""A cached multi-step pipeline: change the last step and only the last step runs again.

Every step is ``cache=True``. Re-running with the same inputs is served from the local cache
(``caddis cache info`` shows it); changing ``report_style`` changes only the input of the
last step, so ``load``, ``clean`` and ``features`` are cache hits and ``report`` runs.
``EXECUTIONS`` counts how often each step's body actually ran in this process.

Run it::

    caddis run examples/cached_pipeline.py pipeline --n 1000 --report_style short
    python examples/cached_pipeline.py
"""

from __future__ import annotations

from collections import Counter

from caddis import task, workflow

EXECUTIONS: Counter[str] = Counter()


@task(cache=True, cache_version="1")
def load(n: int) -> list[int]:
    """Produce the raw data (a deterministic pseudo-random sequence)."""
    EXECUTIONS["load"] += 1
    values, v = [], 12345
    for _ in range(n):
        v = (1103515245 * v + 12345) % 2**31
        values.append(v % 1000 - 100)
    return values


@task(cache=True, cache_version="1")
def clean(values: list[int]) -> list[int]:
    """Drop negative readings."""
    EXECUTIONS["clean"] += 1
    return [v for v in values if v >= 0]


@task(cache=True, cache_version="1")
def features(values: list[int]) -> dict[str, float]:
    """Summary statistics."""
    EXECUTIONS["features"] += 1
    n = len(values)
    mean = sum(values) / n if n else 0.0
    var = sum((v - mean) ** 2 for v in values) / n if n else 0.0
    return {"count": float(n), "mean": mean, "std": var**0.5, "max": float(max(values, default=0))}


@task(cache=True, cache_version="1")
def report(stats: dict[str, float], report_style: str) -> str:
    """Render the statistics."""
    EXECUTIONS["report"] += 1
    if report_style == "short":
        return f"n={stats['count']:.0f} mean={stats['mean']:.1f}"
    return ", ".join(f"{k}={v:.2f}" for k, v in sorted(stats.items()))


@workflow
def pipeline(n: int = 1000, report_style: str = "long") -> str:
    """load -> clean -> features -> report, each step cached."""
    return report(stats=features(values=clean(values=load(n=n))), report_style=report_style)


if __name__ == "__main__":
    print(pipeline(n=1000, report_style="long"))
    print(pipeline(n=1000, report_style="short"))
    print("step executions in this process:", dict(EXECUTIONS))
