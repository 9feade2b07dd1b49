"""The ``caddis`` command line."""
