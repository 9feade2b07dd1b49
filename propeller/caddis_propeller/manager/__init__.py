"""Propeller's logic: the control loop (:mod:`~caddis_propeller.manager.controller`), event
conversion and the outbox (:mod:`~caddis_propeller.manager.events`), metrics hooks.

No grpc server and no SQLAlchemy here: the rpc layer calls the controller, the controller
persists through :mod:`caddis_propeller.repository`.
"""
