#!/usr/bin/env bash
# Compares a single-node TinkerDB with a throwaway PostgreSQL 15 cluster on the same machine,
# running the same `tinkerdb workload` client against both: kv at 95% reads, kv at 50% reads and
# bank, one after another. Both servers keep fsync on and default settings.
#
# Usage: bench/compare-postgres.sh [RESULTS.json]     (default bench/results/latest.json)
# Environment: DURATION (30s), CONCURRENCY (8), ROWS (10000), ACCOUNTS (1000),
#              PG_BIN (/usr/lib/postgresql/15/bin), TINKERDB (target/release/tinkerdb).
set -euo pipefail

cd "$(dirname "$0")/.."
DURATION=${DURATION:-30s}
CONCURRENCY=${CONCURRENCY:-8}
ROWS=${ROWS:-10000}
ACCOUNTS=${ACCOUNTS:-1000}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
TINKERDB=${TINKERDB:-target/release/tinkerdb}
OUT=${1:-bench/results/latest.json}

source bench/lib.sh
start_servers
PG_URL="postgresql://root@127.0.0.1:$PG_PORT/tinkerdb?sslmode=disable"
echo "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on port $PG_PORT (fsync $(
    runuser -u postgres -- "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U root -d tinkerdb -Atc 'SHOW fsync'))" >&2

TDB_URL="postgresql://root@$TDB_SQL/tinkerdb?sslmode=disable"
echo "TinkerDB $("$TINKERDB" --version | awk '{print $2}') on $TDB_SQL" >&2

workload() { # workload init|run KIND URL ARGS...
    local cmd=$1 kind=$2 url=$3
    shift 3
    RUST_LOG=${RUST_LOG:-warn} "$TINKERDB" workload "$cmd" "$kind" --url "$url" --concurrency "$CONCURRENCY" "$@"
}

# One case against both targets: init (unless skipped), then run; results land in $WORK/*.json.
bench_case() { # NAME KIND INIT(yes|no) RUN-ARGS...
    local name=$1 kind=$2 init=$3
    shift 3
    for target in tinkerdb postgres; do
        local url=$TDB_URL
        [[ $target == postgres ]] && url=$PG_URL
        local size=(--rows "$ROWS")
        [[ $kind == bank ]] && size=(--accounts "$ACCOUNTS")
        if [[ $init == yes ]]; then
            workload init "$kind" "$url" "${size[@]}" --quiet
        fi
        echo "== $name on $target" >&2
        # A broken invariant fails the run but still reports; the script fails at the end.
        workload run "$kind" "$url" "${size[@]}" --duration "$DURATION" --json --quiet "$@" \
            >"$WORK/$name.$target.json" || FAILED=1
    done
}

FAILED=0
bench_case kv95 kv yes --read-percent 95
bench_case kv50 kv no --read-percent 50
bench_case bank bank yes

mkdir -p "$(dirname "$OUT")"
python3 - "$WORK" "$OUT" "$DURATION" "$CONCURRENCY" <<'PY'
import json, os, platform, sys, datetime

work, out, duration, concurrency = sys.argv[1:5]
rows = []
for name in ["kv95", "kv50", "bank"]:
    t = json.load(open(os.path.join(work, f"{name}.tinkerdb.json")))
    p = json.load(open(os.path.join(work, f"{name}.postgres.json")))
    rows.append({
        "workload": name,
        "tinkerdb": {k: t[k] for k in ["ops_per_sec", "p50_ms", "p95_ms", "p99_ms", "errors", "retries", "ops"]},
        "postgres": {k: p[k] for k in ["ops_per_sec", "p50_ms", "p95_ms", "p99_ms", "errors", "retries", "ops"]},
        "ratio_ops_per_sec": t["ops_per_sec"] / p["ops_per_sec"] if p["ops_per_sec"] else None,
        "tinkerdb_invariant_ok": t.get("invariant", {}).get("ok"),
        "postgres_invariant_ok": p.get("invariant", {}).get("ok"),
    })
result = {
    "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    "duration": duration,
    "concurrency": int(concurrency),
    "cpus": os.cpu_count(),
    "machine": platform.machine(),
    "results": rows,
}
with open(out, "w") as f:
    json.dump(result, f, indent=2)
    f.write("\n")

print(f"duration {duration}, concurrency {concurrency}, {os.cpu_count()} CPUs")
print("| workload | TinkerDB ops/s | p50 ms | p99 ms | PostgreSQL ops/s | p50 ms | p99 ms | ops/s ratio (TinkerDB/PG) |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for r in rows:
    t, p = r["tinkerdb"], r["postgres"]
    ratio = f'{r["ratio_ops_per_sec"]:.3f}' if r["ratio_ops_per_sec"] is not None else "n/a"
    print(f'| {r["workload"]} | {t["ops_per_sec"]:.0f} | {t["p50_ms"]:.2f} | {t["p99_ms"]:.2f} '
          f'| {p["ops_per_sec"]:.0f} | {p["p50_ms"]:.2f} | {p["p99_ms"]:.2f} | {ratio} |')
errors = sum(r["tinkerdb"]["errors"] + r["postgres"]["errors"] for r in rows)
if errors:
    print(f"warning: {errors} failed operations (see {out})")
PY
echo "results written to $OUT" >&2
if [[ $FAILED != 0 ]]; then
    echo "error: a workload run failed (see the summaries above)" >&2
    exit 1
fi
