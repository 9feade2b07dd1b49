"""Configuration of the datacatalog service (section ``datacatalog``, ``CADDIS_DATACATALOG_*``).

Example (YAML)::

    datacatalog:
      server: {host: 0.0.0.0, port: 8089, metrics_port: 9089}
      database: {url: "postgresql+psycopg://caddis@db:5432/caddis"}
      data_prefix: s3://caddis/datacatalog/
    storage:
      endpoint: minio:9000

Environment overrides: ``CADDIS_DATACATALOG_SERVER_PORT=0``,
``CADDIS_DATACATALOG_DATABASE_URL=sqlite:///catalog.db``, ``CADDIS_DATACATALOG_DATA_PREFIX=...``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from caddis._serving.config import DatabaseConfig, ServerConfig
from caddis.config import load_config


def _default_server() -> ServerConfig:
    return ServerConfig(port=8089, metrics_port=9089)


def _default_database() -> DatabaseConfig:
    return DatabaseConfig(url="sqlite:///" + os.path.expanduser("~/.caddis/datacatalog.db"))


@dataclass(frozen=True)
class DataCatalogConfig:
    """Settings of the datacatalog service.

    Attributes:
        server: gRPC and metrics listeners.
        database: The SQL database holding datasets, artifacts, tags and reservations.
        data_prefix: Blob prefix (``s3://bucket/path`` or ``file:///dir``) for artifact values
            too large to keep inline; empty means ``datacatalog/`` under the storage
            section's metadata prefix.
        inline_limit_bytes: Artifact values whose serialized literal is at most this many
            bytes stay in the database row; larger ones are offloaded to ``data_prefix``.
        max_heartbeat_interval_s: Upper bound on the heartbeat interval a reservation owner
            may ask for (also used when it asks for none).
        heartbeat_grace_multiplier: A reservation expires this many heartbeat intervals after
            its last extension; then another owner may take it over.
        default_page_size: List page size when a request gives no limit.
        max_page_size: Largest page a list request may ask for.
        max_batch_size: Most tags one GetArtifactsByTag call may ask for.
        batch_response_bytes: A GetArtifactsByTag answer stops after the result that reaches
            this many bytes; the caller asks again for the remaining tags.
    """

    server: ServerConfig = field(default_factory=_default_server)
    database: DatabaseConfig = field(default_factory=_default_database)
    data_prefix: str = ""
    inline_limit_bytes: int = 16 * 1024
    max_heartbeat_interval_s: float = 10.0
    heartbeat_grace_multiplier: float = 3.0
    default_page_size: int = 100
    max_page_size: int = 1000
    max_batch_size: int = 1000
    batch_response_bytes: int = 2 * 1024 * 1024

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] = os.environ,
    ) -> DataCatalogConfig:
        """Load from the ``datacatalog`` section of ``path`` (or ``CADDIS_CONFIG``) and the env.

        Args:
            path: A YAML or TOML config file; ``None`` uses ``CADDIS_CONFIG`` when set.
            env: Environment holding ``CADDIS_DATACATALOG_*`` overrides.

        Returns:
            The configuration.
        """
        return load_config(cls, section="datacatalog", path=path, env=env)


__all__ = ["DataCatalogConfig"]
