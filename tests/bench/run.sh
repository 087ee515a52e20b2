#!/bin/sh
# tests/bench/run.sh - throughput comparisons and registrar memory (`make bench`).
#
# Push: for a 1,000,000 x 8 and a 200,000 x 50 CSV (tests/bench/gen.c, deterministic),
#   (a) baseline: psql \copy into an identical typed table, as the superuser; the table is
#       created and committed in a transaction of its own before the COPY, so PostgreSQL
#       writes WAL for every row (as it does for odp's staging tables);
#   (b) odp-push end to end: push.begin, chunks through CURVE, the registrar's loader and
#       its COPY, push.finish - each repetition into a fresh catalogue entry (identical
#       content pushed twice to one entry is answered as a duplicate).
# Each comparison runs ODP_BENCH_REPS times (default 5), alternating which side goes first
# (ABAB, then BABA) so that drift on a shared machine hits both; before every timed run
# PostgreSQL is checkpointed and the previous run's table dropped, so both start alike.
# Printed: min / median / max seconds of each side, the ratio of median rows/s, the median
# CPU seconds of each process (client, registrar, PostgreSQL: from /proc, so it shows
# where the time goes on two cores), the registrar's peak RSS (VmHWM), and what it ran on.
# Targets are reported as PASS/FAIL; the exit status is 0 either way (a benchmark informs,
# it does not gate), non-zero only when it could not run.
#
# Everything is throw-away: a PostgreSQL cluster under /tmp, keys, the registrar, all
# removed at the end, also on failure. Only the registrar is started
# (ODP_BENCH_SERVICES="registrar reviewer ..." to start more).
#
# Further comparisons, each a function below: release (review and release of the 1M x 8
# set, issues 8 and 9), query (issue 10), web (issue 13), metrics (catch-up over recorded
# events and the open data index, issue 11).
#
# Environment: BUILD (default build), ODP_BENCH_REPS (5), ODP_BENCH_ROWS8 (1000000),
# ODP_BENCH_ROWS50 (200000), ODP_BENCH_EVENTS (1000000), ODP_BENCH_ONLY (a comparison's
# name: release, bench_8, bench_50, query, web, metrics; only it),
# ODP_BENCH_PG_PORT (55434), ODP_BENCH_PORT_BASE (27500), ODP_BENCH_KEEP=1 keeps the work
# directory. Fewer rows or repetitions make a quick run, not a figure to quote.
# ODP_BENCH_WORK=DIR: the work directory is DIR, kept with its cluster stopped (not
# removed); a later run with the same DIR reuses the cluster, the keys and the version the
# release comparison released (the query and web comparisons then skip the slow release).
set -u
cd "$(dirname "$0")/../.."
root=$(pwd)
BUILD=${BUILD:-build}
bin=$root/$BUILD/bin
reps=${ODP_BENCH_REPS:-5}
rows8=${ODP_BENCH_ROWS8:-1000000}
rows50=${ODP_BENCH_ROWS50:-200000}
only=${ODP_BENCH_ONLY:-}
services=${ODP_BENCH_SERVICES:-registrar}

# One benchmark at a time on a machine: two at once would measure each other.
if command -v flock >/dev/null 2>&1; then
    exec 8>"${TMPDIR:-/tmp}/odp-bench.lock"
    flock 8
fi
if [ -n "${ODP_BENCH_WORK:-}" ]; then
    work=$ODP_BENCH_WORK
    mkdir -p "$work"
else
    work=$(mktemp -d /tmp/odp-bench.XXXXXX)
fi
reuse=0
[ -n "${ODP_BENCH_WORK:-}" ] && [ -s "$work/pub_resource" ] && reuse=1
pgdir=$work/pg
pgport=${ODP_BENCH_PG_PORT:-55434}
report=$work/report # what each comparison found, printed at the end
verdicts=$work/verdicts

say() { printf 'bench: %s\n' "$*" >&2; }

cleanup() {
    for f in "$work"/run/*.pid; do
        [ -f "$f" ] || continue
        pid=$(cat "$f")
        kill "$pid" 2>/dev/null && sleep 0.2
        kill -9 "$pid" 2>/dev/null
    done
    if [ -n "${ODP_BENCH_WORK:-}" ]; then
        bash deploy/pg.sh stop "$pgdir" >/dev/null 2>&1 || true
        say "kept $work for reuse"
        return
    fi
    bash deploy/pg.sh destroy "$pgdir" >/dev/null 2>&1 || true
    if [ "${ODP_BENCH_KEEP:-0}" = 1 ]; then say "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() { say "$*"; exit 1; }

now() { date +%s.%N; }
# calc FORMAT EXPRESSION: floating point without bc.
calc() { awk "BEGIN { printf \"$1\", ($2) }"; }
# stats FILE: "min median max" of the numbers in FILE, one a line.
stats() {
    sort -g "$1" | awk '{ v[NR] = $1 } END {
        m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "%.3f %.3f %.3f", v[1], m, v[NR] }'
}
median() { stats "$1" | cut -d' ' -f2; }

[ "$reps" -ge 1 ] 2>/dev/null || die "ODP_BENCH_REPS must be a positive number"
for b in odpctl odp-push odp-registrar; do
    [ -x "$bin/$b" ] || die "missing $bin/$b: run make first"
done

# The cluster runs as the postgres OS user when this runs as root: it must traverse $work
# (not list it); the secret keys stay private.
chmod 711 "$work"
mkdir -p "$work/log" "$work/run" "$work/keys" "$work/certs/public" "$work/data" \
    "$work/times" "$root/$BUILD/bench"
chmod 700 "$work/keys"
: > "$report"
: > "$verdicts"

# ---- tools ------------------------------------------------------------------------------
cc -std=c11 -O2 -Wall -Wextra -Werror -o "$root/$BUILD/bench/gen" tests/bench/gen.c ||
    die "cannot build tests/bench/gen.c"

# ---- PostgreSQL and keys, as tests/run.sh does -------------------------------------------
say "PostgreSQL cluster in $pgdir (port $pgport)"
bash deploy/pg.sh init "$pgdir" "$pgport" "$work/pg.env" > "$work/log/pg-init.log" 2>&1 ||
    { cat "$work/log/pg-init.log"; die "PostgreSQL could not start"; }
. "$work/pg.env"
psql="env PGOPTIONS=-cclient_min_messages=warning $ODP_PG_BIN/psql -X -q -v ON_ERROR_STOP=1"
psql="$psql -h $ODP_PG_SOCKET -p $ODP_DB_PORT -U $ODP_PG_SUPERUSER -d odp"
postmaster=$(head -1 "$pgdir/data/postmaster.pid")

if [ "$reuse" = 0 ]; then
    "$bin/odpctl" keygen --kind server --id odp --out "$work/certs/server" >/dev/null
    "$bin/odpctl" keygen --kind operations --id admin --name "Operations administrator" \
        --out "$work/keys/ops-admin" >/dev/null
    cp "$work/keys/ops-admin" "$work/certs/public/operations-admin.cert"
    # Each service's own identity, as tests/run.sh makes them: the reviewer and the
    # publisher follow the registrar's events with it.
    for s in registrar reviewer publisher query metrics; do
        "$bin/odpctl" keygen --kind service --id "$s" --out "$work/keys/service-$s" >/dev/null
        cp "$work/keys/service-$s" "$work/certs/public/service-$s.cert"
    done
else
    pub_resource=$(cat "$work/pub_resource")
    say "reusing $work: its cluster, keys and released version $pub_resource"
fi
export ODP_SERVICE_KEYS="$work/keys"
export ODP_CERT_DIR="$work/certs/public"
export ODP_SERVER_CERT="$work/certs/server"
export ODP_CLIENT_CERT="$work/keys/ops-admin_secret"
export ODP_PORT_BASE=${ODP_BENCH_PORT_BASE:-27500}
export ODP_SECURITY=curve
export ODP_LOG_LEVEL=${ODP_LOG_LEVEL:-warn}

for s in $services; do
    "$bin/odp-$s" > "$work/log/$s.log" 2>&1 &
    echo $! > "$work/run/$s.pid"
done
for s in $services; do
    i=0
    until "$bin/odpctl" --timeout-ms 1000 health --service "$s" >/dev/null 2>&1; do
        i=$((i + 1))
        [ $i -lt 30 ] || { tail -20 "$work/log/$s.log"; die "$s did not become healthy"; }
        sleep 0.5
    done
done
registrar_pid=$(cat "$work/run/registrar.pid")
hwm_kb() { sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$registrar_pid/status"; }

# ---- what it ran on ------------------------------------------------------------------------
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
grep -qw sha_ni /proc/cpuinfo && sha=yes || sha=no
pgset=$($psql -At -c "SELECT string_agg(name || '=' || current_setting(name), ' ' ORDER BY
    name) FROM pg_settings WHERE name IN ('shared_buffers', 'wal_level', 'synchronous_commit',
    'fsync', 'max_wal_size', 'full_page_writes')")
pgver=$($psql -At -c "SHOW server_version")
{
    echo "machine: $cpu; $(nproc) cores; SHA extensions: $sha; load average at start:" \
        "$(cut -d' ' -f1-3 /proc/loadavg)"
    echo "PostgreSQL $pgver: $pgset"
    echo "repetitions: $reps per side, alternating which goes first; CHECKPOINT before each"
    echo "baseline table: created and committed before its COPY, not in the same transaction"
    echo
} > "$work/header"

# ---- measuring one run -----------------------------------------------------------------
# CPU clock ticks of one process (user + system), and of PostgreSQL as a whole: the
# postmaster, the children it reaped (backends that ended) and the living ones.
tck=$(getconf CLK_TCK)
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
pg_ticks() {
    cat /proc/[0-9]*/stat 2>/dev/null | awk -v pm="$postmaster" '
        $1 == pm { t += $14 + $15 + $16 + $17; next }
        $4 == pm { t += $14 + $15 }
        END { print t + 0 }'
}
# timed NAME SIDE COMMAND...: run COMMAND, append its wall seconds and the CPU seconds of
# the client (COMMAND), the registrar and PostgreSQL to $work/times/NAME.SIDE.*
timed() {
    tname=$1 tside=$2
    shift 2
    $psql -c CHECKPOINT
    r0=$(ticks "$registrar_pid") p0=$(pg_ticks) t0=$(now)
    /usr/bin/time -f '%U %S' -o "$work/times/client" "$@" || return 1
    t1=$(now)
    sleep 0.3 # let the postmaster reap a backend that just ended
    r1=$(ticks "$registrar_pid") p1=$(pg_ticks)
    f=$work/times/$tname.$tside
    calc '%.3f\n' "$t1 - $t0" >> "$f.wall"
    awk '{ printf "%.2f\n", $1 + $2 }' "$work/times/client" >> "$f.client"
    calc '%.2f\n' "($r1 - $r0) / $tck" >> "$f.registrar"
    calc '%.2f\n' "($p1 - $p0) / $tck" >> "$f.pg"
}

# ---- comparison: push -------------------------------------------------------------------
# A catalogue entry of department dept with the dictionary of dataset name, registered and
# approved: prints its resource code.
odp_entry() {
    name=$1 dept=$2
    key=$work/keys/dept-$dept
    resource=$("$bin/odp-push" --cert "${key}_secret" catalog --summary "基准测试" \
        --keywords "基准,测试" --content-kind dataset --delivery-form dataset_file \
        --open-type unconditional --update-cycle monthly --contact "020-00000000" \
        --location "bench" --dict "$work/data/$name.dict.json" 2>"$work/log/$name.catalog") ||
        { cat "$work/log/$name.catalog" >&2; die "odp-push catalog failed"; }
    "$bin/odp-push" --cert "${key}_secret" register --resource "$resource" >/dev/null ||
        die "odp-push register failed"
    "$bin/odpctl" registration decide --resource "$resource" --approve true >/dev/null ||
        die "registration.decide failed"
    echo "$resource"
}

push_baseline() {
    name=$1 csv=$2 rows=$3
    $psql -c "DROP TABLE IF EXISTS $name"
    $psql -f "$work/data/$name.sql" || die "cannot create the baseline table"
    timed "$name" psql $psql -c "\\copy $name FROM '$csv' WITH (FORMAT csv, HEADER)" ||
        die "psql \\copy failed"
    loaded=$($psql -At -c "SELECT count(*) FROM $name")
    [ "$loaded" = "$rows" ] || die "the baseline loaded $loaded rows, not $rows"
    $psql -c "DROP TABLE $name"
}

push_odp() {
    name=$1 csv=$2 rows=$3 dept=$4
    resource=$(odp_entry "$name" "$dept")
    out=$work/log/$name.push
    timed "$name" odp "$bin/odp-push" --json --cert "$work/keys/dept-${dept}_secret" push \
        --resource "$resource" "$csv" > "$out" 2>&1 || { tail -5 "$out"; die "odp-push failed"; }
    staged=$(tail -1 "$out" | sed -n 's/.*"rows_staged":\([0-9]*\).*/\1/p')
    [ "$staged" = "$rows" ] || die "odp staged ${staged:-?} rows, not $rows"
    table=$(tail -1 "$out" | sed -n 's/.*"staging_table":"\([^"]*\)".*/\1/p')
    [ -n "$table" ] && $psql -c "DROP TABLE $table"
}

# bench_push ROWS COLS NAME DEPARTMENT
bench_push() {
    rows=$1 cols=$2 name=$3 dept=$4
    say "$name: generating $rows rows x $cols columns"
    "$root/$BUILD/bench/gen" "$rows" "$cols" "$name" "$work/data" || die "gen failed"
    csv=$work/data/$name.csv
    size=$(stat -c %s "$csv")
    "$bin/odpctl" department add --code "$dept" --name "基准测试部门$dept" \
        --keygen "$work/keys/dept-$dept" >/dev/null 2>&1 || die "department.add $dept failed"
    i=1
    while [ $i -le "$reps" ]; do
        if [ $((i % 2)) = 1 ]; then
            push_baseline "$name" "$csv" "$rows"
            push_odp "$name" "$csv" "$rows" "$dept"
        else
            push_odp "$name" "$csv" "$rows" "$dept"
            push_baseline "$name" "$csv" "$rows"
        fi
        say "$name run $i/$reps: psql $(tail -1 "$work/times/$name.psql.wall")s," \
            "odp $(tail -1 "$work/times/$name.odp.wall")s"
        i=$((i + 1))
    done
    rm -f "$csv"
    t=$work/times/$name
    set -- $(stats "$t.psql.wall")
    pmin=$1 pmed=$2 pmax=$3
    set -- $(stats "$t.odp.wall")
    omin=$1 omed=$2 omax=$3
    ratio=$(calc %.3f "$pmed / $omed")
    mb=$(calc %.1f "$size / 1048576")
    {
        echo "push $name: $rows rows x $cols columns, $mb MiB"
        printf '  %-14s %8s %8s %8s %14s   %s\n' side "min s" "median s" "max s" \
            "median rows/s" "median CPU s: client registrar PostgreSQL"
        printf '  %-14s %8s %8s %8s %14s   %s %s %s\n' "psql \\copy" "$pmin" "$pmed" "$pmax" \
            "$(calc %d "$rows / $pmed")" "$(median "$t.psql.client")" \
            "$(median "$t.psql.registrar")" "$(median "$t.psql.pg")"
        printf '  %-14s %8s %8s %8s %14s   %s %s %s\n' "odp-push" "$omin" "$omed" "$omax" \
            "$(calc %d "$rows / $omed")" "$(median "$t.odp.client")" \
            "$(median "$t.odp.registrar")" "$(median "$t.odp.pg")"
        echo "  ratio of medians (odp rows/s / psql rows/s): $ratio"
        echo
    } >> "$report"
    if [ "$(calc %d "$ratio >= 1.0")" = 1 ]; then v=PASS; else v=FAIL; fi
    echo "$v - push $name: odp/psql ratio of median rows/s $ratio (target >= 1.0)" >> "$verdicts"
}

# ---- comparison: review and release (issues 8 and 9) ------------------------------------
# The 1M x 8 file once more, into an entry of its own whose dictionary turns every check
# kind on (required, unique, enum, min/max, length/min_length, pattern), with the reviewer
# and the publisher running (they are stopped again before the push comparisons, which time
# the registrar alone). Timed: psql \copy of the file (the baseline of this comparison);
# from the push's end to the review's checks done (target <= 0.5 x the copy), with the
# reviewer's peak RSS; then from the approval, given as soon as the checks are done, to the
# release being current (target <= 0.5 x the copy): the view, row and facet counts, the
# switch, and whatever of the registrar's index builds is left after the decision (they
# start with the review; their own duration from their start is reported beside, from the
# publisher's log); and the switch itself (the transaction that makes the new release
# current, from the publisher's log; target < 50 ms).
start_service() {
    ODP_LOG_LEVEL=info "$bin/odp-$1" > "$work/log/$1.log" 2>&1 &
    echo $! > "$work/run/$1.pid"
    i=0
    until "$bin/odpctl" --timeout-ms 1000 health --service "$1" >/dev/null 2>&1; do
        i=$((i + 1))
        [ $i -lt 30 ] || { tail -20 "$work/log/$1.log"; die "$1 did not become healthy"; }
        sleep 0.5
    done
}
stop_service() {
    kill "$(cat "$work/run/$1.pid")" 2>/dev/null
    rm -f "$work/run/$1.pid"
}
bench_release() {
    name=bench_8 dept=446799003
    say "release: generating $rows8 rows x 8 columns"
    "$root/$BUILD/bench/gen" "$rows8" 8 "$name" "$work/data" || die "gen failed"
    csv=$work/data/$name.csv
    cat > "$work/data/$name.dict.json" <<'EOF_DICT'
{"name": "review_bench", "title": "基准测试 审核", "domain": "经济建设", "fields": [
 {"name": "记录编号", "type": "text", "required": true, "unique": true,
  "pattern": "B[0-9]{10}", "length": 11, "min_length": 11},
 {"name": "单位名称", "type": "text", "required": true, "length": 64, "min_length": 4},
 {"name": "从业人数", "type": "integer", "min": 0, "max": 99999},
 {"name": "资产总额_万元", "type": "numeric", "min": 0, "max": 10000000},
 {"name": "登记日期", "type": "date", "required": true},
 {"name": "所属地市", "type": "text", "enum": ["广州市", "深圳市", "珠海市", "汕头市", "佛山市",
  "东莞市", "中山市", "江门市", "湛江市", "惠州市", "肇庆市", "潮州市"]},
 {"name": "增长率", "type": "numeric", "min": -50, "max": 50},
 {"name": "备注", "type": "text", "length": 100}]}
EOF_DICT
    "$bin/odpctl" department add --code "$dept" --name "基准测试部门$dept" \
        --keygen "$work/keys/dept-$dept" >/dev/null 2>&1 || die "department.add $dept failed"
    start_service reviewer
    start_service publisher
    push_baseline "$name" "$csv" "$rows8"
    copy_s=$(tail -1 "$work/times/$name.psql.wall")
    resource=$(odp_entry "$name" "$dept")
    "$bin/odp-push" --json --cert "$work/keys/dept-${dept}_secret" push --resource "$resource" \
        "$csv" > "$work/log/release.push" 2>&1 || { tail -5 "$work/log/release.push"; die "odp-push failed"; }
    t_pushed=$(now) c_pushed=$(pg_ticks)
    rm -f "$csv"
    upload=$($psql -At -c "SELECT id FROM registrar.uploads WHERE resource = '$resource'")
    say "release: waiting for the review of upload $upload"
    i=0
    # Polled every 20 ms: the review takes a few tenths of a second now (the push's hashes
    # replace the scan), so a 100 ms poll would add up to a third to what it measures.
    until [ "$($psql -At -c "SELECT count(*) FROM reviewer.reviews WHERE upload = $upload AND checked_at IS NOT NULL")" = 1 ]; do
        i=$((i + 1))
        [ $i -lt 30000 ] || die "the reviewer did not check the version in 10 minutes"
        sleep 0.02
    done
    review_s=$(calc %.3f "$(now) - $t_pushed")
    # PostgreSQL's CPU in each window (all of this cluster's processes, from /proc, read
    # after the time): what the work costs whatever else the machine runs.
    review_cpu=$(calc %.2f "($(pg_ticks) - $c_pushed) / $tck")
    review_ratio=$(calc %.3f "$review_s / $copy_s")
    reviewer_kb=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$(cat "$work/run/reviewer.pid")/status")
    findings=$($psql -At -c "SELECT count(*) FROM reviewer.findings WHERE upload = $upload")
    isolated=$($psql -At -c "SELECT count(*) FROM reviewer.quarantine WHERE upload = $upload AND state = 'isolated'")
    [ "$isolated" = 0 ] || die "$name has $isolated quarantined rows: nothing to time"
    # The reviewer's own account of the check: its duration, and whether the repeat counts
    # came from the push's hashes.
    rline=$(grep "event=review.checked upload=$upload " "$work/log/reviewer.log" | tail -1)
    check_ms=$(printf '%s\n' "$rline" | sed -n 's/.* ms=\([0-9]*\).*/\1/p')
    from_push=$(printf '%s\n' "$rline" | sed -n 's/.* repeats_from_push=\([a-z]*\).*/\1/p')
    # Decided at once: index builds still running then are part of the time measured.
    t0=$(now) c0=$(pg_ticks)
    "$bin/odpctl" review decide --upload "$upload" --approve true >/dev/null ||
        die "review.decide failed"
    "$bin/odpctl" --timeout-ms 900000 release publish --resource "$resource" \
        > "$work/log/publish.out" 2>&1 || { cat "$work/log/publish.out"; die "release.publish failed"; }
    t1=$(now)
    publish_cpu=$(calc %.2f "($(pg_ticks) - $c0) / $tck")
    publish_s=$(calc %.3f "$t1 - $t0")
    # The index builds, from the publisher's log: how long they took from their start, and
    # how much of them fell after the decision (an older publisher logs indexed_ahead).
    iline=$(grep -E "event=release\.(indexes_ready|indexed_ahead) upload=$upload " "$work/log/publisher.log" | tail -1)
    build_ms=$(printf '%s\n' "$iline" | sed -n 's/.* \(build_ms\|ms\)=\([0-9]*\).*/\2/p')
    iat=$(printf '%s\n' "$iline" | cut -d' ' -f1)
    after_s=?
    if [ -n "$iat" ]; then
        after_s=$(calc %.3f "$(date -d "$iat" +%s.%N) - $t0")
        [ "$(calc %d "$after_s < 0")" = 1 ] && after_s=0
    fi
    ratio=$(calc %.3f "$publish_s / $copy_s")
    line=$(grep 'event=release.published' "$work/log/publisher.log" | tail -1)
    ms() { printf '%s\n' "$line" | sed -n "s/.* $1=\([0-9]*\).*/\1/p"; }
    switch_ms=$(ms switch_ms)
    {
        echo "release $name: $rows8 rows x 8 columns, one run"
        printf '  %s\n' "psql \\copy ${copy_s}s; push end to checks done ${review_s}s" \
            "($findings findings; the check ${check_ms:-?} ms, repeats from the push's" \
            "hashes: ${from_push:-?}; reviewer VmHWM $(calc %.1f "$reviewer_kb / 1024") MiB;" \
            "PostgreSQL CPU ${review_cpu}s)"
        printf '  %s\n' "approval to published ${publish_s}s" \
            "(index builds ${build_ms:-?} ms from their start, ${after_s}s of them after the" \
            "decision; waited for them $(ms index_ms) ms; view and counts $(ms prepare_ms) ms;" \
            "switch ${switch_ms} ms; PostgreSQL CPU ${publish_cpu}s)"
        echo
    } >> "$report"
    if [ "$(calc %d "$review_ratio <= 0.5")" = 1 ]; then v=PASS; else v=FAIL; fi
    printf '%s\n' "$v - review $name: push end to checks done = $review_ratio x psql \\copy (target <= 0.5)" >> "$verdicts"
    if [ "$(calc %d "$ratio <= 0.5")" = 1 ]; then v=PASS; else v=FAIL; fi
    printf '%s\n' "$v - release $name: approval to published = $ratio x psql \\copy (target <= 0.5)" >> "$verdicts"
    if [ "${switch_ms:-999}" -lt 50 ]; then v=PASS; else v=FAIL; fi
    echo "$v - release $name: the switch to the new release ${switch_ms:-?} ms (target < 50 ms)" >> "$verdicts"
    stop_service publisher
    stop_service reviewer
    pub_resource=$resource # released: the query comparison reads it
    [ -z "${ODP_BENCH_WORK:-}" ] || echo "$pub_resource" > "$work/pub_resource"
}

# ---- metrics: catch-up and the index (issue 11) --------------------------------------------
# (a) 1,000,000 events recorded in the registrar's outbox (catalog.planned bodies, written by
#     SQL while the registrar is stopped, as a month of history would be), then a metrics
#     service started with nothing of its own: events/s until its cursor reaches the last
#     (target >= 50,000/s);
# (b) 1,000 departments and 100,000 entries with a version, review and release each
#     (written into the registrar's and metrics' tables), then index.get for the year through
#     odpctl (target <= 2 s).
bench_metrics() {
    nev=${ODP_BENCH_EVENTS:-1000000}
    push_hwm_kb=$(hwm_kb) # the registrar is restarted below
    kill "$(cat "$work/run/registrar.pid")" 2>/dev/null
    sleep 1
    say "metrics: writing $nev events into registrar.outbox"
    $psql <<SQL || die "cannot write the events"
CREATE FUNCTION pg_temp.s(t text) RETURNS bytea LANGUAGE sql AS
  \$\$ SELECT set_byte('\xa0'::bytea, 0, 160 + octet_length(convert_to(t, 'UTF8')))
              || convert_to(t, 'UTF8') \$\$;
INSERT INTO registrar.departments (code, name, registered_by)
  VALUES ('441799003', '基准测试 事件部门', 'bench') ON CONFLICT DO NOTHING;
WITH b AS (SELECT (SELECT last FROM registrar.outbox_counter) + g AS seq
           FROM generate_series(1, $nev) g)
INSERT INTO registrar.outbox (seq, topic, body, department)
SELECT seq, 'catalog.planned',
       '\x88'::bytea || pg_temp.s('source') || pg_temp.s('registrar')
       || pg_temp.s('seq') || '\xd3'::bytea || int8send(seq)
       || pg_temp.s('at') || pg_temp.s('2026-12-01T00:00:00.000Z')
       || pg_temp.s('actor') || pg_temp.s('provider:441799003')
       || pg_temp.s('id') || '\xd3'::bytea || int8send(seq)
       || pg_temp.s('department') || pg_temp.s('441799003')
       || pg_temp.s('title') || pg_temp.s('bench plan')
       || pg_temp.s('due_on') || pg_temp.s('2030-12-31'), '441799003'
FROM b;
UPDATE registrar.outbox_counter SET last = (SELECT max(seq) FROM registrar.outbox);
SQL
    last=$($psql -At -c "SELECT last FROM registrar.outbox_counter")
    "$bin/odp-registrar" >> "$work/log/registrar.log" 2>&1 &
    echo $! > "$work/run/registrar.pid"
    # Only the registrar runs: health polls of absent services are spread out (POLL_MS).
    ODP_METRICS_POLL_MS=60000 "$bin/odp-metrics" > "$work/log/metrics.log" 2>&1 &
    echo $! > "$work/run/metrics.pid"
    t0=$(now)
    i=0
    until [ "$($psql -At -c "SELECT coalesce((SELECT last FROM metrics.consumer_cursor
                              WHERE source = 'registrar'), 0)" 2>/dev/null)" = "$last" ]; do
        i=$((i + 1))
        [ $i -lt 3600 ] || die "metrics did not catch up within an hour"
        sleep 0.5
    done
    t1=$(now)
    catch_s=$(calc %.1f "$t1 - $t0")
    rate=$(calc %d "$last / ($t1 - $t0)")
    say "metrics: caught up with $last events in ${catch_s}s ($rate events/s)"
    say "metrics: 1,000 departments and 100,000 entries"
    $psql <<'SQL' || die "cannot write the index data"
INSERT INTO registrar.departments (code, name, registered_by)
  SELECT (442000001 + g * 1000)::text, '基准部门' || g, 'bench' FROM generate_series(1, 1000) g;
INSERT INTO registrar.resources (resource, department, title, summary, keywords, domain,
    content_kind, delivery_form, open_type, update_cycle, contact, location, status,
    catalogued_by, catalogued_at, registered_by, registered_at)
  SELECT 'B' || g, (442000001 + (1 + g % 1000) * 1000)::text, 'r' || g, 's', '{k}',
         'economy', 'dataset', CASE WHEN g % 50 = 0 THEN 'app' ELSE 'dataset_file' END,
         'unconditional', CASE WHEN g % 2 = 0 THEN 'monthly' ELSE 'yearly' END, 'c', 'l',
         'registered', 'bench', date_trunc('year', now()), 'bench', date_trunc('year', now())
  FROM generate_series(1, 100000) g;
INSERT INTO metrics.entries (resource, department, catalogued_at, registered_at)
  SELECT resource, department, catalogued_at, registered_at FROM registrar.resources
  WHERE resource LIKE 'B%';
INSERT INTO metrics.plans (id, department, title, due_on, planned_at)
  SELECT 10000000 + g, (442000001 + (1 + g % 1000) * 1000)::text, 'p', date_trunc('year', now())::date,
         date_trunc('year', now()) FROM generate_series(1, 5000) g;
INSERT INTO metrics.versions (upload, resource, table_name, version, kind, sha256, size,
    rows_received, rows_staged, rows_rejected, received_at, pushed_by)
  SELECT 10000000 + g, 'B' || g, 'main', 1, 'dataset', repeat('a', 64), 1000, 100,
         100 - g % 3, g % 3, date_trunc('year', now()) + interval '1 day',
         'provider:' || (442000001 + (1 + g % 1000) * 1000)
  FROM generate_series(1, 100000) g;
INSERT INTO metrics.reviews (upload, resource, department, started_at, findings, quarantined,
    first_decision, approved_at, approved_by)
  SELECT 10000000 + g, 'B' || g, (442000001 + (1 + g % 1000) * 1000)::text,
         date_trunc('year', now()) + interval '1 day', g % 5, g % 5,
         CASE WHEN g % 7 = 0 THEN 'rejected' ELSE 'approved' END,
         date_trunc('year', now()) + interval '2 days', 'operations:admin'
  FROM generate_series(1, 100000) g;
INSERT INTO metrics.releases (resource, version, rows, sha256, published_at)
  SELECT 'B' || g, 1, 100, repeat('a', 64), date_trunc('year', now()) + interval '3 days'
  FROM generate_series(1, 100000, 2) g;
ANALYZE;
SQL
    year=$(date -u +%Y)
    # Three computations (each is kept in the index history, as operations' would be); the
    # verdict is the median wall time through odpctl, its start and handshake included.
    : > "$work/index.times"
    for r in 1 2 3; do
        t0=$(now)
        "$bin/odpctl" --timeout-ms 120000 --json index --period "$year" > "$work/log/index.json" ||
            die "index.get failed"
        t1=$(now)
        echo "$(calc %.3f "$t1 - $t0")" >> "$work/index.times"
    done
    set -- $(sort -g "$work/index.times")
    index_s=$2
    ndept=$(grep -o '"department"' "$work/log/index.json" | wc -l)
    say "metrics: index.get for $ndept departments: $1 / $2 / $3 s (min / median / max of 3)"
    if [ "$(calc %d "$rate >= 50000")" = 1 ]; then v=PASS; else v=FAIL; fi
    echo "$v - metrics catch-up: $last events in ${catch_s}s, $rate events/s (target >= 50,000/s)" >> "$verdicts"
    if [ "$(calc %d "$index_s <= 2")" = 1 ]; then v=PASS; else v=FAIL; fi
    echo "$v - metrics index: $ndept departments, 100,000 entries in ${index_s}s, the median of 3 (target <= 2 s)" >> "$verdicts"
}
# ---- comparison: the HTTP gateway (issue 13) ---------------------------------------------
# With the release comparison's 1M x 8 version released: package_search and
# datastore_search requests per second through odp-web (HTTP, keep-alive) against the same
# requests sent straight to the query service (ZeroMQ), at the same concurrency, the two
# taking turns in short slices (target: the median ratio over the rounds >= 0.7 each), and
# the whole version as CSV through /datastore/dump against psql \copy (SELECT ...) TO
# (target >= 0.7). ODP_BENCH_WEB_RUNS (3) rounds, ODP_BENCH_WEB_SECONDS (5) a side,
# ODP_BENCH_WEB_SLICE (0.25 s turns), ODP_BENCH_WEB_CONC (4).
bench_web() {
    say "web: building wbench"
    cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -I. \
        $(pkg-config --cflags libczmq msgpack) -o "$root/$BUILD/bench/wbench" \
        tests/bench/wbench.c "$root/$BUILD/libodp.a" \
        $(pkg-config --libs libczmq libzmq msgpack libpq libsodium jansson) -lcsv -lm -lpthread ||
        die "cannot build tests/bench/wbench.c"
    wb=$root/$BUILD/bench/wbench
    wres=$($psql -At -c "SELECT resource FROM publisher.releases WHERE state = 'current' ORDER BY rows DESC LIMIT 1")
    [ -n "$wres" ] || die "web: nothing released (the release comparison makes the version)"
    wrel=$($psql -At -c "SELECT relation FROM publisher.releases WHERE resource = '$wres' AND state = 'current'")
    wport=$((ODP_PORT_BASE + 80))
    (
        export ODP_QUERY_PUBLIC_BIND=tcp://127.0.0.1:$((ODP_PORT_BASE + 33))
        export ODP_QUERY_RATE_PER_S=100000000 ODP_QUERY_RATE_BURST=100000000
        start_service query
    )
    ODP_QUERY_PUBLIC_ENDPOINT=tcp://127.0.0.1:$((ODP_PORT_BASE + 33)) ODP_WEB_PORT=$wport \
        ODP_WEB_RATE_PER_S=100000000 ODP_WEB_RATE_BURST=100000000 \
        "$bin/odp-web" > "$work/log/web.log" 2>&1 &
    echo $! > "$work/run/web.pid"
    i=0
    until "$wb" get "$wport" /api/3/action/status_show /dev/null >/dev/null 2>&1; do
        i=$((i + 1))
        [ $i -lt 30 ] || { tail -20 "$work/log/web.log"; die "odp-web did not answer"; }
        sleep 0.5
    done
    conc=${ODP_BENCH_WEB_CONC:-4}
    secs=${ODP_BENCH_WEB_SECONDS:-5}
    slice=${ODP_BENCH_WEB_SLICE:-0.25}
    web_pid=$(cat "$work/run/web.pid")
    # Both sides send the same query-service request: the body the gateway makes of the
    # CKAN parameters (its defaults written out), at the same concurrency, taking turns in
    # short slices (wbench pair) so that the load others put on the machine hits both.
    s_body='{"rows":10,"start":0,"q":"bench"}'
    d_body="{\"resource\":\"$wres\",\"limit\":100,\"offset\":0,\"include_total\":true}"
    # pair PATH COMMAND BODY: "direct_req/s web_req/s gateway_cpu_ms_per_web_request"
    pair() {
        t_web=$(ticks "$web_pid")
        out=$("$wb" pair "$wport" "$1" "$2" "$3" "$conc" "$secs" "$slice") || die "wbench pair $2 failed"
        set -- $out
        echo "$1 $2 $(calc %.3f "($(ticks "$web_pid") - $t_web) * 1000 / $tck / ($2 * $secs)")"
    }
    cols=$($psql -At -c "SELECT string_agg(quote_ident(name), ', ' ORDER BY position) FROM publisher.release_fields WHERE release = ${wrel#publisher.r}")
    : > "$work/web.results"
    r=0
    while [ $r -lt "${ODP_BENCH_WEB_RUNS:-3}" ]; do
        r=$((r + 1))
        s_pair=$(pair '/api/3/action/package_search?q=bench&rows=10' catalogue.search "$s_body") ||
            exit 1
        d_pair=$(pair "/api/3/action/datastore_search?resource_id=$wres&limit=100" datastore.search "$d_body") ||
            exit 1
        dump=$("$wb" get "$wport" "/datastore/dump/$wres?format=csv" "$work/data/web-dump.csv") || die "wbench dump failed"
        t0=$(now)
        $psql -c "\\copy (SELECT $cols FROM $wrel ORDER BY row_no) TO '$work/data/web-psql.csv' WITH (FORMAT csv, HEADER)" ||
            die "psql \\copy TO failed"
        t1=$(now)
        psql_s=$(calc %.3f "$t1 - $t0")
        # columns: 1-3 search (direct req/s, web req/s, gateway CPU ms a request), 4-6 rows
        # likewise, 7-8 dump (s bytes), 9 psql s, 10-11 the ratios web / direct
        set -- $s_pair $d_pair
        echo "$s_pair $d_pair $dump $psql_s $(calc %.3f "$2 / $1") $(calc %.3f "$5 / $4")" >> "$work/web.results"
        say "web round $r: package_search $2 req/s (direct $1): $(calc %.3f "$2 / $1") x; datastore_search $5 (direct $4): $(calc %.3f "$5 / $4") x; dump $dump (s bytes), psql \\copy ${psql_s}s"
    done
    same=$(cmp -s "$work/data/web-dump.csv" "$work/data/web-psql.csv" && echo yes || echo no)
    rm -f "$work/data/web-dump.csv" "$work/data/web-psql.csv"
    wmed() { awk -v c="$1" '{ print $c }' "$work/web.results" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
    # wmmm N: "min/median/max" of column N over the rounds
    wmmm() { awk -v c="$1" '{ print $c }' "$work/web.results" | sort -g | awk '{ v[NR] = $1 } END { printf "%s/%s/%s", v[1], v[int((NR + 1) / 2)], v[NR] }'; }
    sd=$(wmed 1) sw=$(wmed 2) dd=$(wmed 4) dw=$(wmed 5) dump_s=$(wmed 7) bytes=$(wmed 8) psql_s=$(wmed 9)
    {
        echo "web: through odp-web vs straight to the query service, concurrency $conc, ${secs}s a side in turns of ${slice}s, ${ODP_BENCH_WEB_RUNS:-3} rounds (min/median/max)"
        echo "  package_search req/s: web $(wmmm 2), direct $(wmmm 1); ratio per round $(wmmm 10); gateway CPU ms a request $(wmmm 3)"
        echo "  datastore_search limit 100 req/s: web $(wmmm 5), direct $(wmmm 4); ratio per round $(wmmm 11); gateway CPU ms a request $(wmmm 6)"
        # printf, not echo: dash's echo reads the backslash of \copy as an escape.
        printf '%s\n' "  /datastore/dump CSV of $wres: ${dump_s}s, $bytes bytes (same bytes as psql: $same); psql \\copy TO ${psql_s}s"
        echo
    } >> "$report"
    # The verdict is the median of the rounds' ratios: each round's two sides ran in turns
    # under the same load, the rounds themselves did not.
    ratio=$(wmed 10)
    if [ "$(calc %d "$ratio >= 0.7")" = 1 ]; then v=PASS; else v=FAIL; fi
    echo "$v - web: package_search through the gateway $sw req/s vs direct $sd (medians): $ratio x, the median round (target >= 0.7)" >> "$verdicts"
    ratio=$(wmed 11)
    if [ "$(calc %d "$ratio >= 0.7")" = 1 ]; then v=PASS; else v=FAIL; fi
    echo "$v - web: datastore_search through the gateway $dw req/s vs direct $dd (medians): $ratio x, the median round (target >= 0.7)" >> "$verdicts"
    ratio=$(calc %.3f "$psql_s / $dump_s")
    if [ "$(calc %d "$ratio >= 0.7")" = 1 ]; then v=PASS; else v=FAIL; fi
    # printf, not echo: dash's echo reads the backslash of \copy as an escape.
    printf '%s\n' "$v - web: CSV dump ${dump_s}s vs psql \\copy TO ${psql_s}s: $ratio x (target >= 0.7)" >> "$verdicts"
    kill "$(cat "$work/run/web.pid")" 2>/dev/null
    rm -f "$work/run/web.pid"
    stop_service query
}

# ---- the query service (issue 10) ----------------------------------------------------------
# With the 1M x 8 set released by bench_release and 100,000 catalogue entries: an indexed
# equality query (one row by _id) through the query service against the same query through
# libpq at the same concurrency, at each of ODP_BENCH_QUERY_CONCS (4 16 32) (throughput
# ratio, target >= 0.5; the service's clients on its public endpoint with a key nobody
# registered, as a citizen's), with whoami through the same client as the transport's ceiling;
# keyset page 10,000 against page 1 (median latency ratio, target <= 1.5); catalogue search
# with Chinese keywords (p50/p95, target p95 <= 20 ms); the full version as CSV through
# download.chunk against psql \copy (SELECT ...) TO (target >= 0.8); the query service's
# peak RSS. Each comparison runs ODP_BENCH_QUERY_RUNS (3) interleaved rounds (odd rounds
# run the service first, even rounds last) and reports the median. The 100,000 entries are
# written straight into publisher.entries as the superuser (synthetic, like gen.c's rows):
# the publisher's release path is measured above, the search is measured here.
bench_query() {
    say "query: building qbench"
    cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -I. \
        $(pkg-config --cflags libczmq msgpack libpq) -o "$root/$BUILD/bench/qbench" \
        tests/bench/qbench.c "$root/$BUILD/libodp.a" \
        $(pkg-config --libs libczmq libzmq msgpack libpq libsodium jansson) -lcsv -lm -lpthread ||
        die "cannot build tests/bench/qbench.c"
    qb=$root/$BUILD/bench/qbench
    # The throughput comparison's clients reach the service as the public does: on the
    # public endpoint, with a key pair nobody registered (anonymous, unless it is bound).
    qpub="tcp://127.0.0.1:$((ODP_PORT_BASE + 33))"
    "$bin/odpctl" keygen --kind user --id bench --out "$work/keys/public-user" >/dev/null ||
        die "cannot make the public client's key"
    pubcert=$work/keys/public-user_secret
    ODP_QUERY_PUBLIC_BIND=$qpub ODP_QUERY_RATE_PER_S=100000000 ODP_QUERY_RATE_BURST=100000000 \
        ODP_LOG_LEVEL=warn "$bin/odp-query" > "$work/log/query.log" 2>&1 &
    echo $! > "$work/run/query.pid"
    query_pid=$!
    i=0
    until "$bin/odpctl" --timeout-ms 1000 health --service query >/dev/null 2>&1; do
        i=$((i + 1))
        [ $i -lt 30 ] || { tail -20 "$work/log/query.log"; die "query did not become healthy"; }
        sleep 0.5
    done
    say "query: 100,000 catalogue entries"
    $psql <<'SQL' || die "cannot write the catalogue entries"
INSERT INTO publisher.entries (resource, kind, department, department_name, title, summary,
    keywords, domain, content_kind, delivery_form, open_type, update_cycle, contact, location,
    state, modified_seq)
SELECT 'bench-' || i, 'dataset', '4417990' || lpad((i % 90 + 10)::text, 2, '0'), '基准部门',
       (ARRAY['空气','水质','交通','医疗','教育','企业','人口','气象','农业','旅游'])[i % 10 + 1] ||
       (ARRAY['监测','统计','名录','登记','分布','指数','信息','数据'])[i % 8 + 1] ||
       (ARRAY['年报','月报','日报','汇总','清单'])[i % 5 + 1] || ' 第' || i || '号',
       '基准测试的目录条目，编号 ' || i, ARRAY['基准', '条目' || (i % 100)],
       (ARRAY['economy','health','roads_transport','education_science'])[i % 4 + 1],
       'dataset', 'dataset_file', 'unconditional', 'monthly', '020-00000000', 'bench',
       'published', 1000000000 + i
  FROM generate_series(1, 100000) i
ON CONFLICT DO NOTHING;
SELECT query.sync_grams();
SQL
    relation=$($psql -At -c "SELECT relation FROM publisher.releases WHERE resource = '$pub_resource' AND state = 'current'")
    release=${relation#publisher.r}
    maxrow=$($psql -At -c "SELECT max(row_no) FROM $relation")
    # Two libpq baselines. Over the Unix socket as the superuser (what this compared with
    # until round 5), and over TCP 127.0.0.1 as the query service's own role with its
    # scram password - the way the service itself and any client "straight to PostgreSQL"
    # reach it, so the verdict uses that one. Both send the same statement.
    conninfo="host=$ODP_PG_SOCKET port=$ODP_DB_PORT user=$ODP_PG_SUPERUSER dbname=odp"
    tcpinfo="host=127.0.0.1 port=$ODP_DB_PORT user=odp_query dbname=odp"
    runs=${ODP_BENCH_QUERY_RUNS:-3}
    # The throughput comparison at each of these concurrencies (clients, each one request at
    # a time; qbench allows 1-64), both sides at the same one: few clients measure the
    # latency of one request's path, more measure what each side can carry.
    concs=${ODP_BENCH_QUERY_CONCS:-4 16 32}
    : > "$work/query.results"
    : > "$work/query.tput"
    # Unmeasured warm-up: the service reloads its catalogue search index after the entries
    # above (on its loop), and makes its hints and prepared statements at the first
    # requests; until round 6 the first round of every run measured that start-up.
    "$qb" search - 20 空气监测 >/dev/null || die "qbench search failed"
    ODP_CLIENT_CERT=$pubcert "$qb" rows "$qpub" "$pub_resource" "$relation" "$maxrow" 4 3 >/dev/null ||
        die "qbench rows failed"
    r=0
    while [ $r -lt "$runs" ]; do
        r=$((r + 1))
        # Odd rounds run the service first, even rounds last: drift hits both sides.
        if [ $((r % 2)) = 1 ]; then sides="svc lib tcp ceil"; else sides="tcp lib ceil svc"; fi
        for conc in $concs; do
            for side in $sides; do
                case $side in
                svc) svc=$(ODP_CLIENT_CERT=$pubcert "$qb" rows "$qpub" "$pub_resource" "$relation" "$maxrow" "$conc" 5) ||
                    die "qbench rows failed" ;;
                lib) lib=$("$qb" pg "$conninfo" "$pub_resource" "$relation" "$maxrow" "$conc" 5) || die "qbench pg failed" ;;
                tcp) tcp=$(PGPASSWORD=$ODP_QUERY_DB_PASSWORD "$qb" pg "$tcpinfo" "$pub_resource" "$relation" "$maxrow" "$conc" 5) ||
                    die "qbench pg over TCP failed" ;;
                ceil) ceil=$(ODP_CLIENT_CERT=$pubcert "$qb" whoami "$qpub" "$conc" 5) || die "qbench whoami failed" ;;
                esac
            done
            echo "$conc $r $svc $lib $tcp $ceil" >> "$work/query.tput"
            say "query round $r, concurrency $conc: service $svc req/s, libpq TCP $tcp / Unix socket $lib req/s, whoami $ceil req/s"
        done
        page=$("$qb" page - "$pub_resource" "$release" 10000 20) || die "qbench page failed"
        search=$("$qb" search - 200 空气监测 水质 交通统计 医疗名录 教育 企业登记 人口分布 气象指数) ||
            die "qbench search failed"
        # CPU seconds of the query service and of PostgreSQL during each side: where the
        # time goes on a shared machine.
        q0=$(ticks "$query_pid") p0=$(pg_ticks)
        dl=$("$qb" download - "$pub_resource" "$work/data/query-download.csv") || die "qbench download failed"
        sleep 0.3
        q1=$(ticks "$query_pid") p1=$(pg_ticks)
        cols=$($psql -At -c "SELECT string_agg(quote_ident(name), ', ' ORDER BY position) FROM publisher.release_fields WHERE release = $release")
        t0=$(now)
        $psql -c "\\copy (SELECT $cols FROM $relation ORDER BY row_no) TO '$work/data/query-psql.csv' WITH (FORMAT csv, HEADER)" ||
            die "psql \\copy TO failed"
        t1=$(now)
        sleep 0.3
        p2=$(pg_ticks)
        psql_s=$(calc %.3f "$t1 - $t0")
        cpu="$(calc %.2f "($q1 - $q0) / $tck") $(calc %.2f "($p1 - $p0) / $tck") $(calc %.2f "($p2 - $p1) / $tck")"
        echo "$page $search $dl $psql_s $cpu" >> "$work/query.results"
        say "query round $r: page 1 / 10,000 $page ms; search p50 p95 bad $search; download $dl (s bytes), psql \\copy ${psql_s}s"
    done
    same=$(cmp -s "$work/data/query-download.csv" "$work/data/query-psql.csv" && echo yes || echo no)
    query_hwm=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$query_pid/status")
    # median of column N over the rounds
    med() { awk -v c="$1" '{ print $c }' "$work/query.results" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
    set -- $(med 1) $(med 2) $(med 3) $(med 4) $(med 6) $(med 8) $(med 7)
    p1=$1 p10k=$2 s50=$3 s95=$4 dl_s=$5 psql_s=$6 dl_bytes=$7 qkb=$query_hwm
    dl_qcpu=$(med 9) dl_pgcpu=$(med 10) psql_pgcpu=$(med 11)
    kill "$query_pid" 2>/dev/null
    rm -f "$work/run/query.pid" "$work/data/query-download.csv" "$work/data/query-psql.csv"
    # Per concurrency: the medians of each side over the rounds, their ratio (the verdict),
    # and the spread of the rounds' own ratios (min / median / max).
    for conc in $concs; do
        # column N of this concurrency's rows: "min median max"
        qtput() { awk -v c="$conc" -v n="$1" '$1 == c { print $n }' "$work/query.tput" > "$work/query.col"; stats "$work/query.col"; }
        ratios() { awk -v c="$conc" -v a="$1" -v b="$2" '$1 == c && $b > 0 { printf "%.3f\n", $a / $b }' "$work/query.tput" > "$work/query.col"; stats "$work/query.col"; }
        svc=$(qtput 3 | cut -d' ' -f2) lib=$(qtput 4 | cut -d' ' -f2) tcp=$(qtput 5 | cut -d' ' -f2)
        ceil=$(qtput 6 | cut -d' ' -f2)
        ratio=$(calc %.3f "$svc / $tcp")
        uratio=$(calc %.3f "$svc / $lib")
        if [ "$(calc %d "$ratio >= 0.5")" = 1 ]; then v=PASS; else v=FAIL; fi
        echo "$v - query: concurrency $conc: indexed equality $(calc %.0f "$svc") req/s through the service, $(calc %.0f "$tcp") through libpq over TCP: ratio $ratio (target >= 0.5; rounds' ratios min/median/max $(ratios 3 5)); against libpq over the Unix socket as the superuser, $(calc %.0f "$lib") req/s: ratio $uratio" >> "$verdicts"
        echo "info - query: concurrency $conc: the transport's ceiling, whoami (answered by the loop, no PostgreSQL) through the same client and keys: $(calc %.0f "$ceil") req/s, $(calc %.3f "$ceil / $tcp") x libpq over TCP, $(calc %.3f "$ceil / $lib") x over the Unix socket" >> "$verdicts"
    done
    ratio=$(calc %.2f "$p10k / $p1")
    if [ "$(calc %d "$ratio <= 1.5")" = 1 ]; then v=PASS; else v=FAIL; fi
    echo "$v - query: keyset page 10,000 $p10k ms vs page 1 $p1 ms: $ratio x (target <= 1.5)" >> "$verdicts"
    if [ "$(calc %d "$s95 <= 20")" = 1 ]; then v=PASS; else v=FAIL; fi
    echo "$v - query: catalogue search over 100,000 entries, Chinese keywords: p50 $s50 ms, p95 $s95 ms (target p95 <= 20 ms)" >> "$verdicts"
    ratio=$(calc %.3f "$psql_s / $dl_s")
    if [ "$(calc %d "$ratio >= 0.8")" = 1 ]; then v=PASS; else v=FAIL; fi
    # printf, not echo: dash's echo reads the backslash of \copy as an escape.
    printf '%s\n' "$v - query: full CSV download ${dl_s}s ($dl_bytes bytes; same bytes as psql: $same) vs psql \\copy ${psql_s}s: $ratio x (target >= 0.8)" >> "$verdicts"
    echo "info - query: the query service's peak RSS (VmHWM) $(calc %.1f "$qkb / 1024") MiB" >> "$verdicts"
    printf '%s\n' "info - query: CPU s (medians) during the download: query service $dl_qcpu, PostgreSQL $dl_pgcpu; during psql \\copy: PostgreSQL $psql_pgcpu" >> "$verdicts"
}

# ---- the comparisons ---------------------------------------------------------------------
# A comparison is a function above that appends its table to $report and its PASS/FAIL
# lines to $verdicts; add its call here, guarded by its name for ODP_BENCH_ONLY.
want() { [ -z "$only" ] || [ "$only" = "$1" ]; }
want release && bench_release
want bench_8 && bench_push "$rows8" 8 bench_8 446799001
want bench_50 && bench_push "$rows50" 50 bench_50 446799002
want query && { [ -n "${pub_resource:-}" ] || bench_release; bench_query; }
want web && { [ -n "${pub_resource:-}" ] || bench_release; bench_web; }
want metrics && bench_metrics

# ---- report --------------------------------------------------------------------------------
hwm_mb=$(calc %.1f "${push_hwm_kb:-$(hwm_kb)} / 1024")
if [ "$(calc %d "$hwm_mb <= 64")" = 1 ]; then v=PASS; else v=FAIL; fi
echo "$v - registrar peak RSS (VmHWM) $hwm_mb MiB after all runs (target <= 64 MiB)" >> "$verdicts"
echo
cat "$work/header" "$report" "$verdicts"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
exit 0
