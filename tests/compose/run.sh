#!/usr/bin/env bash
# tests/compose/run.sh - the platform on docker-compose, for real (`make compose-test`).
#
# Builds the images from Debian packages only (deploy/base-image.sh makes the base image
# when none exists; no registry is used), starts docker-compose.yml under its own project
# name with random passwords and its own host ports on 127.0.0.1, waits for every health
# check, then drives the platform from the host through the published ports with the
# host's build/bin tools: the demo (department, catalogue entry, push; review, release and
# query steps when odpctl has those commands), the lifecycle events, the key separation
# (monitoring key, admin secret, pg_hba), a restart of a service container and of
# PostgreSQL's, a service process killed (the restart policy brings it back), a backup from
# the ops container and the recovery from it after PostgreSQL's volume is lost. Nothing may
# be lost at any step. `docker-compose down -v` at the end, also on failure or interrupt.
# Prints TAP lines and `N passed, N failed`.
#
# Needs root and a Docker engine (started with --iptables=false when none answers).
# Environment: ODP_COMPOSE_PORT_BASE (host ports base+1..base+42; default
# ODP_TEST_PORT_BASE+50, else 17550: inside the port set, clear of the suite's ports),
# ODP_COMPOSE_COLD=1 (remove the odp images and build without cache: the time a fresh
# machine takes), ODP_COMPOSE_KEEP=1 (leave the project running for a look; remove it with
# the printed command).
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
# One compound command, read whole before it runs: editing this file meanwhile is harmless.
{
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
root=$(pwd)
bin=$root/build/bin
start=$SECONDS
passed=0
failed=0
project=odpct$$
base=${ODP_COMPOSE_PORT_BASE:-$((${ODP_TEST_PORT_BASE:-17500} + 50))}
work=$(mktemp -d /tmp/odp-compose.XXXXXX)
log=$work/log
SERVICES=(registrar reviewer publisher query metrics)

ok() {
    echo "ok - $*"
    passed=$((passed + 1))
}
not_ok() {
    echo "not ok - $*"
    failed=$((failed + 1))
}
check() { # description command...
    local what=$1
    shift
    if "$@" >"$log" 2>&1; then ok "$what"; else
        not_ok "$what"
        tail -n 20 "$log" | sed 's/^/# /'
    fi
}
dc() { docker-compose -p "$project" --env-file "$work/env" -f "$root/docker-compose.yml" "$@"; }

cleanup() {
    if [[ ${ODP_COMPOSE_KEEP:-} == 1 ]]; then
        echo "# kept: docker-compose -p $project --env-file $work/env down -v"
    else
        dc down -v --remove-orphans >/dev/null 2>&1
        rm -rf "$work"
    fi
}
finish() {
    echo "# compose-test: $((SECONDS - start)) s in all"
    echo "$passed passed, $failed failed"
    [[ $failed -eq 0 ]]
    exit
}
trap 'cleanup' EXIT
trap 'not_ok "interrupted"; finish' INT TERM

[[ $(id -u) -eq 0 ]] || {
    not_ok "compose-test needs root (Docker)"
    finish
}
[[ -x $bin/odpctl && -x $bin/odp-push && -x $bin/odp-events ]] || {
    not_ok "build/bin has no odpctl/odp-push/odp-events: run make"
    finish
}

# ---- images -------------------------------------------------------------------------------
# The base image (and dockerd, when none answers).
t0=$SECONDS
if bash deploy/base-image.sh >"$work/base.log" 2>&1; then
    ok "Debian base image ($((SECONDS - t0)) s)"
else
    not_ok "Debian base image"
    tail -n 30 "$work/base.log" | sed 's/^/# /'
    finish
fi

# Settings: random passwords, this run's ports.
{
    for v in PG_SUPERUSER REGISTRAR_DB REVIEWER_DB PUBLISHER_DB QUERY_DB METRICS_DB; do
        echo "ODP_${v}_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')"
    done
    echo "ODP_PUBLISH_ADDR=127.0.0.1"
    echo "ODP_BACKUP_DIR=$work/backups"
    for i in "${!SERVICES[@]}"; do
        up=${SERVICES[$i]^^}
        echo "ODP_${up}_PORT=$((base + 10 * i + 1))"
        echo "ODP_${up}_EVENTS_PORT=$((base + 10 * i + 2))"
    done
} >"$work/env"
chmod 600 "$work/env"
mkdir -p "$work/backups"
chown 10001:10001 "$work/backups"

build_opts=()
if [[ ${ODP_COMPOSE_COLD:-} == 1 ]]; then
    docker image rm -f "${ODP_IMAGE:-odp:latest}" "${ODP_PG_IMAGE:-odp-postgres:15}" >/dev/null 2>&1
    build_opts=(--no-cache)
fi
t0=$SECONDS
if dc build "${build_opts[@]}" >"$work/build.log" 2>&1; then
    ok "images built from Debian packages ($((SECONDS - t0)) s)"
else
    not_ok "images built from Debian packages"
    tail -n 40 "$work/build.log" | sed 's/^/# /'
    finish
fi

# ---- start --------------------------------------------------------------------------------
cid() { dc ps -q "$1" 2>/dev/null | head -n 1; }
health() { docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$(cid "$1")" 2>/dev/null; }
# Waits until every named service's health check passes (timeout s).
wait_healthy() {
    local timeout=$1 s all
    shift
    local deadline=$((SECONDS + timeout))
    while ((SECONDS < deadline)); do
        all=1
        for s in "$@"; do [[ $(health "$s") == healthy ]] || all=0; done
        ((all)) && return 0
        sleep 1
    done
    for s in "$@"; do echo "$s: $(health "$s")"; done
    return 1
}

t0=$SECONDS
if dc up -d >"$work/up.log" 2>&1 && wait_healthy 300 postgres "${SERVICES[@]}" >"$log" 2>&1; then
    ok "docker-compose up: postgres and five services healthy ($((SECONDS - t0)) s)"
else
    not_ok "docker-compose up: postgres and five services healthy"
    sed 's/^/# /' "$work/up.log" "$log" | tail -n 30
    dc logs --tail 20 2>&1 | sed 's/^/# /'
    finish
fi
check "keygen made the certificates and exited 0" \
    test "$(docker inspect -f '{{.State.ExitCode}}' "$(dc ps -a -q keygen)")" = 0

# The host acts as the operations administrator through the published ports.
docker cp "$(dc ps -a -q keygen):/admin/ops-admin_secret" "$work/admin_secret" >/dev/null &&
    docker cp "$(dc ps -a -q keygen):/certs/server" "$work/server" >/dev/null &&
    docker cp "$(dc ps -a -q keygen):/certs/monitor/healthcheck_secret" "$work/monitor_secret" >/dev/null
export ODP_SERVER_CERT=$work/server ODP_CLIENT_CERT=$work/admin_secret ODP_SECURITY=curve
for i in "${!SERVICES[@]}"; do
    up=${SERVICES[$i]^^}
    export "ODP_${up}_ENDPOINT=tcp://127.0.0.1:$((base + 10 * i + 1))"
    export "ODP_${up}_EVENTS=tcp://127.0.0.1:$((base + 10 * i + 2))"
done
check "odpctl status from the host: every service answers" "$bin/odpctl" status

# ---- who may do what -----------------------------------------------------------------------
# The admin's secret key (its line in the secret certificate) is in no file a service
# container can reach: it is made at run time, so only volumes and writable directories
# could hold it (the image's own files are fixed at build).
no_admin_secret() {
    local s secret
    secret=$(grep 'secret-key' "$work/admin_secret") || return 1
    for s in "${SERVICES[@]}"; do
        if dc exec -T "$s" grep -rlF -- "$secret" /certs /admin /tmp /var /etc /run 2>/dev/null; then
            echo "$s holds the admin's secret key"
            return 1
        fi
    done
}
check "service containers cannot read the operations admin's secret key" no_admin_secret
monitor_only_health() {
    "$bin/odpctl" --cert "$work/monitor_secret" health --service registrar || return 1
    local rc=0
    "$bin/odpctl" --cert "$work/monitor_secret" department add --code 446600199 --name X || rc=$?
    [[ $rc == 1 ]]
}
check "the monitoring key may call health, not department add" monitor_only_health
pg_roles_confined() {
    local pw
    pw=$(sed -n 's/^ODP_QUERY_DB_PASSWORD=//p' "$work/env")
    dc exec -T -e PGPASSWORD="$pw" postgres psql -X -h 127.0.0.1 -U odp_query -d odp -tAc 'SELECT 1' || return 1
    if dc exec -T -e PGPASSWORD="$pw" postgres psql -X -h 127.0.0.1 -U odp_query -d postgres -tAc 'SELECT 1'; then
        echo "odp_query reached the postgres database"
        return 1
    fi
}
check "a service role reaches database odp only (pg_hba)" pg_roles_confined

# ---- the demo through the published ports ---------------------------------------------------
code=446600101
dept_key=$work/keys/dept-$code
demo_registry() {
    "$bin/odpctl" authority register --authority 广东省政务服务数据管理局 \
        --operations 广东省数字政府运营中心 --document "粤政数〔2026〕12号" --granted-on 2026-03-01 &&
        "$bin/odpctl" department add --code $code --name 容器测试生态环境厅 --keygen "$dept_key" &&
        grep -q "$code" <<<"$("$bin/odpctl" --cert "${dept_key}_secret" whoami)"
}
check "demo: authority, department with its key, whoami as the department" demo_registry
resource=""
demo_catalogue() {
    resource=$("$bin/odp-push" --cert "${dept_key}_secret" catalog --summary 全省空气质量日报 \
        --keywords 空气,AQI --content-kind dataset --delivery-form dataset_file \
        --open-type unconditional --update-cycle daily --contact 020-1234 \
        --location "监测中心" --dict tests/fixtures/air_quality_daily.dict.json | grep -Eo '[0-9]{9}-[0-9]{3}-[0-9]{5}' | head -n 1)
    [[ -n $resource ]] &&
        "$bin/odp-push" --cert "${dept_key}_secret" register --resource "$resource" &&
        "$bin/odpctl" registration decide --resource "$resource" --approve true
}
check "demo: catalogue entry with a dictionary, registered" demo_catalogue
demo_push() {
    "$bin/odp-push" --cert "${dept_key}_secret" push --resource "$resource" \
        build/samples/air_quality_daily.csv
}
check "demo: push a dataset" demo_push
# Later steps exist once their commands do.
commands=$("$bin/odpctl" --help 2>&1)
if grep -q '^  review queue' <<<"$commands"; then
    check "demo: review queue shows the pushed version" \
        sh -c "'$bin/odpctl' --json review queue | grep -q '$resource'"
fi
if grep -q '^  release ' <<<"$commands"; then
    check "demo: release" "$bin/odpctl" release list
fi
if grep -q '^  query ' <<<"$commands"; then
    check "demo: query" "$bin/odpctl" query list
fi

# Lifecycle events: numbered 1..N, no gap, the demo's topics among them.
events_ok() { # min-count
    "$bin/odp-events" --service registrar --since 1 --idle-exit-ms 1500 >"$work/events" 2>&1 || return 1
    local n seqs
    seqs=$(sed -nE 's/^\{"source":"registrar","seq":([0-9]+),.*/\1/p' "$work/events")
    n=$(wc -l <<<"$seqs")
    [[ $n -ge $1 && $(head -n 1 <<<"$seqs") == 1 && $(tail -n 1 <<<"$seqs") == "$n" ]] ||
        { echo "events: $n, first $(head -n 1 <<<"$seqs"), last $(tail -n 1 <<<"$seqs")"; head -c 2000 "$work/events"; return 1; }
    grep -q 'department' "$work/events"
}
check "lifecycle events 1..N from the registrar, the department's among them" events_ok 3

# What must survive every step below.
snapshot() {
    {
        "$bin/odpctl" --json department get --code $code | grep -o '"name": *"[^"]*"'
        "$bin/odp-push" --cert "${dept_key}_secret" --json versions --resource "$resource" | grep -o '"rows_staged": *[0-9]*'
        "$bin/odpctl" --json health --service registrar | grep -o '"seq": *[0-9]*'
    } 2>&1
}
before=$(snapshot)
same() { # step
    local now
    now=$(snapshot)
    [[ $now == "$before" && -n $before ]] || { echo "before: $before"; echo "after: $now"; return 1; }
}

# ---- restarts -------------------------------------------------------------------------------
restart_service() {
    dc restart registrar && wait_healthy 90 registrar && same
}
check "registrar container restarted: same data, same event number" restart_service
restart_pg() {
    dc restart postgres && wait_healthy 90 postgres "${SERVICES[@]}" && same
}
check "PostgreSQL container restarted: services reconnect, nothing lost" restart_pg
kill_main() {
    local c pid count
    c=$(cid registrar)
    count=$(docker inspect -f '{{.RestartCount}}' "$c")
    pid=$(docker inspect -f '{{.State.Pid}}' "$c")
    [[ $pid -gt 0 ]] && kill -KILL "$pid" || return 1
    local deadline=$((SECONDS + 90))
    while ((SECONDS < deadline)); do
        [[ $(docker inspect -f '{{.RestartCount}}' "$c") -gt $count && $(health registrar) == healthy ]] && break
        sleep 1
    done
    [[ $(docker inspect -f '{{.RestartCount}}' "$c") -gt $count ]] || { echo "not restarted"; return 1; }
    wait_healthy 60 registrar && same
}
check "registrar's process killed (SIGKILL): restart policy brings it back, nothing lost" kill_main
next_number() {
    local seq
    seq=$(grep -Eo '[0-9]+' <<<"$(grep seq <<<"$before")")
    "$bin/odpctl" department add --code 446600102 --name 重启后新增部门 &&
        sleep 1 &&
        "$bin/odpctl" --json health --service registrar | grep -Eq "\"seq\": *$((seq + 1))[^0-9]"
}
check "after the restarts the next event takes the next number" next_number

# ---- the ops container: backup, status ----------------------------------------------------
ops_backup() {
    local list
    before=$(snapshot)
    dc run --rm ops backup /backup/odp.tar && list=$(tar -tf "$work/backups/odp.tar") &&
        grep -qx './db.dump' <<<"$list" && grep -qx './certs/server_secret' <<<"$list" &&
        grep -qx './MANIFEST' <<<"$list"
}
check "docker-compose run --rm ops backup: database and certificates" ops_backup
check "docker-compose run --rm ops status: every service, as the administrator" dc run --rm ops status
# docs/operations.md §6, "PostgreSQL's data is lost", step by step.
pg_lost() {
    dc stop && dc rm -f postgres && docker volume rm "${project}_pgdata" &&
        dc up -d postgres keygen && wait_healthy 120 postgres &&
        dc run --rm ops restore /backup/odp.tar &&
        dc up -d && wait_healthy 120 "${SERVICES[@]}" && same
}
check "PostgreSQL's volume lost: restored from the ops backup, same data and numbers" pg_lost

# ---- down -------------------------------------------------------------------------------------
if [[ ${ODP_COMPOSE_KEEP:-} != 1 ]]; then
    check "docker-compose down -v" dc down -v --remove-orphans
    left=$(docker volume ls -q | grep -c "^${project}_" || true)
    check "no volume of the project is left" test "$left" = 0
fi
finish
}
