#!/usr/bin/env bash
# The client matrix beside the Gateway matrix: each client library version in its own
# virtualenv under .venvs/ (the official ibapi 10.x and PyPI's legacy ibapi 9.81 install
# the same module, so they cannot share one), each running the version matrix
# (suites/test_version_matrix.py) for that client; then one `ibgw pin` over all of them,
# so a team learns which client versions work with which Gateway builds.
#
#   gateway-docker/client-matrix.sh                 # every entry below
#   CLIENTS="ib_async-2.0.1" gateway-docker/client-matrix.sh
#   IBGW_MATRIX_TARGET=docker IBGW_MATRIX_VERSIONS=10.19,10.45 gateway-docker/client-matrix.sh
#
# Results: reports/client-matrix/<entry>/matrix/*.json and reports/client-matrix/pinning.{md,json}.
set -uo pipefail
cd "$(dirname "$0")/.."

# entry name -> harness client name and the pip requirement of the library version
declare -A CLIENT=( [ib_async-2.0.1]=ib_async [ib_async-2.1.0]=ib_async [ibapi-10.50]=ibapi [ibapi-9.81]=ibapi )
declare -A REQUIREMENT=( [ib_async-2.0.1]="ib_async==2.0.1" [ib_async-2.1.0]="ib_async==2.1.0"
                         [ibapi-10.50]="ibapi-stable==10.50.2" [ibapi-9.81]="ibapi==9.81.1.post1" )
CLIENTS="${CLIENTS:-ib_async-2.0.1 ib_async-2.1.0 ibapi-10.50 ibapi-9.81}"
# The harness's extras a matrix run needs; none of them brings a client library (the base
# install pins none), so the client version installed first stays (tests/packaging/test_packaging.py).
EXTRAS="docker,report,test"
OUT=reports/client-matrix
PY=${PYTHON:-python3}
status=0
mkdir -p "$OUT" .venvs
for entry in $CLIENTS; do
    client=${CLIENT[$entry]:-}
    requirement=${REQUIREMENT[$entry]:-}
    if [ -z "$client" ]; then
        echo "client-matrix: unknown entry $entry (known: ${!CLIENT[*]})" >&2
        exit 2
    fi
    venv=.venvs/$entry
    stamp=$venv/.installed-$(printf '%s' "$requirement $EXTRAS" | cat - pyproject.toml | sha256sum | cut -c1-12)
    if [ ! -e "$stamp" ]; then
        t0=$(date +%s)
        rm -rf "$venv"
        # The one client version under test first, as a team has it; then the harness with
        # the extras the matrix needs (no client extra); pip's output goes to a log.
        "$PY" -m venv "$venv" &&
        "$venv/bin/pip" install -q --disable-pip-version-check "$requirement" >"$venv.pip.log" 2>&1 &&
        "$venv/bin/pip" install -q --disable-pip-version-check -e ".[$EXTRAS]" >>"$venv.pip.log" 2>&1 &&
        touch "$stamp" || { echo "client-matrix: installing $requirement into $venv failed (see $venv.pip.log)" >&2
                            status=1; continue; }
        echo "client-matrix: $venv with $requirement in $(( $(date +%s) - t0 )) s"
    fi
    echo "client-matrix: $entry ($requirement) through the version matrix ..."
    # --expect-regressions: a regression-fixture build's cell that catches its regression is the
    # detector working (xfail); the pinning table below is this script's verdict on the builds.
    "$venv/bin/python" -m pytest suites/test_version_matrix.py -p no:cacheprovider -q --client "$client" \
        --expect-regressions --evidence-dir "$OUT/$entry" || status=1
    # A failing cell of a Gateway build without a regression fixture is a finding AND a
    # failure: the pinning table below says which client version broke where.
done
echo
dirs=()
for entry in $CLIENTS; do [ -d "$OUT/$entry/matrix" ] && dirs+=("$OUT/$entry/matrix"); done
[ "${#dirs[@]}" -gt 0 ] || { echo "client-matrix: no results to pin" >&2; exit 1; }
.venv/bin/python -m harness.cli pin "${dirs[@]}" --out "$OUT"
pin_status=$?
[ "$pin_status" -ne 2 ] || status=1
exit $status
