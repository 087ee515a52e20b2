#!/usr/bin/env bash
# tests/integration/test_compose.sh - static checks of docker-compose.yml (no Docker engine
# needed): it must render with the values from deploy/env.example, and must refuse to
# render when a required password is missing. Prints TAP lines; exit 0 when all pass.
# Re-run under bash when started as `sh script` (the Makefile does that); POSIX syntax
# up to here.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1

if ! command -v docker-compose >/dev/null 2>&1; then
    echo "ok - docker-compose config # SKIP docker-compose not installed"
    exit 0
fi

failed=0
out=$(mktemp)
no_env=$(mktemp)
trap 'rm -f "$out" "$no_env"' EXIT

# KEY=VALUE lines of deploy/env.example (comments and blank lines skipped).
mapfile -t example_env < <(grep -Ev '^[[:space:]]*(#|$)' deploy/env.example)

# compose_config KEY=VALUE... [config options]: docker-compose config with exactly the
# given ODP_* variables (the caller's ODP_* variables and any .env file in the repository
# root are kept out).
compose_config() {
    local clean=() v
    for v in $(compgen -e); do
        [[ $v == ODP_* ]] && clean+=(-u "$v")
    done
    local args=()
    while (($#)) && [[ $1 == *=* ]]; do args+=("$1"); shift; done
    env "${clean[@]}" "${args[@]}" docker-compose --env-file "$no_env" -f docker-compose.yml config "$@"
}

if compose_config "${example_env[@]}" >"$out" 2>&1; then
    echo "ok - docker-compose config"
else
    echo "not ok - docker-compose config"
    sed 's/^/# /' "$out"
    failed=1
fi

# Every service is defined.
want="keygen metrics ops postgres publisher query registrar reviewer web"
got=$(compose_config "${example_env[@]}" --services 2>/dev/null | sort | xargs)
if [[ $got == "$want" ]]; then
    echo "ok - docker-compose services: $want"
else
    echo "not ok - docker-compose services: $want"
    echo "# got: $got"
    failed=1
fi

# No image comes from a registry: every service's image is one the file builds.
if compose_config "${example_env[@]}" 2>/dev/null | python3 -c '
import sys, yaml
svcs = yaml.safe_load(sys.stdin)["services"]
built = {s["image"] for s in svcs.values() if "build" in s}
pulled = sorted(n for n, s in svcs.items() if s.get("image") not in built)
print(" ".join(pulled))
sys.exit(1 if pulled or not built else 0)' >"$out" 2>&1; then
    echo "ok - docker-compose builds every image it runs (no registry)"
else
    echo "not ok - docker-compose builds every image it runs (no registry)"
    sed 's/^/# pulled: /' "$out"
    failed=1
fi

without_pw=()
for kv in "${example_env[@]}"; do
    [[ $kv == ODP_QUERY_DB_PASSWORD=* ]] || without_pw+=("$kv")
done
if compose_config "${without_pw[@]}" >"$out" 2>&1; then
    echo "not ok - docker-compose config requires ODP_QUERY_DB_PASSWORD"
    failed=1
elif grep -q 'ODP_QUERY_DB_PASSWORD' "$out"; then
    echo "ok - docker-compose config requires ODP_QUERY_DB_PASSWORD"
else
    echo "not ok - docker-compose config requires ODP_QUERY_DB_PASSWORD"
    sed 's/^/# /' "$out"
    failed=1
fi

exit "$failed"
