#!/usr/bin/env bash
# Single-key Set and Get throughput and latency of the raw KV gRPC API on one node: starts a
# release `tinkerdb` on ephemeral ports in a throwaway data directory (fsync on), runs the
# `kv_bench` example against its gRPC address, and stops the node.
#
# Usage: bench/kv-grpc.sh [CONCURRENCY] [SECONDS] [VALUE_BYTES]     (defaults 16, 10, 100)
# Environment: TINKERDB (target/release/tinkerdb), KV_BENCH (target/release/examples/kv_bench).
set -euo pipefail

cd "$(dirname "$0")/.."
CONCURRENCY=${1:-16}
SECONDS_PER_PHASE=${2:-10}
VALUE_BYTES=${3:-100}
TINKERDB=${TINKERDB:-target/release/tinkerdb}
KV_BENCH=${KV_BENCH:-target/release/examples/kv_bench}

if [[ ! -x $TINKERDB ]]; then
    cargo build --release --bin tinkerdb
fi
if [[ ! -x $KV_BENCH ]]; then
    cargo build --release -p txn --example kv_bench
fi

WORK=$(mktemp -d -t tinkerdb-kv-bench.XXXXXX)
NODE_PID=
cleanup() {
    if [[ -n $NODE_PID ]]; then
        kill "$NODE_PID" 2>/dev/null && wait "$NODE_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

RUST_LOG=warn "$TINKERDB" start --data-dir "$WORK/data" --sql-addr 127.0.0.1:0 \
    --http-addr 127.0.0.1:0 --grpc-addr 127.0.0.1:0 2>"$WORK/node.log" &
NODE_PID=$!
for _ in $(seq 600); do
    [[ -s $WORK/data/addresses.json ]] && break
    sleep 0.1
done
GRPC=$(sed -n 's/.*"grpc": *"\([^"]*\)".*/\1/p' "$WORK/data/addresses.json")
if [[ -z $GRPC ]]; then
    echo "the node did not start:" >&2
    cat "$WORK/node.log" >&2
    exit 1
fi
"$KV_BENCH" "$GRPC" "$CONCURRENCY" "$SECONDS_PER_PHASE" "$VALUE_BYTES"
