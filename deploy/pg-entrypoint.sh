#!/usr/bin/env bash
# deploy/pg-entrypoint.sh - PostgreSQL for docker-compose (image deploy/Dockerfile.postgres),
# running as the postgres OS user.
#
# On first start (empty $PGDATA): initdb, then deploy/bootstrap.sql with the service
# passwords from the environment (deploy/initdb/10-odp.sh), with the server listening on
# its socket only, so nothing connects before the roles and grants exist. Then, on every
# start, pg_hba.conf and odp.conf are rewritten from this script and the server runs in
# the foreground:
#   - the superuser `postgres` over the socket (peer) or over the network with
#     ODP_PG_SUPERUSER_PASSWORD (backups from the ops container);
#   - each service role only to the odp database, with its password;
#   - everything else refused: a service role cannot even open another database.
set -euo pipefail
: "${PGDATA:?}"
say() { printf 'odp-pg-entrypoint: %s\n' "$*" >&2; }

for v in ODP_PG_SUPERUSER_PASSWORD ODP_REGISTRAR_DB_PASSWORD ODP_REVIEWER_DB_PASSWORD \
    ODP_PUBLISHER_DB_PASSWORD ODP_QUERY_DB_PASSWORD ODP_METRICS_DB_PASSWORD; do
    [[ -n ${!v:-} ]] || { say "$v is not set"; exit 1; }
done

write_hba() {
    cat >"$PGDATA/pg_hba.conf" <<HBA
# written by odp-pg-entrypoint at every start; edit deploy/pg-entrypoint.sh instead
# TYPE  DATABASE  USER                                                          ADDRESS  METHOD
local   all       postgres                                                               peer
host    all       postgres                                                      all      scram-sha-256
host    odp       odp_registrar,odp_reviewer,odp_publisher,odp_query,odp_metrics all      scram-sha-256
host    all       all                                                           all      reject
HBA
    chmod 600 "$PGDATA/pg_hba.conf"
    cat >"$PGDATA/odp.conf" <<CONF
# written by odp-pg-entrypoint at every start
listen_addresses = '*'
password_encryption = 'scram-sha-256'
unix_socket_directories = '/var/run/postgresql'
log_line_prefix = '%m [%p] %q%u@%d '
timezone = 'UTC'
CONF
}

if [[ ! -s $PGDATA/PG_VERSION ]]; then
    say "initialising a new cluster in $PGDATA"
    pwfile=$(mktemp)
    printf '%s\n' "$ODP_PG_SUPERUSER_PASSWORD" >"$pwfile"
    initdb -D "$PGDATA" -U postgres --pwfile="$pwfile" --encoding=UTF8 --locale=C.UTF-8 \
        --auth-local=peer --auth-host=scram-sha-256 >/dev/null
    rm -f "$pwfile"
    echo "include_if_exists = 'odp.conf'" >>"$PGDATA/postgresql.conf"
    write_hba
    pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w -t 60 start >/dev/null
    POSTGRES_USER=postgres POSTGRES_DB=postgres ODP_BOOTSTRAP_SQL=/odp/bootstrap.sql \
        bash /odp/10-odp.sh
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    say "cluster initialised: database odp, roles odp_<service>, one schema each"
fi
write_hba
exec postgres -D "$PGDATA"
