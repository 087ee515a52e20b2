#!/bin/sh
# tests/bench/copy_indexes.sh - what the release's three indexes cost where they could be
# built (issue 9): after the rows are loaded (CREATE INDEX, as the registrar does) or while
# they are loaded (the indexes exist before the COPY, so PostgreSQL maintains them row by
# row). The 1M x 8 set of tests/bench/gen.c, loaded as the registrar loads a push: ten
# transactions of 100,000 rows into a table with row_no first; the indexes are the release's
# (row_no, the unique text 记录编号, the date 登记日期).
#
#   sh tests/bench/copy_indexes.sh        (after make; a throw-away cluster under /tmp)
#
# Environment: BUILD (build), ODP_BENCH_PG_PORT (55434), ODP_BENCH_ROUNDS (3: each round
# runs both ways, alternating which goes first). Prints each round's seconds and the
# median of each figure. Informs only: nothing here is a target.
set -u
cd "$(dirname "$0")/../.."
root=$(pwd)
BUILD=${BUILD:-build}
rounds=${ODP_BENCH_ROUNDS:-3}
port=${ODP_BENCH_PG_PORT:-55434}
if command -v flock >/dev/null 2>&1; then
    exec 8>"${TMPDIR:-/tmp}/odp-bench.lock"
    flock 8
fi
work=$(mktemp -d /tmp/odp-copyidx.XXXXXX)
chmod 755 "$work"
die() { echo "copy_indexes: $*" >&2; exit 1; }
cleanup() { sh deploy/pg.sh destroy "$work/pg" >/dev/null 2>&1; rm -rf "$work"; }
trap cleanup EXIT INT TERM
[ -x "$root/$BUILD/bench/gen" ] || die "run make first ($BUILD/bench/gen is missing)"
sh deploy/pg.sh init "$work/pg" "$port" "$work/pg.env" > "$work/init.log" 2>&1 ||
    { cat "$work/init.log"; die "cannot start PostgreSQL"; }
. "$work/pg.env"
export PGOPTIONS="-c client_min_messages=warning"
psql="psql -X -q -v ON_ERROR_STOP=1 $ODP_PG_SUPERUSER_URL"
"$root/$BUILD/bench/gen" 1000000 8 b8 "$work" >/dev/null || die "gen failed"
mkdir -p "$work/parts"
tail -n +2 "$work/b8.csv" | split -l 100000 -d - "$work/parts/p"
chmod -R a+rX "$work"
cols='"记录编号" text, "单位名称" text, "从业人数" bigint, "资产总额_万元" numeric, "登记日期" date, "所属地市" text, "增长率" numeric, "备注" text'
names='"记录编号", "单位名称", "从业人数", "资产总额_万元", "登记日期", "所属地市", "增长率", "备注"'
indexes='row_no "记录编号" "登记日期"'
now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.3f\", $1 }"; }

# One way: the table (row_no from a sequence, as the loader numbers rows), optionally with
# the indexes first, the ten COPYs, then the indexes not yet built, one after the other.
# Prints "copy_s build_s".
run() {
    $psql -c "DROP TABLE IF EXISTS t; DROP SEQUENCE IF EXISTS ts; CREATE SEQUENCE ts;
              CREATE TABLE t (row_no bigint NOT NULL DEFAULT nextval('ts'), $cols)
              WITH (autovacuum_enabled = false)" || die "create failed"
    if [ "$1" = during ]; then
        for i in $indexes; do $psql -c "CREATE INDEX ON t ($i)" || die "index failed"; done
    fi
    $psql -c CHECKPOINT
    t0=$(now)
    for f in "$work"/parts/p*; do
        $psql -c "\\copy t ($names) FROM '$f' WITH (FORMAT csv)" || die "copy failed"
    done
    t1=$(now)
    if [ "$1" = after ]; then
        for i in $indexes; do $psql -c "CREATE INDEX ON t ($i)" || die "index failed"; done
    fi
    t2=$(now)
    echo "$(calc "$t1 - $t0") $(calc "$t2 - $t1")"
}

: > "$work/after" && : > "$work/during"
r=0
while [ "$r" -lt "$rounds" ]; do
    r=$((r + 1))
    if [ $((r % 2)) = 1 ]; then order="after during"; else order="during after"; fi
    for way in $order; do
        line=$(run "$way")
        echo "$line" >> "$work/$way"
        echo "round $r, indexes $way the load: copy ${line% *} s, index builds ${line#* } s"
    done
done
median() { sort -n | awk '{ v[NR] = $1 } END { printf "%.3f", v[int((NR + 1) / 2)] }'; }
ca=$(cut -d' ' -f1 "$work/after" | median) ba=$(cut -d' ' -f2 "$work/after" | median)
cd_=$(cut -d' ' -f1 "$work/during" | median)
echo "median of $rounds: indexes after the load: copy ${ca} s + builds ${ba} s;" \
    "indexes during the load: copy ${cd_} s ($(calc "$cd_ / $ca")x the plain copy)"
