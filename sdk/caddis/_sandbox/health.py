"""gRPC health checks of the caddis services.

Run as ``python -m caddis._sandbox.health HOST:PORT [SERVICE]``: exits 0 when the server
reports SERVING, 1 otherwise. The compose file's health checks use this, since the image has
Python and grpcio but no ``grpc_health_probe`` binary.
"""

from __future__ import annotations

import sys


def check(address: str, service: str = "", *, timeout: float = 2.0) -> bool:
    """Ask the ``grpc.health.v1.Health`` service at ``address`` whether ``service`` serves.

    Args:
        address: ``host:port`` of the gRPC server.
        service: Fully qualified service name; ``""`` asks about the server as a whole.
        timeout: Seconds to wait for the answer (including connecting).

    Returns:
        True when the answer is SERVING; False when it is anything else or the call fails.
    """
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            response = stub.Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout, wait_for_ready=True
            )
        except grpc.RpcError:
            return False
    return bool(response.status == health_pb2.HealthCheckResponse.SERVING)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: ``python -m caddis._sandbox.health HOST:PORT [SERVICE]``.

    Args:
        argv: Arguments without the program name; ``sys.argv[1:]`` when ``None``.

    Returns:
        The exit status: 0 when serving, 1 when not, 2 on bad usage.
    """
    args = sys.argv[1:] if argv is None else argv
    if not 1 <= len(args) <= 2:
        print("usage: python -m caddis._sandbox.health HOST:PORT [SERVICE]", file=sys.stderr)
        return 2
    ok = check(args[0], args[1] if len(args) == 2 else "")
    print("SERVING" if ok else "NOT_SERVING")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
