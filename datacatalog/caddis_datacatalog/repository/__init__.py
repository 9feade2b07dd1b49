"""Persistence of the datacatalog: SQLAlchemy models, queries, proto conversion, migrations.

The only layer that imports SQLAlchemy. Managers get a
:class:`~caddis_datacatalog.repository.repo.CatalogRepository` bound to one transaction,
which the rpc layer opens through :class:`~caddis_datacatalog.repository.database.Database`.
"""
