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
    for s in registrar metrics; do
        "$bin/odpctl" keygen --kind service --id "$s" --out "$work/keys/service-$s" >/dev/null
        cp "$work/keys/service-$s" "$work/certs/public/service-$s.cert"
    done
    export ODP_SERVICE_KEYS="$work/keys"
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
    t0=$(now)
    "$bin/odpctl" --timeout-ms 120000 --json index --period "$year" > "$work/log/index.json" ||
        die "index.get failed"
    t1=$(now)
    index_s=$(calc %.3f "$t1 - $t0")
    ndept=$(grep -o '"department"' "$work/log/index.json" | wc -l)
    say "metrics: index.get for $ndept departments in ${index_s}s"
    if [ "$(calc %d "$rate >= 50000")" = 1 ]; then v=PASS; else v=FAIL; fi
    echo "$v - metrics catch-up: $last events in ${catch_s}s, $rate events/s (target >= 50,000/s)"
    if [ "$(calc %d "$index_s <= 2")" = 1 ]; then v=PASS; else v=FAIL; fi
    echo "$v - metrics index: $ndept departments, 100,000 entries in ${index_s}s (target <= 2 s)"
}
[ "${ODP_BENCH_METRICS:-1}" = 1 ] && bench_metrics
exit 0
