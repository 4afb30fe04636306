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
source tests/node.sh
start_node "$bin"
python3 tests/psycopg/test_psycopg.py "postgresql://root@$sql_addr/tinkerdb?sslmode=disable"
