#!/bin/sh
# Run once by the postgres image when it creates an empty data directory (/docker-entrypoint-initdb.d), as its
# superuser: the same roles `make run` makes (stack/postgres.py). The database's owner runs the migrations; the
# service's role may connect to this database only, and what it may do inside is granted by the migrations
# (stack/migrate.py, db/service_grants.sql). Neither is a superuser.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v database="$POSTGRES_DB" \
    -v owner="$GOZON_OWNER_ROLE" -v owner_password="$GOZON_OWNER_PASSWORD" \
    -v service="$GOZON_SERVICE_ROLE" -v service_password="$GOZON_SERVICE_PASSWORD" <<'SQL'
CREATE ROLE :"owner" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'owner_password';
CREATE ROLE :"service" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'service_password';
ALTER DATABASE :"database" OWNER TO :"owner";
REVOKE ALL ON DATABASE :"database" FROM PUBLIC;
GRANT CONNECT ON DATABASE :"database" TO :"service";
SQL
