"""Prometheus series specific to the datacatalog (the RPC series come from caddis._serving)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class CatalogMetrics:
    """Cache and reservation counters, registered on the server's own registry.

    Series:
        ``caddis_datacatalog_cache_hits_total``: GetArtifact by tag that found an artifact.
        ``caddis_datacatalog_cache_misses_total``: GetArtifact by tag that found none.
        ``caddis_datacatalog_reservations_granted_total``: GetOrExtendReservation that left the
            caller holding the reservation (new, taken over or extended).
        ``caddis_datacatalog_reservations_contended_total``: GetOrExtendReservation that found
            another owner holding it.
        ``caddis_datacatalog_reservations_released_total``: reservations released by owners.

    Args:
        registry: The server's registry.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.cache_hits = Counter(
            "caddis_datacatalog_cache_hits",
            "GetArtifact by tag that found an artifact.",
            registry=registry,
        )
        self.cache_misses = Counter(
            "caddis_datacatalog_cache_misses",
            "GetArtifact by tag that found no artifact.",
            registry=registry,
        )
        self.reservations_granted = Counter(
            "caddis_datacatalog_reservations_granted",
            "Reservations granted to or extended for the caller.",
            registry=registry,
        )
        self.reservations_contended = Counter(
            "caddis_datacatalog_reservations_contended",
            "Reservation requests that found another owner holding the reservation.",
            registry=registry,
        )
        self.reservations_released = Counter(
            "caddis_datacatalog_reservations_released",
            "Reservations released by their owner.",
            registry=registry,
        )


__all__ = ["CatalogMetrics"]
