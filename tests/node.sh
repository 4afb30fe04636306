# Starts a node for the client-compatibility scripts (sourced, not run): `start_node BIN` starts
# BIN on a fresh data directory with every address on an ephemeral port, waits for it to write
# its addresses, and sets `dir` (a work directory removed on exit), `pid` and `sql_addr`
# (host:port). The node is stopped on exit.

start_node() {
    local bin=$1
    dir=$(mktemp -d)
    trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
    "$bin" start --data-dir "$dir/data" --sql-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 \
        --grpc-addr 127.0.0.1:0 2>"$dir/log" &
    pid=$!
    for _ in $(seq 1 600); do
        [[ -s "$dir/data/addresses.json" ]] && break
        kill -0 "$pid" 2>/dev/null || { cat "$dir/log"; echo "tinkerdb exited"; exit 1; }
        sleep 0.1
    done
    sql_addr=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["sql"])' \
        "$dir/data/addresses.json")
}
