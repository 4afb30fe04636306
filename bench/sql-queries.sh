#!/usr/bin/env bash
# Query shapes over indexes, TinkerDB next to PostgreSQL 15 in one run on the same data: a single
# TinkerDB node and a throwaway PostgreSQL cluster (fsync on for both, default settings).
#
# Data: items (ITEMS rows, default 100,000; a secondary index on category, 10 rows per
# category) and categories (CATEGORIES rows, default 10,000). Cases, each a pgbench script run
# by one client (`-M prepared`), so the figure is one query's latency:
#   point    SELECT * FROM items WHERE id = :id                       (primary key)
#   indexed  SELECT id, price FROM items WHERE category = :c          (secondary index, 10 rows)
#   join     SELECT i.id, c.label FROM items i JOIN categories c ON c.id = i.category
#            WHERE i.id BETWEEN :a AND :a + 99                         (100 rows)
#   groupby  SELECT grp, count(*), sum(price) FROM items GROUP BY grp  (whole table, 100 groups)
#   topn     SELECT id, price FROM items ORDER BY price DESC, id LIMIT 10
# After the table, EXPLAIN ANALYZE (TinkerDB) of each case shows the plan with its key spans and
# the rows and KV reads of each operator.
#
# Usage: bench/sql-queries.sh [CASES...]   (default: all five)
# Environment: DURATION (seconds per case, 10), ITEMS, CATEGORIES, PG_BIN, TINKERDB.
set -euo pipefail

cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
ITEMS=${ITEMS:-100000}
CATEGORIES=${CATEGORIES:-10000}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
TINKERDB=${TINKERDB:-${CARGO_TARGET_DIR:-target}/release/tinkerdb}
CASES=("$@")
[[ ${#CASES[@]} == 0 ]] && CASES=(point indexed join groupby topn)

source bench/lib.sh
start_servers

python3 - "$ITEMS" "$CATEGORIES" >"$WORK/load.sql" <<'PY'
import random, sys
items, cats = int(sys.argv[1]), int(sys.argv[2])
rng = random.Random(7)
print("CREATE TABLE categories (id INT PRIMARY KEY, label TEXT NOT NULL, region INT NOT NULL);")
print("CREATE TABLE items (id INT PRIMARY KEY, category INT NOT NULL, grp INT NOT NULL,"
      " price INT NOT NULL, name TEXT NOT NULL);")
for start in range(1, cats + 1, 1000):
    rows = (f"({i}, 'category {i}', {i % 100})" for i in range(start, min(start + 1000, cats + 1)))
    print("INSERT INTO categories VALUES " + ", ".join(rows) + ";")
for start in range(1, items + 1, 1000):
    rows = (f"({i}, {(i - 1) % cats + 1}, {i % 100}, {rng.randrange(1, 1_000_000)}, 'item {i}')"
            for i in range(start, min(start + 1000, items + 1)))
    print("INSERT INTO items VALUES " + ", ".join(rows) + ";")
print("CREATE INDEX items_category ON items (category);")
PY

mkdir -p "$WORK/scripts"
printf '\\set id random(1, %d)\nSELECT * FROM items WHERE id = :id;\n' "$ITEMS" >"$WORK/scripts/point.sql"
printf '\\set c random(1, %d)\nSELECT id, price FROM items WHERE category = :c;\n' "$CATEGORIES" \
    >"$WORK/scripts/indexed.sql"
printf '\\set a random(1, %d)\nSELECT i.id, c.label FROM items i JOIN categories c ON c.id = i.category WHERE i.id BETWEEN :a AND :a + 99;\n' \
    "$((ITEMS - 99))" >"$WORK/scripts/join.sql"
echo 'SELECT grp, count(*), sum(price) FROM items GROUP BY grp;' >"$WORK/scripts/groupby.sql"
echo 'SELECT id, price FROM items ORDER BY price DESC, id LIMIT 10;' >"$WORK/scripts/topn.sql"

explain_sql() { # CASE -> the case's statement with sample parameters
    case $1 in
        point) echo "SELECT * FROM items WHERE id = 500" ;;
        indexed) echo "SELECT id, price FROM items WHERE category = 42" ;;
        join) echo "SELECT i.id, c.label FROM items i JOIN categories c ON c.id = i.category WHERE i.id BETWEEN 1000 AND 1099" ;;
        groupby) cat "$WORK/scripts/groupby.sql" ;;
        topn) cat "$WORK/scripts/topn.sql" ;;
    esac
}

run_case() { # CASE TARGET -> prints "tps latency_ms"
    local out=$WORK/$1.$2.out
    # shellcheck disable=SC2046
    pgbench $(conn_args "$2") -n -M prepared -c 1 -j 1 -T "$DURATION" -f "$WORK/scripts/$1.sql" \
        >"$out" 2>"$WORK/$1.$2.err" || {
        echo "pgbench $1 on $2 failed:" >&2
        tail -5 "$WORK/$1.$2.err" >&2
        echo "0 0"
        return
    }
    echo "$(awk '/^tps = / {print $3; exit}' "$out") $(awk '/^latency average/ {print $4; exit}' "$out")"
}

echo "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}'); TinkerDB $("$TINKERDB" --version | awk '{print $2}')"
echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) commit $(git rev-parse --short HEAD), $(nproc) CPUs, load average" \
    "$(cut -d' ' -f1-3 /proc/loadavg); $ITEMS items, $CATEGORIES categories; pgbench -M prepared -c 1, ${DURATION}s per case"
for target in tinkerdb postgres; do
    t0=$(date +%s.%N)
    sql "$target" -f "$WORK/load.sql" >/dev/null
    echo "loaded $target in $(echo "$(date +%s.%N) - $t0" | bc | cut -c1-5)s"
done
sql postgres -c "ANALYZE" >/dev/null

echo "| case | TinkerDB ms | PostgreSQL ms | ratio (TinkerDB/PG time) |"
echo "|---|---:|---:|---:|"
for case in "${CASES[@]}"; do
    read -r _ t_ms <<<"$(run_case "$case" tinkerdb)"
    read -r _ p_ms <<<"$(run_case "$case" postgres)"
    ratio=$(python3 -c "import sys; t, p = map(float, sys.argv[1:]); print(f'{t / p:.2f}' if p else 'n/a')" "$t_ms" "$p_ms")
    printf '| %s | %s | %s | %s |\n' "$case" "$t_ms" "$p_ms" "$ratio"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
for case in "${CASES[@]}"; do
    echo "-- EXPLAIN ANALYZE $case (TinkerDB)"
    sql tinkerdb -At -c "EXPLAIN ANALYZE $(explain_sql "$case")"
done
