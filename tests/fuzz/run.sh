#!/bin/sh
# make fuzz: run each libFuzzer target for SECONDS, then keep a minimal corpus.
#
#   sh tests/fuzz/run.sh BUILD SECONDS TARGET...
#
# A target starts from tests/fuzz/corpus/<target>/ (committed; tests/fuzz/seeds.c made
# the seed-* files) and writes what it finds to BUILD/fuzz-new/<target>/; afterwards both
# are merged into the smallest set with the same coverage, which replaces the committed
# corpus. A crash stops that target and fails the run; the input is kept as
# BUILD/crashes/<target>-crash-* (reproduce: BUILD/fuzz_<target> FILE).
set -u
cd "$(dirname "$0")/../.."
build=$1
seconds=$2
shift 2
corpus=tests/fuzz/corpus
mkdir -p "$build/crashes"
"$build/fuzz-seeds" --dict "$build/protocol.dict" || exit 1
failed=0
for t in "$@"; do
    new=$build/fuzz-new/$t
    min=$build/fuzz-min/$t
    rm -rf "$min"
    mkdir -p "$corpus/$t" "$new" "$min"
    case $t in
        loader) opts="-max_len=16384" ;;
        *) opts="-max_len=8192 -dict=$build/protocol.dict" ;;
    esac
    log=$build/fuzz-$t.log
    echo "# fuzz_$t: $seconds s from $corpus/$t ($(ls "$corpus/$t" | wc -l) inputs)"
    # shellcheck disable=SC2086
    "$build/fuzz_$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$build/crashes/$t-" $opts \
        "$new" "$corpus/$t" > "$log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    if [ "$rc" -ne 0 ]; then
        echo "not ok - fuzz_$t found a crash after ${runs:-?} runs; see $log"
        grep -E 'broken promise|ERROR: |SUMMARY: |Test unit written' "$log" | head -5
        failed=$((failed + 1))
        continue
    fi
    # shellcheck disable=SC2086
    "$build/fuzz_$t" -merge=1 $opts "$min" "$corpus/$t" "$new" > "$build/fuzz-$t-merge.log" 2>&1 &&
        rm -f "$corpus/$t"/* && cp "$min"/* "$corpus/$t"/ && rm -rf "$new"
    echo "ok - fuzz_$t: $runs runs, $rate exec/s, no crash; corpus $(ls "$corpus/$t" | wc -l) inputs, $(cat "$corpus/$t"/* | wc -c) bytes"
done
[ "$failed" -eq 0 ]
