#!/bin/sh
# odp-keygen (deploy/keygen.sh in the odp image) - the compose project's one-shot key
# maker. Creates what is missing, never replaces a key:
#   /certs/server, /certs/server_secret             the servers' certificate (every service)
#   /certs/keys/service-<s>[_secret]                each service's identity
#   /certs/monitor/healthcheck[_secret]             kind monitoring: may call health only
#   /admin/ops-admin[_secret]                       the operations administrator; only in the
#                                                   admin volume, which services never mount
# and publishes the public halves in /certs/public, where the ZAP handler reads them.
set -eu
umask 077
mkdir -p /certs/public /certs/keys /certs/monitor /admin
chmod 755 /certs/public
mk() { # kind id name base
    [ -f "$4" ] && [ -f "$4_secret" ] && return 0
    odpctl keygen --kind "$1" --id "$2" --name "$3" --out "$4" >/dev/null
    echo "odp-keygen: made $4"
}
pub() { # base certname
    cp "$1" "/certs/public/$2.cert.tmp" && chmod 644 "/certs/public/$2.cert.tmp" &&
        mv -f "/certs/public/$2.cert.tmp" "/certs/public/$2.cert"
}
mk server odp "odp servers" /certs/server
chmod 644 /certs/server
mk operations admin "Operations administrator" /admin/ops-admin
pub /admin/ops-admin operations-admin
mk monitoring healthcheck "Health checks" /certs/monitor/healthcheck
pub /certs/monitor/healthcheck monitoring-healthcheck
for s in registrar reviewer publisher query metrics; do
    mk service "$s" "$s" "/certs/keys/service-$s"
    pub "/certs/keys/service-$s" "service-$s"
done
echo "odp-keygen: certificates ready"
