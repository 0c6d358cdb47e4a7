#!/usr/bin/env bash
# Run a command with a throw-away PostgreSQL server, when PostgreSQL binaries are installed.
# Exports SYNCER_TEST_PG_URL for the tests; without binaries the command runs without it
# (PostgreSQL tests then skip, saying why). PostgreSQL refuses to run as root, so as root the
# server runs as the unprivileged user "syncer-pg" (created on first use).
set -euo pipefail

find_bin() {
  local name=$1
  if command -v "$name" >/dev/null 2>&1; then command -v "$name"; return; fi
  ls -d /usr/lib/postgresql/*/bin/"$name" 2>/dev/null | sort -V | tail -n 1
}

INITDB=$(find_bin initdb || true)
PG_CTL=$(find_bin pg_ctl || true)
if [ -z "$INITDB" ] || [ -z "$PG_CTL" ]; then
  echo "with-postgres: no PostgreSQL binaries found; PostgreSQL tests will be skipped" >&2
  exec "$@"
fi

DATA=$(mktemp -d /tmp/syncer-pg.XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
RUN=()
if [ "$(id -u)" = "0" ]; then
  id syncer-pg >/dev/null 2>&1 || useradd --system --no-create-home --shell /bin/sh syncer-pg
  chown syncer-pg "$DATA"
  RUN=(su syncer-pg -s /bin/sh -c)
else
  RUN=(sh -c)
fi

"${RUN[@]}" "'$INITDB' -D '$DATA/db' -U postgres -A trust --no-sync >'$DATA/initdb.log' 2>&1"
"${RUN[@]}" "'$PG_CTL' -D '$DATA/db' -l '$DATA/server.log' -w -o \"-p $PORT -k '$DATA' -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200\" start >/dev/null"
stop() { "${RUN[@]}" "'$PG_CTL' -D '$DATA/db' -m immediate stop >/dev/null 2>&1" || true; rm -rf "$DATA"; }
trap stop EXIT

export SYNCER_TEST_PG_URL="postgresql+psycopg://postgres@127.0.0.1:$PORT/postgres"
export SYNCER_TEST_PG_CTL="$PG_CTL"
export SYNCER_TEST_PG_DATA="$DATA/db"
echo "with-postgres: PostgreSQL on 127.0.0.1:$PORT" >&2
"$@"
