"""Propeller's logic: the control loop, event conversion, the ready queue and metrics.

:mod:`~caddis_propeller.manager.controller` runs engine rounds;
:mod:`~caddis_propeller.manager.events` turns engine events into IDL events for the outbox.

No grpc server and no SQLAlchemy here: the rpc layer calls the controller, the controller
persists through :mod:`caddis_propeller.repository`.
"""
