#!/usr/bin/env bash
# tests/newcomer.sh - the README's two commands, tried as a new user would (`make newcomer`):
# a clone of HEAD with nothing beside it, in a bare Debian 12 container (deploy/base-image.sh),
# as root: `apt-get install make` (the README's note for a bare system), `make deps run` in
# one invocation, then `make test`. Asserts that the demo ran and that the test summary
# reports 0 failed. Prints TAP lines and the time each step took; the container and the
# clone are removed at the end, also on failure. Logs: var/newcomer/.
#
# Needs root and a Docker engine (base-image.sh starts dockerd when none answers). Only
# committed work is tried: the clone is of HEAD. The container shares the host's network
# (apt-get reaches the same mirror), so the platform and the tests inside use their own
# ports, away from the defaults a developer's `make run` / `make test` use on the host:
# ODP_NEWCOMER_PORT_BASE (8500), ODP_NEWCOMER_DB_PORT (56432),
# ODP_NEWCOMER_TEST_PORT_BASE (18500), ODP_NEWCOMER_TEST_PG_PORT (56433).
# Not part of `make test`: it downloads the packages and takes minutes.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
root=$(pwd)
image=${ODP_BASE_IMAGE:-odp/debian-base:bookworm}
logs=$root/var/newcomer
passed=0
failed=0
start=$SECONDS

ok() {
    echo "ok - $*"
    passed=$((passed + 1))
}
not_ok() {
    echo "not ok - $*"
    failed=$((failed + 1))
}
# The last lines of a log, as TAP comments.
show() { tail -n "${2:-30}" "$1" | sed 's/^/# /'; }
finish() {
    echo "# newcomer: $((SECONDS - start)) s in all"
    echo "$passed passed, $failed failed"
    [[ $failed -eq 0 ]]
    exit
}

[[ $(id -u) -eq 0 ]] || { not_ok "tests/newcomer.sh needs root (Docker)"; finish; }
rm -rf "$logs"
mkdir -p "$logs"

work=$(mktemp -d /tmp/odp-newcomer.XXXXXX)
container=odp-newcomer-$$
cleanup() {
    docker rm -f "$container" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the image and the clone --------------------------------------------------------------
t=$SECONDS
if bash deploy/base-image.sh >"$logs/base-image.log" 2>&1; then
    ok "base image $image ($((SECONDS - t)) s)"
else
    not_ok "base image $image"
    show "$logs/base-image.log"
    finish
fi

head=$(git rev-parse HEAD)
if git clone -q --no-checkout "$root" "$work/odp" && git -C "$work/odp" checkout -q "$head"; then
    ok "a clone of HEAD ${head:0:12} alone in $work"
else
    not_ok "git clone of $root"
    finish
fi
if [[ -n $(git status --porcelain --untracked-files=no) ]]; then
    echo "# uncommitted changes are not part of the clone"
fi

# ---- a bare container ----------------------------------------------------------------------
# --init reaps the services that `make run` leaves behind when its docker exec ends.
if docker run -d --init --name "$container" --network host "$image" sleep infinity \
    >"$logs/docker-run.log" 2>&1 && docker cp "$work/odp" "$container:/root/odp" \
    >>"$logs/docker-run.log" 2>&1; then
    ok "container $container from $image, the clone in /root/odp"
else
    not_ok "container from $image"
    show "$logs/docker-run.log"
    finish
fi

# step LOG COMMAND: COMMAND in /root/odp in the container as root, with the ports
# kept away from the host's; its output goes to LOG. Exit status of COMMAND.
step() {
    local log=$1
    shift
    docker exec \
        -e ODP_PORT_BASE="${ODP_NEWCOMER_PORT_BASE:-8500}" \
        -e ODP_DB_PORT="${ODP_NEWCOMER_DB_PORT:-56432}" \
        -e ODP_TEST_PORT_BASE="${ODP_NEWCOMER_TEST_PORT_BASE:-18500}" \
        -e ODP_TEST_PG_PORT="${ODP_NEWCOMER_TEST_PG_PORT:-56433}" \
        -w /root/odp "$container" bash -c "$*" >"$log" 2>&1
}

t=$SECONDS
if step "$logs/make.log" 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq make'; then
    ok "apt-get install make ($((SECONDS - t)) s)"
else
    not_ok "apt-get install make"
    show "$logs/make.log"
    finish
fi

# ---- the README's two commands -------------------------------------------------------------
t=$SECONDS
step "$logs/deps-run.log" 'make deps run'
rc=$?
secs=$((SECONDS - t))
if [[ $rc -eq 0 ]] && grep -q '^The platform is running' "$logs/deps-run.log"; then
    ok "make deps run: built, started and the demo ran ($secs s)"
else
    not_ok "make deps run exited $rc without the demo's closing message ($secs s)"
    show "$logs/deps-run.log" 40
fi

t=$SECONDS
step "$logs/test.log" 'make test'
rc=$?
secs=$((SECONDS - t))
summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$logs/test.log" | tail -n 1)
if [[ $rc -eq 0 && $summary =~ ^[1-9][0-9]*\ passed,\ 0\ failed ]]; then
    ok "make test: $summary ($secs s)"
else
    not_ok "make test exited $rc: ${summary:-no summary line} ($secs s)"
    grep '^not ok' "$logs/test.log" | sed 's/^/# /'
    show "$logs/test.log" 20
fi
finish
