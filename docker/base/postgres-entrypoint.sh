#!/bin/sh
# First start of the postgres base image (docker/base/postgres.Dockerfile): create the cluster in
# PGDATA with POSTGRES_USER / POSTGRES_PASSWORD (scram-sha-256 over TCP, trust on the local socket)
# and the database POSTGRES_DB, then run the given command. The password is read from the
# environment and piped to initdb; it is never written to a file or printed.
set -eu
if [ "${1:-}" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
  : "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set}"
  user=${POSTGRES_USER:-postgres}
  db=${POSTGRES_DB:-$user}
  printf '%s\n' "$POSTGRES_PASSWORD" | initdb --username="$user" --pwfile=/dev/stdin \
    --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 -D "$PGDATA"
  echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  if [ "$db" != postgres ]; then
    pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start
    echo 'CREATE DATABASE :"db";' | psql -v ON_ERROR_STOP=1 -v db="$db" --username="$user" --dbname=postgres
    pg_ctl -D "$PGDATA" -m fast -w stop
  fi
fi
exec "$@"
