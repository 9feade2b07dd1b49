"""The one-machine sandbox: admin, propeller and datacatalog as background processes.

:mod:`caddis._sandbox.health` checks a service's gRPC health endpoint (also used by the
compose file's health checks); :mod:`caddis._sandbox.processes` writes the services' config
files, starts and stops them and records their state under the state directory.
"""
