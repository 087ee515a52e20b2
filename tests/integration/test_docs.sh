#!/bin/sh
# The prose contract must name everything the C declaration declares: every command,
# event topic and error code of proto/odp_proto.h appears in proto/PROTOCOL.md in
# backticks. Prints TAP lines; exit 0 when all pass.
cd "$(dirname "$0")/../.." || exit 1
h=proto/odp_proto.h
doc=proto/PROTOCOL.md
fail=0
check() { # kind name
    if grep -qF "\`$2\`" "$doc"; then :; else
        echo "not ok - $1 $2 is declared in $h but not documented in $doc"
        fail=1
    fi
}
for c in $(sed -n 's/^ *M([a-z_]*, "\([a-z._]*[a-z]\)").*/\1/p' "$h"); do check command "$c"; done
for e in $(sed -n 's/^ *E(\([A-Z_0-9]*\), [0-9]*,.*/\1/p' "$h"); do check "error code" "$e"; done
n=$(sed -n 's/^ *M([a-z_]*, "\([a-z._]*[a-z]\)").*/\1/p' "$h" | wc -l)
[ "$n" -ge 10 ] || { echo "not ok - found only $n declarations: the extraction is broken"; fail=1; }
[ $fail -eq 0 ] && echo "ok - PROTOCOL.md documents all $n commands/topics and every error code"
exit $fail
