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
# The harness's own runtime dependencies, without the client libraries (pyproject.toml pins those).
BASE_DEPS=("pytest>=9.0,<10" "pytest-asyncio>=1.3,<2" "pytest-timeout>=2.3,<3" "allure-pytest>=2.16,<3"
           "docker>=7.1,<8" "click>=8.1,<9" "rich>=13" "psutil>=5.9")
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
    stamp=$venv/.installed-$(printf '%s' "$requirement ${BASE_DEPS[*]}" | sha256sum | cut -c1-12)
    if [ ! -e "$stamp" ]; then
        t0=$(date +%s)
        rm -rf "$venv"
        # The harness without its pinned client libraries (--no-deps), then its other
        # dependencies and the one client version under test; pip's output goes to a log.
        "$PY" -m venv "$venv" &&
        "$venv/bin/pip" install -q --disable-pip-version-check "${BASE_DEPS[@]}" "$requirement" >"$venv.pip.log" 2>&1 &&
        "$venv/bin/pip" install -q --disable-pip-version-check --no-deps -e . >>"$venv.pip.log" 2>&1 &&
        touch "$stamp" || { echo "client-matrix: installing $requirement into $venv failed (see $venv.pip.log)" >&2
                            status=1; continue; }
        echo "client-matrix: $venv with $requirement in $(( $(date +%s) - t0 )) s"
    fi
    echo "client-matrix: $entry ($requirement) through the version matrix ..."
    "$venv/bin/python" -m pytest suites/test_version_matrix.py -p no:cacheprovider -q --client "$client" \
        --evidence-dir "$OUT/$entry" || status=1
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
