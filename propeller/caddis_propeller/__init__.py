"""caddis_propeller: the propeller service of caddis."""
