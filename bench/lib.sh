# Shared set-up of the side-by-side benchmarks (sourced, not run): a work directory removed on
# exit, a throwaway PostgreSQL 15 cluster and a single TinkerDB node, both with fsync on.
#
# Expects TINKERDB and PG_BIN to be set. After `start_servers`: WORK, PG_PORT, PG_DATA, TDB_PID,
# TDB_SQL (host:port of the node's SQL listener).

if [[ ! -x $TINKERDB ]]; then
    echo "building $TINKERDB" >&2
    cargo build --release --bin tinkerdb
fi

WORK=$(mktemp -d -t tinkerdb-bench.XXXXXX)
TDB_PID=
PG_DATA=$WORK/pg
cleanup() {
    if [[ -n $TDB_PID ]]; then
        kill "$TDB_PID" 2>/dev/null && wait "$TDB_PID" 2>/dev/null || true
    fi
    if [[ -f $PG_DATA/postmaster.pid ]]; then
        runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_servers() {
    # PostgreSQL: a fresh cluster owned by the postgres user, superuser `root`, trust auth on
    # loopback.
    chmod 755 "$WORK"
    mkdir -p "$PG_DATA" "$WORK/pgrun"
    chown postgres "$PG_DATA" "$WORK/pgrun"
    runuser -u postgres -- "$PG_BIN/initdb" -D "$PG_DATA" --username=root --auth=trust \
        --encoding=UTF8 --locale=C >"$WORK/initdb.log" 2>&1
    PG_PORT=$(free_port)
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$WORK/pgrun/postgres.log" -w \
        -o "-p $PG_PORT -k $WORK/pgrun -c listen_addresses=127.0.0.1" start >/dev/null
    runuser -u postgres -- "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U root tinkerdb

    # TinkerDB: a single node with fsync on.
    mkdir -p "$WORK/tinkerdb"
    RUST_LOG=warn "$TINKERDB" start --data-dir "$WORK/tinkerdb" --sql-addr 127.0.0.1:0 \
        --http-addr 127.0.0.1:0 --grpc-addr 127.0.0.1:0 >"$WORK/tinkerdb.log" 2>&1 &
    TDB_PID=$!
    for _ in $(seq 100); do
        [[ -f $WORK/tinkerdb/addresses.json ]] && break
        sleep 0.1
    done
    TDB_SQL=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["sql"])' \
        "$WORK/tinkerdb/addresses.json")
}

conn_args() { # TARGET (tinkerdb | postgres) -> -h/-p/-U/-d for psql and pgbench
    case $1 in
        tinkerdb) echo "-h ${TDB_SQL%:*} -p ${TDB_SQL##*:} -U root -d tinkerdb" ;;
        postgres) echo "-h 127.0.0.1 -p $PG_PORT -U root -d tinkerdb" ;;
    esac
}

sql() { # TARGET SQL... : psql against TARGET, stopping at the first error
    local target=$1
    shift
    # shellcheck disable=SC2046
    psql $(conn_args "$target") -X -q -v ON_ERROR_STOP=1 "$@"
}
