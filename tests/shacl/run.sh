#!/bin/sh
# The DCAT-AP 3 export of a catalogue with every kind of entry (written by the integration
# case "publisher: the catalogue exports ...") against the DCAT-AP 3.0.1 SHACL shapes in
# tests/fixtures/dcat-ap, with rdf-validate-shacl. Installs its npm packages from the
# committed lock file when node_modules is absent. Prints TAP lines.
# usage: run.sh DIR   (the integration run's directory, holding catalogue.jsonld/.ttl)
cd "$(dirname "$0")" || exit 1
dir=$1
if [ ! -r "$dir/catalogue.jsonld" ] || [ ! -r "$dir/catalogue.ttl" ]; then
    if [ -n "${ODP_ITEST_FILTER:-}" ]; then
        echo "ok - DCAT-AP SHACL check # SKIP the catalogue case did not run (ODP_ITEST_FILTER)"
        exit 0
    fi
    echo "not ok - DCAT-AP SHACL check: no catalogue export in $dir"
    exit 1
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "not ok - DCAT-AP SHACL check: node and npm are needed (apt-get install nodejs npm)"
    exit 1
fi
if [ ! -d node_modules ]; then
    if ! npm ci --no-audit --no-fund --loglevel=error > npm-ci.log 2>&1; then
        echo "not ok - DCAT-AP SHACL check: npm ci failed"; sed 's/^/#   /' npm-ci.log | tail -20
        exit 1
    fi
fi
rm -f npm-ci.log
node validate.mjs "$dir/catalogue.jsonld" "$dir/catalogue.ttl"
rc=$?
# The check must be able to fail: a checksum that is not xsd:hexBinary breaks a shape.
sed 's/"xsd:hexBinary"/"xsd:string"/' "$dir/catalogue.jsonld" > "$dir/catalogue-broken.jsonld"
if node validate.mjs "$dir/catalogue-broken.jsonld" > "$dir/catalogue-broken.tap" 2>&1; then
    echo "not ok - DCAT-AP SHACL check passes an export with broken checksums"
    rc=1
else
    echo "ok - DCAT-AP SHACL check refuses an export with broken checksums"
fi
exit $rc
