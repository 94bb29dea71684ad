#!/bin/sh
# Run once by the postgres image when it creates the cluster
# (/docker-entrypoint-initdb.d): the server's LOGIN role, a member of the
# restricted ordertune_app group role that migration 7 grants to. The
# image's POSTGRES_USER owns the database and runs the migrations.
set -eu
psql -v ON_ERROR_STOP=1 -v pw="$(cat "${SERVER_DB_PASSWORD_FILE:-/run/secrets/server_db_password}")" \
	--username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<'SQL'
CREATE ROLE ordertune_app NOLOGIN;
CREATE ROLE ordertune_server LOGIN PASSWORD :'pw' IN ROLE ordertune_app;
SQL
