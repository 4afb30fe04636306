#!/usr/bin/env bash
# Prints the markdown table of docs/conformance.md from run.sh's output (COUNTS, one
# tab-separated line per file) and PostgreSQL 15's per-file baseline (PG15-BASELINE.md).
#
#   slt/conformance/table.sh COUNTS [BASELINE]
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
counts="$1"
baseline="${2:-$repo/../shared/conformance/PG15-BASELINE.md}"
echo "| file | records | TinkerDB run | TinkerDB passed | PostgreSQL 15 passed | TinkerDB − PostgreSQL |"
echo "|---|---:|---:|---:|---:|---:|"
awk -F'\t' '
  FNR == NR {
    # Baseline rows: | sqlite/<file> | records | as-is | run | passed | ...
    if ($0 ~ /^\| sqlite\//) {
      n = split($0, c, "|")
      f = c[2]; gsub(/^ *sqlite\/| *$/, "", f)
      p = c[6]; gsub(/ /, "", p)
      pg[f] = p
    }
    next
  }
  {
    f = $1; if ($2 == "error") { printf "| %s | | | error | %s | |\n", f, pg[f]; next }
    d = $4 - pg[f]
    printf "| %s | %d | %d | %d | %s | %+d |\n", f, $2, $3, $4, pg[f], d
    tr += $2; tp += $4; tg += pg[f]
  }
  END { printf "| **total of these files** | %d | | %d | %d | %+d |\n", tr, tp, tg, tp - tg }
' "$baseline" "$counts"
