#!/usr/bin/env bash
# deploy/base-image.sh - a bare Debian 12 Docker image, odp/debian-base:bookworm, built
# without an image registry: debootstrap --variant=minbase from the Debian mirror this
# machine's apt already uses, then `docker import`. Idempotent: does nothing when the
# image exists. tests/newcomer.sh starts its containers from it.
#
# Needs root (debootstrap) and a Docker engine; installs debootstrap (and docker.io) with
# apt-get when missing, and starts dockerd when none answers (--iptables=false: the
# containers use --network host, no bridge rules are needed).
#
# Environment: ODP_BASE_IMAGE (default odp/debian-base:bookworm),
# ODP_DEBIAN_MIRROR / ODP_DEBIAN_SECURITY (default: read from the host's apt sources).
# Re-run under bash when started as `sh script`; POSIX syntax up to here.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail

PROG=deploy/base-image.sh
IMAGE=${ODP_BASE_IMAGE:-odp/debian-base:bookworm}
SUITE=bookworm

say() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { say "$*"; exit 1; }

[[ $(id -u) -eq 0 ]] || die "needs root (debootstrap, dockerd)"

# The first URI the host's apt uses for suite $1, from one-line sources.list files
# ("deb [options] URI SUITE components") and deb822 .sources files (Types/URIs/Suites).
host_uri() {
    local suite=$1 f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -r $f ]] || continue
        sed -E 's/\[[^]]*\]//' "$f" |
            awk -v s="$suite" '$1 == "deb" && $3 == s { print $2; exit }'
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -r $f ]] || continue
        # One stanza per paragraph; Enabled: no turns a stanza off.
        awk -v s="$suite" '
            function flush() {
                if (types ~ /(^| )deb( |$)/ && enabled != "no" && (" " suites " ") ~ (" " s " "))
                    { split(uris, u, " "); print u[1]; found = 1 }
                types = uris = suites = enabled = ""
            }
            /^[[:space:]]*$/ { flush(); if (found) exit; next }
            /^#/ { next }
            tolower($1) == "types:"   { $1 = ""; types = substr($0, 2) }
            tolower($1) == "uris:"    { $1 = ""; uris = substr($0, 2) }
            tolower($1) == "suites:"  { $1 = ""; suites = substr($0, 2) }
            tolower($1) == "enabled:" { enabled = tolower($2) }
            END { if (!found) flush() }' "$f"
    done
}

apt_install() {
    local log
    log=$(mktemp /tmp/odp-apt.XXXXXX)
    say "installing $*"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"; } \
        >"$log" 2>&1; then
        tail -n 20 "$log" >&2
        rm -f "$log"
        die "apt-get install $* failed"
    fi
    rm -f "$log"
}

start_docker() {
    docker info >/dev/null 2>&1 && return 0
    if ! command -v dockerd >/dev/null 2>&1; then
        apt_install docker.io
    fi
    docker info >/dev/null 2>&1 && return 0
    say "starting dockerd --iptables=false (log: /var/log/odp-dockerd.log)"
    nohup dockerd --iptables=false >>/var/log/odp-dockerd.log 2>&1 </dev/null &
    local i
    for ((i = 0; i < 60; i++)); do
        docker info >/dev/null 2>&1 && return 0
        sleep 1
    done
    tail -n 20 /var/log/odp-dockerd.log >&2 || true
    die "dockerd did not answer within 60 s"
}

start_docker
if docker image inspect "$IMAGE" >/dev/null 2>&1; then
    say "$IMAGE exists"
    exit 0
fi

mirror=${ODP_DEBIAN_MIRROR:-$(host_uri "$SUITE" | head -n 1)}
security=${ODP_DEBIAN_SECURITY:-$(host_uri "$SUITE-security" | head -n 1)}
[[ -n $mirror ]] || die "no '$SUITE' source in /etc/apt/sources.list{,.d/*}; set ODP_DEBIAN_MIRROR"

if ! command -v debootstrap >/dev/null 2>&1; then
    apt_install debootstrap
fi

root=$(mktemp -d /tmp/odp-base.XXXXXX)
# A debootstrap that failed half way may leave proc and sys mounted inside.
cleanup() {
    local m
    for m in $(awk -v r="$root/" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r); do
        umount -l "$m" 2>/dev/null || true
    done
    rm -rf --one-file-system "$root"
}
trap cleanup EXIT
say "debootstrap --variant=minbase $SUITE from $mirror (a few minutes)"
if ! debootstrap --variant=minbase "$SUITE" "$root/fs" "$mirror" >"$root/debootstrap.log" 2>&1; then
    tail -n 30 "$root/debootstrap.log" >&2
    tail -n 30 "$root/fs/debootstrap/debootstrap.log" >&2 2>/dev/null || true
    die "debootstrap failed"
fi

# The image's apt reads the same mirror as this machine, as deb822 sources.
rm -f "$root/fs/etc/apt/sources.list"
{
    echo "Types: deb"
    echo "URIs: $mirror"
    echo "Suites: $SUITE $SUITE-updates"
    echo "Components: main"
    echo "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"
    if [[ -n $security ]]; then
        echo
        echo "Types: deb"
        echo "URIs: $security"
        echo "Suites: $SUITE-security"
        echo "Components: main"
        echo "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"
    fi
} >"$root/fs/etc/apt/sources.list.d/debian.sources"
# No package lists, no caches: a machine that has never run apt-get update.
rm -rf "$root/fs/var/lib/apt/lists/"* "$root/fs/var/cache/apt/"*.bin

say "docker import as $IMAGE"
tar -C "$root/fs" -c . | docker import \
    --change 'ENV LANG=C.UTF-8' --change 'CMD ["/bin/bash"]' - "$IMAGE" >/dev/null
say "built $IMAGE ($(docker image inspect -f '{{.Size}}' "$IMAGE") bytes)"
