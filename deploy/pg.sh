#!/usr/bin/env bash
# deploy/pg.sh - an embedded, local PostgreSQL cluster for odp (demo and tests).
#
#   deploy/pg.sh init DIR PORT ENVFILE   create (if absent) + start + bootstrap, write ENVFILE
#   deploy/pg.sh start DIR [PORT]        start (PORT changes the configured port)
#   deploy/pg.sh stop DIR
#   deploy/pg.sh status DIR              exit 0 running, 3 stopped, 4 no cluster
#   deploy/pg.sh destroy DIR             stop and remove DIR
#
# DIR, if relative, is taken relative to the repository root; ENVFILE relative to the
# current directory (the same thing when run from the repository root).
#
# Layout of DIR (mode 0700, owned by the cluster's OS user):
#   DIR/data            the cluster (PGDATA)
#   DIR/run             unix socket directory (mode 0700)
#   DIR/postgres.log    server log
#   DIR/passwords.env   the service roles' passwords (0600), reused by later inits
#
# Access: the cluster's superuser (OS user running it: `postgres` when this script runs as
# root, else the current user) may connect over the socket in DIR/run without a password;
# service roles connect over TCP on 127.0.0.1:PORT with scram-sha-256. Nothing else.
#
# Environment: ODP_PG_BIN overrides the directory holding initdb/pg_ctl/psql.
# Re-run under bash when started as `sh script` (the Makefile does that); POSIX syntax
# up to here.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail

SERVICES=(registrar reviewer publisher query metrics)
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
PROG=deploy/pg.sh

die() { printf '%s: %s\n' "$PROG" "$*" >&2; exit 1; }
say() { printf '%s: %s\n' "$PROG" "$*" >&2; }

usage() {
    cat >&2 <<EOF
usage: $PROG init DIR PORT ENVFILE
       $PROG start DIR [PORT]
       $PROG stop DIR
       $PROG status DIR
       $PROG destroy DIR
EOF
    exit 2
}

# ---------------------------------------------------------------------------------------
# helpers

find_pg_bin() {
    local d
    if [[ -n ${ODP_PG_BIN:-} ]]; then
        [[ -x $ODP_PG_BIN/pg_ctl ]] || die "ODP_PG_BIN=$ODP_PG_BIN has no pg_ctl"
        PG_BIN=$ODP_PG_BIN
        return
    fi
    if [[ -x /usr/lib/postgresql/15/bin/pg_ctl ]]; then
        PG_BIN=/usr/lib/postgresql/15/bin
        return
    fi
    # Highest installed version otherwise.
    local dirs=()
    mapfile -t dirs < <(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V -r)
    for d in "${dirs[@]}"; do
        if [[ -x $d/pg_ctl ]]; then PG_BIN=$d; return; fi
    done
    if command -v pg_ctl >/dev/null 2>&1; then
        PG_BIN=$(dirname "$(command -v pg_ctl)")
        return
    fi
    die "PostgreSQL server binaries not found (install postgresql, e.g. via 'make deps', or set ODP_PG_BIN)"
}

# DIR may be relative to the repository root; make it absolute (it need not exist yet).
abs_dir() {
    local d=$1
    [[ -n $d ]] || die "empty DIR"
    [[ $d == /* ]] || d=$REPO_ROOT/$d
    # Normalise without requiring existence: resolve the deepest existing ancestor.
    local head=$d tail=""
    while [[ ! -d $head ]]; do
        tail=/$(basename "$head")$tail
        head=$(dirname "$head")
    done
    head=$(cd "$head" && pwd -P)
    d=${head%/}$tail
    [[ $d != / && -n $d ]] || die "refusing to use / as cluster directory"
    printf '%s\n' "$d"
}

check_port() {
    if ! [[ $1 =~ ^[1-9][0-9]{0,4}$ ]] || (($1 > 65535)); then
        die "invalid port: $1"
    fi
}

setup_identity() {
    if [[ $(id -u) -eq 0 ]]; then
        id postgres >/dev/null 2>&1 ||
            die "running as root needs the OS user 'postgres' (install the postgresql package)"
        PG_OS_USER=postgres
    else
        PG_OS_USER=$(id -un)
    fi
    # initdb names the bootstrap superuser after the OS user; we pass it explicitly anyway.
    PG_SUPERUSER=$PG_OS_USER
}

# Run a command as the cluster's OS user, from a directory that user can enter.
as_pg() {
    if [[ $(id -u) -eq 0 ]]; then
        (cd "$DIR" && runuser -u "$PG_OS_USER" -- "$@")
    else
        (cd "$DIR" && "$@")
    fi
}

# Hand a path to the cluster's OS user (when running as root).
own() { if [[ $(id -u) -eq 0 ]]; then chown "$PG_OS_USER:" "$@"; fi; }

# Quote a value for a POSIX shell (single quotes).
shq() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

# Quote a string for postgresql.conf.
confq() { printf "'%s'" "${1//\'/\'\'}"; }

urlencode() {
    local s=$1 out="" c i
    for ((i = 0; i < ${#s}; i++)); do
        c=${s:i:1}
        case $c in
            [A-Za-z0-9._~/-]) out+=$c ;;
            *) out+=$(printf '%%%02X' "'$c") ;;
        esac
    done
    printf '%s' "$out"
}

set_paths() {
    DIR=$(abs_dir "$1")
    DATA=$DIR/data
    RUN=$DIR/run
    LOG=$DIR/postgres.log
    PWFILE=$DIR/passwords.env
}

is_running() {
    [[ -f $DATA/PG_VERSION ]] || return 1
    as_pg "$PG_BIN/pg_ctl" status -D "$DATA" >/dev/null 2>&1
}

configured_port() {
    sed -n "s/^port[[:space:]]*=[[:space:]]*\([0-9][0-9]*\).*/\1/p" "$DATA/odp.conf" 2>/dev/null | tail -n 1
}

# Create DIR with the right owner and make sure the cluster user can use it.
prepare_dir() {
    mkdir -p "$DIR"
    if [[ $(id -u) -eq 0 ]]; then
        own "$DIR"
        if ! runuser -u "$PG_OS_USER" -- test -x "$DIR" -a -w "$DIR" 2>/dev/null; then
            local p=$DIR bad=""
            while [[ $p != / ]]; do
                p=$(dirname "$p")
                runuser -u "$PG_OS_USER" -- test -x "$p" 2>/dev/null || bad=$p
            done
            die "OS user '$PG_OS_USER' cannot enter $DIR${bad:+ (no search permission on $bad)}; put the cluster under a directory it can traverse, e.g. 'chmod o+x $bad', or choose another DIR"
        fi
    fi
    chmod 700 "$DIR"
    mkdir -p "$RUN"
    own "$RUN"
    chmod 700 "$RUN"
    # Unix socket path limit (sun_path is 108 bytes incl. "/.s.PGSQL.NNNNN" and NUL).
    ((${#RUN} + 17 <= 107)) || die "socket directory path too long for a unix socket: $RUN"
}

write_conf() {
    local port=$1
    # Settings kept in our own include file, so restarting with another port can rewrite it.
    local tmp=$DATA/odp.conf.tmp
    {
        echo "# written by deploy/pg.sh - changes here are overwritten"
        echo "listen_addresses = '127.0.0.1'"
        echo "port = $port"
        echo "unix_socket_directories = $(confq "$RUN")"
        echo "unix_socket_permissions = 0700"
        echo "max_connections = 100"
        echo "shared_buffers = 128MB"
        echo "password_encryption = 'scram-sha-256'"
        echo "logging_collector = off"
        echo "log_line_prefix = '%m [%p] %q%u@%d '"
        echo "timezone = 'UTC'"
    } >"$tmp"
    own "$tmp"
    chmod 600 "$tmp"
    mv -f "$tmp" "$DATA/odp.conf"
}

do_initdb() {
    local port=$1 pwtmp rc
    say "creating cluster in $DATA"
    rm -rf "$DATA"
    # initdb wants a file for the superuser password only with password auth; we use trust
    # on the socket (restricted by pg_hba.conf + a 0700 socket directory), so none is set.
    if ! as_pg "$PG_BIN/initdb" -D "$DATA" -U "$PG_SUPERUSER" --encoding=UTF8 --locale=C.UTF-8 \
        --auth-local=trust --auth-host=scram-sha-256 >"$DIR/initdb.log" 2>&1; then
        say "initdb with locale C.UTF-8 failed; retrying with locale C"
        rm -rf "$DATA"
        rc=0
        as_pg "$PG_BIN/initdb" -D "$DATA" -U "$PG_SUPERUSER" --encoding=UTF8 --locale=C \
            --auth-local=trust --auth-host=scram-sha-256 >"$DIR/initdb.log" 2>&1 || rc=$?
        if ((rc != 0)); then
            tail -n 30 "$DIR/initdb.log" >&2 || true
            rm -rf "$DATA"
            die "initdb failed (log: $DIR/initdb.log)"
        fi
    fi
    # Only the superuser over the socket, and password logins over 127.0.0.1.
    pwtmp=$DATA/pg_hba.conf.tmp
    {
        echo "# written by deploy/pg.sh"
        echo "# TYPE  DATABASE  USER  ADDRESS  METHOD"
        echo "local   all       $PG_SUPERUSER        trust"
        echo "host    all       all   127.0.0.1/32   scram-sha-256"
    } >"$pwtmp"
    own "$pwtmp"
    chmod 600 "$pwtmp"
    mv -f "$pwtmp" "$DATA/pg_hba.conf"
    echo "include_if_exists = 'odp.conf'" >>"$DATA/postgresql.conf"
    write_conf "$port"
}

do_start() {
    local port=${1:-}
    [[ -f $DATA/PG_VERSION ]] || die "no cluster in $DATA (run: $PROG init DIR PORT ENVFILE)"
    prepare_dir
    if [[ -n $port ]]; then
        check_port "$port"
        if [[ $(configured_port) != "$port" ]]; then
            if is_running; then
                die "cluster in $DIR is running on port $(configured_port), not $port; stop it first"
            fi
            write_conf "$port"
        fi
    fi
    if is_running; then
        say "already running (port $(configured_port), socket $RUN)"
        return 0
    fi
    touch "$LOG"
    own "$LOG"
    chmod 600 "$LOG"
    say "starting PostgreSQL on 127.0.0.1:$(configured_port) (log: $LOG)"
    if ! as_pg "$PG_BIN/pg_ctl" start -D "$DATA" -l "$LOG" -w -t 60 >/dev/null; then
        say "pg_ctl start failed; last lines of $LOG:"
        tail -n 30 "$LOG" >&2 || true
        exit 1
    fi
}

do_stop() {
    if [[ ! -f $DATA/PG_VERSION ]]; then
        say "no cluster in $DIR"
        return 0
    fi
    if ! is_running; then
        say "not running"
        return 0
    fi
    say "stopping PostgreSQL in $DIR"
    as_pg "$PG_BIN/pg_ctl" stop -D "$DATA" -m fast -w -t 60 >/dev/null ||
        as_pg "$PG_BIN/pg_ctl" stop -D "$DATA" -m immediate -w -t 30 >/dev/null
}

gen_password() {
    local p=""
    while ((${#p} < 24)); do
        p+=$(head -c 18 /dev/urandom | base64 | tr -d '/+=\n')
    done
    printf '%s' "${p:0:24}"
}

# Load DIR/passwords.env (KEY=VALUE lines, never sourced) and fill in missing ones.
load_passwords() {
    local svc var key val changed=0
    declare -gA PW=()
    if [[ -f $PWFILE ]]; then
        while IFS='=' read -r key val; do
            [[ $key =~ ^ODP_[A-Z]+_DB_PASSWORD$ && $val =~ ^[A-Za-z0-9]+$ ]] || continue
            PW[$key]=$val
        done <"$PWFILE"
    fi
    for svc in "${SERVICES[@]}"; do
        var=ODP_${svc^^}_DB_PASSWORD
        if [[ -z ${PW[$var]:-} ]]; then
            PW[$var]=$(gen_password)
            changed=1
        fi
    done
    if ((changed)) || [[ ! -f $PWFILE ]]; then
        local tmp
        tmp=$(mktemp "$DIR/.passwords.XXXXXX")
        chmod 600 "$tmp"
        {
            echo "# odp service role passwords for the cluster in $DIR (written by $PROG)"
            for svc in "${SERVICES[@]}"; do
                var=ODP_${svc^^}_DB_PASSWORD
                echo "$var=${PW[$var]}"
            done
        } >"$tmp"
        mv -f "$tmp" "$PWFILE"
    fi
}

run_bootstrap() {
    local port args=() svc
    port=$(configured_port)
    for svc in "${SERVICES[@]}"; do
        args+=(-v "${svc}_pw=${PW[ODP_${svc^^}_DB_PASSWORD]}")
    done
    say "bootstrapping database odp (roles, schemas, grants)"
    # Runs as the invoking user (root can reach the 0700 socket dir); the passwords travel
    # as psql variables and are quoted by psql (:'var'), never spliced in by the shell.
    PGCONNECT_TIMEOUT=10 "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 \
        -h "$RUN" -p "$port" -U "$PG_SUPERUSER" -d postgres \
        -v db=odp "${args[@]}" -f "$SCRIPT_DIR/bootstrap.sql" >/dev/null
}

write_envfile() {
    local envfile=$1 port svc var tmp
    port=$(configured_port)
    [[ $envfile == /* ]] || envfile=$PWD/$envfile
    mkdir -p "$(dirname "$envfile")"
    tmp=$(mktemp "$(dirname "$envfile")/.odp-env.XXXXXX")
    chmod 600 "$tmp"
    {
        echo "# odp database settings for the local cluster in $DIR (written by $PROG)"
        echo "export ODP_DB_HOST=127.0.0.1"
        echo "export ODP_DB_PORT=$port"
        echo "export ODP_DB_NAME=odp"
        for svc in "${SERVICES[@]}"; do
            var=ODP_${svc^^}_DB_PASSWORD
            echo "export $var=$(shq "${PW[$var]}")"
        done
        echo "# superuser access (unix socket, no password) for tests and administration"
        echo "export ODP_PG_DIR=$(shq "$DIR")"
        echo "export ODP_PG_SOCKET=$(shq "$RUN")"
        echo "export ODP_PG_SUPERUSER=$(shq "$PG_SUPERUSER")"
        echo "export ODP_PG_SUPERUSER_URL=$(shq "postgresql:///odp?host=$(urlencode "$RUN")&port=$port&user=$(urlencode "$PG_SUPERUSER")")"
        echo "export ODP_PG_BIN=$(shq "$PG_BIN")"
    } >"$tmp"
    mv -f "$tmp" "$envfile"
    say "wrote $envfile"
}

# ---------------------------------------------------------------------------------------

cmd=${1:-}
[[ -n $cmd ]] || usage
shift

find_pg_bin
setup_identity

case $cmd in
    init)
        (($# == 3)) || usage
        set_paths "$1"
        check_port "$2"
        prepare_dir
        if [[ ! -f $DATA/PG_VERSION ]]; then
            do_initdb "$2"
        fi
        do_start "$2"
        load_passwords
        run_bootstrap
        write_envfile "$3"
        ;;
    start)
        (($# == 1 || $# == 2)) || usage
        set_paths "$1"
        do_start "${2:-}"
        ;;
    stop)
        (($# == 1)) || usage
        set_paths "$1"
        do_stop
        ;;
    status)
        (($# == 1)) || usage
        set_paths "$1"
        if [[ ! -f $DATA/PG_VERSION ]]; then
            echo "no cluster in $DIR"
            exit 4
        fi
        if is_running; then
            echo "running: $DIR (127.0.0.1:$(configured_port), socket $RUN)"
        else
            echo "stopped: $DIR"
            exit 3
        fi
        ;;
    destroy)
        (($# == 1)) || usage
        set_paths "$1"
        [[ -d $DIR ]] || { say "nothing to destroy at $DIR"; exit 0; }
        # Only remove something that looks like one of our clusters (or is empty).
        if [[ ! -f $DATA/PG_VERSION && ! -f $PWFILE && ! -d $RUN && -n $(ls -A "$DIR") ]]; then
            die "$DIR does not look like a cluster made by $PROG; not removing it"
        fi
        do_stop
        rm -rf -- "$DIR"
        say "removed $DIR"
        ;;
    -h | --help | help) usage ;;
    *) usage ;;
esac
