#!/usr/bin/env bash
# Runs SQLite sqllogictest corpus files against TinkerDB, one fresh node per file, and prints
# one tab-separated line per file: path, records, run, passed, failed, skipped, not run.
#
#   slt/conformance/run.sh [--tinkerdb BIN] [--slt BIN] [--corpus DIR] [--floors FILE] [FILES...]
#
# FILES are paths relative to the corpus directory (default: every *.test file in it). The
# corpus defaults to ../shared/conformance/sqlite relative to the repository. With --floors
# FILE (lines `path<TAB>minimum passed`), only the files listed there run, and the script
# exits 1 if any of them passes fewer records than its floor. Nodes run with
# --unsafe-no-fsync: this suite checks SQL semantics only.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$repo/target}"
tinkerdb="$target/debug/tinkerdb"
slt="$target/debug/slt"
corpus="$repo/../shared/conformance/sqlite"
floors=""
files=()
while [ $# -gt 0 ]; do
  case "$1" in
    --tinkerdb) tinkerdb="$2"; shift 2 ;;
    --slt) slt="$2"; shift 2 ;;
    --corpus) corpus="$2"; shift 2 ;;
    --floors) floors="$2"; shift 2 ;;
    *) files+=("$1"); shift ;;
  esac
done
if [ -n "$floors" ]; then
  mapfile -t files < <(grep -v '^#' "$floors" | cut -f1 | grep .)
elif [ ${#files[@]} -eq 0 ]; then
  mapfile -t files < <(cd "$corpus" && find . -name '*.test' | sed 's|^\./||' | sort)
fi

work="$(mktemp -d)"
node_pid=""
cleanup() {
  if [ -n "$node_pid" ]; then kill "$node_pid" 2>/dev/null || true; wait "$node_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# Starts a node on ephemeral ports in a fresh data directory; sets node_pid and url.
start_node() {
  local dir="$work/data-$1"
  "$tinkerdb" start --data-dir "$dir" --sql-addr 127.0.0.1:0 --grpc-addr 127.0.0.1:0 \
    --http-addr 127.0.0.1:0 --unsafe-no-fsync >"$work/node-$1.log" 2>&1 &
  node_pid=$!
  for _ in $(seq 1 300); do
    if [ -s "$dir/addresses.json" ]; then
      local sql
      sql="$(sed -n 's/.*"sql"[^"]*"\([^"]*\)".*/\1/p' "$dir/addresses.json")"
      if [ -n "$sql" ]; then url="postgresql://root@$sql/tinkerdb"; return 0; fi
    fi
    sleep 0.1
  done
  echo "node did not start; log:" >&2
  cat "$work/node-$1.log" >&2
  return 1
}

stop_node() {
  kill "$node_pid" 2>/dev/null || true
  wait "$node_pid" 2>/dev/null || true
  node_pid=""
}

status=0
n=0
for f in "${files[@]}"; do
  n=$((n + 1))
  start_node "$n"
  line="$("$slt" --conformance --url "$url" "$corpus/$f" | sed "s|^$corpus/||")" || line="$f	error"
  stop_node
  echo "$line"
  if [ -n "$floors" ]; then
    floor="$(awk -F'\t' -v f="$f" '$1 == f { print $2 }' "$floors")"
    passed="$(echo "$line" | cut -f4)"
    if ! [ "${passed:-0}" -ge "$floor" ] 2>/dev/null; then
      echo "FLOOR: $f passed ${passed:-none}, floor $floor" >&2
      status=1
    fi
  fi
done
exit $status
