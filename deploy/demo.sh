#!/bin/sh
# deploy/demo.sh - a short tour of a running local platform (`make run` calls it after
# `make up`): operations records its authorisation, registers a provider department with
# a key pair, and the department's key is recognised; then the event history.
set -eu
cd "$(dirname "$0")/.."
. var/odp.env
ctl=build/bin/odpctl
step() { printf '\n\033[1m== %s\033[0m\n$ %s\n' "$1" "$2"; }

step "Every service is up" "odpctl health"
$ctl health

step "Operations records who authorised it (R3.2, R3.3)" \
    "odpctl authority register --authority 广东省政务服务数据管理局 ..."
$ctl authority register --authority "广东省政务服务数据管理局" \
    --operations "广东省数字政府运营中心" --document "粤政数〔2026〕12号" \
    --granted-on 2026-03-01 || true

code=440000001
mkdir -p var/certs/keys
step "Operations registers a provider department, with a key pair for it (R3.1)" \
    "odpctl department add --code $code --name 广东省生态环境厅 --keygen var/certs/keys/dept-$code"
if [ ! -f "var/certs/keys/dept-${code}_secret" ]; then
    $ctl department add --code $code --name "广东省生态环境厅" --contact "020-87532000" \
        --keygen "var/certs/keys/dept-$code"
else
    echo "(already registered in an earlier run)"
fi

step "The department's key acts as that department" \
    "odpctl --cert var/certs/keys/dept-${code}_secret whoami"
$ctl --cert "var/certs/keys/dept-${code}_secret" whoami

step "...and may not do what only operations may" \
    "odpctl --cert var/certs/keys/dept-${code}_secret department add --code 440000002 --name X"
$ctl --cert "var/certs/keys/dept-${code}_secret" department add --code 440000002 --name X || true

step "The registry" "odpctl --json department list"
$ctl --json department list

step "Every change is a numbered lifecycle event" \
    "odp-events --service registrar --since 1 --idle-exit-ms 1500"
build/bin/odp-events --service registrar --since 1 --idle-exit-ms 1500 --quiet-gaps

cat <<MSG

The platform is running (logs in var/log/, stop it with 'make down'). Next:
  . var/odp.env                          # your shell now acts as the operations administrator
  build/bin/odpctl --help                # every operations command
  build/bin/odp-events                   # watch lifecycle events live (Ctrl-C to stop)
  proto/PROTOCOL.md                      # write your own client
MSG
