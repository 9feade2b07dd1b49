"""Shared scaffolding for the caddis services (admin, propeller, datacatalog).

This package is deliberately empty at the top level: managers import
:mod:`caddis._serving.errors` (pure Python) and must not drag in grpc, Prometheus or
SQLAlchemy by doing so. The parts:

- :mod:`caddis._serving.errors`: domain errors that managers raise, mapped to gRPC status
  codes at the rpc edge.
- :mod:`caddis._serving.config`: :class:`~caddis._serving.config.ServerConfig`.
- :mod:`caddis._serving.server`: :class:`~caddis._serving.server.GrpcServer`, a sync gRPC
  server with health, reflection, a Prometheus ``/metrics`` endpoint and the error-mapping,
  metrics-recording interceptor.
- :mod:`caddis._serving.metrics`: the per-server Prometheus registry and RPC series.
- :mod:`caddis._serving.db`: SQLAlchemy engine and session helpers and programmatic Alembic
  upgrades.

Nothing here is imported by ``import caddis``.
"""
