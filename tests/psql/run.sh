#!/usr/bin/env bash
# Client compatibility: runs tests/psql/session.sql through the real psql against a started node
# and compares psql's output with tests/psql/expected.out.
#
# Usage: tests/psql/run.sh [path/to/tinkerdb]   (default: target/debug/tinkerdb)
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-target/debug/tinkerdb}
source tests/node.sh
start_node "$bin"
port=${sql_addr##*:}

PGOPTIONS= psql -X -h 127.0.0.1 -p "$port" -U root -d tinkerdb -v VERBOSITY=verbose \
  -f tests/psql/session.sql >"$dir/actual.out" 2>&1 || true
if diff -u tests/psql/expected.out "$dir/actual.out"; then
  echo "psql session: 1 passed, 0 failed"
else
  echo "psql session: 0 passed, 1 failed"
  exit 1
fi
