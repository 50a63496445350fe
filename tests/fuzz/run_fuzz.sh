#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# run_fuzz.sh TARGET SEED_DIR SECONDS: runs a libFuzzer target for SECONDS on a scratch
# corpus seeded from SEED_DIR (which stays untouched); a crash fails the test and its
# input is printed in hex.
set -uo pipefail
target=$1
seeds=$2
seconds=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus"
"$target" -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
    -error_exitcode=1 -print_final_stats=1 -artifact_prefix="$work/" "$work/corpus" "$seeds" 2>&1 |
    tail -n 25
status=${PIPESTATUS[0]}
for crash in "$work"/crash-* "$work"/timeout-* "$work"/leak-* "$work"/oom-*; do
    [ -e "$crash" ] || continue
    echo "failing input $(basename "$crash"):"
    od -A x -t x1z "$crash" | head -n 20
done
exit "$status"
