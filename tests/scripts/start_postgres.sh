#!/usr/bin/env bash
# Start a throw-away PostgreSQL server on loopback for the catalog backend tests.
#
# Needs the Debian package `postgresql` (apt-get install -y postgresql). Runs the server as the
# `postgres` system user (created by the package) in a data folder under /tmp, listening only
# on 127.0.0.1, trust authentication (loopback, test data only). Safe to re-run: a server that
# is already up is reused. The last line printed is the DSN; export it as
# VOICEPRIV_TEST_POSTGRES for pytest.
set -euo pipefail

data=${VOICEPRIV_PG_DATA:-/tmp/voicepriv-postgres}
port=${VOICEPRIV_PG_PORT:-55432}
db=voicepriv_test
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$bin" ]; then
  echo "start_postgres: PostgreSQL is not installed (apt-get install -y postgresql)" >&2
  exit 1
fi

as_pg() {
  if [ "$(id -u)" = 0 ]; then
    su postgres -s /bin/sh -c "$*"
  else
    sh -c "$*"
  fi
}

if ! as_pg "'$bin/pg_ctl' -D '$data' status" >/dev/null 2>&1; then
  if [ ! -f "$data/PG_VERSION" ]; then
    mkdir -p "$data"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$data"
    chmod 700 "$data"
    as_pg "'$bin/initdb' -D '$data' -U postgres -A trust -E UTF8 --no-sync" >/dev/null
  fi
  as_pg "'$bin/pg_ctl' -D '$data' -l '$data/server.log' -w -t 60 \
    -o \"-c listen_addresses=127.0.0.1 -p $port -k '$data' -c fsync=off\" start" >/dev/null
fi

if ! as_pg "'$bin/psql' -h 127.0.0.1 -p $port -U postgres -Atc \
    \"SELECT 1 FROM pg_database WHERE datname = '$db'\"" | grep -q 1; then
  as_pg "'$bin/createdb' -h 127.0.0.1 -p $port -U postgres $db"
fi
echo "postgresql://postgres@127.0.0.1:$port/$db"
