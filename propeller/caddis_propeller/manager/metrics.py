"""Propeller's Prometheus series (registered on the server's registry).

Names follow ``caddis_propeller_*``; latency series are histograms in seconds.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_FAST = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class PropellerMetrics:
    """Every series propeller records.

    Args:
        registry: The registry (the gRPC server's, so ``/metrics`` serves them).
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r: Any = registry if registry is not None else CollectorRegistry()
        self.registry = r
        self.round_latency = Histogram(
            "caddis_propeller_round_seconds",
            "Duration of one engine round incl. persist",
            buckets=_FAST,
            registry=r,
        )
        self.round_errors = Counter(
            "caddis_propeller_round_errors", "Rounds that raised (system errors)", registry=r
        )
        self.queue_depth = Gauge(
            "caddis_propeller_queue_depth", "Executions waiting in the ready queue", registry=r
        )
        self.active = Gauge(
            "caddis_propeller_active_executions", "Executions this replica holds", registry=r
        )
        self.node_transition = Histogram(
            "caddis_propeller_node_transition_seconds",
            "Time between consecutive phase changes of a node, by the new phase",
            ["phase"],
            buckets=_FAST,
            registry=r,
        )
        self.task_start = Histogram(
            "caddis_propeller_task_start_seconds",
            "Time from an attempt being queued to its process (or warm job) starting",
            buckets=_FAST,
            registry=r,
        )
        self.cache = Counter(
            "caddis_propeller_cache",
            "Catalog outcomes (hit, miss, put, put_failure, lookup_failure)",
            ["outcome"],
            registry=r,
        )
        self.node_time = Histogram(
            "caddis_propeller_node_time_seconds",
            "Where a task node's time goes: queued, plugin_start, user_code, output_upload, "
            "input_download",
            ["part"],
            buckets=_FAST,
            registry=r,
        )
        self.events_sent = Counter(
            "caddis_propeller_events",
            "Events delivered to admin by outcome",
            ["outcome"],
            registry=r,
        )
        self.outbox = Gauge(
            "caddis_propeller_outbox_size", "Events waiting for delivery", registry=r
        )
        self.leases_lost = Counter(
            "caddis_propeller_leases_lost",
            "Executions whose lease another replica took",
            registry=r,
        )
        self.streak = Histogram(
            "caddis_propeller_streak_length",
            "Rounds per pick",
            buckets=(1, 2, 4, 8, 16),
            registry=r,
        )
        self.retention_removed = Counter(
            "caddis_propeller_retention_removed",
            "What the retention janitor removed: executions (rows with their engine state) and "
            "attempt_dirs (the process plugin's attempt directories)",
            ["what"],
            registry=r,
        )
        for what in ("executions", "attempt_dirs"):
            self.retention_removed.labels(what)  # export 0 before the first removal
        self.retention_run = Histogram(
            "caddis_propeller_retention_run_seconds",
            "Duration of one retention janitor run",
            buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300),
            registry=r,
        )
        self.retention_last_success = Gauge(
            "caddis_propeller_retention_last_success_timestamp_seconds",
            "When the retention janitor last finished a run without error (epoch seconds)",
            registry=r,
        )


__all__ = ["PropellerMetrics"]
