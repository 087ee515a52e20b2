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

# ---- publishing: from the review decided to the release published (issue 9) ---------------
# The 1M x 8 version pushed above is reviewed, approved and released: the time from the
# decision to the release being current (indexes - built ahead while the version waited for
# its decision, and reported apart - view, row and facet counts, switch), as a ratio to that
# run's psql \copy time (target <= 0.5), and the switch itself (the transaction that makes
# the new release current, target < 50 ms), from the publisher's log.
# The reviewer and publisher start only now, so that the push figures above are alone,
# each with its own service key (the registrar's key store picks up the new certificates).
export ODP_SERVICE_KEYS="$work/keys"
for s in reviewer publisher; do
    "$bin/odpctl" keygen --kind service --id "$s" --out "$work/keys/service-$s" >/dev/null
    cp "$work/keys/service-$s" "$work/certs/public/service-$s.cert"
done
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
# The publisher has the registrar index each reviewed version while it waits for its
# decision (publisher.index_ahead); the decision comes after that, as it would in practice.
i=0
until [ "$($psql -At -c "SELECT count(*) FROM publisher.index_ahead")" = 0 ] &&
    grep -q "event=release.indexed_ahead upload=$pub_upload " "$work/log/publisher.log"; do
    i=$((i + 1))
    [ $i -lt 1200 ] || die "the publisher did not index the versions ahead in 10 minutes"
    sleep 0.5
done
ahead_ms=$(sed -n "s/.*event=release.indexed_ahead upload=$pub_upload ms=\([0-9]*\).*/\1/p" "$work/log/publisher.log")
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
say "publishing: decided to published ${publish_s}s (index $(ms index_ms) ms, built ahead ${ahead_ms} ms; view and counts $(ms prepare_ms) ms, switch $(ms switch_ms) ms); psql copy ${copy_s}s"
echo "publish $publish_s $copy_s $publish_ratio $(ms index_ms) $(ms prepare_ms) $(ms switch_ms) $ahead_ms" \
    > "$work/publish.results"

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
if read -r _ publish_s copy_s ratio index_ms prepare_ms switch_ms ahead_ms < "$work/publish.results"; then
    if [ "$(calc %d "$ratio <= 0.5")" = 1 ]; then v=PASS; else v=FAIL; fi
    printf '%s - bench_8: review decided to published %ss = %s x psql copy (%ss; target <= 0.5); indexes %s ms at the release (built ahead at review: %s ms), view and counts %s ms\n' \
        "$v" "$publish_s" "$ratio" "$copy_s" "$index_ms" "$ahead_ms" "$prepare_ms"
    if [ "${switch_ms:-999}" -lt 50 ]; then v=PASS; else v=FAIL; fi
    echo "$v - bench_8: the switch to the new release ${switch_ms} ms (target < 50 ms)"
fi
exit 0
