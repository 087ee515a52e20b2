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
# Each service's own identity (kind service): the reviewer and publisher follow others' events.
for s in registrar reviewer publisher query metrics; do
    "$bin/odpctl" keygen --kind service --id "$s" --out "$work/keys/service-$s" >/dev/null
    cp "$work/keys/service-$s" "$work/certs/public/service-$s.cert"
done
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

# ---- publishing: from the review decided to the release published (issue 9) ---------------
# The 1M x 8 version pushed above is reviewed, approved and released: the time from the
# decision to the release being current (indexes, view, row and facet counts, switch),
# as a ratio to that run's psql \copy time (target <= 0.5), and the switch itself (the
# transaction that makes the new release current, target < 50 ms), from the publisher's log.
# The reviewer and publisher start only now, so that the push figures above are alone.
for s in reviewer publisher; do
    case " $services " in *" $s "*) continue ;; esac
    ODP_LOG_LEVEL=info "$bin/odp-$s" > "$work/log/$s.log" 2>&1 &
    echo $! > "$work/run/$s.pid"
    i=0
    until "$bin/odpctl" --timeout-ms 1000 health --service "$s" >/dev/null 2>&1; do
        i=$((i + 1))
        [ $i -lt 30 ] || { tail -20 "$work/log/$s.log"; die "$s did not become healthy"; }
        sleep 0.5
    done
done
pub_upload=$($psql -At -c "SELECT u.id FROM registrar.uploads u JOIN registrar.resources r ON r.resource = u.resource WHERE r.department = '441799001' AND u.status = 'received'")
pub_resource=$($psql -At -c "SELECT resource FROM registrar.uploads WHERE id = ${pub_upload:-0}")
[ -n "$pub_upload" ] || die "no received bench_8 version to publish"
say "publishing: waiting for the reviews of both versions"
i=0
until [ "$($psql -At -c "SELECT count(*) FROM reviewer.reviews")" -ge 2 ]; do
    i=$((i + 1))
    [ $i -lt 1200 ] || die "the reviewer did not review the versions in 10 minutes"
    sleep 0.5
done
isolated=$($psql -At -c "SELECT count(*) FROM reviewer.quarantine WHERE upload = $pub_upload AND state = 'isolated'")
[ "$isolated" = 0 ] || die "bench_8 has $isolated quarantined rows: nothing to time"
t0=$(now)
"$bin/odpctl" review decide --upload "$pub_upload" --approve true >/dev/null ||
    die "review.decide failed"
"$bin/odpctl" --timeout-ms 900000 release publish --resource "$pub_resource" \
    > "$work/log/publish.out" 2>&1 || { cat "$work/log/publish.out"; die "release.publish failed"; }
t1=$(now)
publish_s=$(calc %.3f "$t1 - $t0")
copy_s=$(awk '$1 == "bench_8" { printf "%.3f", $2 / $5 }' "$results")
publish_ratio=$(calc %.3f "$publish_s / $copy_s")
line=$(grep 'event=release.published' "$work/log/publisher.log" | tail -1)
ms() { printf '%s\n' "$line" | sed -n "s/.* $1=\([0-9]*\).*/\1/p"; }
say "publishing: decided to published ${publish_s}s (index $(ms index_ms) ms, view and counts $(ms prepare_ms) ms, switch $(ms switch_ms) ms); psql \\copy ${copy_s}s"
echo "publish $publish_s $copy_s $publish_ratio $(ms index_ms) $(ms prepare_ms) $(ms switch_ms)" \
    > "$work/publish.results"

# ---- the query service (issue 10) ----------------------------------------------------------
# With bench_8 (1M x 8) released above and 100,000 catalogue entries: an indexed equality
# query (one row by _id) through the query service against the same query through libpq at
# the same concurrency (throughput ratio, target >= 0.5); keyset page 10,000 against page 1
# (median latency ratio, target <= 1.5); catalogue search with Chinese keywords (p50/p95,
# target p95 <= 20 ms); the full version as CSV through download.chunk against psql
# \copy (SELECT ...) TO (target >= 0.8); the query service's peak RSS. Each comparison runs
# ODP_BENCH_QUERY_RUNS (3) interleaved rounds and reports the median. The 100,000 entries
# are written straight into publisher.entries as the superuser (synthetic, like gen.c's
# rows): the publisher's release path is measured above, the search is measured here.
query_bench() {
    say "query: building qbench"
    cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -I. \
        $(pkg-config --cflags libczmq msgpack libpq) -o "$root/$BUILD/bench/qbench" \
        tests/bench/qbench.c "$root/$BUILD/libodp.a" \
        $(pkg-config --libs libczmq libzmq msgpack libpq libsodium jansson) -lcsv -lm -lpthread ||
        die "cannot build tests/bench/qbench.c"
    qb=$root/$BUILD/bench/qbench
    ODP_QUERY_RATE_PER_S=100000000 ODP_QUERY_RATE_BURST=100000000 ODP_LOG_LEVEL=warn \
        "$bin/odp-query" > "$work/log/query.log" 2>&1 &
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
  FROM generate_series(1, 100000) i;
SELECT query.sync_grams();
SQL
    relation=$($psql -At -c "SELECT relation FROM publisher.releases WHERE resource = '$pub_resource' AND state = 'current'")
    release=${relation#publisher.r}
    maxrow=$($psql -At -c "SELECT max(row_no) FROM $relation")
    conninfo="host=$ODP_PG_SOCKET port=$ODP_DB_PORT user=$ODP_PG_SUPERUSER dbname=odp"
    runs=${ODP_BENCH_QUERY_RUNS:-3}
    conc=${ODP_BENCH_QUERY_CONC:-4}
    : > "$work/query.results"
    r=0
    while [ $r -lt "$runs" ]; do
        r=$((r + 1))
        svc=$("$qb" rows - "$pub_resource" "$relation" "$maxrow" "$conc" 5) || die "qbench rows failed"
        lib=$("$qb" pg "$conninfo" "$pub_resource" "$relation" "$maxrow" "$conc" 5) || die "qbench pg failed"
        page=$("$qb" page - "$pub_resource" "$release" 10000 20) || die "qbench page failed"
        search=$("$qb" search - 200 空气监测 水质 交通统计 医疗名录 教育 企业登记 人口分布 气象指数) ||
            die "qbench search failed"
        dl=$("$qb" download - "$pub_resource" "$work/data/query-download.csv") || die "qbench download failed"
        cols=$($psql -At -c "SELECT string_agg(quote_ident(name), ', ' ORDER BY position) FROM publisher.release_fields WHERE release = $release")
        t0=$(now)
        $psql -c "\\copy (SELECT $cols FROM $relation ORDER BY row_no) TO '$work/data/query-psql.csv' WITH (FORMAT csv, HEADER)" ||
            die "psql \\copy TO failed"
        t1=$(now)
        psql_s=$(calc %.3f "$t1 - $t0")
        echo "$svc $lib $page $search $dl $psql_s" >> "$work/query.results"
        say "query round $r: service $svc req/s, libpq $lib req/s; page 1 / 10,000 $page ms; search p50 p95 bad $search; download $dl (s bytes), psql \\copy ${psql_s}s"
    done
    same=$(cmp -s "$work/data/query-download.csv" "$work/data/query-psql.csv" && echo yes || echo no)
    query_hwm=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$query_pid/status")
    # median of column N over the rounds
    med() { awk -v c="$1" '{ print $c }' "$work/query.results" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
    echo "querybench $(med 1) $(med 2) $(med 3) $(med 4) $(med 5) $(med 6) $(med 8) $(med 10) $(med 9) $same $query_hwm" > "$work/query.summary"
}
query_bench

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
if read -r _ publish_s copy_s ratio index_ms prepare_ms switch_ms < "$work/publish.results"; then
    if [ "$(calc %d "$ratio <= 0.5")" = 1 ]; then v=PASS; else v=FAIL; fi
    echo "$v - bench_8: review decided to published ${publish_s}s = $ratio x psql \\copy (${copy_s}s; target <= 0.5); indexes ${index_ms} ms, view and counts ${prepare_ms} ms"
    if [ "${switch_ms:-999}" -lt 50 ]; then v=PASS; else v=FAIL; fi
    echo "$v - bench_8: the switch to the new release ${switch_ms} ms (target < 50 ms)"
fi
if read -r _ svc lib p1 p10k s50 s95 dl_s psql_s dl_bytes same qkb < "$work/query.summary"; then
    ratio=$(calc %.3f "$svc / $lib")
    if [ "$(calc %d "$ratio >= 0.5")" = 1 ]; then v=PASS; else v=FAIL; fi
    echo "$v - query: indexed equality $svc req/s through the service, $lib through libpq: ratio $ratio (target >= 0.5)"
    ratio=$(calc %.2f "$p10k / $p1")
    if [ "$(calc %d "$ratio <= 1.5")" = 1 ]; then v=PASS; else v=FAIL; fi
    echo "$v - query: keyset page 10,000 $p10k ms vs page 1 $p1 ms: $ratio x (target <= 1.5)"
    if [ "$(calc %d "$s95 <= 20")" = 1 ]; then v=PASS; else v=FAIL; fi
    echo "$v - query: catalogue search over 100,000 entries, Chinese keywords: p50 $s50 ms, p95 $s95 ms (target p95 <= 20 ms)"
    ratio=$(calc %.3f "$psql_s / $dl_s")
    if [ "$(calc %d "$ratio >= 0.8")" = 1 ]; then v=PASS; else v=FAIL; fi
    # printf, not echo: dash's echo reads the backslash of \copy as an escape.
    printf '%s\n' "$v - query: full CSV download ${dl_s}s ($dl_bytes bytes; same bytes as psql: $same) vs psql \\copy ${psql_s}s: $ratio x (target >= 0.8)"
    echo "info - query: the query service's peak RSS (VmHWM) $(calc %.1f "$qkb / 1024") MiB"
fi
exit 0
