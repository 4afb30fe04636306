#!/usr/bin/env bash
# Client compatibility: runs tests/psql/session.sql through the real psql against a started node
# and compares psql's output with tests/psql/expected.out.
#
# Usage: tests/psql/run.sh [path/to/tinkerdb]   (default: target/debug/tinkerdb)
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-target/debug/tinkerdb}
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT

"$bin" start --data-dir "$dir/data" --sql-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 --grpc-addr 127.0.0.1:0 2>"$dir/log" &
pid=$!
for _ in $(seq 1 600); do
  [[ -s "$dir/data/addresses.json" ]] && break
  kill -0 "$pid" 2>/dev/null || { cat "$dir/log"; echo "tinkerdb exited"; exit 1; }
  sleep 0.1
done
port=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["sql"].rsplit(":",1)[1])' "$dir/data/addresses.json")

PGOPTIONS= psql -X -h 127.0.0.1 -p "$port" -U root -d tinkerdb -v VERBOSITY=verbose \
  -f tests/psql/session.sql >"$dir/actual.out" 2>&1 || true
if diff -u tests/psql/expected.out "$dir/actual.out"; then
  echo "psql session: 1 passed, 0 failed"
else
  echo "psql session: 0 passed, 1 failed"
  exit 1
fi
