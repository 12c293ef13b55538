#!/bin/sh
# Run once by the postgres image, as its superuser, when the data volume is empty
# (/docker-entrypoint-initdb.d): the app's own role, which is not a superuser, owns the database (so it
# runs the migrations), and the one extension the schema uses is created here by the superuser.
set -eu
psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v app_user="${SIGNALBOARD_DB_USER:-signalboard}" \
  -v app_password="$SIGNALBOARD_DB_PASSWORD" \
  -v db="$POSTGRES_DB" <<'EOSQL'
CREATE ROLE :"app_user" LOGIN PASSWORD :'app_password' NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION;
ALTER DATABASE :"db" OWNER TO :"app_user";
CREATE EXTENSION IF NOT EXISTS pg_trgm;
EOSQL
