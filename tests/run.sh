#!/bin/sh
# The test suite: unit tests (cmocka), then the integration suite against a throw-away
# PostgreSQL cluster and the five real service processes, then the compose check.
# Prints TAP-ish progress and ends with one line: `N passed, N failed`.
#
# BUILD selects the build directory (build, or build-asan for `make asan`).
set -u
cd "$(dirname "$0")/.."
root=$(pwd)
BUILD=${BUILD:-build}
var=$root/var/test-$BUILD
passed=0
failed=0

# One run at a time per port set (ODP_TEST_PG_PORT, ODP_TEST_PORT_BASE): runs on the same
# ports would share the PostgreSQL and the services.
if command -v flock >/dev/null 2>&1; then
    exec 9>"${TMPDIR:-/tmp}/odp-test-${ODP_TEST_PG_PORT:-55433}.lock"
    flock 9
fi

count_tap() { # file
    p=$(grep -c '^ok ' "$1" || true)
    f=$(grep -c '^not ok ' "$1" || true)
    passed=$((passed + p))
    failed=$((failed + f))
}

# Sanitizer runs: leaks in the tools and services fail the run, as do UB reports.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=99}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# ---- unit tests ---------------------------------------------------------------------------
mkdir -p "$root/var"
# The sample datasets, made by `make` from tests/fixtures (nothing outside the checkout).
export ODP_SAMPLES=${ODP_SAMPLES:-$root/$BUILD/samples}
if [ ! -r "$ODP_SAMPLES/key_enterprise_assets.messy.gb18030.csv" ]; then
    echo "not ok - sample data not found in $ODP_SAMPLES (make builds it; or set ODP_SAMPLES)"
    failed=$((failed + 1))
fi
for t in "$BUILD"/tests/test_*; do
    name=$(basename "$t")
    echo "# unit: $name"
    "$t" > "$root/var/unit-$$.log" 2>&1 || true
    cat "$root/var/unit-$$.log"
    # cmocka's own summary: "[  PASSED  ] N test(s)." and "[  FAILED  ] N test(s)..."
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$root/var/unit-$$.log" | tail -1)
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$root/var/unit-$$.log" | tail -1)
    if [ -z "$p" ] && [ -z "$f" ]; then
        echo "not ok - $name did not run to its summary"
        f=1
    fi
    passed=$((passed + ${p:-0}))
    failed=$((failed + ${f:-0}))
done
rm -f "$root/var/unit-$$.log"

# ---- integration ---------------------------------------------------------------------------
echo "# integration: PostgreSQL cluster under $var"
# Services a failed or killed run left behind (their environment names this run's var
# directory) would hold this port set's ports and answer in the new services' place.
stray() {
    for p in /proc/[0-9]*; do
        case "$(readlink "$p/exe" 2>/dev/null)" in "$root/$BUILD/bin/"*) ;; *) continue ;; esac
        if tr '\0' '\n' < "$p/environ" 2>/dev/null | grep -qx "ODP_TEST_VAR=$var"; then
            echo "# stopping ${p#/proc/} ($(readlink "$p/exe")), left from a case that failed"
            kill -9 "${p#/proc/}" 2>/dev/null
        fi
    done
}
stray
rm -rf "$var/log" "$var/keys" "$var/certs" "$var"/events-* "$var"/catalogue*
mkdir -p "$var/log" "$var/keys" "$var/certs/public" "$root/var"
# A fresh database every run: the tests count rows and events from zero.
# The cluster lives under /tmp: as root it runs as the postgres user, who may not be able
# to enter the checkout (a clone under /root), and unix socket paths must stay short.
pgdir=${ODP_TEST_PG_DIR:-/tmp/odp-test-pg-$(printf '%s' "$root/$BUILD" | cksum | cut -d' ' -f1)}
bash deploy/pg.sh destroy "$pgdir" >/dev/null 2>&1 || true
port=${ODP_TEST_PG_PORT:-55433}
if ! bash deploy/pg.sh init "$pgdir" "$port" "$var/pg.env" > "$var/log/pg-init.log" 2>&1; then
    cat "$var/log/pg-init.log"
    echo "not ok - PostgreSQL test cluster could not start"
    echo "$passed passed, $((failed + 1)) failed"
    exit 1
fi
. "$var/pg.env"

"$BUILD/bin/odpctl" keygen --kind server --id odp --out "$var/certs/server" >/dev/null
"$BUILD/bin/odpctl" keygen --kind operations --id admin --name "Operations administrator" \
    --out "$var/keys/ops-admin" >/dev/null
cp "$var/keys/ops-admin" "$var/certs/public/operations-admin.cert"
# Each service's own identity (kind service), for calling and following the others.
for s in registrar reviewer publisher query metrics; do
    "$BUILD/bin/odpctl" keygen --kind service --id "$s" --out "$var/keys/service-$s" >/dev/null
    cp "$var/keys/service-$s" "$var/certs/public/service-$s.cert"
done

export ODP_TEST_BIN="$root/$BUILD/bin"
export ODP_TEST_VAR="$var"
export ODP_CERT_DIR="$var/certs/public"
export ODP_SERVER_CERT="$var/certs/server"
export ODP_CLIENT_CERT="$var/keys/ops-admin_secret"
export ODP_SERVICE_KEYS="$var/keys"
export ODP_PORT_BASE=${ODP_TEST_PORT_BASE:-17500}
export ODP_SECURITY=curve
# Small buffers and a small PUB high-water mark make slow subscribers overflow quickly;
# replay is what keeps them whole.
export ODP_PUB_HWM=50
export ODP_PUB_SNDBUF=4096
export ODP_HEARTBEAT_MS=300
export ODP_LOG_LEVEL=info

echo "# integration: services and tools from $BUILD/bin"
"$BUILD/tests/itest" ${ODP_ITEST_FILTER:+"$ODP_ITEST_FILTER"} > "$var/itest.tap" 2> "$var/log/itest.err"
rc=$?
stray
cat "$var/itest.tap"
count_tap "$var/itest.tap"
if [ "$rc" -ne 0 ] && ! grep -q '^not ok' "$var/itest.tap"; then
    echo "not ok - itest exited with $rc"; tail -20 "$var/log/itest.err"
    failed=$((failed + 1))
fi
if grep -l 'ERROR: \(Address\|Leak\)Sanitizer\|runtime error:' "$var"/log/*.log \
    "$var"/events-*.err "$var/log/itest.err" 2>/dev/null; then
    echo "not ok - sanitizer reports in the files above"
    failed=$((failed + 1))
fi
if [ "$failed" -gt 0 ]; then
    echo "# service logs: $var/log"
fi
bash deploy/pg.sh destroy "$pgdir" >/dev/null 2>&1 || true

# ---- the catalogue export against the DCAT-AP 3.0.1 SHACL shapes ---------------------------
echo "# catalogue: DCAT-AP SHACL shapes"
sh tests/shacl/run.sh "$var" > "$var/shacl.tap" 2>&1
cat "$var/shacl.tap"
count_tap "$var/shacl.tap"

# ---- deployment --------------------------------------------------------------------------
echo "# deploy and docs"
for t in test_compose test_docs; do
    sh "tests/integration/$t.sh" > "$var/$t.tap" 2>&1
    cat "$var/$t.tap"
    count_tap "$var/$t.tap"
done

# The C sources: git's list in a checkout, else the source directories (an unpacked
# archive, or a machine without git).
sources=$(git ls-files '*.c' '*.h' 2>/dev/null)
[ -n "$sources" ] || sources=$(find common proto services tools tests -name '*.[ch]')
if command -v clang-format >/dev/null 2>&1; then
    if clang-format --dry-run --Werror $sources >/dev/null 2>&1; then
        echo "ok - sources follow .clang-format"; passed=$((passed + 1))
    else
        echo "not ok - sources differ from .clang-format (make format)"; failed=$((failed + 1))
    fi
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
