"""caddis_datacatalog: the datacatalog service of caddis."""
