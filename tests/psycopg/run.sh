#!/usr/bin/env bash
# Client compatibility: runs tests/psycopg/test_psycopg.py (psycopg 3, installed from PyPI if
# missing) against a started node.
#
# Usage: tests/psycopg/run.sh [path/to/tinkerdb]   (default: target/debug/tinkerdb)
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-target/debug/tinkerdb}
if ! python3 -c 'import psycopg' 2>/dev/null; then
  python3 -m pip install -q 'psycopg[binary]'
fi
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT

"$bin" start --data-dir "$dir/data" --sql-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 --grpc-addr 127.0.0.1:0 2>"$dir/log" &
pid=$!
for _ in $(seq 1 600); do
  [[ -s "$dir/data/addresses.json" ]] && break
  kill -0 "$pid" 2>/dev/null || { cat "$dir/log"; echo "tinkerdb exited"; exit 1; }
  sleep 0.1
done
addr=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["sql"])' "$dir/data/addresses.json")
python3 tests/psycopg/test_psycopg.py "postgresql://root@$addr/tinkerdb?sslmode=disable"
