"""Durable state of propeller: executions (engine state, leases) and the event outbox.

Only this package imports SQLAlchemy. :class:`~caddis_propeller.repository.database.Database`
owns the engine and runs transactions; :class:`~caddis_propeller.repository.repo.Repository`
holds the queries, each fenced by the execution lease where it writes engine state.
"""
