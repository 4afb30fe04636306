#!/usr/bin/env bash
# The protocol path on its own: pgbench with one-statement scripts against a single TinkerDB node
# and a throwaway PostgreSQL 15 cluster, side by side in one run (fsync on for both, default
# settings). Cases, each `-M prepared` (Parse once, then Bind/Execute/Sync per statement):
#   select1  SELECT 1
#   point    SELECT v FROM pgb WHERE id = :id      (primary key, uniform over ROWS rows)
#   update   UPDATE pgb SET v = v + 1 WHERE id = :id
#   bulk     100,000 single-row INSERTs over the clients (BULK_ROWS), reported as rows/s
# Each case runs on TinkerDB, then on PostgreSQL; ROUNDS > 1 alternates them again.
#
# Usage: bench/pgbench-protocol.sh [CASES...]   (default: select1 point update bulk)
# Environment: DURATION (seconds, 15), CLIENTS (8), THREADS (2), ROWS (10000),
#              BULK_ROWS (100000), ROUNDS (1), PG_BIN (/usr/lib/postgresql/15/bin),
#              TINKERDB (target/release/tinkerdb), PERF_TDB (a file: `perf record -g` the
#              TinkerDB server during the first case into it).
set -euo pipefail

cd "$(dirname "$0")/.."
DURATION=${DURATION:-15}
CLIENTS=${CLIENTS:-8}
THREADS=${THREADS:-2}
ROWS=${ROWS:-10000}
BULK_ROWS=${BULK_ROWS:-100000}
ROUNDS=${ROUNDS:-1}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
TINKERDB=${TINKERDB:-${CARGO_TARGET_DIR:-target}/release/tinkerdb}
CASES=("$@")
[[ ${#CASES[@]} == 0 ]] && CASES=(select1 point update bulk)

source bench/lib.sh
start_servers
quiet_sql() { # TARGET SQL... : `sql` with its output dropped
    sql "$@" >/dev/null
}

# The tables: pgb (ROWS rows) for point/update, bulk (empty) for the load.
setup() { # TARGET
    quiet_sql "$1" -c "DROP TABLE IF EXISTS pgb" -c "DROP TABLE IF EXISTS bulk" \
        -c "CREATE TABLE pgb (id INT PRIMARY KEY, v BIGINT NOT NULL)" \
        -c "CREATE TABLE bulk (id BIGINT PRIMARY KEY, client INT NOT NULL, v TEXT NOT NULL)"
    python3 - "$ROWS" >"$WORK/rows.sql" <<'PY'
import sys
n = int(sys.argv[1])
for start in range(1, n + 1, 500):
    end = min(start + 499, n)
    print("INSERT INTO pgb VALUES " + ", ".join(f"({i}, 0)" for i in range(start, end + 1)) + ";")
PY
    quiet_sql "$1" -f "$WORK/rows.sql"
}

mkdir -p "$WORK/scripts"
echo 'SELECT 1' >"$WORK/scripts/select1.sql"
printf '\\set id random(1, %d)\nSELECT v FROM pgb WHERE id = :id\n' "$ROWS" >"$WORK/scripts/point.sql"
printf '\\set id random(1, %d)\nUPDATE pgb SET v = v + 1 WHERE id = :id\n' "$ROWS" >"$WORK/scripts/update.sql"
# Each client numbers its own rows: pgbench variables live as long as the client.
printf '\\set n :n + 1\n\\set id :client_id * 1000000000 + :n\nINSERT INTO bulk VALUES (:id, :client_id, '"'"'row'"'"')\n' \
    >"$WORK/scripts/bulk.sql"

PERF_PID=
run_case() { # CASE TARGET -> prints "tps elapsed_s failed"
    local case=$1 target=$2 out=$WORK/$1.$2.out
    local limit=(-T "$DURATION")
    local extra=()
    if [[ $case == bulk ]]; then
        quiet_sql "$target" -c "DELETE FROM bulk"
        limit=(-t $((BULK_ROWS / CLIENTS)))
        extra=(-D n=0)
    fi
    if [[ -n ${PERF_TDB:-} && $target == tinkerdb && -z $PERF_PID ]]; then
        perf record -g -p "$TDB_PID" -o "$PERF_TDB" >/dev/null 2>&1 &
        PERF_PID=$!
    fi
    local start end
    start=$(date +%s.%N)
    # shellcheck disable=SC2046
    pgbench $(conn_args "$target") -n -M prepared -c "$CLIENTS" -j "$THREADS" "${limit[@]}" \
        "${extra[@]}" -f "$WORK/scripts/$case.sql" >"$out" 2>"$WORK/$case.$target.err" || {
        echo "pgbench $case on $target failed:" >&2
        tail -5 "$WORK/$case.$target.err" >&2
        echo "0 0 -1"
        return
    }
    end=$(date +%s.%N)
    if [[ -n $PERF_PID ]]; then
        kill -INT "$PERF_PID" 2>/dev/null || true
        wait "$PERF_PID" 2>/dev/null || true
        PERF_PID=none
    fi
    if [[ $case == bulk ]]; then
        local count
        count=$(psql $(conn_args "$target") -XAtc "SELECT count(*) FROM bulk")
        [[ $count == $(((BULK_ROWS / CLIENTS) * CLIENTS)) ]] ||
            echo "warning: bulk on $target left $count rows" >&2
    fi
    local tps failed
    tps=$(awk '/^tps = / {print $3; exit}' "$out")
    failed=$(awk '/number of failed transactions/ {print $5; exit}' "$out")
    echo "$tps $(echo "$end - $start" | bc) ${failed:-0}"
}

echo "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on port $PG_PORT (fsync $(
    psql $(conn_args postgres) -XAtc 'SHOW fsync')); TinkerDB $("$TINKERDB" --version | awk '{print $2}') on $TDB_SQL"
echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) commit $(git rev-parse --short HEAD) (binary $TINKERDB) $(nproc) CPUs," \
    "load average $(cut -d' ' -f1-3 /proc/loadavg); pgbench -M prepared -c $CLIENTS -j $THREADS," \
    "${DURATION}s per case (bulk: $BULK_ROWS rows)"
setup tinkerdb
setup postgres

echo "| case | round | TinkerDB tps | PostgreSQL tps | ratio (TinkerDB/PG) | failed (T/PG) |"
echo "|---|---:|---:|---:|---:|---:|"
for round in $(seq "$ROUNDS"); do
    for case in "${CASES[@]}"; do
        read -r t_tps t_s t_failed <<<"$(run_case "$case" tinkerdb)"
        read -r p_tps p_s p_failed <<<"$(run_case "$case" postgres)"
        if [[ $case == bulk ]]; then
            # Throughput of the whole load, connection set-up included.
            t_tps=$(echo "scale=0; $BULK_ROWS / $t_s" | bc)
            p_tps=$(echo "scale=0; $BULK_ROWS / $p_s" | bc)
            case="bulk ($BULK_ROWS rows, ${t_s%.*}s vs ${p_s%.*}s)"
        fi
        ratio=$(python3 -c "import sys; t, p = map(float, sys.argv[1:]); print(f'{t / p:.3f}' if p else 'n/a')" "$t_tps" "$p_tps")
        printf '| %s | %s | %.0f | %.0f | %s | %s/%s |\n' "$case" "$round" "$t_tps" "$p_tps" "$ratio" "$t_failed" "$p_failed"
    done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
