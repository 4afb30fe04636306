#!/usr/bin/env bash
# Three-node benchmarks (release build, fsync on, all nodes on this machine):
#   1. failover: SIGKILL the leader of the table's range, time until a write through another
#      node succeeds; the node is restarted and re-replicated between runs (RUNS times);
#   2. kv95 and bank on three nodes next to one node, in the same run.
#   3. with IDLE_RANGES=N: the table is split into N ranges, and the three nodes' CPU time and
#      Raft messages are measured over IDLE_SECONDS (default 30) with no client load.
# Usage: bench/cluster.sh [RUNS] [DURATION]   (defaults: 10 runs, 15s per workload; 0 runs:
# the workloads run on the cluster as formed, node 1 leading every range)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-10}
DURATION=${2:-15s}
TINKERDB=${TINKERDB:-target/release/tinkerdb}
[[ -x $TINKERDB ]] || cargo build --release --bin tinkerdb
WORK=$(mktemp -d -t tinkerdb-cluster.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    [[ ${KEEP:-} ]] && echo "kept $WORK" >&2 || rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }

N=3
GRPC=() SQL=() HTTP=()
for i in $(seq 0 $((N - 1))); do
    GRPC[i]=127.0.0.1:$(free_port)
    SQL[i]=127.0.0.1:$(free_port)
    HTTP[i]=127.0.0.1:$(free_port)
done
JOIN=$(IFS=,; echo "${GRPC[*]}")
start_node() {
    local i=$1
    RUST_LOG=${RUST_LOG:-warn} "$TINKERDB" start --data-dir "$WORK/n$i" --sql-addr "${SQL[i]}" \
        --http-addr "${HTTP[i]}" --grpc-addr "${GRPC[i]}" --join "$JOIN" \
        >>"$WORK/n$i.log" 2>&1 &
    PIDS[i]=$!
}
psql_at() { psql -X -q -t -A -h "${1%:*}" -p "${1#*:}" -U root tinkerdb -c "$2"; }
# The node ids of the voters of the table's range (the last range), as node 1 reports them.
status() { curl -s "http://${HTTP[$1]}/status"; }
settled() {
    status "$1" | python3 -c '
import json, sys
d = json.load(sys.stdin)
ok = all(len(r["voters"]) == 1 and len(r["voters"][0]) == 3 and not r["learners"] for r in d["replicas"])
sys.exit(0 if ok and d["replicas"] else 1)'
}
leader_of_last_range() {
    status "$1" | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(max(d["replicas"], key=lambda r: r["range_id"])["leader"] or 0)'
}
wait_settled() {
    for _ in $(seq 600); do settled "$1" 2>/dev/null && return 0; sleep 0.1; done
    echo "ranges did not settle on 3 nodes" >&2; return 1
}

for i in $(seq 0 $((N - 1))); do start_node "$i"; done
for _ in $(seq 100); do "$TINKERDB" init --host "${GRPC[0]}" >/dev/null 2>&1 && break; sleep 0.2; done
for _ in $(seq 100); do [[ -f $WORK/n0/addresses.json ]] && break; sleep 0.1; done
psql_at "${SQL[0]}" "CREATE TABLE f (id INT PRIMARY KEY, v INT)"
wait_settled 0

echo "== failover: SIGKILL the leader of the table's range, time to the first write elsewhere"
TIMES=()
for run in $(seq "$RUNS"); do
    wait_settled 0 || wait_settled 1
    leader=0
    for i in 0 1 2; do
        leader=$(leader_of_last_range "$i" 2>/dev/null || echo 0)
        [[ $leader != 0 ]] && break
    done
    # Node ids are assigned in join order; map the id to our index through /status.
    victim=
    for i in 0 1 2; do
        [[ $(status "$i" | python3 -c 'import json,sys; print(json.load(sys.stdin)["node_id"])') == "$leader" ]] && victim=$i
    done
    other=$(( (victim + 1) % N ))
    kill -9 "${PIDS[victim]}"
    t0=$(date +%s.%N)
    until psql_at "${SQL[other]}" "INSERT INTO f VALUES ($run, 0)" >/dev/null 2>&1; do sleep 0.05; done
    t1=$(date +%s.%N)
    TIMES+=("$(python3 -c "print(round($t1 - $t0, 3))")")
    echo "run $run: node $((victim + 1)) killed, write through node $((other + 1)) after ${TIMES[-1]}s"
    start_node "$victim"
    for _ in $(seq 300); do psql_at "${SQL[victim]}" "SELECT 1" >/dev/null 2>&1 && break; sleep 0.1; done
done
(( RUNS > 0 )) && python3 - "${TIMES[@]}" <<'EOF'
import statistics, sys
t = sorted(float(x) for x in sys.argv[1:])
print(f"failover over {len(t)} runs: p50 {statistics.median(t):.2f}s, max {max(t):.2f}s")
EOF

if [[ ${IDLE_RANGES:-} ]]; then
    echo "== idle cost of $IDLE_RANGES ranges on three nodes"
    psql_at "${SQL[0]}" "CREATE TABLE idle (id INT PRIMARY KEY)"
    values=$(python3 -c "print(','.join(f'({i})' for i in range(1, $IDLE_RANGES)))")
    t0=$(date +%s)
    psql_at "${SQL[0]}" "ALTER TABLE idle SPLIT AT VALUES $values" >/dev/null
    echo "split into $IDLE_RANGES ranges in $(( $(date +%s) - t0 ))s"
    wait_settled 0
    sleep 5
    messages() {
        local total=0
        for i in 0 1 2; do
            n=$(curl -s "http://${HTTP[i]}/metrics" | awk '/^tinkerdb_raft_messages_sent_total/ {s += $2} END {print s + 0}')
            total=$(python3 -c "print($total + $n)")
        done
        echo "$total"
    }
    ticks() {
        local total=0
        for p in "${PIDS[@]}"; do
            t=$(awk '{print $14 + $15}' "/proc/$p/stat")
            total=$((total + t))
        done
        echo "$total"
    }
    secs=${IDLE_SECONDS:-30}
    m0=$(messages); c0=$(ticks)
    sleep "$secs"
    m1=$(messages); c1=$(ticks)
    quiesced=0
    for i in 0 1 2; do
        q=$(curl -s "http://${HTTP[i]}/metrics" | awk '/^tinkerdb_raft_quiesced_groups/ {s += $2} END {print s + 0}')
        quiesced=$(python3 -c "print(int($quiesced + $q))")
    done
    echo "quiesced replicas at the end: $quiesced of $((IDLE_RANGES * 3)) or more"
    hz=$(getconf CLK_TCK)
    python3 - "$m0" "$m1" "$c0" "$c1" "$hz" "$secs" "$IDLE_RANGES" <<'EOF2'
import sys
m0, m1, c0, c1, hz, secs, n = map(float, sys.argv[1:])
print(f"idle, {int(n)} ranges: {(c1 - c0) / hz / secs:.2f} cores for the three nodes, "
      f"{(m1 - m0) / secs:.0f} Raft messages/s sent in total")
EOF2
fi
[[ ${SKIP_WORKLOADS:-} ]] && exit 0
echo "== kv95 and bank: three nodes (clients on node 1) next to one node"
for w in kv bank; do
    extra=()
    [[ $w == kv ]] && extra=(--read-percent 95)
    "$TINKERDB" workload init "$w" --url "postgresql://root@${SQL[0]}/tinkerdb" --quiet >/dev/null
    echo "three nodes, $w: $("$TINKERDB" workload run "$w" "${extra[@]}" --url "postgresql://root@${SQL[0]}/tinkerdb" --duration "$DURATION" --concurrency 8 --json --quiet | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["ops_per_sec"]))') ops/s"
done
for i in $(seq 0 $((N - 1))); do kill -9 "${PIDS[i]}"; done
PIDS=()
mkdir -p "$WORK/single"
RUST_LOG=warn "$TINKERDB" start --data-dir "$WORK/single" --sql-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 \
    --grpc-addr 127.0.0.1:0 >"$WORK/single.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do [[ -f $WORK/single/addresses.json ]] && break; sleep 0.1; done
S=$(json "$WORK/single/addresses.json" 'd["sql"]')
for w in kv bank; do
    extra=()
    [[ $w == kv ]] && extra=(--read-percent 95)
    "$TINKERDB" workload init "$w" --url "postgresql://root@$S/tinkerdb" --quiet >/dev/null
    echo "one node, $w: $("$TINKERDB" workload run "$w" "${extra[@]}" --url "postgresql://root@$S/tinkerdb" --duration "$DURATION" --concurrency 8 --json --quiet | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["ops_per_sec"]))') ops/s"
done
