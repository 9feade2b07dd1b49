-- One database per service: admin, propeller and datacatalog each run their own Alembic
-- migrations and keep their own version table, so they must not share a database.
CREATE DATABASE caddis_admin OWNER caddis;
CREATE DATABASE caddis_propeller OWNER caddis;
CREATE DATABASE caddis_datacatalog OWNER caddis;
