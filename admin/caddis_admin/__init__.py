"""caddis_admin: the admin service of caddis."""
