#!/bin/sh
# tests/bench/run.sh - push throughput and registrar memory (`make bench`).
#
# For a 1,000,000 x 8 and a 200,000 x 50 CSV (tests/bench/gen.c, deterministic):
#   (a) baseline: psql \copy into an identical typed table, as the superuser;
#   (b) odp-push end to end: department, catalogue entry, dictionary, registration,
#       approval, push - through CURVE, the registrar's loader and its COPY;
# and prints rows/s of both, their ratio (target >= 0.9) and the registrar's peak RSS
# (VmHWM, target <= 64 MB). Targets are reported as PASS/FAIL; the exit status is 0 either
# way (a benchmark informs, it does not gate), non-zero only when it could not run.
#
# Everything is throw-away: a PostgreSQL cluster under /tmp, keys, the registrar, all
# removed at the end, also on failure. Only the registrar is started: the push path is
# what is measured, and the reviewer checking a million rows meanwhile would take the
# other core (ODP_BENCH_SERVICES="registrar reviewer ..." to start more).
#
# Then the reviewer on the 1M x 8 set with every check kind on (review_bench, near the end):
# push finished to review decided, as a ratio to the psql \copy time (ODP_BENCH_REVIEW=0
# skips it).
#
# Environment: BUILD (default build), ODP_BENCH_ROWS8 / ODP_BENCH_ROWS50 (row counts),
# ODP_BENCH_PG_PORT (55434), ODP_BENCH_PORT_BASE (27500), ODP_BENCH_KEEP=1 keeps the
# work directory.
set -u
cd "$(dirname "$0")/../.."
root=$(pwd)
BUILD=${BUILD:-build}
bin=$root/$BUILD/bin
rows8=${ODP_BENCH_ROWS8:-1000000}
rows50=${ODP_BENCH_ROWS50:-200000}
services=${ODP_BENCH_SERVICES:-registrar}

# One benchmark at a time on a machine: runs share the PostgreSQL and service ports, and
# two at once would measure each other.
if command -v flock >/dev/null 2>&1; then
    exec 8>"${TMPDIR:-/tmp}/odp-bench.lock"
    flock 8
fi
work=$(mktemp -d /tmp/odp-bench.XXXXXX)
pgdir=$work/pg
pgport=${ODP_BENCH_PG_PORT:-55434}
results=$work/results

say() { printf 'bench: %s\n' "$*" >&2; }

cleanup() {
    for f in "$work"/run/*.pid; do
        [ -f "$f" ] || continue
        pid=$(cat "$f")
        kill "$pid" 2>/dev/null && sleep 0.2
        kill -9 "$pid" 2>/dev/null
    done
    bash deploy/pg.sh destroy "$pgdir" >/dev/null 2>&1 || true
    if [ "${ODP_BENCH_KEEP:-0}" = 1 ]; then say "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() { say "$*"; exit 1; }

now() { date +%s.%N; }
# calc FORMAT EXPRESSION: floating point without bc.
calc() { awk "BEGIN { printf \"$1\", ($2) }"; }

for b in odpctl odp-push odp-registrar; do
    [ -x "$bin/$b" ] || die "missing $bin/$b: run make first"
done

# The cluster runs as the postgres OS user when this runs as root: it must traverse $work
# (not list it); the secret keys stay private.
chmod 711 "$work"
mkdir -p "$work/log" "$work/run" "$work/keys" "$work/certs/public" "$work/data" \
    "$root/$BUILD/bench"
chmod 700 "$work/keys"
: > "$results"

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

"$bin/odpctl" keygen --kind server --id odp --out "$work/certs/server" >/dev/null
"$bin/odpctl" keygen --kind operations --id admin --name "Operations administrator" \
    --out "$work/keys/ops-admin" >/dev/null
cp "$work/keys/ops-admin" "$work/certs/public/operations-admin.cert"
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

# ---- one dataset ---------------------------------------------------------------------------
# bench ROWS COLS NAME DEPARTMENT
bench() {
    rows=$1 cols=$2 name=$3 dept=$4
    say "$name: generating $rows rows x $cols columns"
    "$root/$BUILD/bench/gen" "$rows" "$cols" "$name" "$work/data" || die "gen failed"
    csv=$work/data/$name.csv
    size=$(stat -c %s "$csv")

    # (a) the baseline: the same typed table, loaded by psql's \copy.
    $psql -f "$work/data/$name.sql" || die "cannot create the baseline table"
    t0=$(now)
    $psql -c "\\copy $name FROM '$csv' WITH (FORMAT csv, HEADER)" || die "psql \\copy failed"
    t1=$(now)
    loaded=$($psql -At -c "SELECT count(*) FROM $name")
    [ "$loaded" = "$rows" ] || die "the baseline loaded $loaded rows, not $rows"
    psql_s=$(calc %.3f "$t1 - $t0")
    $psql -c "DROP TABLE $name"

    # (b) odp end to end, as a department would.
    key=$work/keys/dept-$dept
    "$bin/odpctl" department add --code "$dept" --name "基准测试部门$dept" --keygen "$key" \
        >/dev/null 2>&1 || die "department.add $dept failed"
    resource=$("$bin/odp-push" --cert "${key}_secret" catalog --summary "基准测试" \
        --keywords "基准,测试" --content-kind dataset --delivery-form dataset_file \
        --open-type unconditional --update-cycle monthly --contact "020-00000000" \
        --location "bench" --dict "$work/data/$name.dict.json" 2>"$work/log/$name.catalog") ||
        { cat "$work/log/$name.catalog"; die "odp-push catalog failed"; }
    "$bin/odp-push" --cert "${key}_secret" register --resource "$resource" >/dev/null ||
        die "odp-push register failed"
    "$bin/odpctl" registration decide --resource "$resource" --approve true >/dev/null ||
        die "registration.decide failed"
    t0=$(now)
    "$bin/odp-push" --json --cert "${key}_secret" push --resource "$resource" "$csv" \
        > "$work/log/$name.push" 2>&1 || { tail -5 "$work/log/$name.push"; die "odp-push failed"; }
    t1=$(now)
    odp_s=$(calc %.3f "$t1 - $t0")
    staged=$(tail -1 "$work/log/$name.push" | sed -n 's/.*"rows_staged":\([0-9]*\).*/\1/p')
    [ "$staged" = "$rows" ] || die "odp staged ${staged:-?} rows, not $rows"

    psql_rps=$(calc %d "$rows / $psql_s")
    odp_rps=$(calc %d "$rows / $odp_s")
    ratio=$(calc %.3f "$odp_rps / $psql_rps")
    mb=$(calc %.1f "$size / 1048576")
    say "$name: $mb MiB; psql \\copy ${psql_s}s ($psql_rps rows/s); odp-push ${odp_s}s ($odp_rps rows/s); ratio $ratio; registrar VmHWM $(hwm_kb) kB"
    echo "$name $rows $cols $mb $psql_rps $odp_rps $ratio $(hwm_kb)" >> "$results"
    rm -f "$csv"
}

bench "$rows8" 8 bench_8 441799001
bench "$rows50" 50 bench_50 441799002

# ---- review (issue #8) ----------------------------------------------------------------------
# review_bench ROWS NAME DEPARTMENT: the 8-column set again, pushed to an entry whose
# dictionary turns every check kind on (required, unique, enum, min/max, length/min_length,
# pattern); the time from the push's end to the review decided (checked, then approved by
# operations when nothing was isolated, else rejected), as a ratio to this run's psql \copy
# of the same rows (target <= 0.5), and the reviewer's peak RSS. The reviewer starts here,
# after the push benchmarks, and first reviews the versions they left.
review_bench() {
    rows=$1 name=$2 dept=$3
    if [ ! -f "$work/run/reviewer.pid" ]; then
        # Its own service key, to follow the registrar's events (the registrar reloads the
        # certificate directory when it changes).
        "$bin/odpctl" keygen --kind service --id reviewer --out "$work/keys/service-reviewer" \
            >/dev/null || die "cannot make the reviewer's key"
        cp "$work/keys/service-reviewer" "$work/certs/public/service-reviewer.cert"
        ODP_SERVICE_KEYS="$work/keys" "$bin/odp-reviewer" > "$work/log/reviewer.log" 2>&1 &
        echo $! > "$work/run/reviewer.pid"
    fi
    reviewer_pid=$(cat "$work/run/reviewer.pid")
    i=0
    until "$bin/odpctl" --timeout-ms 1000 health --service reviewer >/dev/null 2>&1; do
        i=$((i + 1))
        [ $i -lt 60 ] || { tail -20 "$work/log/reviewer.log"; die "reviewer did not start"; }
        sleep 0.5
    done
    # The push benchmarks' versions are reviewed before this one is pushed.
    i=0
    until [ "$($psql -At -c "SELECT count(*) FROM registrar.uploads u WHERE u.status =
            'received' AND NOT EXISTS (SELECT 1 FROM reviewer.reviews v WHERE v.upload = u.id
            AND v.checked_at IS NOT NULL)")" = 0 ]; do
        i=$((i + 1))
        [ $i -lt 1200 ] || die "the reviewer did not review the push benchmarks' versions"
        sleep 0.5
    done
    say "$name: generating $rows rows x 8 columns"
    "$root/$BUILD/bench/gen" "$rows" 8 "$name" "$work/data" || die "gen failed"
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
    key=$work/keys/dept-$dept
    "$bin/odpctl" department add --code "$dept" --name "基准测试部门$dept" --keygen "$key" \
        >/dev/null 2>&1 || die "department.add $dept failed"
    resource=$("$bin/odp-push" --cert "${key}_secret" catalog --summary "基准测试 审核" \
        --keywords "基准,审核" --content-kind dataset --delivery-form dataset_file \
        --open-type unconditional --update-cycle monthly --contact "020-00000000" \
        --location "bench" --dict "$work/data/$name.dict.json" 2>"$work/log/$name.catalog") ||
        { cat "$work/log/$name.catalog"; die "odp-push catalog failed"; }
    "$bin/odp-push" --cert "${key}_secret" register --resource "$resource" >/dev/null ||
        die "odp-push register failed"
    "$bin/odpctl" registration decide --resource "$resource" --approve true >/dev/null ||
        die "registration.decide failed"
    "$bin/odp-push" --json --cert "${key}_secret" push --resource "$resource" \
        "$work/data/$name.csv" > "$work/log/$name.push" 2>&1 ||
        { tail -5 "$work/log/$name.push"; die "odp-push failed"; }
    t0=$(now)
    upload=$(tail -1 "$work/log/$name.push" | sed -n 's/.*"upload":\([0-9]*\).*/\1/p')
    [ -n "$upload" ] || die "no upload in the push's summary"
    i=0
    until "$bin/odpctl" --json review show --upload "$upload" > "$work/log/$name.review" \
        2>/dev/null && grep -q '"checked_at"' "$work/log/$name.review"; do
        i=$((i + 1))
        [ $i -lt 6000 ] || die "the review of upload $upload did not end"
        sleep 0.05
    done
    if grep -q '"quarantined":0' "$work/log/$name.review"; then
        "$bin/odpctl" review decide --upload "$upload" --approve true >/dev/null ||
            die "review.decide failed"
    else
        "$bin/odpctl" review decide --upload "$upload" --approve false \
            --reason "基准测试: 有隔离行" >/dev/null || die "review.decide failed"
    fi
    t1=$(now)
    review_s=$(calc %.3f "$t1 - $t0")
    psql_rps=$(awk '$1 == "bench_8" { print $5 }' "$results")
    copy_s=$(calc %.3f "$rows / $psql_rps")
    ratio=$(calc %.3f "$review_s / $copy_s")
    findings=$(sed -n 's/.*"findings":\([0-9]*\).*/\1/p' "$work/log/$name.review")
    rss=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$reviewer_pid/status")
    say "$name: review ${review_s}s ($findings findings) for psql \\copy ${copy_s}s; ratio $ratio; reviewer VmHWM $rss kB"
    review_line="$ratio $review_s $copy_s $rss"
    rm -f "$work/data/$name.csv"
}

review_line=
if [ "${ODP_BENCH_REVIEW:-1}" = 1 ]; then
    review_bench "$rows8" bench_review 441799003
fi

# ---- report --------------------------------------------------------------------------------
hwm=$(hwm_kb)
hwm_mb=$(calc %.1f "$hwm / 1024")
echo
printf '%-10s %9s %5s %9s %13s %13s %7s %12s\n' dataset rows cols "size MiB" "psql rows/s" \
    "odp rows/s" ratio "VmHWM MiB"
while read -r name rows cols mb prps orps ratio kb; do
    printf '%-10s %9s %5s %9s %13s %13s %7s %12s\n' "$name" "$rows" "$cols" "$mb" "$prps" \
        "$orps" "$ratio" "$(calc %.1f "$kb / 1024")"
done < "$results"
echo
while read -r name rows cols mb prps orps ratio kb; do
    if [ "$(calc %d "$ratio >= 0.9")" = 1 ]; then v=PASS; else v=FAIL; fi
    echo "$v - $name: odp/psql throughput ratio $ratio (target >= 0.9)"
done < "$results"
if [ "$(calc %d "$hwm_mb <= 64")" = 1 ]; then v=PASS; else v=FAIL; fi
echo "$v - registrar peak RSS (VmHWM) $hwm_mb MiB after both pushes (target <= 64 MiB)"
if [ -n "$review_line" ]; then
    set -- $review_line
    if [ "$(calc %d "$1 <= 0.5")" = 1 ]; then v=PASS; else v=FAIL; fi
    printf '%s - bench_8 review: push finished to review decided %ss, %sx the psql \\copy time %ss (target <= 0.5); reviewer VmHWM %s MiB\n' \
        "$v" "$2" "$1" "$3" "$(calc %.1f "$4 / 1024")"
fi
exit 0
