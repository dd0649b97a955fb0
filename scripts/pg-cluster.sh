#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the test suite's PostgreSQL pass.
#   scripts/pg-cluster.sh start DIR   → creates and starts a cluster in DIR, prints its port
#   scripts/pg-cluster.sh stop DIR    → stops it (immediate) and removes DIR
# Debian's binaries live in /usr/lib/postgresql/<version>/bin; initdb refuses root, so as
# root the cluster runs as the postgres user. The harness creates one database per vaultd,
# owned by the password role `vaultd` (see tests/src/postgres.rs).
set -euo pipefail
cmd=${1:?start|stop}; dir=${2:?cluster dir}
bin=${PG_BIN_DIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
[ -x "$bin/initdb" ] || { echo "pg-cluster: no PostgreSQL binaries (apt-get install postgresql)" >&2; exit 1; }
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
case "$cmd" in
  start)
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    (cd /tmp && as_pg "$bin/initdb" -D "$dir/data" -U postgres --auth-local=trust --auth-host=trust -E UTF8 --locale=C >/dev/null)
    printf 'host all vaultd 127.0.0.1/32 scram-sha-256\nhost all postgres 127.0.0.1/32 trust\nlocal all all trust\n' \
      | as_pg tee "$dir/data/pg_hba.conf" >/dev/null
    (cd /tmp && as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/data/server.log" -w -t 60 \
      -o "-p $port -k $dir/data -c listen_addresses=127.0.0.1 -c max_connections=400" start >/dev/null)
    (cd /tmp && as_pg "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 -q \
      -c "CREATE ROLE vaultd LOGIN PASSWORD 'vaultd-test-password'")
    echo "$port"
    ;;
  stop)
    (cd /tmp && as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1) || true
    rm -rf "$dir"
    ;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
