"""Private implementation of the type engine; the public surface is caddis.core.type_engine."""
