#!/usr/bin/env bash
# deploy/odp-local.sh - run the whole odp platform on this machine, from the build tree.
#
#   deploy/odp-local.sh up       embedded PostgreSQL (var/pg), keys (var/certs), 5 services
#   deploy/odp-local.sh down     stop the services, then PostgreSQL
#   deploy/odp-local.sh status   show what is running
#
# Afterwards `. var/odp.env` gives a shell everything build/bin/odpctl needs (as the
# operations administrator). Logs: var/log/<service>.log; pids: var/run/<service>.pid.
#
# Environment read by `up`: ODP_DB_PORT (PostgreSQL port, default 55432), ODP_PORT_BASE
# (default 7500), ODP_SECURITY (default curve), ODP_LOG_LEVEL (default info).
# Re-run under bash when started as `sh script` (the Makefile does that); POSIX syntax
# up to here.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail

SERVICES=(registrar reviewer publisher query metrics)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

BIN=$ROOT/build/bin
VAR=$ROOT/var
PROG=deploy/odp-local.sh

die() { printf '%s: %s\n' "$PROG" "$*" >&2; exit 1; }
say() { printf '%s: %s\n' "$PROG" "$*"; }

# Quote a value for a POSIX shell (single quotes).
shq() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

# A process counts as alive unless gone or a zombie (an orphaned service that exited may
# wait a while for its new parent to reap it, e.g. in containers).
alive() {
    local state=""
    kill -0 "$1" 2>/dev/null || return 1
    if [[ -r /proc/$1/stat ]]; then
        state=$(sed -E 's/^.*\) ([A-Za-z]).*$/\1/' "/proc/$1/stat" 2>/dev/null) || true
        [[ $state != Z ]] || return 1
    fi
    return 0
}

pidfile() { printf '%s/run/%s.pid' "$VAR" "$1"; }

# Prints the pid of a running service started by us, or fails.
service_pid() {
    local svc=$1 f pid
    f=$(pidfile "$svc")
    [[ -f $f ]] || return 1
    pid=$(<"$f")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    alive "$pid" || return 1
    # Guard against a recycled pid: the process must be our binary.
    if [[ -r /proc/$pid/cmdline ]]; then
        tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "odp-$svc" || return 1
    fi
    printf '%s\n' "$pid"
}

check_binaries() {
    local b missing=()
    for b in "${SERVICES[@]/#/odp-}" odpctl; do
        [[ -x $BIN/$b ]] || missing+=("$b")
    done
    ((${#missing[@]} == 0)) ||
        die "missing build/bin/{$(IFS=,; echo "${missing[*]}")}: run 'make' first"
}

make_keys() {
    local certs=$VAR/certs
    mkdir -p "$certs/public" "$certs/keys"
    chmod 700 "$certs/keys"
    if [[ ! -f $certs/server ]]; then
        say "generating server certificate ($certs/server)"
        "$BIN/odpctl" keygen --kind server --id odp --out "$certs/server"
    fi
    if [[ ! -f $certs/keys/ops-admin ]]; then
        say "generating operations administrator key ($certs/keys/ops-admin)"
        "$BIN/odpctl" keygen --kind operations --id admin \
            --name "Operations administrator" --out "$certs/keys/ops-admin"
        cp "$certs/keys/ops-admin" "$certs/public/operations-admin.cert"
    fi
    if [[ ! -f $certs/public/operations-admin.cert ]]; then
        cp "$certs/keys/ops-admin" "$certs/public/operations-admin.cert"
    fi
    for s in registrar reviewer publisher query metrics; do
        if [[ ! -f $certs/keys/service-$s ]]; then
            "$BIN/odpctl" keygen --kind service --id "$s" --out "$certs/keys/service-$s" >/dev/null
        fi
        cp "$certs/keys/service-$s" "$certs/public/service-$s.cert"
    done
    [[ -f $certs/server_secret && -f $certs/keys/ops-admin_secret ]] ||
        die "odpctl keygen did not write the expected *_secret files in $certs"
    chmod 600 "$certs/server_secret" "$certs/keys/ops-admin_secret"
}

write_env() {
    local base=${ODP_PORT_BASE:-7500} i svc up tmp
    [[ $base =~ ^[0-9]+$ ]] || die "ODP_PORT_BASE must be a number"
    tmp=$(mktemp "$VAR/.odp-env.XXXXXX")
    chmod 600 "$tmp"
    {
        echo "# odp local platform environment (written by $PROG up): . var/odp.env"
        cat "$VAR/pg.env"
        echo "# certificates and client identity (operations administrator)"
        echo "export ODP_CERT_DIR=$(shq "$VAR/certs/public")"
        echo "export ODP_SERVER_CERT=$(shq "$VAR/certs/server")"
        echo "export ODP_CLIENT_CERT=$(shq "$VAR/certs/keys/ops-admin_secret")"
        echo "export ODP_SERVICE_KEYS=$(shq "$VAR/certs/keys")"
        echo "export ODP_SECURITY=$(shq "${ODP_SECURITY:-curve}")"
        echo "export ODP_LOG_LEVEL=$(shq "${ODP_LOG_LEVEL:-info}")"
        echo "case \":\$PATH:\" in *:$(shq "$BIN"):*) ;; *) export PATH=$(shq "$BIN"):\"\$PATH\" ;; esac"
        echo "# endpoints"
        echo "export ODP_PORT_BASE=$base"
        for i in "${!SERVICES[@]}"; do
            svc=${SERVICES[$i]}
            up=${svc^^}
            echo "export ODP_${up}_ENDPOINT=tcp://127.0.0.1:$((base + 10 * i + 1))"
            echo "export ODP_${up}_EVENTS=tcp://127.0.0.1:$((base + 10 * i + 2))"
        done
        echo "# the query service's public endpoint (citizens, odp-user, odp-web) and the web"
        echo "export ODP_QUERY_PUBLIC_BIND=tcp://127.0.0.1:$((base + 33))"
        echo "export ODP_QUERY_PUBLIC_ENDPOINT=tcp://127.0.0.1:$((base + 33))"
        echo "export ODP_WEB_PORT=$((base + 80))"
    } >"$tmp"
    mv -f "$tmp" "$VAR/odp.env"
}

start_service() {
    local svc=$1 pid log
    if pid=$(service_pid "$svc"); then
        say "$svc already running (pid $pid)"
        return 0
    fi
    log=$VAR/log/$svc.log
    printf '=== %s starting odp-%s\n' "$(date -u +%FT%TZ)" "$svc" >>"$log"
    (
        # shellcheck source=/dev/null
        . "$VAR/odp.env"
        cd "$VAR"
        nohup "$BIN/odp-$svc" >>"$log" 2>&1 </dev/null &
        echo $! >"$(pidfile "$svc")"
    )
    say "started $svc (pid $(<"$(pidfile "$svc")"); log var/log/$svc.log)"
}

# Waits up to 10 s for `odpctl health` to succeed.
wait_healthy() {
    local svc=$1 deadline out="" rc
    deadline=$((SECONDS + 10))
    while :; do
        if ! service_pid "$svc" >/dev/null; then
            echo "$PROG: $svc exited; last lines of var/log/$svc.log:" >&2
            tail -n 20 "$VAR/log/$svc.log" >&2 || true
            return 1
        fi
        rc=0
        out=$(
            # shellcheck source=/dev/null
            . "$VAR/odp.env"
            timeout 5 "$BIN/odpctl" health --service "$svc" 2>&1
        ) || rc=$?
        if ((rc == 0)); then
            say "$svc healthy"
            return 0
        fi
        if ((SECONDS >= deadline)); then
            echo "$PROG: $svc not healthy after 10 s (odpctl health exit $rc): $out" >&2
            echo "$PROG: last lines of var/log/$svc.log:" >&2
            tail -n 20 "$VAR/log/$svc.log" >&2 || true
            return 1
        fi
        sleep 0.3
    done
}

stop_service() {
    local svc=$1 pid i
    if ! pid=$(service_pid "$svc"); then
        rm -f "$(pidfile "$svc")"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        alive "$pid" || break
        sleep 0.1
    done
    if alive "$pid"; then
        say "$svc (pid $pid) ignored SIGTERM for 5 s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$(pidfile "$svc")"
    say "stopped $svc"
}

# As root the cluster runs as the postgres OS user, who cannot enter a checkout under
# /root (mode 0700, where a newcomer clones as root): var/pg is then a link to a directory
# that user can use, one per checkout.
link_cluster() {
    local dir
    [[ $(id -u) -eq 0 ]] && id postgres >/dev/null 2>&1 || return 0
    if [[ -L $VAR/pg ]]; then
        mkdir -p "$(readlink "$VAR/pg")"
        return 0
    fi
    [[ ! -e $VAR/pg ]] || return 0
    runuser -u postgres -- test -x "$VAR" 2>/dev/null && return 0
    dir=/var/lib/odp/pg-$(printf '%s' "$ROOT" | cksum | cut -d' ' -f1)
    mkdir -p "$dir"
    ln -s "$dir" "$VAR/pg"
    say "var/pg links to $dir: the postgres user cannot enter $ROOT"
}

cmd_up() {
    local svc failed=()
    check_binaries
    mkdir -p "$VAR/log" "$VAR/run"
    link_cluster
    "$ROOT/deploy/pg.sh" init var/pg "${ODP_DB_PORT:-55432}" "$VAR/pg.env"
    make_keys
    write_env
    for svc in "${SERVICES[@]}"; do
        start_service "$svc"
    done
    for svc in "${SERVICES[@]}"; do
        wait_healthy "$svc" || failed+=("$svc")
    done
    # The HTTP gateway and portal: stateless, a client of the query service's public endpoint.
    [[ ! -x $BIN/odp-web ]] || start_service web
    echo
    echo "portal:      http://127.0.0.1:$((${ODP_PORT_BASE:-7500} + 80))/   (CKAN API under /api/3/action/)"
    echo "environment: . var/odp.env     (odpctl then acts as the operations administrator)"
    echo "logs:        var/log/<service>.log, PostgreSQL: var/pg/postgres.log"
    echo "stop:        $PROG down"
    if ((${#failed[@]})); then
        die "not healthy: ${failed[*]}"
    fi
}

cmd_down() {
    local svc
    stop_service web
    for svc in "${SERVICES[@]}"; do
        stop_service "$svc"
    done
    if [[ -d $VAR/pg ]]; then
        "$ROOT/deploy/pg.sh" stop var/pg
    fi
}

cmd_status() {
    local svc pid rc=0
    for svc in "${SERVICES[@]}" web; do
        if pid=$(service_pid "$svc"); then
            printf '%-10s running  pid %s\n' "$svc" "$pid"
        else
            printf '%-10s stopped\n' "$svc"
            rc=3
        fi
    done
    printf '%-10s ' postgres
    if [[ -d $VAR/pg ]]; then
        "$ROOT/deploy/pg.sh" status var/pg || rc=3
    else
        echo "no cluster (var/pg)"
        rc=3
    fi
    return "$rc"
}

case ${1:-} in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    *)
        echo "usage: $PROG up|down|status" >&2
        exit 2
        ;;
esac
