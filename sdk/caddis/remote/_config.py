"""Connection settings of :class:`caddis.remote.CaddisRemote` (section ``remote``).

Example (YAML)::

    remote:
      endpoint: caddis.example.com:443
      insecure: false
      ca_cert: /etc/ssl/caddis-ca.pem
      project: flytesnacks
      domain: development

Environment overrides: ``CADDIS_REMOTE_ENDPOINT=127.0.0.1:8080``,
``CADDIS_REMOTE_INSECURE=true``, ``CADDIS_REMOTE_TIMEOUT_S=30``, ...
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from caddis.config import load_config

#: Where ``caddis sandbox start`` puts admin unless told otherwise.
DEFAULT_ENDPOINT = "127.0.0.1:30080"


@dataclass(frozen=True)
class RemoteConfig:
    """How the SDK and CLI reach admin.

    Attributes:
        endpoint: ``host:port`` of admin's gRPC server.
        insecure: Plain-text gRPC (the sandbox and loopback); False uses TLS.
        ca_cert: PEM file of the CA that signed admin's certificate (TLS); empty uses the
            system roots.
        server_name: Override of the TLS server name checked against the certificate.
        timeout_s: Deadline of one RPC.
        connect_timeout_s: How long to wait for the channel to connect before reporting that
            admin is unreachable.
        project: Default project of registrations and executions.
        domain: Default domain.
        max_message_mb: Largest gRPC message accepted, in MiB.
    """

    endpoint: str = DEFAULT_ENDPOINT
    insecure: bool = True
    ca_cert: str = ""
    server_name: str = ""
    timeout_s: float = 30.0
    connect_timeout_s: float = 5.0
    project: str = "flytesnacks"
    domain: str = "development"
    max_message_mb: int = 64

    @classmethod
    def load(
        cls, path: str | os.PathLike[str] | None = None, env: Mapping[str, str] = os.environ
    ) -> RemoteConfig:
        """Load from the ``remote`` section of ``path`` (or ``CADDIS_CONFIG``) and the env.

        When no file is given and ``CADDIS_CONFIG`` is unset, the sandbox's client config
        (``~/.caddis/sandbox/client.yaml``, written by ``caddis sandbox start``) is used if it
        exists, so that a started sandbox is found without any setup.

        Args:
            path: A YAML or TOML config file.
            env: Environment holding ``CADDIS_REMOTE_*`` overrides.

        Returns:
            The configuration.
        """
        if path is None and not env.get("CADDIS_CONFIG"):
            candidate = os.path.expanduser(
                os.path.join(env.get("CADDIS_SANDBOX_DIR", "~/.caddis/sandbox"), "client.yaml")
            )
            if os.path.exists(candidate):
                path = candidate
        return load_config(cls, section="remote", path=path, env=env)


__all__ = ["DEFAULT_ENDPOINT", "RemoteConfig"]
