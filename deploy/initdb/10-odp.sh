#!/usr/bin/env bash
# deploy/initdb/10-odp.sh - run deploy/bootstrap.sql with the service passwords from the
# environment. The odp-postgres image (deploy/Dockerfile.postgres) has it at /odp/10-odp.sh;
# deploy/pg-entrypoint.sh runs it once, when it initialises an empty data volume. It may
# be sourced or executed. To apply changed passwords later (after `docker-compose up -d
# postgres` gave the container the new ones):
#   docker-compose exec postgres bash /odp/10-odp.sh
#
# Passwords come from the container environment (ODP_<SVC>_DB_PASSWORD) and reach psql as
# variables; bootstrap.sql quotes them itself.
# Re-run under bash when started as `sh script` (the Makefile does that); POSIX syntax
# up to here.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
# The body runs in a subshell so that, when sourced by the entrypoint, it changes none of
# the entrypoint's shell options or variables; a failure still aborts the initialisation.
(
    set -euo pipefail

    for odp_var in ODP_REGISTRAR_DB_PASSWORD ODP_REVIEWER_DB_PASSWORD ODP_PUBLISHER_DB_PASSWORD \
        ODP_QUERY_DB_PASSWORD ODP_METRICS_DB_PASSWORD; do
        if [ -z "${!odp_var:-}" ]; then
            echo "10-odp.sh: $odp_var is not set" >&2
            false
        fi
    done

    psql -X -q -v ON_ERROR_STOP=1 --no-password \
        --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}" \
        -v db=odp \
        -v registrar_pw="$ODP_REGISTRAR_DB_PASSWORD" \
        -v reviewer_pw="$ODP_REVIEWER_DB_PASSWORD" \
        -v publisher_pw="$ODP_PUBLISHER_DB_PASSWORD" \
        -v query_pw="$ODP_QUERY_DB_PASSWORD" \
        -v metrics_pw="$ODP_METRICS_DB_PASSWORD" \
        -f "${ODP_BOOTSTRAP_SQL:-/odp/bootstrap.sql}"
)
